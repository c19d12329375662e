// Package ext reads ext2, ext3 and ext4 filesystems in place, read-only,
// through an io.ReaderAt. *FS implements fsys.FS and fsys.ExtentMapper.
//
// Supported: block maps (direct to triple indirect) and extent trees
// (holes, uninitialized extents read as zeros); linear and hash-tree
// directories; inline data; fast, slow and inline symlinks; 32- and
// 64-byte group descriptors, meta_bg, flex_bg, sparse_super; any inode
// size; high uid/gid; nanosecond and post-2038 times; device nodes in
// both encodings; extended attributes in the inode, in a block and in
// ea_inode value inodes (read like file data); POSIX ACLs converted to the
// getxattr format.
//
// Not done: the journal is never replayed (Info().NeedsRecovery reports a
// dirty one); checksums (metadata_csum) are not verified; encrypted
// inodes and dirdata, compression and journal_dev filesystems are refused;
// in casefolded directories Lookup matches names byte for byte.
//
// Corrupt images give errors wrapping ErrCorrupt, never panics; sizes
// read from the image are checked against the image before anything is
// allocated or read from them. Every method is safe for concurrent use.
package ext

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

// ErrCorrupt is wrapped by every error that reports inconsistent on-disk
// data.
var ErrCorrupt = errors.New("corrupt ext filesystem")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Incompat features this reader understands. Others make Open fail.
const supportedIncompat = disklayout.IncompatFiletype | disklayout.IncompatRecover |
	disklayout.IncompatMetaBG | disklayout.IncompatExtents | disklayout.Incompat64Bit |
	disklayout.IncompatMMP | disklayout.IncompatFlexBG | disklayout.IncompatEAInode |
	disklayout.IncompatCsumSeed | disklayout.IncompatLargeDir | disklayout.IncompatInlineData |
	disklayout.IncompatEncrypt | disklayout.IncompatCasefold

// Cache sizes: inodes, metadata blocks (indirect, extent index, htree
// and xattr blocks), and per-directory name indexes of linear directories.
const (
	inodeCacheEntries = 1 << 16
	blockCacheBytes   = 16 << 20
	nameIndexDirs     = 64
	// Linear directories with more blocks than this get a name index: a
	// READDIRPLUS or a walk looks up every name it lists, so scanning even
	// a few blocks per lookup makes listing quadratic.
	nameIndexMinBlocks = 1
)

// FS is an open ext2/3/4 filesystem.
type FS struct {
	r      io.ReaderAt
	sb     *disklayout.Superblock
	info   fsys.Info
	bs     uint64 // block size
	bsBits uint
	blocks uint64 // blocks in the filesystem; every block number is below it

	inodeSize   uint64
	inodesPG    uint64
	inodes      uint64
	inodeTables []uint64 // first block of each group's inode table

	fileType   bool // directory entries carry a file type
	hugeFile   bool
	largeDir   bool
	dirIndex   bool
	unsigned   bool // htree hashes treat name bytes as unsigned
	hashSeed   [4]uint32
	eaBlockCnt uint64 // i_blocks (512-byte units) charged for an xattr block

	icache *cache[uint32, *inode]
	bcache *cache[uint64, []byte]
	ncache *cache[uint32, map[string]uint32]
}

// Probe reports whether head, the first bytes of a device (at least
// 2048 of them), holds an ext superblock.
func Probe(head []byte) bool { return disklayout.HasMagic(head) }

// Open reads the filesystem in r, which holds size bytes starting at the
// filesystem's first byte. It reads and checks the superblock and the
// group descriptor table; everything else is read on demand.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < disklayout.SuperblockOffset+disklayout.SuperblockSize {
		return nil, fmt.Errorf("ext: image of %d bytes is too small for a superblock", size)
	}
	buf := make([]byte, disklayout.SuperblockSize)
	if _, err := r.ReadAt(buf, disklayout.SuperblockOffset); err != nil {
		return nil, fmt.Errorf("ext: reading superblock: %w", err)
	}
	sb, err := disklayout.DecodeSuperblock(buf)
	if err != nil {
		return nil, fmt.Errorf("ext: %w", err)
	}
	f := &FS{r: r, sb: sb}
	if err := f.checkSuperblock(size); err != nil {
		return nil, err
	}
	if err := f.readGroupDescs(); err != nil {
		return nil, err
	}
	f.info = f.makeInfo()
	f.icache = newCache[uint32, *inode](inodeCacheEntries)
	f.bcache = newCache[uint64, []byte](max(int(blockCacheBytes/f.bs), 256))
	f.ncache = newCache[uint32, map[string]uint32](nameIndexDirs)
	return f, nil
}

