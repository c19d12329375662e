package image

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/testimg"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testimg.Cleanup()
	os.Exit(code)
}

// stackImage builds tree -> ext4 -> MBR logical partition -> split sparse VMDK.
func stackImage(t *testing.T) (string, string) {
	testimg.Need(t, "mke2fs", "sfdisk", "qemu-img")
	tree := testimg.Tree(t)
	dir := t.TempDir()
	ext := testimg.Ext(t, dir, tree, "ext4", 64)
	raw := testimg.Disk(t, dir, "dos", 80, testimg.Part{Type: "5"}, testimg.Part{Type: "83", SizeMiB: 64, Content: ext})
	vm := testimg.Convert(t, raw, filepath.Join(dir, "d.vmdk"), "vmdk", "subformat=twoGbMaxExtentSparse")
	return vm, tree
}

// Many goroutines reading through VMDK -> partition -> ext at once get the
// same bytes as one goroutine reading serially, and both match the source.
func TestConcurrentReadsThroughTheStack(t *testing.T) {
	vm, tree := stackImage(t)
	m, err := OpenFS(vm, Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Partition == nil || m.Partition.Number != 5 {
		t.Fatalf("auto partition = %+v, want logical partition 5", m.Partition)
	}
	type file struct {
		path string
		ino  uint64
		size int64
	}
	var files []file
	err = fsys.Walk(m.FS, m.FS.Root(), func(p string, ino uint64, a fsys.Attr) error {
		if a.IsRegular() && a.Size < 8<<20 {
			files = append(files, file{p, ino, a.Size})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("only %d files found", len(files))
	}
	serial := make([][32]byte, len(files))
	for i, f := range files {
		serial[i] = sha256.Sum256(readAll(t, m.FS, f.ino, f.size, 1<<20))
		want, err := os.ReadFile(filepath.Join(tree, f.path))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(want) != serial[i] {
			t.Fatalf("%s: contents differ from the source tree", f.path)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			for _, i := range r.Perm(len(files)) {
				f := files[i]
				// Odd chunk sizes make reads straddle blocks and grains.
				if sha256.Sum256(readAll(t, m.FS, f.ino, f.size, 1+r.Intn(70000))) != serial[i] {
					errs <- f.path
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
	close(errs)
	for p := range errs {
		t.Errorf("%s: concurrent read differs from serial read", p)
	}
}

func readAll(t *testing.T, f fsys.FS, ino uint64, size int64, chunk int) []byte {
	var out bytes.Buffer
	buf := make([]byte, chunk)
	for off := int64(0); off < size; {
		n, err := f.ReadAt(ino, buf, off)
		out.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Error(err)
			return nil
		}
	}
	return out.Bytes()
}

func TestOpenNeverWrites(t *testing.T) {
	vm, _ := stackImage(t)
	dir := filepath.Dir(vm)
	before := hashDir(t, dir)
	m, err := OpenFS(vm, Auto)
	if err != nil {
		t.Fatal(err)
	}
	fsys.Walk(m.FS, m.FS.Root(), func(p string, ino uint64, a fsys.Attr) error {
		if a.IsRegular() {
			readAll(t, m.FS, ino, min(a.Size, 1<<20), 65536)
		}
		return nil
	})
	m.Close()
	if after := hashDir(t, dir); after != before {
		t.Fatal("the image files changed while being read")
	}
}

func hashDir(t *testing.T, dir string) string {
	ents, _ := os.ReadDir(dir)
	h := sha256.New()
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".vmdk" {
			s := testimg.FileSHA256(t, filepath.Join(dir, e.Name()))
			h.Write([]byte(e.Name()))
			h.Write(s[:])
		}
	}
	return string(h.Sum(nil))
}
