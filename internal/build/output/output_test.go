package output

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/imgfmt"
)

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.vmdk")
	for _, f := range []imgfmt.Format{imgfmt.Raw, imgfmt.VMDK} {
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
	if err := Write(dest, imgfmt.VMDK, imgfmt.MaxSize+512, func(*os.File) error { return nil }); err == nil || !strings.Contains(err.Error(), "write raw") {
		t.Errorf("oversized VMDK: %v", err)
	}
	if err := Write(dest, "vhdx", 1<<20, func(*os.File) error { return nil }); err == nil || !strings.Contains(err.Error(), "unknown output format") {
		t.Errorf("unknown format: %v", err)
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
