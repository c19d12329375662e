package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The syscall patterns of bench/union.sh's untar and rm -rf rows, one
// file per op, against a mount served by this process. An op costs the
// FUSE requests the kernel sends for it (about 10 for an untarred file, 2
// for an unlinked lower file), so ns/op is mostly request round trips.

// BenchmarkUntarFile creates one file as GNU tar does: exclusive create,
// write, futimens, fchown, fchmod, close; 50 files per directory.
func BenchmarkUntarFile(b *testing.B) {
	m := mountDirs(b, b.TempDir(), b.TempDir())
	data := []byte("file 12 34\n")
	tv := []unix.Timeval{{Sec: 1700000000}, {Sec: 1700000000}}
	dir := ""
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%50 == 0 {
			dir = filepath.Join(m.dir, fmt.Sprintf("p%d", i/50))
			if err := unix.Mkdir(dir, 0o700); err != nil {
				b.Fatal(err)
			}
		}
		fd, err := unix.Open(filepath.Join(dir, fmt.Sprintf("f%d", i%50)), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := unix.Write(fd, data); err != nil {
			b.Fatal(err)
		}
		if err := unix.Futimes(fd, tv); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fchown(fd, 0, 0); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fchmod(fd, 0o644); err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}

// BenchmarkRemoveLowerFile unlinks files of the lower layer (each leaves
// a whiteout), 50 per directory, and removes each emptied directory.
func BenchmarkRemoveLowerFile(b *testing.B) {
	lower := b.TempDir()
	ndirs := (b.N + 49) / 50
	for d := 0; d < ndirs; d++ {
		dp := filepath.Join(lower, fmt.Sprintf("s%d", d))
		os.Mkdir(dp, 0o755)
		for i := 0; i < 50; i++ {
			if err := os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%02d", i)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	m := mountDirs(b, b.TempDir(), lower)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dp := filepath.Join(m.dir, fmt.Sprintf("s%d", i/50))
		if err := unix.Unlink(filepath.Join(dp, fmt.Sprintf("f%02d", i%50))); err != nil {
			b.Fatal(err)
		}
		if i%50 == 49 {
			if err := unix.Rmdir(dp); err != nil {
				b.Fatal(err)
			}
		}
	}
}
