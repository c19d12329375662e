package fatiso

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
)

// makeFAT formats a FAT image of the given type and copies the test tree
// in with mtools, preserving mtimes, and marks readonly.txt read-only.
func makeFAT(t testing.TB, bits int, sizeMiB int) (img, src string) {
	need(t, "mkfs.vfat", "dosfstools")
	need(t, "mcopy", "mtools")
	src = makeTree(t, false)
	img = filepath.Join(t.TempDir(), fmt.Sprintf("fat%d.img", bits))
	f, _ := os.Create(img)
	f.Truncate(int64(sizeMiB) << 20)
	f.Close()
	args := []string{"-F", fmt.Sprint(bits), "-n", fmt.Sprintf("VMROOT%d", bits), "-i", "1234ABCD"}
	if bits == 32 {
		args = append(args, "-s", "1")
	}
	run(t, "mkfs.vfat", append(args, img)...)
	ents, _ := os.ReadDir(src)
	args = []string{"-s", "-m", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	run(t, "mcopy", append(args, "::/")...)
	run(t, "mattrib", "-i", img, "+r", "::/readonly.txt")
	return img, src
}

func fatModes(t *testing.T, rel string, src os.FileInfo, a fsys.Attr) {
	want := uint32(fsys.S_IFREG | 0o644)
	switch {
	case src.IsDir():
		want = fsys.S_IFDIR | 0o755
	case rel == "readonly.txt":
		want = fsys.S_IFREG | 0o444
	}
	if a.Mode != want || a.Uid != 0 || a.Gid != 0 {
		t.Errorf("%q: mode %o uid %d gid %d, want %o 0 0", rel, a.Mode, a.Uid, a.Gid, want)
	}
}

func TestFAT(t *testing.T) {
	for _, c := range []struct{ bits, mib int }{{12, 8}, {16, 32}, {32, 40}} {
		t.Run(fmt.Sprintf("FAT%d", c.bits), func(t *testing.T) {
			img, src := makeFAT(t, c.bits, c.mib)
			r, size := openFile(t, img)
			fs, err := OpenFAT(r, size)
			if err != nil {
				t.Fatal(err)
			}
			defer fs.Close()
			// FAT mtimes have 2-second resolution; mtools rounds down.
			compareTree(t, fs, src, compareOpts{mtimeTol: 2 * time.Second, checkMode: fatModes, dirMtime: true})

			bl := blkid(t, img)
			info := fs.Info()
			if info.Type != bl["TYPE"] || info.Label != bl["LABEL"] || info.UUID != bl["UUID"] ||
				len(info.Features) != 1 || info.Features[0] != bl["VERSION"] {
				t.Errorf("Info %+v, blkid %v", info, bl)
			}
			if info.UUID != "1234-ABCD" {
				t.Errorf("UUID %q", info.UUID)
			}
			// mdir -a shows the 8.3 alias of the long name; Lookup accepts it.
			out := run(t, "mdir", "-i", img, "::/")
			for _, line := range strings.Split(out, "\n") {
				if strings.HasSuffix(line, "a very long file name that exceeds eight dot three.data") {
					f := strings.Fields(line)
					alias := f[0] + "." + f[1]
					a, err1 := fs.Lookup(fs.Root(), alias)
					b, err2 := fs.Lookup(fs.Root(), "a very long file name that exceeds eight dot three.data")
					if err1 != nil || err2 != nil || a != b {
						t.Errorf("8.3 alias %q: %d %v, long name %d %v", alias, a, err1, b, err2)
					}
				}
			}
			// Case-insensitive lookup, as Linux vfat.
			a, err1 := fs.Lookup(fs.Root(), "HELLO.TXT")
			b, err2 := fs.Lookup(fs.Root(), "hello.txt")
			if err1 != nil || err2 != nil || a != b {
				t.Errorf("case-insensitive lookup: %v %v", err1, err2)
			}
			if _, err := fs.Lookup(fs.Root(), "nope"); err == nil {
				t.Error("lookup of a missing name succeeded")
			}
			checkCommonErrors(t, fs)
		})
	}
}

// checkCommonErrors exercises the error paths of fsys.FS.
func checkCommonErrors(t *testing.T, fs fsys.FS) {
	root := fs.Root()
	file := lookupPath(t, fs, "hello.txt")
	if _, err := fs.ReadAt(root, make([]byte, 1), 0); err != fsys.ErrIsDir {
		t.Errorf("ReadAt(dir) = %v", err)
	}
	if _, err := fs.ReadDir(file); err != fsys.ErrNotDir {
		t.Errorf("ReadDir(file) = %v", err)
	}
	if _, err := fs.Lookup(file, "x"); err != fsys.ErrNotDir {
		t.Errorf("Lookup(file) = %v", err)
	}
	if _, err := fs.Readlink(file); err != fsys.ErrNotLink {
		t.Errorf("Readlink(file) = %v", err)
	}
	if _, err := fs.Stat(1 << 40); err == nil {
		t.Error("Stat of a bad inode succeeded")
	}
	if x, err := fs.ListXattr(file); err != nil || len(x) != 0 {
		t.Errorf("ListXattr = %v, %v", x, err)
	}
	if _, err := fs.GetXattr(file, "user.x"); err != fsys.ErrNoAttr {
		t.Errorf("GetXattr = %v", err)
	}
	a, _ := fs.Stat(file)
	buf := make([]byte, 100)
	if n, err := fs.ReadAt(file, buf, a.Size-3); n != 3 || err == nil {
		t.Errorf("ReadAt across EOF = %d, %v", n, err)
	}
	if n, err := fs.ReadAt(file, buf, a.Size); n != 0 || err == nil {
		t.Errorf("ReadAt at EOF = %d, %v", n, err)
	}
}

// TestConcurrentReads runs many goroutines over one FS; run with -race.
func TestConcurrentReads(t *testing.T) {
	img, src := makeFAT(t, 16, 32)
	r, size := openFile(t, img)
	fs, err := OpenFAT(r, size)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(src, "big.bin"))
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ino, err := fs.Lookup(fs.Root(), "big.bin")
			if err != nil {
				t.Error(err)
				return
			}
			data, err := readAll(fs, ino, 4096+g*1000)
			if err != nil || !bytes.Equal(data, want) {
				t.Errorf("goroutine %d: %d bytes, %v", g, len(data), err)
			}
			deep := lookupPath(t, fs, "d1/d2/d3/deep.txt")
			if _, err := fs.Stat(deep); err != nil {
				t.Error(err)
			}
			if _, err := fs.ReadDir(fs.Root()); err != nil {
				t.Error(err)
			}
		}(g)
	}
	wg.Wait()
}

