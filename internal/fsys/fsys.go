// Package fsys is the small read-only filesystem interface that every
// filesystem reader in vmroot (ext2/3/4, FAT, ISO9660, a host directory)
// implements, and that the overlay engine and the CLI consume.
//
// Objects are addressed by inode number, not by path, so that hard links,
// stable identities and NFS file handles fall out of the interface. All
// methods must be safe for concurrent use by many goroutines.
package fsys

import (
	"errors"
	"io/fs"
	"time"
)

// Unix file type bits (st_mode & S_IFMT). Mode values in Attr and DirEntry
// use these, not io/fs.FileMode, because device numbers, setuid and
// sockets must survive the round trip to FUSE and NFS unchanged.
const (
	S_IFMT   = 0o170000
	S_IFSOCK = 0o140000
	S_IFLNK  = 0o120000
	S_IFREG  = 0o100000
	S_IFBLK  = 0o060000
	S_IFDIR  = 0o040000
	S_IFCHR  = 0o020000
	S_IFIFO  = 0o010000
)

// Errors returned by implementations. They wrap the io/fs sentinels so that
// errors.Is(err, fs.ErrNotExist) works.
var (
	ErrNotExist = fs.ErrNotExist
	ErrNotDir   = errors.New("not a directory")
	ErrIsDir    = errors.New("is a directory")
	ErrNoAttr   = errors.New("no such attribute")
	ErrLoop     = errors.New("too many levels of symbolic links")
	ErrNotLink  = errors.New("not a symbolic link")
)

// Attr is the metadata of one object.
type Attr struct {
	Ino        uint64
	Mode       uint32 // S_IFMT bits | permission bits (incl. setuid/setgid/sticky)
	Nlink      uint32
	Uid, Gid   uint32
	Size       int64
	Blocks     int64  // 512-byte units actually allocated
	Rdev       uint64 // device number for S_IFCHR/S_IFBLK (Linux encoding, see Mkdev)
	Atime      time.Time
	Mtime      time.Time
	Ctime      time.Time
	Crtime     time.Time // zero when the filesystem does not record it
	Generation uint32
}

// IsDir, IsRegular and IsSymlink report the object's type.
func (a Attr) IsDir() bool     { return a.Mode&S_IFMT == S_IFDIR }
func (a Attr) IsRegular() bool { return a.Mode&S_IFMT == S_IFREG }
func (a Attr) IsSymlink() bool { return a.Mode&S_IFMT == S_IFLNK }

// DirEntry is one name in a directory. "." and ".." are never returned.
type DirEntry struct {
	Name string
	Ino  uint64
	Type uint32 // S_IFMT bits; 0 when the directory does not record the type
}

// Extent is a byte range of a regular file that is backed by data.
type Extent struct {
	Off, Len int64
}

// Info describes a filesystem as a whole.
type Info struct {
	Type       string // "ext2", "ext3", "ext4", "vfat", "iso9660", "dir"
	Label      string
	UUID       string
	BlockSize  int64
	Blocks     uint64 // total blocks
	FreeBlocks uint64
	Inodes     uint64
	FreeInodes uint64
	// Features lists notable filesystem features (for ext: the feature flag names).
	Features []string
	// NeedsRecovery is set when a journal holds transactions that were not replayed.
	NeedsRecovery bool
}

// Size and Used are the filesystem's capacity and used bytes.
func (i Info) Size() int64 { return int64(i.Blocks) * i.BlockSize }
func (i Info) Used() int64 { return int64(i.Blocks-i.FreeBlocks) * i.BlockSize }

// FS is a read-only filesystem addressed by inode number.
type FS interface {
	// Root returns the inode number of the root directory.
	Root() uint64
	// Stat returns the attributes of inode ino.
	Stat(ino uint64) (Attr, error)
	// Lookup returns the inode number of name in directory dir.
	Lookup(dir uint64, name string) (uint64, error)
	// ReadDir returns the entries of directory dir in on-disk order.
	ReadDir(dir uint64) ([]DirEntry, error)
	// ReadAt reads file data like io.ReaderAt; it returns io.EOF at end of file.
	ReadAt(ino uint64, p []byte, off int64) (int, error)
	// Readlink returns a symbolic link's target.
	Readlink(ino uint64) (string, error)
	// ListXattr returns the names of the extended attributes ("user.x", "trusted.y", ...).
	ListXattr(ino uint64) ([]string, error)
	// GetXattr returns one extended attribute's value, or ErrNoAttr.
	GetXattr(ino uint64, name string) ([]byte, error)
	// Info describes the filesystem.
	Info() Info
	// Close releases resources; it does not close the underlying device.
	Close() error
}

// ExtentMapper is implemented by filesystems that know which parts of a
// file are holes, so copies and extractions can stay sparse.
type ExtentMapper interface {
	// DataExtents returns the data-backed ranges of a regular file, in
	// order and not overlapping. Ranges not listed read as zeros.
	DataExtents(ino uint64) ([]Extent, error)
}

// Mkdev, Major and Minor encode and decode Linux device numbers.
func Mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}
func Major(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }
func Minor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }
