// Package dirfs presents a host directory as a read-only fsys.FS, for
// read-only union layers, a directory base, and tests.
//
// Everything is opened O_RDONLY|O_NOFOLLOW relative to the root directory
// descriptor with *at system calls; nothing is ever written. Inode numbers
// are the host's st_ino. Because the host offers no way from an inode
// number back to a file, the FS remembers, for every inode it has handed
// out through Lookup or ReadDir, one path relative to the root (a map
// filled as callers walk); Stat, ReadAt and friends on an inode that was
// never reached that way make the FS index the whole tree once. The tree must not change
// while it is in use (lower layers are immutable by contract).
package dirfs

import (
	"container/list"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// FS is a read-only view of a host directory.
type FS struct {
	root    string
	rootFd  int
	rootIno uint64
	dev     uint64

	mu    sync.RWMutex
	paths map[uint64]string // ino -> path relative to root ("" = root)
	scan  sync.Once

	fdMu  sync.Mutex
	fds   map[uint64]*list.Element // ino -> *openFile in lru
	lru   *list.List
	maxFd int
}

type openFile struct {
	ino  uint64
	f    *os.File
	refs int
}

// Open opens dir read-only.
func Open(dir string) (*FS, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return &FS{
		root: dir, rootFd: fd, rootIno: st.Ino, dev: st.Dev,
		paths: map[uint64]string{st.Ino: ""},
		fds:   map[uint64]*list.Element{}, lru: list.New(), maxFd: 256,
	}, nil
}

func (f *FS) Root() uint64 { return f.rootIno }

func (f *FS) path(ino uint64) (string, error) {
	f.mu.RLock()
	p, ok := f.paths[ino]
	f.mu.RUnlock()
	if !ok {
		// An inode never reached by a walk (say, the origin of a file the
		// union renamed): index the whole tree once, it does not change.
		f.scan.Do(f.scanAll)
		f.mu.RLock()
		p, ok = f.paths[ino]
		f.mu.RUnlock()
		if !ok {
			return "", fsys.ErrNotExist
		}
	}
	return p, nil
}

func (f *FS) scanAll() {
	var walk func(dir uint64)
	walk = func(dir uint64) {
		ents, err := f.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.Type == fsys.S_IFDIR {
				walk(e.Ino)
			}
		}
	}
	walk(f.rootIno)
}

