package fatiso

// On-disk layout of ISO9660 (ECMA-119): volume descriptors, directory
// records and path tables. Decoding only; iso.go walks.

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

const (
	isoBlock       = 2048
	isoVDStart     = 16 // first volume descriptor, in blocks
	isoMaxVDs      = 64
	isoMaxPathTbl  = 16 << 20
	vdTypeBoot     = 0
	vdTypePrimary  = 1
	vdTypeSupp     = 2
	vdTypeTerminal = 255
)

// volumeDescriptor holds the fields of a primary or supplementary
// volume descriptor that vmroot uses.
type volumeDescriptor struct {
	typ           byte
	joliet        bool
	volumeID      string
	spaceBlocks   uint32
	blockSize     uint16
	pathTableSize uint32
	pathTableL    uint32 // block of the little-endian path table
	root          dirRecord
	created       [17]byte
	modified      [17]byte
}

// decodeVD decodes a 2048-byte volume descriptor; ok is false when the
// block does not carry the "CD001" identifier.
func decodeVD(b []byte) (vd volumeDescriptor, ok bool, err error) {
	if len(b) < isoBlock || string(b[1:6]) != "CD001" {
		return vd, false, nil
	}
	vd.typ = b[0]
	if vd.typ != vdTypePrimary && vd.typ != vdTypeSupp {
		return vd, true, nil
	}
	le := binary.LittleEndian
	vd.volumeID = strings.TrimRight(string(b[40:72]), " \x00")
	vd.spaceBlocks = le.Uint32(b[80:])
	vd.blockSize = le.Uint16(b[128:])
	vd.pathTableSize = le.Uint32(b[132:])
	vd.pathTableL = le.Uint32(b[140:])
	if vd.typ == vdTypeSupp {
		esc := string(b[88:91])
		vd.joliet = esc == "%/@" || esc == "%/C" || esc == "%/E"
	}
	vd.root, err = decodeDirRecord(b[156:190])
	if err != nil {
		return vd, true, fmt.Errorf("root directory record: %w", err)
	}
	copy(vd.created[:], b[813:830])
	copy(vd.modified[:], b[830:847])
	return vd, true, nil
}

// dirRecord is the part of a directory record vmroot checks itself.
type dirRecord struct {
	length   byte
	location uint32
	size     uint32
	flags    byte
	recorded [7]byte
	name     []byte
	system   []byte // system use area (SUSP / Rock Ridge)
}

func decodeDirRecord(b []byte) (dirRecord, error) {
	var r dirRecord
	if len(b) < 34 || int(b[0]) < 34 || int(b[0]) > len(b) {
		return r, fmt.Errorf("record length %d invalid", safeByte(b, 0))
	}
	le := binary.LittleEndian
	r.length = b[0]
	r.location = le.Uint32(b[2:])
	r.size = le.Uint32(b[10:])
	r.flags = b[25]
	copy(r.recorded[:], b[18:25])
	nl := int(b[32])
	if 33+nl > int(r.length) {
		return r, fmt.Errorf("name length %d overflows the %d-byte record", nl, r.length)
	}
	r.name = b[33 : 33+nl]
	su := 33 + nl
	if nl%2 == 0 {
		su++ // padding byte
	}
	if su < int(r.length) {
		r.system = b[su:r.length]
	}
	return r, nil
}

func safeByte(b []byte, i int) int {
	if i < len(b) {
		return int(b[i])
	}
	return -1
}

// hasSUSP reports whether a root "." record starts its system use area
// with the SUSP "SP" indicator, which is how Rock Ridge is announced.
func (r dirRecord) hasSUSP() bool {
	s := r.system
	return len(s) >= 7 && s[0] == 'S' && s[1] == 'P' && s[4] == 0xbe && s[5] == 0xef
}

// pathTableLocations returns the directory extents a little-endian path
// table lists.
func pathTableLocations(b []byte) ([]uint32, error) {
	var out []uint32
	for i := 0; i < len(b); {
		nl := int(b[i])
		if nl == 0 {
			break // padding
		}
		if i+8+nl > len(b) {
			return nil, fmt.Errorf("path table record at byte %d overflows the table", i)
		}
		out = append(out, binary.LittleEndian.Uint32(b[i+2:]))
		i += 8 + nl + nl%2
	}
	return out, nil
}

