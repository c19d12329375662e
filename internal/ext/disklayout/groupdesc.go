package disklayout

// Group descriptor sizes: 32 bytes without the 64bit feature; with it,
// s_desc_size (at least 64, a power of two).
const (
	GroupDescSize32    = 32
	GroupDescSize64Min = 64
)

// GroupDesc is one decoded block group descriptor.
type GroupDesc struct {
	BlockBitmap     uint64
	InodeBitmap     uint64
	InodeTable      uint64
	FreeBlocksCount uint32
	FreeInodesCount uint32
	UsedDirsCount   uint32
	Flags           uint16
	ItableUnused    uint32
}

// Group descriptor flags.
const (
	BgInodeUninit = 0x1
	BgBlockUninit = 0x2
	BgInodeZeroed = 0x4
)

// DecodeGroupDesc decodes a descriptor from b, which holds 32 bytes, or
// 64 or more when the 64bit feature is set (is64); the high halves are
// used only then.
func DecodeGroupDesc(b []byte, is64 bool) GroupDesc {
	d := GroupDesc{
		BlockBitmap:     uint64(le.Uint32(b[0:])),
		InodeBitmap:     uint64(le.Uint32(b[4:])),
		InodeTable:      uint64(le.Uint32(b[8:])),
		FreeBlocksCount: uint32(le.Uint16(b[12:])),
		FreeInodesCount: uint32(le.Uint16(b[14:])),
		UsedDirsCount:   uint32(le.Uint16(b[16:])),
		Flags:           le.Uint16(b[18:]),
		ItableUnused:    uint32(le.Uint16(b[28:])),
	}
	if is64 && len(b) >= GroupDescSize64Min {
		d.BlockBitmap |= uint64(le.Uint32(b[32:])) << 32
		d.InodeBitmap |= uint64(le.Uint32(b[36:])) << 32
		d.InodeTable |= uint64(le.Uint32(b[40:])) << 32
		d.FreeBlocksCount |= uint32(le.Uint16(b[44:])) << 16
		d.FreeInodesCount |= uint32(le.Uint16(b[46:])) << 16
		d.UsedDirsCount |= uint32(le.Uint16(b[48:])) << 16
		d.ItableUnused |= uint32(le.Uint16(b[50:])) << 16
	}
	return d
}