func (f *FS) checkSuperblock(size int64) error {
	sb := f.sb
	if unk := sb.FeatureIncompat &^ supportedIncompat; unk != 0 {
		return fmt.Errorf("ext: unsupported incompatible features: %s",
			strings.Join(disklayout.IncompatNames(unk), ", "))
	}
	if sb.LogBlockSize > 6 {
		return corrupt("block size 2^(10+%d) out of range (1 KiB to 64 KiB)", sb.LogBlockSize)
	}
	f.bs = sb.BlockSize()
	f.bsBits = uint(10 + sb.LogBlockSize)
	f.blocks = sb.BlocksCount
	if uint64(sb.FirstDataBlock) >= f.blocks {
		return corrupt("first data block %d is not below the block count %d", sb.FirstDataBlock, f.blocks)
	}
	if f.bs == 1024 && sb.FirstDataBlock != 1 || f.bs > 1024 && sb.FirstDataBlock != 0 {
		return corrupt("first data block %d impossible with %d-byte blocks", sb.FirstDataBlock, f.bs)
	}
	if f.blocks > uint64(size)/f.bs {
		return fmt.Errorf("ext: filesystem has %d blocks of %d bytes (%d bytes) but the image holds only %d bytes",
			f.blocks, f.bs, f.blocks*f.bs, size)
	}
	bitsPerBlock := uint64(8 * f.bs)
	perGroup := uint64(sb.BlocksPerGroup)
	if sb.FeatureRoCompat&disklayout.RoCompatBigalloc != 0 {
		if sb.LogClusterSize < sb.LogBlockSize || sb.LogClusterSize-sb.LogBlockSize > 16 {
			return corrupt("cluster size 2^(10+%d) out of range", sb.LogClusterSize)
		}
		perGroup = uint64(sb.ClustersPerGroup)
	}
	if perGroup == 0 || perGroup > bitsPerBlock || sb.BlocksPerGroup == 0 {
		return corrupt("%d blocks per group out of range (1..%d)", perGroup, bitsPerBlock)
	}
	if sb.InodesPerGroup == 0 || uint64(sb.InodesPerGroup) > bitsPerBlock {
		return corrupt("%d inodes per group out of range (1..%d)", sb.InodesPerGroup, bitsPerBlock)
	}
	is := uint64(sb.InodeSize)
	if is < disklayout.GoodOldInodeSize || is > f.bs || is&(is-1) != 0 {
		return corrupt("inode size %d invalid", is)
	}
	f.inodeSize = is
	f.inodesPG = uint64(sb.InodesPerGroup)
	groups := (f.blocks - uint64(sb.FirstDataBlock) + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup)
	if sb.InodesCount == 0 || uint64(sb.InodesCount) > groups*f.inodesPG {
		return corrupt("%d inodes do not fit %d groups of %d", sb.InodesCount, groups, f.inodesPG)
	}
	f.inodes = uint64(sb.InodesCount)
	if sb.FeatureIncompat&disklayout.Incompat64Bit != 0 {
		ds := uint64(sb.DescSize)
		if ds < disklayout.GroupDescSize64Min || ds > 1024 || ds&(ds-1) != 0 {
			return corrupt("group descriptor size %d invalid", ds)
		}
	}
	f.inodeTables = make([]uint64, groups)
	f.fileType = sb.FeatureIncompat&disklayout.IncompatFiletype != 0
	f.hugeFile = sb.FeatureRoCompat&disklayout.RoCompatHugeFile != 0
	f.largeDir = sb.FeatureIncompat&disklayout.IncompatLargeDir != 0
	f.dirIndex = sb.FeatureCompat&disklayout.CompatDirIndex != 0
	f.unsigned = sb.Flags&disklayout.FlagUnsignedHash != 0
	f.hashSeed = sb.HashSeed
	f.eaBlockCnt = f.bs / 512
	if sb.FeatureRoCompat&disklayout.RoCompatBigalloc != 0 {
		f.eaBlockCnt <<= sb.LogClusterSize - sb.LogBlockSize
	}
	return nil
}

// hasSuper reports whether group g holds a superblock backup (and so a
// group descriptor table copy), which shifts meta_bg descriptor blocks.
func (f *FS) hasSuper(g uint64) bool {
	if g == 0 || f.sb.FeatureRoCompat&disklayout.RoCompatSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, p := range []uint64{3, 5, 7} {
		n := p
		for n < g {
			n *= p
		}
		if n == g {
			return true
		}
	}
	return false
}