// isoDate formats a 17-byte volume descriptor date as blkid prints it
// (YYYY-MM-DD-HH-MM-SS-cc); ok is false for an unset date.
func isoDate(d [17]byte) (string, bool) {
	for _, c := range d[:16] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if string(d[:16]) == "0000000000000000" {
		return "", false
	}
	s := string(d[:16])
	return fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", s[0:4], s[4:6], s[6:8], s[8:10], s[10:12], s[12:14], s[14:16]), true
}

// decodeDirRecords returns the records of a directory extent in order,
// without "." and "..". A zero length byte means the rest of that block
// is padding.
func decodeDirRecords(b []byte) ([]dirRecord, error) {
	var out []dirRecord
	for i := 0; i < len(b); {
		l := int(b[i])
		if l == 0 {
			i += isoBlock - i%isoBlock
			continue
		}
		if i+l > len(b) {
			return nil, fmt.Errorf("directory record at byte %d overflows the %d-byte extent", i, len(b))
		}
		r, err := decodeDirRecord(b[i : i+l])
		if err != nil {
			return nil, fmt.Errorf("directory record at byte %d: %w", i, err)
		}
		i += l
		if len(r.name) == 1 && (r.name[0] == 0 || r.name[0] == 1) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// suspEntries calls f for each SUSP entry (signature, data) of a system
// use area, after skipping skip bytes, until "ST" or the end.
func suspEntries(su []byte, skip int, f func(sig string, data []byte)) {
	if skip > len(su) {
		return
	}
	su = su[skip:]
	for len(su) >= 4 {
		l := int(su[2])
		if l < 4 || l > len(su) {
			return
		}
		sig := string(su[:2])
		if sig == "ST" {
			return
		}
		f(sig, su[4:l])
		su = su[l:]
	}
}

// rockRidge returns the Rock Ridge name (NM) of a record, if it has one
// in the record itself, and whether the record is a relocated directory
// (RE), which directory listings omit.
func (r dirRecord) rockRidge(skip int) (name string, hasName, relocated bool) {
	var sb strings.Builder
	suspEntries(r.system, skip, func(sig string, d []byte) {
		switch sig {
		case "NM":
			if len(d) >= 1 && d[0]&0x06 == 0 { // not "." or ".."
				sb.Write(d[1:])
				hasName = true
			}
		case "RE":
			relocated = true
		}
	})
	return sb.String(), hasName, relocated
}

// isoMapNormal translates an ISO9660 name as Linux's isofs does with its
// default map=normal: lower-case A-Z, drop a trailing ";1" or ".;1", and
// turn other ';' and '/' into '.'.
func isoMapNormal(old []byte) string {
	out := make([]byte, 0, len(old))
	for i := 0; i < len(old); i++ {
		c := old[i]
		if c == 0 {
			break
		}
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		if c == '.' && i == len(old)-3 && old[i+1] == ';' && old[i+2] == '1' {
			break
		}
		if c == ';' && i == len(old)-2 && old[i+1] == '1' {
			break
		}
		if c == ';' || c == '/' {
			c = '.'
		}
		out = append(out, c)
	}
	return string(out)
}

// jolietName decodes a UCS-2 (UTF-16BE) Joliet name as Linux does: drop a
// trailing ";1", then trailing dots.
func jolietName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.BigEndian.Uint16(b[i:]))
	}
	s := string(utf16.Decode(u))
	s = strings.TrimSuffix(s, ";1")
	for len(s) >= 2 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// recordTime decodes a directory record's recording date: years since
// 1900, month, day, hour, minute, second, offset from GMT in 15-minute
// units.
func (r dirRecord) recordTime() time.Time {
	d := r.recorded
	if d == [7]byte{} {
		return time.Time{}
	}
	zone := time.FixedZone("", int(int8(d[6]))*15*60)
	return time.Date(1900+int(d[0]), time.Month(d[1]), int(d[2]), int(d[3]), int(d[4]), int(d[5]), 0, zone)
}