// countingReader counts the bytes and calls that reach the image.
type countingReader struct {
	r            *os.File
	mu           sync.Mutex
	calls, bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.calls++
	c.bytes += int64(len(p))
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// TestSequentialReadIsLinear: reading a file in 1 MiB ReadAt calls reads
// each image byte once, with one image read per contiguous run.
func TestSequentialReadIsLinear(t *testing.T) {
	for _, kind := range []string{"fat32", "iso"} {
		t.Run(kind, func(t *testing.T) {
			var img, src string
			if kind == "iso" {
				src = makeTree(t, false)
				img = makeISO(t, src, "-R")
			} else {
				img, src = makeFAT(t, 32, 40)
			}
			f, size := openFile(t, img)
			cr := &countingReader{r: f}
			var fs fsys.FS
			var err error
			if kind == "iso" {
				fs, err = OpenISO(cr, size)
			} else {
				fs, err = OpenFAT(cr, size)
			}
			if err != nil {
				t.Fatal(err)
			}
			ino := lookupPath(t, fs, "big.bin")
			cr.calls, cr.bytes = 0, 0
			data, err := readAll(fs, ino, 1<<20)
			want, _ := os.ReadFile(filepath.Join(src, "big.bin"))
			if err != nil || !bytes.Equal(data, want) {
				t.Fatalf("read %d bytes, %v", len(data), err)
			}
			if cr.bytes != int64(len(want)) || cr.calls > 8 {
				t.Errorf("reading %d bytes in 1 MiB calls took %d image reads of %d bytes", len(want), cr.calls, cr.bytes)
			}
		})
	}
}
