package disklayout

import "fmt"

// Inode sizes and i_block geometry.
const (
	GoodOldInodeSize = 128
	IBlockSize       = 60 // bytes of i_block: 15 block numbers, an extent root, inline data or a fast symlink
	NDirBlocks       = 12 // direct block pointers in i_block
	IndBlock         = 12 // index of the single-indirect pointer
	DIndBlock        = 13
	TIndBlock        = 14
)

// Special inode numbers.
const (
	RootIno = 2
)

// Inode flags (i_flags) that change how an inode is read.
const (
	InodeFlagEncrypt    = 0x800
	InodeFlagIndex      = 0x1000 // directory has an htree index
	InodeFlagHugeFile   = 0x40000
	InodeFlagExtents    = 0x80000
	InodeFlagVerity     = 0x100000
	InodeFlagEAInode    = 0x200000
	InodeFlagInlineData = 0x10000000
	InodeFlagCasefold   = 0x40000000
)

// Timestamp is one inode time: the classic 32-bit seconds field plus the
// optional _extra word (2 epoch bits, 30 nanosecond bits).
type Timestamp struct {
	Sec      uint32
	Extra    uint32
	HasExtra bool // the _extra word is inside i_extra_isize
}

// Unix returns seconds and nanoseconds since 1970. The 32-bit field is
// signed (dates back to 1901); the epoch bits extend it past 2038.
func (t Timestamp) Unix() (sec int64, nsec int64) {
	sec = int64(int32(t.Sec))
	if t.HasExtra {
		sec += int64(t.Extra&3) << 32
		nsec = int64(t.Extra >> 2)
	}
	return sec, nsec
}

// Inode is a decoded on-disk inode.
type Inode struct {
	Mode       uint16
	UID, GID   uint32 // low and high halves joined
	SizeLo     uint32
	SizeHigh   uint32
	Atime      Timestamp
	Ctime      Timestamp
	Mtime      Timestamp
	Crtime     Timestamp // Sec is 0 and HasExtra false when not recorded
	HasCrtime  bool
	Dtime      uint32
	LinksCount uint16
	BlocksLo   uint32
	BlocksHigh uint16
	Flags      uint32
	Block      [IBlockSize]byte // i_block, raw
	Generation uint32
	FileACL    uint64 // block number of the external xattr block
	ExtraIsize uint16 // bytes used past the first 128
}

// Offsets inside the extra (past 128 bytes) area.
const (
	extraCtime  = 4
	extraMtime  = 8
	extraAtime  = 12
	extraCrtime = 16
	extraCrtEx  = 20
)

// DecodeInode decodes an inode record (128 bytes or the filesystem's
// inode size). It fails only when i_extra_isize does not fit the record.
func DecodeInode(b []byte) (Inode, error) {
	var in Inode
	if len(b) < GoodOldInodeSize {
		return in, fmt.Errorf("inode record is %d bytes, need at least %d", len(b), GoodOldInodeSize)
	}
	in.Mode = le.Uint16(b[0:])
	in.UID = uint32(le.Uint16(b[2:])) | uint32(le.Uint16(b[120:]))<<16
	in.SizeLo = le.Uint32(b[4:])
	in.Atime.Sec = le.Uint32(b[8:])
	in.Ctime.Sec = le.Uint32(b[12:])
	in.Mtime.Sec = le.Uint32(b[16:])
	in.Dtime = le.Uint32(b[20:])
	in.GID = uint32(le.Uint16(b[24:])) | uint32(le.Uint16(b[122:]))<<16
	in.LinksCount = le.Uint16(b[26:])
	in.BlocksLo = le.Uint32(b[28:])
	in.Flags = le.Uint32(b[32:])
	copy(in.Block[:], b[40:100])
	in.Generation = le.Uint32(b[100:])
	in.FileACL = uint64(le.Uint32(b[104:])) | uint64(le.Uint16(b[118:]))<<32
	in.SizeHigh = le.Uint32(b[108:])
	in.BlocksHigh = le.Uint16(b[116:])
	if len(b) == GoodOldInodeSize {
		return in, nil
	}
	if len(b) < GoodOldInodeSize+2 {
		return in, fmt.Errorf("inode record is %d bytes", len(b))
	}
	in.ExtraIsize = le.Uint16(b[128:])
	room := len(b) - GoodOldInodeSize
	if int(in.ExtraIsize) > room || in.ExtraIsize%4 != 0 {
		return in, fmt.Errorf("bad i_extra_isize %d (inode size %d)", in.ExtraIsize, len(b))
	}
	x := b[GoodOldInodeSize:]
	has := func(off int) bool { return int(in.ExtraIsize) >= off+4 }
	if has(extraCtime) {
		in.Ctime.Extra, in.Ctime.HasExtra = le.Uint32(x[extraCtime:]), true
	}
	if has(extraMtime) {
		in.Mtime.Extra, in.Mtime.HasExtra = le.Uint32(x[extraMtime:]), true
	}
	if has(extraAtime) {
		in.Atime.Extra, in.Atime.HasExtra = le.Uint32(x[extraAtime:]), true
	}
	if has(extraCrtime) {
		in.Crtime.Sec, in.HasCrtime = le.Uint32(x[extraCrtime:]), true
	}
	if has(extraCrtEx) {
		in.Crtime.Extra, in.Crtime.HasExtra = le.Uint32(x[extraCrtEx:]), true
	}
	return in, nil
}

// InlineXattrArea returns the in-inode extended attribute area of an
// inode record (the bytes after 128+i_extra_isize), or nil.
func InlineXattrArea(b []byte, extraIsize uint16) []byte {
	start := GoodOldInodeSize + int(extraIsize)
	if len(b) <= GoodOldInodeSize || start+4 > len(b) {
		return nil
	}
	return b[start:]
}

// DecodeDevice decodes a device number stored in i_block: the old 16-bit
// encoding in word 0, or, when that is zero, the new 32-bit one in word 1.
func DecodeDevice(block *[IBlockSize]byte) (major, minor uint32) {
	if old := le.Uint32(block[0:]); old != 0 {
		return (old >> 8) & 0xff, old & 0xff
	}
	n := le.Uint32(block[4:])
	return (n & 0xfff00) >> 8, (n & 0xff) | (n>>12)&0xfff00
}
