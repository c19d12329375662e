//go:build linux || freebsd || darwin || solaris || illumos

package vmdk

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// seekData returns the first data byte at or after off in f and the end of
// that data run; data is -1 if there is none. ok is false when the host
// cannot answer (the caller then treats the rest as data). lseek moves the
// shared file offset, which nothing here uses: reads are positional.
func seekData(f *os.File, off int64) (data, hole int64, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var serr, herr error
	cerr := rc.Control(func(fd uintptr) {
		data, serr = unix.Seek(int(fd), off, unix.SEEK_DATA)
		if serr == nil {
			hole, herr = unix.Seek(int(fd), data, unix.SEEK_HOLE)
		}
	})
	switch {
	case cerr != nil:
		return 0, 0, false
	case errors.Is(serr, unix.ENXIO):
		return -1, -1, true // no data at or after off
	case serr != nil || herr != nil:
		return 0, 0, false
	}
	return data, hole, true
}
