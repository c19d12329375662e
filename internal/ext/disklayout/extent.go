package disklayout

// Extent tree node layout: a 12-byte header followed by 12-byte entries
// (index entries in interior nodes, extents in leaves).
const (
	ExtentMagic      = 0xF30A
	ExtentHeaderSize = 12
	ExtentEntrySize  = 12
	// ExtentMaxDepth is the deepest tree the kernel accepts.
	ExtentMaxDepth = 5
	// ExtentInitMaxLen is the longest initialized extent; a larger ee_len
	// marks an uninitialized (unwritten) extent of ee_len-ExtentInitMaxLen.
	ExtentInitMaxLen = 32768
)

// ExtentHeader starts every extent tree node.
type ExtentHeader struct {
	Magic   uint16
	Entries uint16
	Max     uint16
	Depth   uint16
}

// DecodeExtentHeader decodes the header at the start of b (12+ bytes).
func DecodeExtentHeader(b []byte) ExtentHeader {
	return ExtentHeader{
		Magic:   le.Uint16(b[0:]),
		Entries: le.Uint16(b[2:]),
		Max:     le.Uint16(b[4:]),
		Depth:   le.Uint16(b[6:]),
	}
}

// ExtentIndex is an interior node entry: the subtree at Leaf covers file
// blocks from Block up to the next index entry's Block.
type ExtentIndex struct {
	Block uint32
	Leaf  uint64
}

// DecodeExtentIndex decodes the i-th entry (0-based) of the node in b.
func DecodeExtentIndex(b []byte, i int) ExtentIndex {
	e := b[ExtentHeaderSize+i*ExtentEntrySize:]
	return ExtentIndex{
		Block: le.Uint32(e[0:]),
		Leaf:  uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32,
	}
}

// Extent is a leaf entry: Len file blocks from Block map to disk blocks
// from Start.
type Extent struct {
	Block         uint32
	Len           uint16
	Start         uint64
	Uninitialized bool
}

// DecodeExtent decodes the i-th entry (0-based) of the leaf in b.
func DecodeExtent(b []byte, i int) Extent {
	e := b[ExtentHeaderSize+i*ExtentEntrySize:]
	x := Extent{
		Block: le.Uint32(e[0:]),
		Len:   le.Uint16(e[4:]),
		Start: uint64(le.Uint32(e[8:])) | uint64(le.Uint16(e[6:]))<<32,
	}
	if x.Len > ExtentInitMaxLen {
		x.Len -= ExtentInitMaxLen
		x.Uninitialized = true
	}
	return x
}
