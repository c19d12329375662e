package disklayout

// Hash tree (dir_index) layout. Block 0 of an indexed directory holds
// "." (12 bytes) and ".." (rec_len covering the rest of the block),
// then dx_root_info at offset 24 and the count/limit header at 32.
// Interior blocks hold an empty directory entry spanning the block, then
// the count/limit header at offset 8. Entry 0's hash field is the
// count/limit header itself; its block covers hashes below entry 1's.
const (
	DxRootInfoOffset  = 24
	DxRootInfoSize    = 8
	DxRootEntries     = 32
	DxNodeEntries     = 8
	DxEntrySize       = 8
	DxMaxLevelsLegacy = 2 // indirect_levels < 2 without large_dir
	DxMaxLevels       = 3 // with large_dir
)

// Directory hash algorithms (dx_root_info.hash_version).
const (
	HashLegacy          = 0
	HashHalfMD4         = 1
	HashTea             = 2
	HashLegacyUnsigned  = 3
	HashHalfMD4Unsigned = 4
	HashTeaUnsigned     = 5
	HashSip             = 6
)

// DxRootInfo is the htree root header.
type DxRootInfo struct {
	ReservedZero   uint32
	HashVersion    uint8
	InfoLength     uint8
	IndirectLevels uint8
	UnusedFlags    uint8
}

// DecodeDxRootInfo decodes the root info of a root block b (32+ bytes).
func DecodeDxRootInfo(b []byte) DxRootInfo {
	x := b[DxRootInfoOffset:]
	return DxRootInfo{
		ReservedZero:   le.Uint32(x[0:]),
		HashVersion:    x[4],
		InfoLength:     x[5],
		IndirectLevels: x[6],
		UnusedFlags:    x[7],
	}
}

// DxCountLimit is the header of an index entry array.
type DxCountLimit struct {
	Limit uint16
	Count uint16
}

// DecodeDxCountLimit decodes the count/limit header at the start of b.
func DecodeDxCountLimit(b []byte) DxCountLimit {
	return DxCountLimit{Limit: le.Uint16(b[0:]), Count: le.Uint16(b[2:])}
}

// DxEntry is one index entry: names hashing to Hash and above (up to the
// next entry's hash) live under logical directory block Block.
type DxEntry struct {
	Hash  uint32
	Block uint32
}

// DecodeDxEntry decodes entry i of the array starting at b; entry 0 has
// hash 0 by definition.
func DecodeDxEntry(b []byte, i int) DxEntry {
	e := b[i*DxEntrySize:]
	d := DxEntry{Block: le.Uint32(e[4:])}
	if i > 0 {
		d.Hash = le.Uint32(e[0:])
	}
	return d
}
