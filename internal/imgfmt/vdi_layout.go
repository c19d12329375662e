package imgfmt

import "encoding/binary"

// On-disk structures of a VirtualBox VDI image, version 1.1. All fields
// are little endian.

const (
	vdiSignature  = 0xBEDA107F
	vdiVersion    = 0x00010001
	vdiTypeNormal = 1          // dynamically allocated
	vdiBlockSize  = 1 << 20    // the only block size qemu reads
	vdiUnalloc    = 0xFFFFFFFF // block map entry: block not allocated
	vdiInfoText   = "<<< Oracle VM VirtualBox Disk Image >>>\n"
)

// vdiGeometry is a CHS geometry; all zero means "not set".
type vdiGeometry struct {
	Cylinders  uint32
	Heads      uint32
	Sectors    uint32
	SectorSize uint32
}

// vdiHeader is the pre-header and the version 1.1 header ("1plus", 400
// bytes from HeaderSize on), at offset 0.
type vdiHeader struct {
	Info             [64]byte
	Signature        uint32
	Version          uint32
	HeaderSize       uint32 // bytes from this field to the end of the header
	Type             uint32
	Flags            uint32
	Comment          [256]byte
	OffsetBlocks     uint32 // byte offset of the block map
	OffsetData       uint32 // byte offset of block 0
	LegacyGeometry   vdiGeometry
	_                uint32
	DiskSize         uint64
	BlockSize        uint32
	BlockExtra       uint32
	Blocks           uint32
	BlocksAllocated  uint32
	UUIDCreate       [16]byte // VirtualBox byte order: see vdiUUID
	UUIDModify       [16]byte
	UUIDLinkage      [16]byte // parent image: zero for a base image
	UUIDParentModify [16]byte
	LCHSGeometry     vdiGeometry
}

const vdiHeaderSize = 400

func (h *vdiHeader) encode() []byte {
	b, err := binary.Append(nil, binary.LittleEndian, h)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}

// vdiUUID converts an RFC 4122 UUID to VirtualBox's layout, whose first
// three fields are little endian.
func vdiUUID(u [16]byte) [16]byte {
	u[0], u[1], u[2], u[3] = u[3], u[2], u[1], u[0]
	u[4], u[5] = u[5], u[4]
	u[6], u[7] = u[7], u[6]
	return u
}
