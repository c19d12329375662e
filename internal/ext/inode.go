package ext

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

// inode is a decoded inode plus what the walking code needs repeatedly.
// Cached inodes are shared between goroutines and never modified.
type inode struct {
	disklayout.Inode
	ino  uint32
	raw  []byte // the on-disk record, for in-inode xattrs
	size int64
}

func (in *inode) typ() uint32 { return uint32(in.Mode) & fsys.S_IFMT }

func (in *inode) flag(fl uint32) bool { return in.Flags&fl != 0 }

// lblocks is the number of file blocks that i_size covers.
func (f *FS) lblocks(in *inode) uint64 {
	return (uint64(in.size) + f.bs - 1) >> f.bsBits
}

// getInode returns inode ino, from the cache when possible.
func (f *FS) getInode(ino uint64) (*inode, error) {
	if ino == 0 || ino > f.inodes {
		return nil, fmt.Errorf("ext: inode %d out of range 1..%d: %w", ino, f.inodes, fs.ErrNotExist)
	}
	if in, ok := f.icache.get(uint32(ino)); ok {
		return in, nil
	}
	// Inode table blocks go through the block cache: neighbouring inodes
	// (a directory's files) then cost no further reads, and raw can alias
	// the cached block.
	g, idx := (ino-1)/f.inodesPG, (ino-1)%f.inodesPG
	pos := idx * f.inodeSize
	blk, err := f.metaBlock(f.inodeTables[g] + pos>>f.bsBits)
	if err != nil {
		return nil, fmt.Errorf("ext: reading inode %d: %w", ino, err)
	}
	within := pos & (f.bs - 1)
	raw := blk[within : within+f.inodeSize : within+f.inodeSize]
	d, err := disklayout.DecodeInode(raw)
	if err != nil {
		return nil, corrupt("inode %d: %v", ino, err)
	}
	in := &inode{Inode: d, ino: uint32(ino), raw: raw}
	if in.LinksCount == 0 {
		return nil, fmt.Errorf("ext: inode %d is not in use: %w", ino, fs.ErrNotExist)
	}
	switch in.typ() {
	case fsys.S_IFREG, fsys.S_IFDIR, fsys.S_IFLNK, fsys.S_IFCHR, fsys.S_IFBLK, fsys.S_IFIFO, fsys.S_IFSOCK:
	default:
		return nil, corrupt("inode %d: invalid file type in mode %#o", ino, in.Mode)
	}
	size := uint64(in.SizeLo)
	if in.typ() != fsys.S_IFDIR || f.largeDir {
		size |= uint64(in.SizeHigh) << 32
	}
	// File block numbers are 32 bits wide.
	if size > f.bs<<32 {
		return nil, corrupt("inode %d: size %d exceeds the largest possible file", ino, size)
	}
	in.size = int64(size)
	if in.flag(disklayout.InodeFlagEncrypt) {
		return nil, fmt.Errorf("ext: inode %d is encrypted, which is not supported", ino)
	}
	f.icache.put(uint32(ino), in)
	return in, nil
}

func tsTime(t disklayout.Timestamp) time.Time {
	s, ns := t.Unix()
	return time.Unix(s, ns)
}

// Stat returns the attributes of inode ino.
func (f *FS) Stat(ino uint64) (fsys.Attr, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return fsys.Attr{}, err
	}
	a := fsys.Attr{
		Ino:        ino,
		Mode:       uint32(in.Mode),
		Nlink:      uint32(in.LinksCount),
		Uid:        in.UID,
		Gid:        in.GID,
		Size:       in.size,
		Atime:      tsTime(in.Atime),
		Mtime:      tsTime(in.Mtime),
		Ctime:      tsTime(in.Ctime),
		Generation: in.Generation,
	}
	if in.HasCrtime {
		a.Crtime = tsTime(in.Crtime)
	}
	blocks := uint64(in.BlocksLo)
	if f.hugeFile {
		blocks |= uint64(in.BlocksHigh) << 32
		if in.flag(disklayout.InodeFlagHugeFile) {
			blocks <<= f.bsBits - 9
		}
	}
	a.Blocks = int64(blocks)
	if t := in.typ(); t == fsys.S_IFCHR || t == fsys.S_IFBLK {
		a.Rdev = fsys.Mkdev(disklayout.DecodeDevice(&in.Block))
	}
	return a, nil
}

// maxSymlink is the longest symlink target Linux accepts (PATH_MAX-1).
const maxSymlink = 4095

// Readlink returns a symbolic link's target.
func (f *FS) Readlink(ino uint64) (string, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return "", err
	}
	if in.typ() != fsys.S_IFLNK {
		return "", fmt.Errorf("ext: inode %d: %w", ino, fsys.ErrNotLink)
	}
	n := in.size
	if n == 0 || n > maxSymlink {
		return "", corrupt("inode %d: symlink length %d out of range 1..%d", ino, n, maxSymlink)
	}
	if in.flag(disklayout.InodeFlagInlineData) {
		data, err := f.inlineData(in)
		if err != nil {
			return "", err
		}
		if int64(len(data)) != n {
			return "", corrupt("inode %d: inline symlink holds %d of %d bytes", ino, len(data), n)
		}
		return string(data), nil
	}
	if f.isFastSymlink(in) {
		return string(in.Block[:n]), nil
	}
	if uint64(n) >= f.bs {
		return "", corrupt("inode %d: symlink of %d bytes does not fit a %d-byte block", ino, n, f.bs)
	}
	r, err := f.mapRun(in, 0)
	if err != nil {
		return "", err
	}
	if r.phys == 0 {
		return "", corrupt("inode %d: slow symlink has no data block", ino)
	}
	buf := make([]byte, n)
	if err := f.readFull(buf, r.phys*f.bs); err != nil {
		return "", fmt.Errorf("ext: inode %d: reading symlink: %w", ino, err)
	}
	return string(buf), nil
}

// isFastSymlink: the target lives in i_block when no data blocks are
// charged to the inode (an xattr block aside), as the kernel decides.
func (f *FS) isFastSymlink(in *inode) bool {
	if in.size >= disklayout.IBlockSize {
		return false
	}
	blocks := uint64(in.BlocksLo)
	if in.FileACL != 0 {
		blocks -= min(blocks, f.eaBlockCnt)
	}
	return blocks == 0
}
