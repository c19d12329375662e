// Package copyout copies trees out of an fsys.FS onto the host, keeping
// modes, times, symlinks, hard links, sparse holes, device nodes, FIFOs and
// sockets, and (as root) owners and all extended attributes.
//
// Every host object is created relative to an open directory descriptor
// with O_NOFOLLOW, and names from the image are checked, so a hostile image
// can never make it write outside the destination.
package copyout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// Options control a copy.
type Options struct {
	// Owners restores uid/gid and copies every xattr namespace; it needs
	// root. Without it only user.* xattrs are copied, best effort.
	Owners bool
	// Workers copy file data in parallel; 0 means GOMAXPROCS+1.
	Workers int
	// Where names the source in error messages.
	Where string
}

// Copier copies objects from one filesystem. One Copier shares a hard-link
// table across all the sources copied with it, as cp -a does.
type Copier struct {
	fs   fsys.FS
	opt  Options
	jobs chan job
	wg   sync.WaitGroup

	umask uint32 // the process's, so a create can often set the final mode itself

	mu    sync.Mutex
	err   error
	links map[uint64]*firstCopy

	dirSlots chan struct{} // bounds the directories copied in parallel
}

// firstCopy is the first name of a multiply-linked inode; done closes once
// it exists, since the walk of another directory may reach a second name first.
type firstCopy struct {
	host string
	done chan struct{}
}

type job struct {
	fd   int
	ino  uint64
	attr fsys.Attr
	path string
}

// New starts a copier; call Close to wait for it and collect the first error.
func New(f fsys.FS, opt Options) *Copier {
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0) + 1
	}
	c := &Copier{fs: f, opt: opt, jobs: make(chan job, 64), links: map[uint64]*firstCopy{},
		dirSlots: make(chan struct{}, opt.Workers)}
	old := unix.Umask(0)
	unix.Umask(old)
	c.umask = uint32(old)
	for i := 0; i < opt.Workers; i++ {
		c.wg.Add(1)
		go c.worker()
	}
	return c
}

// Close waits for all data copies and returns the first error.
func (c *Copier) Close() error {
	close(c.jobs)
	c.wg.Wait()
	c.links = nil
	return c.err
}

func (c *Copier) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *Copier) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

