package output

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/imgfmt"
	"github.com/vmroot/vmroot/internal/testimg"
)

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.vmdk")
	for _, f := range []imgfmt.Format{imgfmt.Raw, imgfmt.VMDK, imgfmt.QCOW2, "vmdk:streamOptimized"} {
		err := Write(dest, f, 1<<20, func(w *os.File) error {
			w.WriteAt([]byte("partial"), 0)
			return errors.New("boom")
		})
		if err == nil || err.Error() != "boom" {
			t.Fatalf("%s: %v", f, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("%s: left behind %v", f, ents)
		}
	}
	for f, want := range map[imgfmt.Format]string{
		"vhdx":                      "unknown output format",
		"raw:x":                     "unknown output format",
		"vmdk:twoGbMaxExtentSparse": "unsupported VMDK subformat",
	} {
		if err := Write(dest, f, 1<<20, func(*os.File) error { return nil }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind %v", ents)
	}
	// Success: the file appears whole, sparse where nothing was written.
	raw := filepath.Join(dir, "disk.raw")
	if err := Write(raw, imgfmt.Raw, 8<<20, func(w *os.File) error { _, err := w.WriteAt([]byte("end"), 8<<20-3); return err }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(raw)
	if len(b) != 8<<20 || string(b[len(b)-3:]) != "end" {
		t.Errorf("raw output: %d bytes", len(b))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestWriteLarge writes a disk past the 4 GiB the tiny-image writers stop
// at, with data at both ends, in every format, and checks each output
// against the same content written raw with qemu-img as the oracle.
func TestWriteLarge(t *testing.T) {
	testimg.Need(t, "qemu-img")
	dir := t.TempDir()
	const size = 5<<30 + 512
	fill := func(w *os.File) error {
		for _, off := range []int64{0, 70000, 4<<30 - 3, size - 5} {
			if _, err := w.WriteAt([]byte("vmroot"[:min(6, size-off)]), off); err != nil {
				return err
			}
		}
		return nil
	}
	raw := filepath.Join(dir, "disk.raw")
	if err := Write(raw, imgfmt.Raw, size, fill); err != nil {
		t.Fatal(err)
	}
	for f, qfmt := range map[imgfmt.Format]string{"vmdk": "vmdk", "vmdk:streamOptimized": "vmdk", "qcow2": "qcow2"} {
		out := filepath.Join(dir, strings.ReplaceAll(string(f), ":", "-")+".img")
		if err := Write(out, f, size, fill); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4<<20 {
			t.Errorf("%s: %d bytes for 24 bytes of data", f, fi.Size())
		}
		if qfmt == "qcow2" {
			testimg.Run(t, "qemu-img", "check", "-q", out)
		}
		testimg.Run(t, "qemu-img", "compare", "-q", "-f", qfmt, "-F", "raw", out, raw)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("files left: %v", ents)
	}
}
