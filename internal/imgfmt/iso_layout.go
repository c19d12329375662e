package imgfmt

import (
	"encoding/binary"
	"fmt"
	"time"
)

// On-disk structures of ISO 9660 (ECMA-119) and El Torito ("Bootable
// CD-ROM Format Specification" 1.0). ISO 9660 stores many numbers in both
// byte orders; those fields are byte arrays filled by isoBoth16/32, so the
// structs encode the same in either order.

const (
	isoSectorSize = 2048
	isoStdID      = "CD001"
	isoVDBoot     = 0
	isoVDPrimary  = 1
	isoVDEnd      = 255
	isoDirFlag    = 0x02
	eltoritoID    = "EL TORITO SPECIFICATION"

	eltoritoBootable  = 0x88
	eltoritoFloppy144 = 2 // media type: 1.44 MB diskette emulation
	eltoritoX86       = 0 // platform ID
	floppy144Size     = 1474560
)

type isoBoth16 [4]byte
type isoBoth32 [8]byte

func both16(v uint16) (b isoBoth16) {
	binary.LittleEndian.PutUint16(b[0:], v)
	binary.BigEndian.PutUint16(b[2:], v)
	return b
}

func both32(v uint32) (b isoBoth32) {
	binary.LittleEndian.PutUint32(b[0:], v)
	binary.BigEndian.PutUint32(b[4:], v)
	return b
}

// isoPrimaryVD is the primary volume descriptor (ECMA-119 8.4).
type isoPrimaryVD struct {
	Type                 uint8
	StdID                [5]byte
	Version              uint8
	_                    uint8
	SystemID             [32]byte // a-characters, space padded
	VolumeID             [32]byte // d-characters, space padded
	_                    [8]byte
	VolumeSpaceSize      isoBoth32 // sectors
	_                    [32]byte
	VolumeSetSize        isoBoth16
	VolumeSequenceNumber isoBoth16
	LogicalBlockSize     isoBoth16
	PathTableSize        isoBoth32 // bytes
	LPathTable           [4]byte   // sector, little endian
	LPathTableOptional   [4]byte
	MPathTable           [4]byte // sector, big endian
	MPathTableOptional   [4]byte
	RootDirectory        isoDirRecord
	VolumeSetID          [128]byte
	PublisherID          [128]byte
	PreparerID           [128]byte
	ApplicationID        [128]byte
	CopyrightFileID      [37]byte
	AbstractFileID       [37]byte
	BibliographicFileID  [37]byte
	Created              isoVolumeTime
	Modified             isoVolumeTime
	Expires              isoVolumeTime
	Effective            isoVolumeTime
	FileStructureVersion uint8
	_                    uint8
	ApplicationUse       [512]byte
	_                    [653]byte
}

// isoBootRecordVD is the El Torito boot record volume descriptor.
type isoBootRecordVD struct {
	Type         uint8
	StdID        [5]byte
	Version      uint8
	BootSystemID [32]byte // eltoritoID, zero padded
	BootID       [32]byte
	BootCatalog  [4]byte // sector of the boot catalog, little endian
	_            [1973]byte
}

// isoTerminatorVD ends the volume descriptor set.
type isoTerminatorVD struct {
	Type    uint8
	StdID   [5]byte
	Version uint8
	_       [2041]byte
}

// isoDirRecord is a directory record with a one-byte identifier, the only
// kind this package writes ("." is 0x00, ".." is 0x01).
type isoDirRecord struct {
	Length               uint8
	ExtAttrLength        uint8
	Extent               isoBoth32
	DataLength           isoBoth32
	Recorded             isoDirTime
	Flags                uint8
	FileUnitSize         uint8
	InterleaveGap        uint8
	VolumeSequenceNumber isoBoth16
	IDLength             uint8
	ID                   uint8
}

const isoDirRecordLen = 34

// isoPathTableRecord is a path table record for the root directory.
type isoPathTableRecord struct {
	IDLength      uint8
	ExtAttrLength uint8
	Extent        uint32
	Parent        uint16
	ID            uint8
	_             uint8 // pads the odd-length identifier
}

// eltoritoValidationEntry opens the boot catalog.
type eltoritoValidationEntry struct {
	HeaderID   uint8 // 1
	PlatformID uint8
	_          uint16
	IDString   [24]byte
	Checksum   uint16 // makes the sum of the entry's 16-bit words zero
	Key        [2]byte
}

// eltoritoDefaultEntry is the initial/default boot entry.
type eltoritoDefaultEntry struct {
	BootIndicator uint8
	MediaType     uint8
	LoadSegment   uint16 // 0 means the traditional 07C0
	SystemType    uint8
	_             uint8
	SectorCount   uint16 // emulated sectors loaded at boot
	LoadRBA       uint32 // sector of the boot image
	_             [20]byte
}

// isoVolumeTime is the 17-byte volume descriptor date and time.
type isoVolumeTime [17]byte

// isoDirTime is the 7-byte directory record date and time.
type isoDirTime [7]byte

func volumeTime(t time.Time) (v isoVolumeTime) {
	t = t.UTC()
	copy(v[:16], fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d",
		t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7))
	return v // offset from GMT (last byte) 0
}

// noVolumeTime is the "not specified" value: sixteen '0' digits.
func noVolumeTime() (v isoVolumeTime) {
	copy(v[:16], "0000000000000000")
	return v
}

func dirTime(t time.Time) isoDirTime {
	t = t.UTC()
	return isoDirTime{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()),
		byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// encodeLE encodes a fixed-size struct in little endian.
func encodeLE(v any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}

// encode returns the entry with its checksum filled in.
func (e eltoritoValidationEntry) encode() []byte {
	e.Checksum = 0
	b := encodeLE(&e)
	var sum uint16
	for i := 0; i < len(b); i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	binary.LittleEndian.PutUint16(b[28:], -sum)
	return b
}

// padded returns s in an n-byte field filled with pad.
func padded(s string, n int, pad byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pad
	}
	copy(b, s)
	return b
}
