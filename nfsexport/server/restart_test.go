package server

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

// TestRestartDuringWalk walks a 50,000-file tree with READDIRPLUS and
// restarts the server halfway: the walk goes on with its old handles and
// cookies, sees every file, and every handle still resolves afterwards.
func TestRestartDuringWalk(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("builds a 50,000-file image")
	}
	tree := filepath.Join(t.TempDir(), "tree")
	const dirs, per = 50, 1000
	for d := 0; d < dirs; d++ {
		dp := filepath.Join(tree, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dp, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < per; i++ {
			if err := os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	testimg.Need(t, "mke2fs")
	f := newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.2"), Squash: NoRootSquash}}, Unknown{}, "-N", "60000")
	c := f.dial("127.0.0.2", 0, 0)
	// Some objects live in the diff: their handles are host file handles.
	extra := c.mustWalk("d00")
	for i := 0; i < 100; i++ {
		c.create(extra, fmt.Sprintf("new%03d", i), 0o644, "x")
	}
	c.nfs.Remove(bg, extra, "f0000")
	want := dirs*per + 100 - 1

	type item struct {
		name string
		fh   nfs3.FH
	}
	var files []item
	var dirFHs []nfs3.FH
	top := c.root
	restarted := false
	var cookie uint64
	// The top level first, then each directory, paging 8 KiB at a time.
	list := func(dir nfs3.FH, each func(e nfs3.DirEntryPlus)) {
		cookie = 0
		for {
			if !restarted && len(files) >= want/2 {
				f.restart()
				c = f.dial("127.0.0.2", 0, 0)
				restarted = true
			}
			r, err := c.nfs.Readdirplus(bg, &nfs3.ReaddirplusArgs{Dir: dir, Cookie: cookie, DirCount: 2048, MaxCount: 8192})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != nfs3.OK {
				t.Fatalf("READDIRPLUS after %d files (restarted %v): %v", len(files), restarted, r.Status)
			}
			for _, e := range r.Entries {
				cookie = e.Cookie
				if e.Name == "." || e.Name == ".." {
					continue
				}
				if !e.FH.Present {
					t.Fatalf("%s without a handle", e.Name)
				}
				each(e)
			}
			if r.EOF {
				return
			}
		}
	}
	list(top, func(e nfs3.DirEntryPlus) {
		if e.Attr.Attr.Type == nfs3.TypeDir && e.Name != "lost+found" {
			dirFHs = append(dirFHs, e.FH.FH)
		}
	})
	for _, d := range dirFHs {
		list(d, func(e nfs3.DirEntryPlus) { files = append(files, item{e.Name, e.FH.FH}) })
	}
	if !restarted {
		t.Fatal("the server was not restarted during the walk")
	}
	if len(files) != want {
		t.Fatalf("walk saw %d files, want %d", len(files), want)
	}
	// Every handle, from before and after the restart, still works.
	for i, it := range files {
		if i%7 != 0 && i > 200 {
			continue
		}
		g, err := c.nfs.Getattr(bg, it.fh)
		if err != nil {
			t.Fatal(err)
		}
		if g.Status != nfs3.OK {
			t.Fatalf("GETATTR of %s (file %d): %v", it.name, i, g.Status)
		}
	}
}
