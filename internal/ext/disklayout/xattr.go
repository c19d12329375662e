package disklayout

import (
	"errors"
	"fmt"
)

// Extended attribute layout. An external block starts with a 32-byte
// header; the in-inode area starts with just the 4-byte magic. Entries
// follow, each 16 bytes plus the name, padded to 4; a zero word ends the
// list. Value offsets count from the block start (external) or from the
// first entry (in-inode).
const (
	XattrMagic           = 0xEA020000
	XattrBlockHeaderSize = 32
	XattrIbodyHeaderSize = 4
	XattrEntryHeaderSize = 16
)

// XattrBlockHeader is the header of an external xattr block.
type XattrBlockHeader struct {
	Magic    uint32
	RefCount uint32
	Blocks   uint32
	Hash     uint32
	Checksum uint32
}

// DecodeXattrBlockHeader decodes the header at the start of b (32+ bytes).
func DecodeXattrBlockHeader(b []byte) XattrBlockHeader {
	return XattrBlockHeader{
		Magic:    le.Uint32(b[0:]),
		RefCount: le.Uint32(b[4:]),
		Blocks:   le.Uint32(b[8:]),
		Hash:     le.Uint32(b[12:]),
		Checksum: le.Uint32(b[16:]),
	}
}

// XattrEntry is one decoded attribute entry.
type XattrEntry struct {
	NameIndex   uint8
	ValueOffset uint16
	ValueInum   uint32 // ea_inode: the value is the content of this inode
	ValueSize   uint32
	Hash        uint32
	Name        []byte // aliases the decoded buffer
	Size        int    // bytes the entry occupies, padding included
}

// ErrXattrEnd is returned by DecodeXattrEntry at the end-of-list marker.
var ErrXattrEnd = errors.New("end of xattr entries")

// DecodeXattrEntry decodes the entry at the start of b.
func DecodeXattrEntry(b []byte) (XattrEntry, error) {
	if len(b) >= 4 && le.Uint32(b) == 0 {
		return XattrEntry{}, ErrXattrEnd
	}
	if len(b) < XattrEntryHeaderSize {
		return XattrEntry{}, errors.New("xattr entry runs past the end of its area")
	}
	e := XattrEntry{
		NameIndex:   b[1],
		ValueOffset: le.Uint16(b[2:]),
		ValueInum:   le.Uint32(b[4:]),
		ValueSize:   le.Uint32(b[8:]),
		Hash:        le.Uint32(b[12:]),
	}
	n := int(b[0])
	e.Size = (XattrEntryHeaderSize + n + 3) &^ 3
	if e.Size > len(b) {
		return XattrEntry{}, errors.New("xattr entry name runs past the end of its area")
	}
	e.Name = b[XattrEntryHeaderSize : XattrEntryHeaderSize+n]
	return e, nil
}

// Attribute name indexes and the prefixes they stand for.
const (
	XattrIndexUser       = 1
	XattrIndexACLAccess  = 2
	XattrIndexACLDefault = 3
	XattrIndexTrusted    = 4
	XattrIndexLustre     = 5
	XattrIndexSecurity   = 6
	XattrIndexSystem     = 7 // "system.data" holds inline data
	XattrIndexRichACL    = 8
	XattrIndexEncryption = 9
)

// XattrPrefix returns the name prefix for a name index, and false for
// indexes Linux does not expose.
func XattrPrefix(index uint8) (string, bool) {
	switch index {
	case XattrIndexUser:
		return "user.", true
	case XattrIndexACLAccess:
		return "system.posix_acl_access", true
	case XattrIndexACLDefault:
		return "system.posix_acl_default", true
	case XattrIndexTrusted:
		return "trusted.", true
	case XattrIndexSecurity:
		return "security.", true
	case XattrIndexSystem:
		return "system.", true
	case XattrIndexRichACL:
		return "system.richacl", true
	}
	return "", false
}

// POSIX ACL formats: ext4 stores a compact form (version 1; 4-byte
// entries for tags without an id); the xattr interface uses version 2
// with 8-byte entries everywhere.
const (
	ext4ACLVersion  = 1
	posixACLVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xFFFFFFFF
)

// ACLToXattr converts an on-disk ext4 POSIX ACL to the Linux xattr form
// that getxattr(2) returns.
func ACLToXattr(b []byte) ([]byte, error) {
	if len(b) < 4 || le.Uint32(b) != ext4ACLVersion {
		return nil, errors.New("bad POSIX ACL header")
	}
	// Every disk entry is at least 4 bytes and becomes 8: bounded by 2*len.
	out := make([]byte, 4, 4+2*len(b))
	le.PutUint32(out, posixACLVersion)
	for p := 4; p < len(b); {
		if p+4 > len(b) {
			return nil, errors.New("truncated POSIX ACL entry")
		}
		tag, perm := le.Uint16(b[p:]), le.Uint16(b[p+2:])
		id := uint32(aclUndefinedID)
		switch tag {
		case aclUser, aclGroup:
			if p+8 > len(b) {
				return nil, errors.New("truncated POSIX ACL entry")
			}
			id = le.Uint32(b[p+4:])
			p += 8
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			p += 4
		default:
			return nil, fmt.Errorf("unknown POSIX ACL tag %#x", tag)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
