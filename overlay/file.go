package overlay

import (
	"io"
	"sync"
	"syscall"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// Handle is an open regular file. Reads of a file that has not been
// copied up go straight to its lower layer; when another handle copies it
// up, the next read switches to the diff's copy.
type Handle struct {
	o     *FS
	n     *Node
	flags int
	mu    sync.Mutex
	hfd   int    // diff file descriptor, -1 if none
	gen   uint64 // node generation hfd belongs to
	rw    bool
}

func (o *FS) newHandle(n *Node, flags int) *Handle {
	return &Handle{o: o, n: n, flags: flags, hfd: -1}
}

func (h *Handle) setFd(fd int) {
	h.hfd = fd
	h.gen = h.n.gen.Load()
	h.rw = h.flags&unix.O_ACCMODE != unix.O_RDONLY
}

func (h *Handle) fd() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hfd
}

func (h *Handle) writable() bool { return h.rw && h.fd() >= 0 }

// Node is the handle's node.
func (h *Handle) Node() *Node { return h.n }

// Fd returns the diff file descriptor when the handle was opened on a
// file whose data lives in the diff (for kernel passthrough).
func (h *Handle) Fd() (int, bool) {
	fd := h.fd()
	return fd, fd >= 0
}

// Open opens a regular file. Write access (or O_TRUNC) copies the data up
// first.
func (o *FS) Open(n *Node, flags int) (*Handle, error) {
	if n.mode == fsys.S_IFDIR {
		if flags&unix.O_ACCMODE != unix.O_RDONLY {
			return nil, syscall.EISDIR
		}
		return o.newHandle(n, flags), nil
	}
	acc := flags & unix.O_ACCMODE
	write := acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	if write {
		if err := o.writable(); err != nil {
			return nil, err
		}
		if n.mode != fsys.S_IFREG {
			return o.newHandle(n, flags), nil
		}
		if flags&unix.O_TRUNC != 0 {
			if err := o.truncate(n, nil, 0); err != nil {
				return nil, err
			}
		} else if err := o.copyUpData(n); err != nil {
			return nil, err
		}
	}
	h := o.newHandle(n, flags)
	o.ns.RLock()
	s := n.state()
	if s.removed && !s.upper {
		o.ns.RUnlock()
		return nil, syscall.ENOENT
	}
	if n.mode == fsys.S_IFREG && s.upper && !s.meta {
		fd, err := unix.Openat(o.ufd, n.dataPath(), acc|flags&unix.O_APPEND|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		o.ns.RUnlock()
		if err != nil {
			return nil, err
		}
		if flags&unix.O_TRUNC != 0 && acc != unix.O_RDONLY {
			unix.Ftruncate(fd, 0)
		}
		h.setFd(fd)
		return h, nil
	}
	o.ns.RUnlock()
	return h, nil
}

// ReadAt reads like pread(2): short only at end of file.
func (h *Handle) ReadAt(p []byte, off int64) (int, error) {
	h.mu.Lock()
	fd := h.hfd
	if fd < 0 || h.gen != h.n.gen.Load() {
		s := h.n.state()
		if !(s.upper && !s.meta) || h.rw {
			h.mu.Unlock()
			if fd >= 0 {
				return h.pread(fd, p, off)
			}
			return h.readLower(s, p, off)
		}
		// copied up since we opened: switch to the diff's copy
		h.o.ns.RLock()
		nfd, err := unix.Openat(h.o.ufd, h.n.dataPath(), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		h.o.ns.RUnlock()
		if err != nil {
			h.mu.Unlock()
			return h.readLower(s, p, off)
		}
		if h.hfd >= 0 {
			unix.Close(h.hfd)
		}
		h.hfd, h.gen = nfd, h.n.gen.Load()
		fd = nfd
	}
	h.mu.Unlock()
	return h.pread(fd, p, off)
}

func (h *Handle) pread(fd int, p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		k, err := unix.Pread(fd, p[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if k == 0 {
			break
		}
		total += k
	}
	return total, nil
}

// FileHostRanger is implemented by layers that can tell where in a host
// file a file's bytes are stored as-is (ext.FS.HostRange).
type FileHostRanger interface {
	HostRange(ino uint64, off, length int64) (fd int, hostOff, n int64, ok bool)
}

// HostRange locates bytes [off, off+length) of the open file, cut at its
// end, in a host file: ok when the handle reads a lower layer that stores
// all of them as-is in one run there, so a front end may splice them
// from that file instead of copying them through this process. n is 0 at
// the end of the file. Lower layers never change, so the range stays
// right even if the file is copied up before it is read, as for a read
// already under way.
func (h *Handle) HostRange(off, length int64) (fd int, hostOff, n int64, ok bool) {
	h.mu.Lock()
	hfd := h.hfd
	h.mu.Unlock()
	s := h.n.state()
	l, ok := dataLower(s)
	if hfd >= 0 || (s.upper && !s.meta) || !ok {
		return -1, 0, 0, false
	}
	r, isHost := h.o.lowers[l.layer].(FileHostRanger)
	if !isHost {
		return -1, 0, 0, false
	}
	return r.HostRange(l.ino, off, length)
}

// dataLower is the lower object whose data a file without data in the
// diff reads: a meta copy's origin, or its top lower.
func dataLower(s *state) (lref, bool) {
	if s.meta {
		return s.origin, true
	}
	if len(s.lowers) == 0 {
		return lref{}, false
	}
	return s.lowers[0], true
}

func (h *Handle) readLower(s *state, p []byte, off int64) (int, error) {
	l, ok := dataLower(s)
	if !ok {
		return 0, syscall.EBADF
	}
	k, err := h.o.lowers[l.layer].ReadAt(l.ino, p, off)
	if err == io.EOF {
		err = nil
	}
	return k, lowerErr(err)
}

// WriteAt writes like pwrite(2) (O_APPEND handles append).
func (h *Handle) WriteAt(p []byte, off int64) (int, error) {
	fd := h.fd()
	if fd < 0 || !h.rw {
		return 0, syscall.EBADF
	}
	for {
		k, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return k, nil
	}
}

// Getattr is fstat(2) of the handle; it works after the last name is gone.
func (h *Handle) Getattr() (Attr, error) {
	if h.fd() < 0 {
		return h.o.Getattr(h.n)
	}
	return h.getattr()
}

func (h *Handle) getattr() (Attr, error) {
	var st unix.Stat_t
	if err := unix.Fstat(h.fd(), &st); err != nil {
		return Attr{}, err
	}
	a := dirfs.AttrFromStat(&st)
	s := h.n.state()
	switch {
	case s.removed:
		a.Nlink = 0
	case s.indexed:
		a.Nlink = uint32(int32(st.Nlink) - 1 + s.pending)
	}
	a.Ino = h.n.ino
	return a, nil
}

// Fsync flushes the diff file.
func (h *Handle) Fsync(datasync bool) error {
	fd := h.fd()
	if fd < 0 {
		return nil
	}
	if datasync {
		return unix.Fdatasync(fd)
	}
	return unix.Fsync(fd)
}

// Allocate is fallocate(2) on the diff file.
func (h *Handle) Allocate(mode uint32, off, size int64) error {
	fd := h.fd()
	if fd < 0 || !h.rw {
		return syscall.EBADF
	}
	return unix.Fallocate(fd, mode, off, size)
}

// Lseek answers SEEK_DATA and SEEK_HOLE.
func (h *Handle) Lseek(off int64, whence int) (int64, error) {
	if fd := h.fd(); fd >= 0 {
		return unix.Seek(fd, off, whence)
	}
	a, err := h.o.Getattr(h.n)
	if err != nil {
		return 0, err
	}
	if off >= a.Size {
		return 0, syscall.ENXIO
	}
	if whence == unix.SEEK_DATA {
		return off, nil
	}
	return a.Size, nil
}

// Release closes the handle.
func (h *Handle) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hfd >= 0 {
		err := unix.Close(h.hfd)
		h.hfd = -1
		return err
	}
	return nil
}