// readGroupDescs reads every group descriptor once and keeps the inode
// table locations.
func (f *FS) readGroupDescs() error {
	ds := uint64(f.sb.GroupDescSize())
	is64 := f.sb.FeatureIncompat&disklayout.Incompat64Bit != 0
	groups := uint64(len(f.inodeTables))
	perBlock := f.bs / ds
	descBlocks := (groups + perBlock - 1) / perBlock
	first := uint64(f.sb.FirstDataBlock) + 1
	metaStart := descBlocks // descriptor blocks before this index are contiguous
	if f.sb.FeatureIncompat&disklayout.IncompatMetaBG != 0 {
		metaStart = min(uint64(f.sb.FirstMetaBg), descBlocks)
	}
	itableBlocks := (f.inodesPG*f.inodeSize + f.bs - 1) / f.bs
	decode := func(buf []byte, firstGroup uint64) error {
		for i := uint64(0); i*ds < uint64(len(buf)) && firstGroup+i < groups; i++ {
			g := firstGroup + i
			d := disklayout.DecodeGroupDesc(buf[i*ds:(i+1)*ds], is64)
			if d.InodeTable == 0 || d.InodeTable >= f.blocks || f.blocks-d.InodeTable < itableBlocks {
				return corrupt("group %d: inode table at block %d (%d blocks) lies outside the filesystem (%d blocks)",
					g, d.InodeTable, itableBlocks, f.blocks)
			}
			f.inodeTables[g] = d.InodeTable
		}
		return nil
	}
	if metaStart > 0 {
		if first+metaStart > f.blocks {
			return corrupt("group descriptor table (%d blocks) runs past the end of the filesystem", metaStart)
		}
		buf := make([]byte, metaStart*f.bs)
		if err := f.readFull(buf, first*f.bs); err != nil {
			return fmt.Errorf("ext: reading group descriptors: %w", err)
		}
		if err := decode(buf, 0); err != nil {
			return err
		}
	}
	if metaStart < descBlocks {
		buf := make([]byte, f.bs)
		for i := metaStart; i < descBlocks; i++ {
			g := i * perBlock
			blk := uint64(f.sb.FirstDataBlock) + g*uint64(f.sb.BlocksPerGroup)
			if f.hasSuper(g) {
				blk++
			}
			if blk >= f.blocks {
				return corrupt("meta_bg descriptor block %d for group %d is outside the filesystem", blk, g)
			}
			if err := f.readFull(buf, blk*f.bs); err != nil {
				return fmt.Errorf("ext: reading group descriptors: %w", err)
			}
			if err := decode(buf, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// readFull reads len(p) bytes at off; a short read is an error.
func (f *FS) readFull(p []byte, off uint64) error {
	n, err := f.r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (f *FS) makeInfo() fsys.Info {
	sb := f.sb
	u := sb.UUID
	label := sb.VolumeName[:]
	if i := strings.IndexByte(string(label), 0); i >= 0 {
		label = label[:i]
	}
	return fsys.Info{
		Type:          f.typeName(),
		Label:         string(label),
		UUID:          fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]),
		BlockSize:     int64(f.bs),
		Blocks:        sb.BlocksCount,
		FreeBlocks:    sb.FreeBlocksCount,
		Inodes:        uint64(sb.InodesCount),
		FreeInodes:    uint64(sb.FreeInodesCount),
		Features:      sb.FeatureNames(),
		NeedsRecovery: sb.FeatureIncompat&disklayout.IncompatRecover != 0,
	}
}

// typeName classifies the filesystem like blkid: ext2 and ext3 are the
// feature sets those drivers understood; anything beyond them is ext4.
func (f *FS) typeName() string {
	const (
		ext3Ro  = disklayout.RoCompatSparseSuper | disklayout.RoCompatLargeFile | disklayout.RoCompatBtreeDir
		ext3Inc = disklayout.IncompatFiletype | disklayout.IncompatRecover | disklayout.IncompatMetaBG
		ext2Inc = disklayout.IncompatFiletype | disklayout.IncompatMetaBG
	)
	sb := f.sb
	journal := sb.FeatureCompat&disklayout.CompatHasJournal != 0
	plain := sb.FeatureRoCompat&^ext3Ro == 0
	switch {
	case journal && plain && sb.FeatureIncompat&^ext3Inc == 0:
		return "ext3"
	case !journal && plain && sb.FeatureIncompat&^ext2Inc == 0:
		return "ext2"
	}
	return "ext4"
}

// Info describes the filesystem.
func (f *FS) Info() fsys.Info {
	i := f.info
	i.Features = append([]string(nil), f.info.Features...)
	return i
}

// Root returns the root directory's inode number (2).
func (f *FS) Root() uint64 { return disklayout.RootIno }

// Close does nothing: an FS holds no resources besides memory, and it
// never closes the underlying reader.
func (f *FS) Close() error { return nil }

var (
	_ fsys.FS           = (*FS)(nil)
	_ fsys.ExtentMapper = (*FS)(nil)
)
