package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLookupEntry checks READDIRPLUS's shortcut against Lookup: for every
// entry of every directory, on fresh instances (no cached nodes) over the
// same layers and diff, both give the same object; and a listing gone
// stale (the name whited out or copied up since) never yields the old
// lower object.
func TestLookupEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs")
	}
	base := mkLower(t)
	mid := t.TempDir() // a directory layer: adds, hides and merges
	os.MkdirAll(filepath.Join(mid, "a/sub"), 0o755)
	os.WriteFile(filepath.Join(mid, "a/t"), []byte("mid t"), 0o644)
	os.WriteFile(filepath.Join(mid, "a/sub/m"), []byte("mid m"), 0o644)
	os.WriteFile(filepath.Join(mid, "a/.wh.g"), nil, 0o644)
	if err := syscall.Mknod(filepath.Join(mid, "b/x"), syscall.S_IFCHR, 0); err != nil {
		os.MkdirAll(filepath.Join(mid, "b"), 0o755)
		if err := syscall.Mknod(filepath.Join(mid, "b/x"), syscall.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	diff := t.TempDir()

	// snap walks a fresh instance (no cached nodes), looking every entry
	// up by name or by listing entry, and describes what it found.
	snap := func(byEntry bool) map[string]string {
		t.Helper()
		o := open(t, diff, mid, base)
		defer o.Close()
		m := map[string]string{}
		var walk func(p string)
		walk = func(p string) {
			ents, err := o.ReadDir(at(t, o, p))
			if err != nil {
				t.Fatalf("ReadDir %s: %v", p, err)
			}
			for i := range ents {
				cp := filepath.Join(p, ents[i].Name)
				var n *Node
				if byEntry {
					n, err = o.LookupEntry(at(t, o, p), &ents[i])
				} else {
					n, err = o.Lookup(at(t, o, p), ents[i].Name)
				}
				if err != nil {
					t.Fatalf("lookup %s (by entry %v): %v", cp, byEntry, err)
				}
				a, _ := o.Getattr(n)
				a.Atime = time.Time{} // the walks read the directory layer
				id, _ := o.ID(n)
				d := fmt.Sprintf("%+v id %x diff %v", a, id, n.InDiff())
				if n.IsDir() {
					walk(cp)
				} else if n.Mode() == 0o100000 {
					d += " data " + read(t, o, cp)
				}
				m[cp] = d
			}
		}
		walk(".")
		return m
	}
	same := func(stage string) {
		t.Helper()
		want, got := snap(false), snap(true)
		if len(want) < 8 {
			t.Fatalf("%s: walk found only %v", stage, want)
		}
		for p, w := range want {
			if got[p] != w {
				t.Errorf("%s: %s: Lookup gives %s\nLookupEntry gives %s", stage, p, w, got[p])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d entries by name, %d by entry", stage, len(want), len(got))
		}
	}
	same("untouched")

	// A hard link copied up through its other name, a file copied up in
	// place, a whiteout: the shortcut must not hide any of them.
	o := open(t, diff, mid, base)
	h, err := o.Open(at(t, o, "b/f.link"), os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteAt([]byte("+"), 7)
	h.Release()
	if err := o.Unlink(at(t, o, "c/deep"), "er"); err != nil {
		t.Fatal(err)
	}
	o.Close()
	same("changed")
	o = open(t, diff, mid, base)

	// A listing read before a change to its directory.
	ents, err := o.ReadDir(at(t, o, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Unlink(at(t, o, "a"), "f"); err != nil {
		t.Fatal(err)
	}
	if err := o.Rmdir(at(t, o, "a/sub"), "h"); err == nil {
		t.Fatal("rmdir of a file worked")
	}
	if err := o.Unlink(at(t, o, "a/sub"), "h"); err != nil {
		t.Fatal(err)
	}
	for i := range ents {
		n, err := o.LookupEntry(at(t, o, "a"), &ents[i])
		switch ents[i].Name {
		case "f":
			if !errors.Is(err, syscall.ENOENT) {
				t.Errorf("stale entry a/f: got %v, %v; want ENOENT", n, err)
			}
		case "sub":
			if err != nil {
				t.Fatal(err)
			}
			if k, _ := o.ReadDir(n); len(k) != 1 || k[0].Name != "m" {
				t.Errorf("a/sub after unlinking h lists %v, want [m]", k)
			}
		}
	}
}