func rel(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func mapErr(err error) error {
	switch err {
	case unix.ENOENT:
		return fsys.ErrNotExist
	case unix.ENOTDIR:
		return fsys.ErrNotDir
	case unix.ENODATA:
		return fsys.ErrNoAttr
	}
	return err
}

func ts(t unix.Timespec) time.Time { return time.Unix(t.Sec, t.Nsec) }

// AttrFromStat converts a host stat buffer.
func AttrFromStat(st *unix.Stat_t) fsys.Attr {
	return fsys.Attr{
		Ino: st.Ino, Mode: st.Mode, Nlink: uint32(st.Nlink), Uid: st.Uid, Gid: st.Gid,
		Size: st.Size, Blocks: st.Blocks, Rdev: st.Rdev,
		Atime: ts(st.Atim), Mtime: ts(st.Mtim), Ctime: ts(st.Ctim),
	}
}

func (f *FS) Stat(ino uint64) (fsys.Attr, error) {
	p, err := f.path(ino)
	if err != nil {
		return fsys.Attr{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(f.rootFd, rel(p), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fsys.Attr{}, mapErr(err)
	}
	return AttrFromStat(&st), nil
}

func (f *FS) remember(ino uint64, p string) {
	f.mu.RLock()
	_, ok := f.paths[ino]
	f.mu.RUnlock()
	if ok {
		return
	}
	f.mu.Lock()
	if _, ok := f.paths[ino]; !ok {
		f.paths[ino] = p
	}
	f.mu.Unlock()
}

func (f *FS) Lookup(dir uint64, name string) (uint64, error) {
	p, err := f.path(dir)
	if err != nil {
		return 0, err
	}
	if name == "." {
		return dir, nil
	}
	var child string
	if name == ".." {
		if p == "" {
			return f.rootIno, nil
		}
		child = path.Dir(p)
		if child == "." {
			child = ""
		}
	} else {
		if name == "" || len(name) > 255 || containsSlash(name) {
			return 0, fsys.ErrNotExist
		}
		child = path.Join(p, name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(f.rootFd, rel(child), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, mapErr(err)
	}
	if st.Dev != f.dev {
		// A mount point inside the layer: do not cross it.
		return 0, fsys.ErrNotExist
	}
	f.remember(st.Ino, child)
	return st.Ino, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}

func (f *FS) ReadDir(dir uint64) ([]fsys.DirEntry, error) {
	p, err := f.path(dir)
	if err != nil {
		return nil, err
	}
	out, err := ReadDirents(f.rootFd, rel(p))
	if err != nil {
		return nil, mapErr(err)
	}
	f.mu.Lock()
	for _, e := range out {
		if _, ok := f.paths[e.Ino]; !ok {
			f.paths[e.Ino] = path.Join(p, e.Name)
		}
	}
	f.mu.Unlock()
	return out, nil
}

// ReadDirents lists directory p (relative to dirfd, not following a final
// symlink) with getdents64, without "." and "..". Errors are raw errnos.
func ReadDirents(dirfd int, p string) ([]fsys.DirEntry, error) {
	fd, err := unix.Openat(dirfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []fsys.DirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		b := buf[:n]
		for len(b) > 0 {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name
			reclen := int(b[16]) | int(b[17])<<8
			ino := le64(b[0:8])
			typ := b[18]
			nb := b[19:reclen]
			for i, c := range nb {
				if c == 0 {
					nb = nb[:i]
					break
				}
			}
			name := string(nb)
			b = b[reclen:]
			if name == "." || name == ".." {
				continue
			}
			out = append(out, fsys.DirEntry{Name: name, Ino: ino, Type: dtToMode(typ)})
		}
	}
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func dtToMode(t uint8) uint32 {
	switch t {
	case unix.DT_REG:
		return fsys.S_IFREG
	case unix.DT_DIR:
		return fsys.S_IFDIR
	case unix.DT_LNK:
		return fsys.S_IFLNK
	case unix.DT_CHR:
		return fsys.S_IFCHR
	case unix.DT_BLK:
		return fsys.S_IFBLK
	case unix.DT_FIFO:
		return fsys.S_IFIFO
	case unix.DT_SOCK:
		return fsys.S_IFSOCK
	}
	return 0
}

// file returns an open descriptor for ino from a small LRU cache; the
// caller must call put.
func (f *FS) file(ino uint64) (*openFile, error) {
	f.fdMu.Lock()
	if e, ok := f.fds[ino]; ok {
		of := e.Value.(*openFile)
		of.refs++
		f.lru.MoveToFront(e)
		f.fdMu.Unlock()
		return of, nil
	}
	f.fdMu.Unlock()
	p, err := f.path(ino)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(f.rootFd, rel(p), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fsys.ErrLoop
		}
		return nil, mapErr(err)
	}
	of := &openFile{ino: ino, f: os.NewFile(uintptr(fd), p), refs: 1}
	f.fdMu.Lock()
	defer f.fdMu.Unlock()
	if e, ok := f.fds[ino]; ok { // lost a race: use the cached one
		of.f.Close()
		of = e.Value.(*openFile)
		of.refs++
		return of, nil
	}
	f.fds[ino] = f.lru.PushFront(of)
	for f.lru.Len() > f.maxFd {
		e := f.lru.Back()
		old := e.Value.(*openFile)
		f.lru.Remove(e)
		delete(f.fds, old.ino)
		if old.refs == 0 {
			old.f.Close()
		} else {
			old.refs = -old.refs // closed by the last put
		}
	}
	return of, nil
}

func (f *FS) put(of *openFile) {
	f.fdMu.Lock()
	switch {
	case of.refs > 0:
		of.refs--
	case of.refs < 0:
		of.refs++
		if of.refs == 0 {
			of.f.Close()
		}
	}
	f.fdMu.Unlock()
}

func (f *FS) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	of, err := f.file(ino)
	if err != nil {
		return 0, err
	}
	defer f.put(of)
	n, err := of.f.ReadAt(p, off)
	if err == io.EOF {
		return n, io.EOF
	}
	if pe, ok := err.(*os.PathError); ok {
		if pe.Err == syscall.EISDIR {
			return n, fsys.ErrIsDir
		}
		return n, pe.Err
	}
	return n, err
}

// SeekData implements SEEK_DATA/SEEK_HOLE on the host file.
func (f *FS) DataExtents(ino uint64) ([]fsys.Extent, error) {
	of, err := f.file(ino)
	if err != nil {
		return nil, err
	}
	defer f.put(of)
	fd := int(of.f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	var out []fsys.Extent
	off := int64(0)
	for off < st.Size {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if err == unix.ENXIO {
				break
			}
			return []fsys.Extent{{Off: 0, Len: st.Size}}, nil
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			h = st.Size
		}
		if h > st.Size {
			h = st.Size
		}
		out = append(out, fsys.Extent{Off: d, Len: h - d})
		off = h
	}
	return out, nil
}

func (f *FS) Readlink(ino uint64) (string, error) {
	p, err := f.path(ino)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(f.rootFd, rel(p), buf)
	if err != nil {
		if err == unix.EINVAL {
			return "", fsys.ErrNotLink
		}
		return "", mapErr(err)
	}
	return string(buf[:n]), nil
}

func (f *FS) abs(ino uint64) (string, error) {
	p, err := f.path(ino)
	if err != nil {
		return "", err
	}
	return path.Join(f.root, p), nil
}

func (f *FS) ListXattr(ino uint64) ([]string, error) {
	p, err := f.abs(ino)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := unix.Llistxattr(p, buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			if err == unix.ENOTSUP {
				return nil, nil
			}
			return nil, mapErr(err)
		}
		var names []string
		start := 0
		for i := 0; i < n; i++ {
			if buf[i] == 0 {
				if i > start {
					names = append(names, string(buf[start:i]))
				}
				start = i + 1
			}
		}
		return names, nil
	}
}

func (f *FS) GetXattr(ino uint64, name string) ([]byte, error) {
	p, err := f.abs(ino)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE {
			sz, err2 := unix.Lgetxattr(p, name, nil)
			if err2 != nil {
				return nil, mapErr(err2)
			}
			buf = make([]byte, sz+16)
			continue
		}
		if err != nil {
			if err == unix.ENOTSUP {
				return nil, fsys.ErrNoAttr
			}
			return nil, mapErr(err)
		}
		return buf[:n], nil
	}
}

func (f *FS) Info() fsys.Info {
	var st unix.Statfs_t
	if err := unix.Fstatfs(f.rootFd, &st); err != nil {
		return fsys.Info{Type: "dir"}
	}
	return fsys.Info{
		Type: "dir", BlockSize: st.Bsize, Blocks: st.Blocks, FreeBlocks: st.Bavail,
		Inodes: st.Files, FreeInodes: st.Ffree,
	}
}

func (f *FS) Close() error {
	f.fdMu.Lock()
	for _, e := range f.fds {
		e.Value.(*openFile).f.Close()
	}
	f.fds = map[uint64]*list.Element{}
	f.lru.Init()
	f.fdMu.Unlock()
	return unix.Close(f.rootFd)
}

// String names the directory, for error messages.
func (f *FS) String() string { return fmt.Sprintf("dir %s", f.root) }

var (
	_ fsys.FS           = (*FS)(nil)
	_ fsys.ExtentMapper = (*FS)(nil)
)

// CopyRange copies up to length bytes of file ino at off into host
// descriptor dst at the same offset inside the kernel (copy_file_range:
// block sharing where the host filesystem can). It returns the bytes
// copied, 0 at end of file.
func (f *FS) CopyRange(ino uint64, dst int, off, length int64) (int64, error) {
	of, err := f.file(ino)
	if err != nil {
		return 0, err
	}
	defer f.put(of)
	roff, woff := off, off
	k, err := unix.CopyFileRange(int(of.f.Fd()), &roff, dst, &woff, int(min(length, 1<<30)), 0)
	return int64(k), err
}
