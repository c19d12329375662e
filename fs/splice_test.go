package fs

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vmroot/vmroot/internal/image"
)

// Large reads of base-image files are spliced from the image file; the
// bytes read through the mount must be the file's, to the last odd byte,
// for extent-mapped and block-mapped files, around holes, and while the
// file is copied up under an open reader.
func TestSplicedBaseReads(t *testing.T) {
	needFuse(t)
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	tree := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	big := make([]byte, 9<<20+12345)
	rng.Read(big)
	os.WriteFile(filepath.Join(tree, "big"), big, 0o644)
	holey := make([]byte, 5<<20+77)
	rng.Read(holey[:1<<20])
	rng.Read(holey[3<<20:])
	f, _ := os.Create(filepath.Join(tree, "holey"))
	f.Write(holey[:1<<20])
	f.WriteAt(holey[3<<20:], 3<<20)
	f.Close()
	for _, typ := range []string{"ext4", "ext3"} {
		img := filepath.Join(t.TempDir(), "base.img")
		if out, err := exec.Command("mke2fs", "-q", "-t", typ, "-b", "4096", "-d", tree, img, "64M").CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v: %s", err, out)
		}
		m, err := image.OpenFS(img, image.Auto)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		tm := mountFS(t, t.TempDir(), m.FS)
		for name, want := range map[string][]byte{"big": big, "holey": holey} {
			got, err := os.ReadFile(filepath.Join(tm.dir, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s %s: read %d bytes (%v), differs from the file", typ, name, len(got), err)
			}
			// Odd offsets and sizes.
			r, err := os.Open(filepath.Join(tm.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []int64{1, 4095, 1<<20 - 3, 3<<20 - 1, int64(len(want)) - 200000} {
				b := make([]byte, 300001)
				k, _ := r.ReadAt(b, o)
				if !bytes.Equal(b[:k], want[o:min(int(o)+len(b), len(want))]) {
					t.Errorf("%s %s: ReadAt(%d) differs", typ, name, o)
				}
			}
			r.Close()
		}
		// A reader open across a copy-up: what it reads is the file's
		// bytes before or after the append, never a mixture.
		r, err := os.Open(filepath.Join(tm.dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 1<<20)
		if _, err := r.ReadAt(head, 0); err != nil || !bytes.Equal(head, big[:1<<20]) {
			t.Errorf("%s: first MiB: %v", typ, err)
		}
		w, err := os.OpenFile(filepath.Join(tm.dir, "big"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("tail"))
		w.Close()
		rest := make([]byte, len(big)+4-(1<<20))
		k, _ := r.ReadAt(rest, 1<<20)
		r.Close()
		if !bytes.Equal(rest[:k], append(big[1<<20:], "tail"...)[:k]) || k < len(big)-(1<<20) {
			t.Errorf("%s: read %d bytes after the copy-up, not the file's", typ, k)
		}
		tm.unmount()
	}
}
