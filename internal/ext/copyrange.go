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
	hr, ok := f.r.(fsys.HostRanger)
	if !ok || off < 0 || length <= 0 {
		return 0, nil
	}
	in, err := f.getInode(ino)
	if err != nil {
		return 0, err
	}
	if in.typ() != fsys.S_IFREG || in.flag(disklayout.InodeFlagInlineData) || off >= in.size {
		return 0, nil
	}
	length = min(length, in.size-off)
	lblk, within := uint64(off)>>f.bsBits, uint64(off)&(f.bs-1)
	r, err := f.mapRun(in, lblk)
	if err != nil || r.phys == 0 {
		return 0, err
	}
	n := min(length, int64(r.n<<f.bsBits-within))
	fd, hoff, hn, ok := hr.HostRange(int64(r.phys<<f.bsBits+within), n)
	if !ok {
		return 0, nil
	}
	n = min(n, hn, 1<<30)
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
