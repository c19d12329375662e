package imgfmt

import (
	"encoding/binary"
	"time"
)

// On-disk structures of Microsoft's VHD format ("Virtual Hard Disk Image
// Format Specification" 1.0). All fields are big endian.

const (
	vhdFeaturesReserved = 0x00000002 // must always be set
	vhdVersion          = 0x00010000
	vhdNoDataOffset     = 0xFFFFFFFFFFFFFFFF
	vhdTypeFixed        = 2
	vhdTypeDynamic      = 3
	vhdBATUnused        = 0xFFFFFFFF
)

// vhdEpoch is the origin of VHD time stamps.
var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// vhdFooter is the 512-byte footer at the end of every VHD (and, for a
// dynamic disk, its copy at offset 0).
type vhdFooter struct {
	Cookie             [8]byte // "conectix"
	Features           uint32
	FileFormatVersion  uint32
	DataOffset         uint64 // dynamic header offset, vhdNoDataOffset if fixed
	TimeStamp          uint32 // seconds since vhdEpoch
	CreatorApplication [4]byte
	CreatorVersion     uint32
	CreatorHostOS      [4]byte
	OriginalSize       uint64
	CurrentSize        uint64
	Cylinders          uint16
	Heads              uint8
	SectorsPerTrack    uint8
	DiskType           uint32
	Checksum           uint32
	UniqueID           [16]byte
	SavedState         uint8
	_                  [427]byte
}

// vhdDynamicHeader is the 1024-byte header of a dynamic disk.
type vhdDynamicHeader struct {
	Cookie            [8]byte // "cxsparse"
	DataOffset        uint64  // unused: vhdNoDataOffset
	TableOffset       uint64  // byte offset of the BAT
	HeaderVersion     uint32
	MaxTableEntries   uint32
	BlockSize         uint32
	Checksum          uint32
	ParentUniqueID    [16]byte
	ParentTimeStamp   uint32
	_                 uint32
	ParentUnicodeName [512]byte
	ParentLocators    [8][24]byte
	_                 [256]byte
}

// encode returns the footer with its checksum filled in.
func (f vhdFooter) encode() []byte {
	f.Checksum = 0
	b := mustEncodeBE(&f)
	binary.BigEndian.PutUint32(b[64:], vhdChecksum(b))
	return b
}

// encode returns the header with its checksum filled in.
func (h vhdDynamicHeader) encode() []byte {
	h.Checksum = 0
	b := mustEncodeBE(&h)
	binary.BigEndian.PutUint32(b[36:], vhdChecksum(b))
	return b
}

func mustEncodeBE(v any) []byte {
	b, err := binary.Append(nil, binary.BigEndian, v)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}

// vhdChecksum is the one's complement of the byte sum, computed with the
// checksum field zeroed.
func vhdChecksum(b []byte) uint32 {
	var sum uint32
	for _, c := range b {
		sum += uint32(c)
	}
	return ^sum
}

// vhdGeometry is the specification's CHS calculation (its appendix "CHS
// Calculation") for a disk of totalSectors sectors.
func vhdGeometry(totalSectors int64) (cylinders, heads, sectorsPerTrack int64) {
	totalSectors = min(totalSectors, 65535*16*255)
	var cylTimesHeads int64
	if totalSectors >= 65535*16*63 {
		sectorsPerTrack, heads = 255, 16
		cylTimesHeads = totalSectors / sectorsPerTrack
	} else {
		sectorsPerTrack = 17
		cylTimesHeads = totalSectors / sectorsPerTrack
		heads = max((cylTimesHeads+1023)/1024, 4)
		if cylTimesHeads >= heads*1024 || heads > 16 {
			sectorsPerTrack, heads = 31, 16
			cylTimesHeads = totalSectors / sectorsPerTrack
		}
		if cylTimesHeads >= heads*1024 {
			sectorsPerTrack, heads = 63, 16
			cylTimesHeads = totalSectors / sectorsPerTrack
		}
	}
	return cylTimesHeads / heads, heads, sectorsPerTrack
}
