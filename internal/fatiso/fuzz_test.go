package fatiso

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
)

// smallTree is a seed tree small enough for fuzzing: a long name, a
// nested directory, a multi-cluster file and a symlink (ISO only).
func smallTree(t testing.TB, symlink bool) string {
	root := filepath.Join(t.TempDir(), "seed")
	os.MkdirAll(filepath.Join(root, "sub dir", "deeper"), 0o755)
	os.WriteFile(filepath.Join(root, "a long file name.txt"), bytes.Repeat([]byte("x"), 3000), 0o644)
	os.WriteFile(filepath.Join(root, "sub dir", "deeper", "F.TXT"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(root, "empty"), nil, 0o644)
	if symlink {
		os.Symlink("sub dir/deeper/F.TXT", filepath.Join(root, "link"))
	}
	return root
}

func haveTools(tools ...string) bool {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return false
		}
	}
	return true
}

// walkAll visits every object of fs, reading all files and links; errors
// are fine, panics and hangs are not.
func walkAll(t *testing.T, fs fsys.FS) {
	buf := make([]byte, 64<<10)
	seen := map[uint64]bool{}
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		if seen[ino] || depth > MaxDepth+1 {
			t.Fatalf("inode %d reached twice or too deep (%d)", ino, depth)
		}
		seen[ino] = true
		a, err := fs.Stat(ino)
		if err != nil {
			t.Fatalf("Stat of listed inode %d: %v", ino, err)
		}
		switch {
		case a.IsDir():
			ents, err := fs.ReadDir(ino)
			if err != nil {
				return
			}
			for _, e := range ents {
				if l, err := fs.Lookup(ino, e.Name); err != nil || (l != e.Ino && !seen[l]) {
					t.Fatalf("Lookup(%q) = %d, %v; ReadDir says %d", e.Name, l, err, e.Ino)
				}
				walk(e.Ino, depth+1)
			}
		case a.IsSymlink():
			fs.Readlink(ino)
		case a.IsRegular():
			for off := int64(0); off < a.Size; off += int64(len(buf)) {
				if _, err := fs.ReadAt(ino, buf, off); err != nil {
					break
				}
			}
		}
	}
	walk(fs.Root(), 0)
	fs.Info()
}

func watchdog() *time.Timer {
	return time.AfterFunc(10*time.Second, func() { panic("open and walk took more than 10 s") })
}

func FuzzFAT(f *testing.F) {
	if haveTools("mkfs.vfat", "mcopy") {
		for _, c := range []struct {
			bits int
			size int64
		}{{12, 64 << 10}, {16, 2200 << 10}} {
			img := filepath.Join(f.TempDir(), "seed.img")
			os.WriteFile(img, nil, 0o644)
			os.Truncate(img, c.size)
			args := []string{"-F", strconv.Itoa(c.bits), "-i", "DEADBEEF", "-n", "SEED"}
			if c.bits == 16 {
				args = append(args, "-s", "1", "-r", "16")
			}
			run(f, "mkfs.vfat", append(args, img)...)
			src := smallTree(f, false)
			run(f, "mcopy", "-s", "-i", img, filepath.Join(src, "a long file name.txt"), filepath.Join(src, "sub dir"),
				filepath.Join(src, "empty"), "::/")
			data, _ := os.ReadFile(img)
			if _, err := OpenFAT(bytes.NewReader(data), int64(len(data))); err != nil {
				f.Fatalf("FAT%d seed: %v", c.bits, err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := watchdog()
		defer w.Stop()
		fs, err := OpenFAT(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		walkAll(t, fs)
	})
}

func FuzzISO(f *testing.F) {
	if haveTools("xorriso") {
		for _, flags := range [][]string{{"-R", "-J"}, {"-J", "--norock"}} {
			img := filepath.Join(f.TempDir(), "seed.iso")
			args := append([]string{"-as", "mkisofs", "-quiet", "-no-pad", "-o", img}, flags...)
			run(f, "xorriso", append(args, smallTree(f, flags[0] == "-R"))...)
			data, _ := os.ReadFile(img)
			if _, err := OpenISO(bytes.NewReader(data), int64(len(data))); err != nil {
				f.Fatalf("ISO seed %v: %v", flags, err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := watchdog()
		defer w.Stop()
		fs, err := OpenISO(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		walkAll(t, fs)
	})
}
