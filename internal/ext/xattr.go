package ext

import (
	"errors"
	"fmt"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

// maxXattrValue is the largest value Linux lets an xattr have.
const maxXattrValue = 65536

// xattrFunc receives one attribute: its name index, name suffix and a way
// to fetch its raw (on-disk) value. Returning errStop ends the walk.
type xattrFunc func(e *disklayout.XattrEntry, value func() ([]byte, error)) error

// walkXattrs visits the in-inode attributes, then the external block's.
func (f *FS) walkXattrs(in *inode, fn xattrFunc) error {
	if area := disklayout.InlineXattrArea(in.raw, in.ExtraIsize); area != nil && le32(area) == disklayout.XattrMagic {
		entries := area[disklayout.XattrIbodyHeaderSize:]
		if err := f.walkXattrEntries(in, entries, entries, fn); err != nil {
			return err
		}
	}
	if in.FileACL == 0 {
		return nil
	}
	b, err := f.metaBlock(in.FileACL)
	if err != nil {
		return fmt.Errorf("inode %d: xattr block: %w", in.ino, err)
	}
	h := disklayout.DecodeXattrBlockHeader(b)
	if h.Magic != disklayout.XattrMagic || h.Blocks != 1 {
		return corrupt("inode %d: xattr block %d has bad header (magic %#x, %d blocks)", in.ino, in.FileACL, h.Magic, h.Blocks)
	}
	return f.walkXattrEntries(in, b[disklayout.XattrBlockHeaderSize:], b, fn)
}

// walkXattrEntries decodes entries from list; values are at offsets
// relative to base and must lie inside it.
func (f *FS) walkXattrEntries(in *inode, list, base []byte, fn xattrFunc) error {
	for p := 0; p < len(list); {
		e, err := disklayout.DecodeXattrEntry(list[p:])
		if err == disklayout.ErrXattrEnd {
			return nil
		}
		if err != nil {
			return corrupt("inode %d: %v", in.ino, err)
		}
		p += e.Size
		if e.ValueSize > maxXattrValue {
			return corrupt("inode %d: xattr value of %d bytes", in.ino, e.ValueSize)
		}
		var value func() ([]byte, error)
		if e.ValueInum != 0 {
			inum, size := e.ValueInum, e.ValueSize
			value = func() ([]byte, error) { return f.eaInodeValue(in, inum, size) }
		} else {
			off, size := int(e.ValueOffset), int(e.ValueSize)
			if off > len(base) || size > len(base)-off {
				return corrupt("inode %d: xattr value at %d+%d outside its %d-byte area", in.ino, off, size, len(base))
			}
			v := base[off : off+size]
			value = func() ([]byte, error) { return v, nil }
		}
		if err := fn(&e, value); err != nil {
			return err
		}
	}
	return corrupt("inode %d: xattr list has no end marker", in.ino)
}

// eaInodeValue reads a value kept in its own inode (ea_inode feature).
func (f *FS) eaInodeValue(owner *inode, inum, size uint32) ([]byte, error) {
	vi, err := f.getInode(uint64(inum))
	if err != nil {
		return nil, fmt.Errorf("inode %d: xattr value inode: %w", owner.ino, err)
	}
	if !vi.flag(disklayout.InodeFlagEAInode) || vi.typ() != fsys.S_IFREG || vi.size != int64(size) {
		return nil, corrupt("inode %d: xattr value inode %d is not a %d-byte EA inode", owner.ino, inum, size)
	}
	v := make([]byte, size)
	if n, err := f.readData(vi, v, 0); n != len(v) {
		return nil, fmt.Errorf("inode %d: reading xattr value inode %d: %w", owner.ino, inum, err)
	}
	return v, nil
}

// ListXattr returns the names of the extended attributes, in-inode ones
// first. system.data (inline data) is internal and not listed, as in Linux.
func (f *FS) ListXattr(ino uint64) ([]string, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return nil, err
	}
	var names []string
	err = f.walkXattrs(in, func(e *disklayout.XattrEntry, _ func() ([]byte, error)) error {
		if name, ok := xattrName(e); ok {
			names = append(names, name)
		}
		return nil
	})
	return names, err
}

func xattrName(e *disklayout.XattrEntry) (string, bool) {
	prefix, ok := disklayout.XattrPrefix(e.NameIndex)
	if !ok || e.NameIndex == disklayout.XattrIndexSystem && string(e.Name) == "data" {
		return "", false
	}
	return prefix + string(e.Name), true
}

// GetXattr returns one attribute's value (POSIX ACLs in the getxattr(2)
// format), or an error wrapping fsys.ErrNoAttr.
func (f *FS) GetXattr(ino uint64, name string) ([]byte, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = f.walkXattrs(in, func(e *disklayout.XattrEntry, value func() ([]byte, error)) error {
		n, ok := xattrName(e)
		if !ok || n != name {
			return nil
		}
		v, err := value()
		if err != nil {
			return err
		}
		if e.NameIndex == disklayout.XattrIndexACLAccess || e.NameIndex == disklayout.XattrIndexACLDefault {
			if v, err = disklayout.ACLToXattr(v); err != nil {
				return corrupt("inode %d: %s: %v", ino, name, err)
			}
		} else {
			v = append(make([]byte, 0, len(v)), v...)
		}
		out = v
		return errStop
	})
	if err == errStop {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("ext: inode %d: %q: %w", ino, name, fsys.ErrNoAttr)
}

// systemData returns the system.data xattr value that continues inline
// data past i_block (empty when absent).
func (f *FS) systemData(in *inode) ([]byte, error) {
	var out []byte
	err := f.walkXattrs(in, func(e *disklayout.XattrEntry, value func() ([]byte, error)) error {
		if e.NameIndex != disklayout.XattrIndexSystem || string(e.Name) != "data" {
			return nil
		}
		v, err := value()
		out = v
		if err == nil {
			err = errStop
		}
		return err
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// inlineData returns the stored bytes of an inline-data inode: i_block
// then system.data, cut to i_size. It may be shorter than i_size: like
// the kernel, readers treat the rest as zeros.
func (f *FS) inlineData(in *inode) ([]byte, error) {
	n := int(min(in.size, disklayout.IBlockSize))
	if in.size <= disklayout.IBlockSize {
		return in.Block[:n], nil
	}
	extra, err := f.systemData(in)
	if err != nil {
		return nil, err
	}
	extra = extra[:min(int64(len(extra)), in.size-disklayout.IBlockSize)]
	data := make([]byte, disklayout.IBlockSize+len(extra))
	copy(data, in.Block[:])
	copy(data[disklayout.IBlockSize:], extra)
	return data, nil
}
