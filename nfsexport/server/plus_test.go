package server

import (
	"bytes"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

// readdirplusAll lists dir with READDIRPLUS in small pages.
func (c *conn) readdirplusAll(dir nfs3.FH) []nfs3.DirEntryPlus {
	c.t.Helper()
	var out []nfs3.DirEntryPlus
	var cookie uint64
	for {
		p, err := c.nfs.Readdirplus(bg, &nfs3.ReaddirplusArgs{Dir: dir, Cookie: cookie, DirCount: 512, MaxCount: 2048})
		if err != nil || p.Status != nfs3.OK {
			c.t.Fatalf("READDIRPLUS: %v %v", p.Status, err)
		}
		for _, e := range p.Entries {
			cookie = e.Cookie
			if e.Name != "." && e.Name != ".." {
				out = append(out, e)
			}
		}
		if p.EOF {
			return out
		}
	}
}

// TestReaddirplusMatchesLookup checks that the handles and attributes
// READDIRPLUS builds from the listing are the ones LOOKUP gives, for base
// entries and for entries the diff changed, and that its handles work,
// go stale when their object goes, and survive a restart.
func TestReaddirplusMatchesLookup(t *testing.T) {
	f := oneHost(t, NoRootSquash)
	c := f.dial("127.0.0.1", 0, 0)
	data := c.mustWalk("data")
	// Diff changes: a copied-up file, a new file, a removed one, and the
	// other name of a hard link copied up through its first name.
	big := c.mustWalk("data/big")
	if w, err := c.nfs.Write(bg, &nfs3.WriteArgs{File: big, Stable: nfs3.FileSync, Data: []byte("changed")}); err != nil || w.Status != nfs3.OK {
		t.Fatal(err, w.Status)
	}
	c.create(data, "new", 0o640, "fresh")
	if r, err := c.nfs.Remove(bg, data, "fifo"); err != nil || r.Status != nfs3.OK {
		t.Fatal(err, r.Status)
	}
	motd := c.mustWalk("etc/motd")
	if w, err := c.nfs.Write(bg, &nfs3.WriteArgs{File: motd, Stable: nfs3.FileSync, Data: []byte("W")}); err != nil || w.Status != nfs3.OK {
		t.Fatal(err, w.Status)
	}

	check := func(c *conn, dir nfs3.FH, what string) []nfs3.DirEntryPlus {
		ents := c.readdirplusAll(dir)
		for _, e := range ents {
			l, err := c.nfs.Lookup(bg, dir, e.Name)
			if err != nil || l.Status != nfs3.OK {
				t.Fatalf("%s: LOOKUP %s: %v %v", what, e.Name, l.Status, err)
			}
			if !e.FH.Present || !bytes.Equal(e.FH.FH, l.Object) {
				t.Errorf("%s: %s: READDIRPLUS handle %x, LOOKUP %x", what, e.Name, e.FH.FH, l.Object)
			}
			la := l.ObjAttr.Attr
			la.Atime = nfs3.Time{}
			ea := e.Attr.Attr
			ea.Atime = nfs3.Time{}
			if !e.Attr.Present || ea != la || e.FileID != la.FileID {
				t.Errorf("%s: %s: READDIRPLUS attributes %+v, LOOKUP %+v", what, e.Name, ea, la)
			}
		}
		return ents
	}
	ents := check(c, data, "data")
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name] = true
	}
	if !names["new"] || names["fifo"] || !names["sub"] || !names["motd-hard"] {
		t.Errorf("listing: %v", names)
	}
	check(c, c.mustWalk("data/sub"), "data/sub")

	// Handles straight from a listing, used before any LOOKUP of them.
	c2 := f.dial("127.0.0.2", 0, 0)
	for _, e := range c2.readdirplusAll(c2.mustWalk("data/sub")) {
		if e.Name == "file-7" {
			if b, st := c2.readAll(e.FH.FH); st != nfs3.OK || string(b) != "7\n" {
				t.Errorf("read file-7 by its READDIRPLUS handle: %q %v", b, st)
			}
		}
	}
	var gone nfs3.FH
	for _, e := range c2.readdirplusAll(c2.mustWalk("data")) {
		if e.Name == "link" {
			gone = e.FH.FH
		}
	}
	if r, err := c.nfs.Remove(bg, data, "link"); err != nil || r.Status != nfs3.OK {
		t.Fatal(err, r.Status)
	}
	g, err := c2.nfs.Getattr(bg, gone)
	if err != nil {
		t.Fatal(err)
	}
	wantStat(t, "GETATTR of a removed entry's READDIRPLUS handle", g.Status, nfs3.ErrStale)

	var keep nfs3.FH
	for _, e := range c2.readdirplusAll(c2.mustWalk("data/sub")) {
		if e.Name == "file-9" {
			keep = e.FH.FH
		}
	}
	f.restart()
	c3 := f.dial("127.0.0.2", 0, 0)
	if b, st := c3.readAll(keep); st != nfs3.OK || string(b) != "9\n" {
		t.Errorf("READDIRPLUS handle after a restart: %q %v", b, st)
	}
}
