package ext

import (
	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// CopyRange copies up to length bytes of regular file ino at off into
// host descriptor dst at the same offset, inside the kernel
// (copy_file_range from the image file), when the disk reader stores the
// blocks as-is in a host file (fsys.HostRanger). It copies at most one
// contiguous run of blocks per call and returns 0, nil where it cannot
// (holes, inline data, a disk format that transforms its blocks, end of
// file), so the caller reads that part instead.
func (f *FS) CopyRange(ino uint64, dst int, off, length int64) (int64, error) {
	fd, hoff, n, _, ok, err := f.hostRun(ino, off, length)
	if !ok || err != nil || n == 0 {
		return 0, err
	}
	n = min(n, 1<<30)
	woff := off
	for {
		k, err := unix.CopyFileRange(fd, &hoff, dst, &woff, int(n), 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
			return 0, nil // the host cannot: read instead
		}
		return int64(k), err
	}
}

// HostRange locates bytes [off, off+length) of regular file ino, cut at
// the end of the file, in the host file that holds the image: ok only
// when all of them are stored there as-is in one run, which a reader may
// then splice straight from the host file. n is the number of bytes (0
// at or past the end).
func (f *FS) HostRange(ino uint64, off, length int64) (fd int, hostOff, n int64, ok bool) {
	fd, hostOff, n, want, ok, err := f.hostRun(ino, off, length)
	if !ok || err != nil || n != want {
		return -1, 0, 0, false
	}
	return fd, hostOff, n, true
}

// hostRun maps the first contiguous run of file bytes [off, off+length),
// cut at the end of the file (want bytes), to the host file; at the end
// of the file it returns ok with nothing to read.
func (f *FS) hostRun(ino uint64, off, length int64) (fd int, hostOff, n, want int64, ok bool, err error) {
	hr, isHost := f.r.(fsys.HostRanger)
	if off < 0 || length < 0 {
		return -1, 0, 0, 0, false, nil
	}
	in, err := f.getInode(ino)
	if err != nil {
		return -1, 0, 0, 0, false, err
	}
	if in.typ() != fsys.S_IFREG {
		return -1, 0, 0, 0, false, nil
	}
	if off >= in.size || length == 0 {
		return -1, 0, 0, 0, true, nil // nothing to read
	}
	want = min(length, in.size-off)
	if !isHost || in.flag(disklayout.InodeFlagInlineData) {
		return -1, 0, 0, want, false, nil
	}
	lblk, within := uint64(off)>>f.bsBits, uint64(off)&(f.bs-1)
	r, err := f.mapRun(in, lblk)
	if err != nil || r.phys == 0 {
		return -1, 0, 0, want, false, err
	}
	n = min(want, int64(r.n<<f.bsBits-within))
	fd, hostOff, hn, ok := hr.HostRange(int64(r.phys<<f.bsBits+within), n)
	if !ok {
		return -1, 0, 0, want, false, nil
	}
	return fd, hostOff, min(n, hn), want, true, nil
}