func (c *Copier) errorf(path string, err error) error {
	if c.opt.Where != "" {
		return fmt.Errorf("%s: %s: %w", c.opt.Where, path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// CopyTo copies object ino (named srcPath in messages) to destDir/name on
// the host. Directories are copied recursively.
func (c *Copier) CopyTo(ino uint64, srcPath, destDir, name string) error {
	dfd, err := unix.Open(destDir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", destDir, err)
	}
	defer unix.Close(dfd)
	a, err := c.fs.Stat(ino)
	if err != nil {
		return c.errorf(srcPath, err)
	}
	if err := c.copy(dfd, filepath.Join(destDir, name), name, ino, a, srcPath, 0, map[uint64]bool{}); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// copy creates name in dfd; host is the same object's host path, kept for hard links.
func (c *Copier) copy(dfd int, host, name string, ino uint64, a fsys.Attr, src string, depth int, onPath map[uint64]bool) error {
	if c.failed() {
		return nil // the first error is already recorded
	}
	if !validName(name) {
		return c.errorf(src, fmt.Errorf("refusing unsafe file name %q", name))
	}
	// Hard links: the second name of an inode links to the first copy.
	if !a.IsDir() && a.Nlink > 1 {
		c.mu.Lock()
		first, seen := c.links[ino]
		if !seen {
			c.links[ino] = &firstCopy{host: host, done: make(chan struct{})}
		}
		c.mu.Unlock()
		if seen {
			<-first.done
			if err := create(dfd, name, func() error { return unix.Linkat(unix.AT_FDCWD, first.host, dfd, name, 0) }); err != nil {
				return c.errorf(src, fmt.Errorf("link: %w", err))
			}
			return nil
		}
		defer func() {
			c.mu.Lock()
			close(c.links[ino].done)
			c.mu.Unlock()
		}()
	}
	switch a.Mode & fsys.S_IFMT {
	case fsys.S_IFDIR:
		return c.copyDir(dfd, host, name, ino, a, src, depth, onPath)
	case fsys.S_IFREG:
		// Created with its permission bits, so setMeta can usually skip fchmod;
		// the fd stays writable whatever they say.
		var fd int
		err := create(dfd, name, func() (err error) {
			fd, err = unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, a.Mode&0o777)
			return err
		})
		if err != nil {
			return c.errorf(src, err)
		}
		j := job{fd: fd, ino: ino, attr: a, path: src}
		if a.Size <= smallFile {
			// A hand-off to a worker costs more than copying a small file here.
			buf := smallBufs.Get().(*[]byte)
			c.finish(j, *buf)
			smallBufs.Put(buf)
			return nil
		}
		c.jobs <- j
		return nil
	case fsys.S_IFLNK:
		target, err := c.fs.Readlink(ino)
		if err != nil {
			return c.errorf(src, err)
		}
		if err := create(dfd, name, func() error { return unix.Symlinkat(target, dfd, name) }); err != nil {
			return c.errorf(src, err)
		}
		return c.setMetaAt(dfd, name, a, src, ino)
	default:
		if err := create(dfd, name, func() error { return unix.Mknodat(dfd, name, a.Mode&(fsys.S_IFMT|0o7777), int(a.Rdev)) }); err != nil {
			return c.errorf(src, fmt.Errorf("mknod: %w", err))
		}
		return c.setMetaAt(dfd, name, a, src, ino)
	}
}

func (c *Copier) copyDir(dfd int, host, name string, ino uint64, a fsys.Attr, src string, depth int, onPath map[uint64]bool) error {
	if depth > fsys.MaxDepth {
		return c.errorf(src, fmt.Errorf("deeper than %d levels", fsys.MaxDepth))
	}
	if onPath[ino] {
		return c.errorf(src, fsys.ErrDirLoop)
	}
	onPath[ino] = true
	defer delete(onPath, ino)
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil && err != unix.EEXIST {
		return c.errorf(src, err)
	}
	fd, err := unix.Openat(dfd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return c.errorf(src, err)
	}
	defer unix.Close(fd)
	// Owner-writable while children are created; the real mode is set after
	// them, which also keeps their creation from bumping the mtime.
	unix.Fchmod(fd, 0o700)
	if err := c.xattrs(fd, "", ino, src, a.Mode); err != nil {
		return err
	}
	ents, err := c.fs.ReadDir(ino)
	if err != nil {
		return c.errorf(src, err)
	}
	// Subdirectories go to other goroutines while slots are free: creating
	// files is mostly waiting in the kernel, which then overlaps.
	var wg sync.WaitGroup
	var subErr error
	var subMu sync.Mutex
	for _, e := range ents {
		ca, err := c.fs.Stat(e.Ino)
		if err != nil {
			wg.Wait()
			return c.errorf(src+"/"+e.Name, err)
		}
		chost, csrc := host+"/"+e.Name, strings.TrimSuffix(src, "/")+"/"+e.Name
		if ca.IsDir() {
			select {
			case c.dirSlots <- struct{}{}:
				path := make(map[uint64]bool, len(onPath))
				for k := range onPath {
					path[k] = true
				}
				wg.Add(1)
				go func(name string, ino uint64) {
					defer wg.Done()
					defer func() { <-c.dirSlots }()
					if err := c.copy(fd, chost, name, ino, ca, csrc, depth+1, path); err != nil {
						subMu.Lock()
						if subErr == nil {
							subErr = err
						}
						subMu.Unlock()
					}
				}(e.Name, e.Ino)
				continue
			default:
			}
		}
		if err := c.copy(fd, chost, e.Name, e.Ino, ca, csrc, depth+1, onPath); err != nil {
			wg.Wait()
			return err
		}
	}
	wg.Wait()
	if subErr != nil {
		return subErr
	}
	return c.setMeta(fd, a, src)
}

// create runs mk, and when name is taken by a non-directory removes it and
// runs mk once more: asking first would cost a stat per object.
func create(dfd int, name string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		removeExisting(dfd, name)
		err = mk()
	}
	return err
}

func removeExisting(dfd int, name string) {
	var st unix.Stat_t
	if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Unlinkat(dfd, name, 0)
	}
}

// smallFile is the size up to which the walker copies a file itself.
const smallFile = 256 << 10

// smallBufs serves the walkers, several of which run at once.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

func (c *Copier) worker() {
	defer c.wg.Done()
	buf := make([]byte, 1<<20)
	for j := range c.jobs {
		c.finish(j, buf)
	}
}

// finish copies a created file's data, xattrs and metadata, and closes it.
func (c *Copier) finish(j job, buf []byte) {
	if !c.failed() {
		if err := c.copyData(j, buf); err != nil {
			c.fail(c.errorf(j.path, err))
		} else if err := c.xattrs(j.fd, "", j.ino, j.path, j.attr.Mode); err != nil {
			c.fail(err)
		} else if err := c.setFileMeta(j.fd, j.attr, j.path); err != nil {
			c.fail(err)
		}
	}
	unix.Close(j.fd)
}

var zeros = make([]byte, 1<<20)

// copyData writes only the data-backed, non-zero parts so holes stay holes.
func (c *Copier) copyData(j job, buf []byte) error {
	exts := []fsys.Extent{{Off: 0, Len: j.attr.Size}}
	if m, ok := c.fs.(fsys.ExtentMapper); ok {
		e, err := m.DataExtents(j.ino)
		if err != nil {
			return err
		}
		exts = e
	}
	var written int64 // end of the last write: no ftruncate when it is the size
	for _, e := range exts {
		end := min(e.Off+e.Len, j.attr.Size)
		for off := e.Off; off < end; {
			n := int(min(int64(len(buf)), end-off))
			got, err := c.fs.ReadAt(j.ino, buf[:n], off)
			if got < n && err == nil {
				err = io.ErrUnexpectedEOF
			}
			if err != nil && !(errors.Is(err, io.EOF) && got == n) {
				return err
			}
			if !bytes.Equal(buf[:n], zeros[:n]) {
				if _, err := unix.Pwrite(j.fd, buf[:n], off); err != nil {
					return err
				}
				written = off + int64(n)
			}
			off += int64(n)
		}
	}
	if written == j.attr.Size {
		return nil
	}
	return unix.Ftruncate(j.fd, j.attr.Size)
}

// xattrs copies extended attributes: all namespaces as root, user.* otherwise.
// The kernel allows user.* only on regular files and directories.
func (c *Copier) xattrs(fd int, name string, ino uint64, src string, mode uint32) error {
	names, err := c.fs.ListXattr(ino)
	if err != nil {
		return c.errorf(src, err)
	}
	for _, n := range names {
		user := strings.HasPrefix(n, "user.")
		if (!c.opt.Owners && !user) || (user && mode&fsys.S_IFMT != fsys.S_IFREG && mode&fsys.S_IFMT != fsys.S_IFDIR) {
			continue
		}
		v, err := c.fs.GetXattr(ino, n)
		if err != nil {
			return c.errorf(src, fmt.Errorf("xattr %s: %w", n, err))
		}
		if name == "" {
			err = unix.Fsetxattr(fd, n, v, 0)
		} else {
			err = unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", fd, name), n, v, 0)
		}
		if err != nil {
			if !c.opt.Owners && (err == unix.ENOTSUP || err == unix.EPERM) {
				continue
			}
			return c.errorf(src, fmt.Errorf("set xattr %s: %w", n, err))
		}
	}
	return nil
}

// setMeta sets owner, mode and times on an open descriptor.
func (c *Copier) setMeta(fd int, a fsys.Attr, src string) error {
	return c.setMetaChmod(fd, a, src, true)
}

// setFileMeta is setMeta for a regular file created with mode&0777: chmod
// only when the umask took bits away or special bits must be set.
func (c *Copier) setFileMeta(fd int, a fsys.Attr, src string) error {
	need := a.Mode&0o7000 != 0 || a.Mode&0o777&c.umask != 0
	return c.setMetaChmod(fd, a, src, need)
}

func (c *Copier) setMetaChmod(fd int, a fsys.Attr, src string, chmod bool) error {
	if c.opt.Owners {
		if err := unix.Fchown(fd, int(a.Uid), int(a.Gid)); err != nil {
			return c.errorf(src, fmt.Errorf("chown: %w", err))
		}
	}
	// After chown, which clears setuid/setgid.
	if chmod {
		if err := unix.Fchmod(fd, a.Mode&0o7777); err != nil {
			return c.errorf(src, fmt.Errorf("chmod: %w", err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(a.Atime.UnixNano()), unix.NsecToTimespec(a.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return c.errorf(src, fmt.Errorf("set times: %w", err))
	}
	return nil
}

// setMetaAt is setMeta for objects that can't be opened (symlinks, devices, sockets).
func (c *Copier) setMetaAt(dfd int, name string, a fsys.Attr, src string, ino uint64) error {
	if c.opt.Owners {
		if err := unix.Fchownat(dfd, name, int(a.Uid), int(a.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return c.errorf(src, fmt.Errorf("chown: %w", err))
		}
	}
	if err := c.xattrs(dfd, name, ino, src, a.Mode); err != nil {
		return err
	}
	if !a.IsSymlink() {
		if err := unix.Fchmodat(dfd, name, a.Mode&0o7777, 0); err != nil {
			return c.errorf(src, fmt.Errorf("chmod: %w", err))
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(a.Atime.UnixNano()), unix.NsecToTimespec(a.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return c.errorf(src, fmt.Errorf("set times: %w", err))
	}
	return nil
}
