package fat

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fatiso"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/testimg"
)

func bytesSrc(b []byte) Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// content is a deterministic, non-repeating byte pattern for file i.
func content(i, n int) []byte {
	b := make([]byte, n)
	x := uint32(i*7919 + 1)
	for k := range b {
		x = x*1664525 + 1013904223
		b[k] = byte(x >> 24)
	}
	return b
}

type file struct {
	path string
	data []byte
}

func sampleTree() []file {
	return []file{
		{"BOOT.CFG", []byte("bootstate=0\nkernel=/b.b00\n")},
		{"EFI/BOOT/BOOTX64.EFI", content(1, 70000)},
		{"EFI/BOOT/BOOT.CFG", []byte("efi\n")},
		{"lower.txt", []byte("lower case 8.3\n")},
		{"Mixed Case Long Name.data", content(2, 5000)},
		{"a very long name that needs several long entries to be stored.bin", content(3, 1)},
		{"dir.with.dots/nested/deeper/x", content(4, 513)},
		{"empty", nil},
		{"MODULES/S.V00", content(5, 300000)},
	}
}

func build(t *testing.T, size int64, opts Options, files []file) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	b := New(size, opts)
	if err := b.Mkdir("emptydir"); err != nil {
		t.Fatal(err)
	}
	for _, fl := range files {
		if err := b.AddFile(fl.path, int64(len(fl.data)), bytesSrc(fl.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(f, 0); err != nil {
		t.Fatal(err)
	}
	return img
}

// check runs fsck.fat, reads every file back with mtools and with vmroot's
// own reader, and checks the FAT type fsck reports.
func check(t *testing.T, img string, files []file, wantType string) {
	t.Helper()
	out := testimg.Run(t, "fsck.fat", "-n", "-v", img)
	if !strings.Contains(out, wantType) {
		t.Errorf("fsck.fat -v does not report %q:\n%s", wantType, out)
	}
	for _, fl := range files {
		got := testimg.Run(t, "mtype", "-i", img, "::/"+fl.path)
		if got != string(fl.data) {
			t.Errorf("mtype %s: %d bytes differ from the %d written", fl.path, len(got), len(fl.data))
		}
	}
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, _ := r.Stat()
	fs, err := fatiso.OpenFAT(r, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for _, fl := range files {
		ino, err := fsys.Resolve(fs, fl.path, true)
		if err != nil {
			t.Fatalf("vmroot reader: %v", err)
		}
		buf := make([]byte, len(fl.data))
		if n, err := fs.ReadAt(ino, buf, 0); n != len(buf) && err != nil {
			t.Fatalf("read %s: %v", fl.path, err)
		}
		if !bytes.Equal(buf, fl.data) {
			t.Errorf("vmroot reader: %s differs", fl.path)
		}
	}
}

func TestFsckCleanAtManySizes(t *testing.T) {
	testimg.Need(t, "fsck.fat", "mtype")
	files := sampleTree()
	cases := []struct {
		size int64
		typ  int
		want string
	}{
		{1 << 20, 12, "12 bit entries"},
		{2880 * 512, 0, "12 bit entries"},
		{8 << 20, 16, "16 bit entries"},
		{4064 << 10, 16, "16 bit entries"},
		{60 << 20, 16, "16 bit entries"},
		{64 << 20, 32, "32 bit entries"}, // go-diskfs v1.9.4 makes this FAT two entries short
		{63 << 20, 32, "32 bit entries"}, // the size of an ESP on a 64 MiB GPT disk
		{(63 << 20) - 17*512, 32, "32 bit entries"},
		{300 << 20, 32, "32 bit entries"},
		{4 << 30, 32, "32 bit entries"}, // sparse; go-diskfs v1.9.4 fails here too
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-FAT%d", c.size, c.typ), func(t *testing.T) {
			img := build(t, c.size, Options{Type: c.typ, Label: "VMROOT", VolumeID: 0x1234abcd,
				Time: time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)}, files)
			check(t, img, files, c.want)
		})
	}
}

// TestFATCoversEveryCluster checks the property go-diskfs v1.9.4 breaks:
// for every size, the FAT holds an entry for each data cluster plus two.
func TestFATCoversEveryCluster(t *testing.T) {
	for _, typ := range []int{12, 16, 32} {
		for size := int64(200 << 10); size < 6<<30; size = size*21/20 + 512 {
			g, err := chooseGeometry(size, typ, 512)
			if err != nil {
				continue
			}
			bits := map[int]uint64{12: 12, 16: 16, 32: 32}[typ]
			if need := (uint64(g.clusters) + 2) * bits; need > uint64(g.fatSectors)*sectorSize*8 {
				t.Fatalf("FAT%d at %d bytes: %d sectors of FAT for %d clusters", typ, size, g.fatSectors, g.clusters)
			}
			if g.dataStart+g.clusters*g.spc > g.total {
				t.Fatalf("FAT%d at %d bytes: clusters run past the end", typ, size)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	b := New(1<<20, Options{})
	if err := b.AddFile("a/b", 1, bytesSrc([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ p, want string }{
		{"A/B", "already exists"},
		{"a/b/c", "is a file"},
		{"bad:name", "does not allow"},
		{"trailing.", "ends with a dot"},
	} {
		if err := b.AddFile(c.p, 1, bytesSrc([]byte("x"))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddFile(%q) = %v, want %q", c.p, err, c.want)
		}
	}
	big := New(1<<20, Options{Type: 12})
	big.AddFile("big", 2<<20, bytesSrc(make([]byte, 2<<20)))
	if err := big.Write(discard{}, 0); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("oversized content: %v", err)
	}
	if err := New(20<<20, Options{Type: 32}).Write(discard{}, 0); err == nil || !strings.Contains(err.Error(), "too small for FAT32") {
		t.Errorf("20 MiB FAT32: %v", err)
	}
	short := New(1<<20, Options{})
	short.AddFile("s", 100, bytesSrc([]byte("abc")))
	if err := short.Write(discard{}, 0); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Errorf("short source: %v", err)
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
