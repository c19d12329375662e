package netboot_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
	"github.com/vmroot/vmroot/overlay"
)

// A host that installed its own kernel in its diff boots that kernel;
// a whiteout in the diff hides the image's link.
func TestOverlayFS(t *testing.T) {
	lower := netboottest.Open(t, netboottest.Root(t, "image"))
	diff := t.TempDir()
	os.MkdirAll(filepath.Join(diff, "boot"), 0o755)
	os.WriteFile(filepath.Join(diff, "boot/vmlinuz-6.1.0-10-amd64"), []byte("host kernel"), 0o644)
	os.WriteFile(filepath.Join(diff, ".wh.initrd.img"), nil, 0o644)
	o, err := overlay.New(overlay.Config{Diff: diff, Lowers: []fsys.FS{lower}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	f := netboot.OverlayFS(o)
	h := &netboot.Host{Name: "a"}
	k, i, err := netboot.FindBootFiles(f, h)
	if err != nil || k != "/vmlinuz" || i != "/boot/initrd.img-6.1.0-10-amd64" {
		t.Fatalf("FindBootFiles = %s %s %v", k, i, err)
	}
	read := func(p string) string {
		file, err := netboot.Open(f, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(k); got != "host kernel" {
		t.Errorf("kernel through the link: %q", got)
	}
	if got := read(i); got != string(netboottest.Initrd("image")) {
		t.Errorf("initrd from the image: %d bytes", len(got))
	}
	if _, err := fsys.Resolve(f, "/initrd.img", true); err == nil {
		t.Error("whiteout ignored")
	}
	if _, err := f.Stat(12345678); err == nil {
		t.Error("Stat of an unknown inode succeeded")
	}
}
