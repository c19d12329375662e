package imgfmt

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// On-disk structures of a hosted sparse VMDK extent (VMware "Virtual Disk
// Format 1.1", SparseExtentHeader). All fields are little endian; offsets
// and sizes are in sectors.

const (
	vmdkMagic        = 0x564D444B // "KDMV"
	vmdkVersion      = 1
	vmdkFlagNLTest   = 1 << 0 // the newline-detection characters are valid
	vmdkFlagRedundGD = 1 << 1 // a redundant grain directory is present
	vmdkGTEsPerGT    = 512    // the only value VMware writes
)

// vmdkHeader is the 512-byte header in sector 0.
type vmdkHeader struct {
	Magic              uint32
	Version            uint32
	Flags              uint32
	Capacity           uint64
	GrainSize          uint64
	DescriptorOffset   uint64
	DescriptorSize     uint64
	NumGTEsPerGT       uint32
	RGDOffset          uint64
	GDOffset           uint64
	OverHead           uint64
	UncleanShutdown    uint8
	SingleEndLineChar  uint8
	NonEndLineChar     uint8
	DoubleEndLineChar1 uint8
	DoubleEndLineChar2 uint8
	CompressAlgorithm  uint16
	_                  [433]byte
}

func (h *vmdkHeader) encode() []byte {
	b, err := binary.Append(nil, binary.LittleEndian, h)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}

// vmdkDescriptor is the embedded text descriptor of a monolithicSparse
// disk whose only extent is the file itself.
type vmdkDescriptor struct {
	CID       uint32
	Sectors   int64
	FileName  string
	Cylinders int64 // BIOS geometry with 16 heads and 63 sectors per track
}

func (d vmdkDescriptor) encode() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\n")
	fmt.Fprintf(&b, "version=1\n")
	fmt.Fprintf(&b, "CID=%08x\n", d.CID)
	fmt.Fprintf(&b, "parentCID=ffffffff\n")
	fmt.Fprintf(&b, "createType=\"monolithicSparse\"\n\n")
	fmt.Fprintf(&b, "# Extent description\n")
	fmt.Fprintf(&b, "RW %d SPARSE %q\n\n", d.Sectors, d.FileName)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.virtualHWVersion = \"4\"\n")
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\n", d.Cylinders)
	fmt.Fprintf(&b, "ddb.geometry.heads = \"16\"\n")
	fmt.Fprintf(&b, "ddb.geometry.sectors = \"63\"\n")
	fmt.Fprintf(&b, "ddb.adapterType = \"ide\"\n")
	return []byte(b.String())
}
