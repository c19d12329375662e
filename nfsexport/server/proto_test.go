package server

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

func oneHost(t *testing.T, squash Squash) *fixture {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	return newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1", "127.0.0.2"), Squash: squash}}, Unknown{})
}

func wantStat(t *testing.T, what string, got, want nfs3.Stat) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestMountProcedures(t *testing.T) {
	f := oneHost(t, RootSquash)
	c := f.dial("127.0.0.1", 0, 0)
	if c.root == nil || len(c.root) > nfs3.FHSize {
		t.Fatalf("root handle %x", c.root)
	}
	r, err := c.mnt.Mnt(bg, "/nope")
	if err != nil || r.Status != mount.ErrNoEnt {
		t.Errorf("MNT /nope: %v %v", r, err)
	}
	if r, err := c.mnt.Mnt(bg, exportPath+"/"); err != nil || r.Status != mount.OK || !bytes.Equal(r.FH, c.root) {
		t.Errorf("MNT with a trailing slash: %+v %v", r, err)
	}
	l, err := c.mnt.Dump(bg)
	if err != nil || len(l) != 1 || l[0].Hostname != "127.0.0.1" || l[0].Directory != exportPath {
		t.Errorf("DUMP: %+v %v", l, err)
	}
	ex, err := c.mnt.Export(bg)
	if err != nil || len(ex) != 1 || ex[0].Dir != exportPath || strings.Join(ex[0].Groups, ",") != "127.0.0.1,127.0.0.2" {
		t.Errorf("EXPORT: %+v %v", ex, err)
	}
	if err := c.mnt.Umnt(bg, exportPath); err != nil {
		t.Fatal(err)
	}
	if l, _ := c.mnt.Dump(bg); len(l) != 0 {
		t.Errorf("DUMP after UMNT: %+v", l)
	}
	// MOUNT also answers over UDP.
	u, err := clientDialUDP(f)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if r, err := (mountClient{u}).Mnt(exportPath); err != nil || r.Status != mount.OK {
		t.Errorf("MNT over UDP: %+v %v", r, err)
	}
}

func TestUnknownHostRefused(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	f := newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.2")}}, Unknown{})
	c := f.dial("127.0.0.3", 0, 0)
	r, err := c.mnt.Mnt(bg, exportPath)
	if err != nil || r.Status != mount.ErrAcces {
		t.Fatalf("MNT from an unknown host: %+v %v", r, err)
	}
	// A handle obtained by a known host is refused from an unknown one.
	a := f.dial("127.0.0.2", 0, 0)
	g, err := c.nfs.Getattr(bg, a.root)
	if err != nil || g.Status != nfs3.ErrAcces {
		t.Fatalf("GETATTR from an unknown host: %+v %v", g, err)
	}
}

func TestRPCErrors(t *testing.T) {
	f := oneHost(t, RootSquash)
	c := f.dial("127.0.0.1", 0, 0)
	var ae *rpc.AcceptError
	_, err := c.c.CallRaw(bg, 100099, 1, 0, nil)
	if !errors.As(err, &ae) || ae.Stat != rpc.ProgUnavail {
		t.Errorf("unknown program: %v", err)
	}
	_, err = c.c.CallRaw(bg, nfs3.Prog, 2, 0, nil)
	if !errors.As(err, &ae) || ae.Stat != rpc.ProgMismatch || ae.Low != 3 || ae.High != 3 {
		t.Errorf("NFSv2: %v", err)
	}
	_, err = c.c.CallRaw(bg, nfs3.Prog, 3, 22, nil)
	if !errors.As(err, &ae) || ae.Stat != rpc.ProcUnavail {
		t.Errorf("procedure 22: %v", err)
	}
	_, err = c.c.CallRaw(bg, nfs3.Prog, 3, nfs3.ProcGetattr, rawBytes{1, 2})
	if !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
		t.Errorf("truncated GETATTR: %v", err)
	}
	// WRITE whose count disagrees with its data.
	fh := c.create(c.mustWalk("tmp"), "w", 0o644, "")
	_, err = c.c.CallRaw(bg, nfs3.Prog, 3, nfs3.ProcWrite, &nfs3.WriteArgs{File: fh, Count: 10, Data: []byte("abc")})
	if !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
		t.Errorf("WRITE count 10 with 3 bytes: %v", err)
	}
	// Bad and foreign handles.
	g, _ := c.nfs.Getattr(bg, nfs3.FH{9, 9, 9})
	wantStat(t, "GETATTR of a garbage handle", g.Status, nfs3.ErrBadHandle)
	forged := append(nfs3.FH(nil), c.root...)
	forged[3] ^= 1
	g, _ = c.nfs.Getattr(bg, forged)
	wantStat(t, "GETATTR of a forged handle", g.Status, nfs3.ErrStale)
	l, _ := c.nfs.Lookup(bg, c.root, strings.Repeat("x", 256))
	wantStat(t, "LOOKUP of a 256-byte name", l.Status, nfs3.ErrNameTooLong)
}

type rawBytes []byte

func (b rawBytes) EncodeXDR(e *xdr.Encoder) { e.Append(b) }

func TestReadAndAttributes(t *testing.T) {
	f := oneHost(t, RootSquash)
	c := f.dial("127.0.0.1", 1000, 1000)
	motd := c.mustWalk("etc/motd")
	b, st := c.readAll(motd)
	if st != nfs3.OK || string(b) != "welcome to the appliance\n" {
		t.Errorf("read motd: %q %v", b, st)
	}
	big := c.mustWalk("data/big")
	b, st = c.readAll(big)
	want, _ := os.ReadFile(filepath.Join(f.dir, "..", "tree", "data", "big"))
	if st != nfs3.OK || len(b) != 3<<20 {
		t.Errorf("read big: %d bytes %v", len(b), st)
	}
	_ = want
	if a := c.getattr(c.mustWalk("bin/su")); a.Mode != 0o4755 || a.UID != 0 {
		t.Errorf("su: mode %o uid %d, want 4755 0", a.Mode, a.UID)
	}
	if a := c.getattr(c.mustWalk("bin/wall")); a.Mode != 0o2755 || a.GID != 5 {
		t.Errorf("wall: mode %o gid %d", a.Mode, a.GID)
	}
	if a := c.getattr(c.mustWalk("tmp")); a.Mode != 0o1777 || a.Type != nfs3.TypeDir {
		t.Errorf("tmp: %+v", a)
	}
	if a := c.getattr(c.mustWalk("data/fifo")); a.Type != nfs3.TypeFIFO {
		t.Errorf("fifo type %v", a.Type)
	}
	if a1, a2 := c.getattr(motd), c.getattr(c.mustWalk("data/motd-hard")); a1.FileID != a2.FileID || a1.Nlink != 2 {
		t.Errorf("hard links: %d/%d nlink %d", a1.FileID, a2.FileID, a1.Nlink)
	}
	rl, _ := c.nfs.Readlink(bg, c.mustWalk("data/link"))
	if rl.Status != nfs3.OK || rl.Path != "../etc/motd" {
		t.Errorf("readlink: %+v", rl)
	}
	rl, _ = c.nfs.Readlink(bg, motd)
	wantStat(t, "READLINK of a file", rl.Status, nfs3.ErrInval)
	// Permission: 0600 root file unreadable by 1000, exec-only readable.
	_, st = c.readAll(c.mustWalk("etc/shadow"))
	wantStat(t, "uid 1000 reads 0600 root file", st, nfs3.ErrAcces)
	if b, st := c.readAll(c.mustWalk("bin/xonly")); st != nfs3.OK || string(b) != "exec only" {
		t.Errorf("read of a 0711 file: %q %v", b, st)
	}
	r, _ := c.nfs.Read(bg, c.mustWalk("data"), 0, 10)
	wantStat(t, "READ of a directory", r.Status, nfs3.ErrIsDir)
	r, _ = c.nfs.Read(bg, motd, 1000, 10)
	if r.Status != nfs3.OK || !r.EOF || len(r.Data) != 0 {
		t.Errorf("read past EOF: %+v", r)
	}
	l, _ := c.nfs.Lookup(bg, c.root, "missing")
	wantStat(t, "LOOKUP missing", l.Status, nfs3.ErrNoEnt)
	if !l.DirAttr.Present {
		t.Error("LOOKUP failure without directory attributes")
	}
	l, _ = c.nfs.Lookup(bg, motd, "x")
	wantStat(t, "LOOKUP in a file", l.Status, nfs3.ErrNotDir)
	if l, _ = c.nfs.Lookup(bg, c.root, ".."); l.Status != nfs3.OK || !bytes.Equal(l.Object, c.root) {
		t.Errorf("LOOKUP .. of the root: %+v", l)
	}
	// FSINFO, FSSTAT, PATHCONF.
	fi, _ := c.nfs.Fsinfo(bg, c.root)
	if fi.Status != nfs3.OK || fi.RTMax != 1<<20 || fi.WTMax != 1<<20 || fi.Properties&nfs3.FSFLink == 0 || fi.TimeDelta != (nfs3.Time{Nsec: 1}) {
		t.Errorf("FSINFO: %+v", fi)
	}
	fs, _ := c.nfs.Fsstat(bg, c.root)
	if fs.Status != nfs3.OK || fs.TBytes == 0 || fs.TBytes < fs.FBytes {
		t.Errorf("FSSTAT: %+v", fs)
	}
	pc, _ := c.nfs.Pathconf(bg, c.root)
	if pc.Status != nfs3.OK || pc.NameMax != 255 || !pc.NoTrunc {
		t.Errorf("PATHCONF: %+v", pc)
	}
}

func TestAccess(t *testing.T) {
	f := oneHost(t, NoRootSquash)
	user := f.dial("127.0.0.1", 1000, 1000)
	root := f.dial("127.0.0.2", 0, 0)
	all := uint32(0x3f)
	cases := []struct {
		c    *conn
		path string
		want uint32
	}{
		{user, "etc/shadow", 0},
		{user, "etc/motd", nfs3.AccessRead},
		{user, "bin/su", nfs3.AccessRead | nfs3.AccessExecute},
		{user, "tmp", nfs3.AccessRead | nfs3.AccessLookup | nfs3.AccessModify | nfs3.AccessExtend | nfs3.AccessDelete},
		{user, "home/user/notes", nfs3.AccessRead | nfs3.AccessModify | nfs3.AccessExtend},
		{user, "etc", nfs3.AccessRead | nfs3.AccessLookup},
		{root, "etc/shadow", nfs3.AccessRead | nfs3.AccessModify | nfs3.AccessExtend},
		{root, "bin/su", nfs3.AccessRead | nfs3.AccessModify | nfs3.AccessExtend | nfs3.AccessExecute},
	}
	for _, tc := range cases {
		r, err := tc.c.nfs.Access(bg, tc.c.mustWalk(tc.path), all)
		if err != nil || r.Status != nfs3.OK || r.Access != tc.want || !r.ObjAttr.Present {
			t.Errorf("ACCESS %s as %d: %#x %v, want %#x", tc.path, tc.c.getattr(tc.c.root).UID, r.Access, err, tc.want)
		}
	}
	// Only the bits asked for come back.
	r, _ := user.nfs.Access(bg, user.mustWalk("tmp"), nfs3.AccessRead)
	if r.Access != nfs3.AccessRead {
		t.Errorf("ACCESS READ only: %#x", r.Access)
	}
}

func TestSquash(t *testing.T) {
	f := oneHost(t, RootSquash)
	root := f.dial("127.0.0.1", 0, 0)
	_, st := root.readAll(root.mustWalk("etc/shadow"))
	wantStat(t, "squashed root reads 0600 root file", st, nfs3.ErrAcces)
	fh := root.create(root.mustWalk("tmp"), "byroot", 0o644, "x")
	if a := root.getattr(fh); a.UID != DefaultAnon || a.GID != DefaultAnon {
		t.Errorf("file created by squashed root owned by %d:%d", a.UID, a.GID)
	}
	c := root.nfs
	cr, _ := c.Create(bg, &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: root.root, Name: "x"}, Mode: nfs3.Guarded})
	wantStat(t, "squashed root creates in 0755 root dir", cr.Status, nfs3.ErrAcces)
	if !cr.DirWcc.After.Present {
		t.Error("failed CREATE without directory wcc")
	}

	// all_squash: uid 1000 becomes nobody too.
	f.srv.SetHosts([]Host{{Name: "a", Addrs: addrs("127.0.0.1", "127.0.0.2"), Squash: AllSquash, AnonUID: 4242, AnonGID: 4343, Diff: f.cfg.Hosts[0].Diff}}, Unknown{})
	u := f.dial("127.0.0.2", 1000, 1000)
	fh = u.create(u.mustWalk("tmp"), "byuser", 0o644, "x")
	if a := u.getattr(fh); a.UID != 4242 || a.GID != 4343 {
		t.Errorf("all_squash: file owned by %d:%d", a.UID, a.GID)
	}
	r, _ := u.nfs.Access(bg, u.mustWalk("home/user/notes"), nfs3.AccessModify)
	if r.Access != 0 {
		t.Errorf("all_squash uid 1000 may modify its own file: %#x", r.Access)
	}
}

func TestCreateAndWrite(t *testing.T) {
	f := oneHost(t, RootSquash)
	u := f.dial("127.0.0.1", 1000, 1000, 1000, 20)
	tmp := u.mustWalk("tmp")
	fh := u.create(tmp, "mine", 0o640, "hello")
	if a := u.getattr(fh); a.UID != 1000 || a.GID != 1000 || a.Mode != 0o640 || a.Size != 5 {
		t.Errorf("new file: %+v", a)
	}
	// The file is in the diff, owned by 1000.
	var st syscall.Stat_t
	p := filepath.Join(f.cfg.Hosts[0].Diff, "tmp", "mine")
	if err := syscall.Stat(p, &st); err != nil || st.Uid != 1000 || st.Mode&0o7777 != 0o640 {
		t.Errorf("diff file: %+v %v", st, err)
	}
	// Guarded and unchecked on an existing name.
	cr, _ := u.nfs.Create(bg, &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "mine"}, Mode: nfs3.Guarded})
	wantStat(t, "GUARDED on an existing file", cr.Status, nfs3.ErrExist)
	cr, _ = u.nfs.Create(bg, &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "mine"}, Mode: nfs3.Unchecked, Attr: nfs3.Sattr{SetSize: true, Size: 0}})
	if cr.Status != nfs3.OK || !bytes.Equal(cr.FH.FH, fh) || cr.Attr.Attr.Size != 0 {
		t.Errorf("UNCHECKED with size 0 on an existing file: %+v", cr)
	}
	// Exclusive create with a verifier: a retransmission succeeds, another
	// verifier does not.
	ex := &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "excl"}, Mode: nfs3.Exclusive, Verf: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	r1, _ := u.nfs.Create(bg, ex)
	r2, _ := u.nfs.Create(bg, ex)
	if r1.Status != nfs3.OK || r2.Status != nfs3.OK || !bytes.Equal(r1.FH.FH, r2.FH.FH) {
		t.Errorf("EXCLUSIVE twice with one verifier: %v %v", r1.Status, r2.Status)
	}
	ex.Verf[0] = 9
	r3, _ := u.nfs.Create(bg, ex)
	wantStat(t, "EXCLUSIVE with another verifier", r3.Status, nfs3.ErrExist)
	// The client then sets the real attributes.
	sr, _ := u.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: r1.FH.FH, Attr: nfs3.Sattr{SetMode: true, Mode: 0o600, Atime: nfs3.SetTime{How: nfs3.SetToServerTime}, Mtime: nfs3.SetTime{How: nfs3.SetToServerTime}}})
	if sr.Status != nfs3.OK || sr.Wcc.After.Attr.Mode != 0o600 {
		t.Errorf("SETATTR after EXCLUSIVE: %+v", sr)
	}

	// UNSTABLE writes then COMMIT, with the server's verifier.
	w1, _ := u.nfs.Write(bg, &nfs3.WriteArgs{File: fh, Offset: 0, Stable: nfs3.Unstable, Data: []byte("abc")})
	w2, _ := u.nfs.Write(bg, &nfs3.WriteArgs{File: fh, Offset: 3, Stable: nfs3.Unstable, Data: []byte("def")})
	if w1.Status != nfs3.OK || w1.Committed != nfs3.Unstable || w1.Verf != w2.Verf || !w2.Wcc.Before.Present || w2.Wcc.Before.Attr.Size != 3 || w2.Wcc.After.Attr.Size != 6 {
		t.Errorf("UNSTABLE writes: %+v %+v", w1, w2)
	}
	cm, _ := u.nfs.Commit(bg, fh, 0, 0)
	if cm.Status != nfs3.OK || cm.Verf != w1.Verf {
		t.Errorf("COMMIT: %+v", cm)
	}
	if b, _ := u.readAll(fh); string(b) != "abcdef" {
		t.Errorf("read back %q", b)
	}
	// The verifier changes when the server restarts.
	f.restart()
	u = f.dial("127.0.0.1", 1000, 1000)
	cm2, _ := u.nfs.Commit(bg, fh, 0, 0)
	if cm2.Status != nfs3.OK || cm2.Verf == cm.Verf {
		t.Errorf("verifier after restart: %x, before %x (%v)", cm2.Verf, cm.Verf, cm2.Status)
	}
	// ... and the file handle still works.
	if b, st := u.readAll(fh); st != nfs3.OK || string(b) != "abcdef" {
		t.Errorf("read after restart: %q %v", b, st)
	}

	// Write permission: uid 1000 cannot write a root file; owner override
	// lets it write its own 0400 file.
	w, _ := u.nfs.Write(bg, &nfs3.WriteArgs{File: u.mustWalk("etc/motd"), Stable: nfs3.FileSync, Data: []byte("x")})
	wantStat(t, "uid 1000 writes root's motd", w.Status, nfs3.ErrAcces)
	u.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: fh, Attr: nfs3.Sattr{SetMode: true, Mode: 0o400}})
	w, _ = u.nfs.Write(bg, &nfs3.WriteArgs{File: fh, Stable: nfs3.FileSync, Data: []byte("x")})
	wantStat(t, "owner writes its 0400 file", w.Status, nfs3.OK)
	w, _ = u.nfs.Write(bg, &nfs3.WriteArgs{File: u.mustWalk("tmp"), Stable: nfs3.FileSync, Data: []byte("x")})
	wantStat(t, "WRITE to a directory", w.Status, nfs3.ErrIsDir)
}

func TestSetattr(t *testing.T) {
	f := oneHost(t, NoRootSquash)
	u := f.dial("127.0.0.1", 1000, 1000)
	root := f.dial("127.0.0.2", 0, 0)
	notes := u.mustWalk("home/user/notes")
	set := func(c *conn, fh nfs3.FH, sa nfs3.Sattr) nfs3.WccRes {
		t.Helper()
		r, err := c.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: fh, Attr: sa})
		if err != nil {
			t.Fatal(err)
		}
		return *r
	}
	wantStat(t, "chmod by non-owner", set(u, u.mustWalk("etc/motd"), nfs3.Sattr{SetMode: true, Mode: 0o777}).Status, nfs3.ErrPerm)
	wantStat(t, "chown by non-root", set(u, notes, nfs3.Sattr{SetUID: true, UID: 0}).Status, nfs3.ErrPerm)
	wantStat(t, "chgrp to a foreign group", set(u, notes, nfs3.Sattr{SetGID: true, GID: 0}).Status, nfs3.ErrPerm)
	wantStat(t, "truncate without write permission", set(u, u.mustWalk("etc/motd"), nfs3.Sattr{SetSize: true}).Status, nfs3.ErrAcces)
	wantStat(t, "set mtime of a foreign file", set(u, u.mustWalk("etc/motd"), nfs3.Sattr{Mtime: nfs3.SetTime{How: nfs3.SetToClientTime, Time: nfs3.Time{Sec: 5}}}).Status, nfs3.ErrPerm)
	r := set(u, notes, nfs3.Sattr{SetMode: true, Mode: 0o4750})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Mode != 0o4750 || !r.Wcc.Before.Present {
		t.Errorf("chmod 4750 by owner: %+v", r)
	}
	// setgid is dropped when the owner is not in the file's group.
	dir := u.mustWalk("tmp")
	fh := u.create(dir, "g", 0o644, "")
	root.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: fh, Attr: nfs3.Sattr{SetGID: true, GID: 5}})
	r = set(u, fh, nfs3.Sattr{SetMode: true, Mode: 0o2755})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Mode != 0o755 {
		t.Errorf("chmod g+s outside the group: %o %v", r.Wcc.After.Attr.Mode, r.Status)
	}
	// Root keeps setuid; a write by a user drops it.
	su := root.mustWalk("bin/su")
	r = set(root, su, nfs3.Sattr{SetMode: true, Mode: 0o4711})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Mode != 0o4711 {
		t.Errorf("root chmod 4711: %+v", r)
	}
	r = set(root, notes, nfs3.Sattr{SetMode: true, Mode: 0o4777})
	w, _ := u.nfs.Write(bg, &nfs3.WriteArgs{File: notes, Stable: nfs3.FileSync, Data: []byte("x")})
	if w.Status != nfs3.OK || w.Wcc.After.Attr.Mode != 0o777 {
		t.Errorf("write by user to a setuid file: mode %o %v", w.Wcc.After.Attr.Mode, w.Status)
	}
	// chown by root drops setuid.
	r = set(root, notes, nfs3.Sattr{SetMode: true, Mode: 0o4755})
	r = set(root, notes, nfs3.Sattr{SetUID: true, UID: 1001})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Mode != 0o755 || r.Wcc.After.Attr.UID != 1001 {
		t.Errorf("chown by root: %+v", r.Wcc.After.Attr)
	}
	// Guard.
	a := root.getattr(notes)
	g, _ := root.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: notes, Guard: true, GuardCtime: nfs3.Time{Sec: 1}, Attr: nfs3.Sattr{SetMode: true, Mode: 0o600}})
	wantStat(t, "SETATTR with a stale guard", g.Status, nfs3.ErrNotSync)
	g, _ = root.nfs.Setattr(bg, &nfs3.SetattrArgs{Object: notes, Guard: true, GuardCtime: a.Ctime, Attr: nfs3.Sattr{SetMode: true, Mode: 0o600}})
	wantStat(t, "SETATTR with the right guard", g.Status, nfs3.OK)
	// Size.
	r = set(root, root.mustWalk("data/big"), nfs3.Sattr{SetSize: true, Size: 10})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Size != 10 || r.Wcc.Before.Attr.Size != 3<<20 {
		t.Errorf("truncate big: %+v", r.Wcc)
	}
	wantStat(t, "truncate a directory", set(root, root.root, nfs3.Sattr{SetSize: true}).Status, nfs3.ErrIsDir)
	r = set(root, root.mustWalk("data"), nfs3.Sattr{Mtime: nfs3.SetTime{How: nfs3.SetToClientTime, Time: nfs3.Time{Sec: 1234567890, Nsec: 42}}})
	if r.Status != nfs3.OK || r.Wcc.After.Attr.Mtime != (nfs3.Time{Sec: 1234567890, Nsec: 42}) {
		t.Errorf("set mtime: %+v", r)
	}
}

func TestNamespace(t *testing.T) {
	f := oneHost(t, NoRootSquash)
	u := f.dial("127.0.0.1", 1000, 1000)
	root := f.dial("127.0.0.2", 0, 0)
	tmp := u.mustWalk("tmp")
	mk, _ := u.nfs.Mkdir(bg, &nfs3.MkdirArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "d"}, Attr: nfs3.Sattr{SetMode: true, Mode: 0o755}})
	if mk.Status != nfs3.OK || mk.Attr.Attr.Type != nfs3.TypeDir || mk.Attr.Attr.UID != 1000 || !mk.DirWcc.Before.Present || !mk.DirWcc.After.Present {
		t.Fatalf("MKDIR: %+v", mk)
	}
	mk2, _ := u.nfs.Mkdir(bg, &nfs3.MkdirArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "d"}})
	wantStat(t, "MKDIR existing", mk2.Status, nfs3.ErrExist)
	sl, _ := u.nfs.Symlink(bg, &nfs3.SymlinkArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "s"}, Target: "d/x"})
	if sl.Status != nfs3.OK || sl.Attr.Attr.Type != nfs3.TypeLnk {
		t.Errorf("SYMLINK: %+v", sl)
	}
	mn, _ := u.nfs.Mknod(bg, &nfs3.MknodArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "p"}, Type: nfs3.TypeFIFO, Attr: nfs3.Sattr{SetMode: true, Mode: 0o600}})
	if mn.Status != nfs3.OK || mn.Attr.Attr.Type != nfs3.TypeFIFO || mn.Attr.Attr.Mode != 0o600 {
		t.Errorf("MKNOD fifo: %+v", mn)
	}
	mn, _ = u.nfs.Mknod(bg, &nfs3.MknodArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "c"}, Type: nfs3.TypeChr, Spec: nfs3.SpecData{Major: 1, Minor: 3}})
	wantStat(t, "MKNOD chr by a user", mn.Status, nfs3.ErrPerm)
	mn, _ = root.nfs.Mknod(bg, &nfs3.MknodArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "c"}, Type: nfs3.TypeChr, Spec: nfs3.SpecData{Major: 1, Minor: 3}, Attr: nfs3.Sattr{SetMode: true, Mode: 0o666}})
	if mn.Status != nfs3.OK || mn.Attr.Attr.Rdev != (nfs3.SpecData{Major: 1, Minor: 3}) {
		t.Errorf("MKNOD chr by root: %+v", mn)
	}
	mn, _ = root.nfs.Mknod(bg, &nfs3.MknodArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: "r"}, Type: nfs3.TypeReg})
	wantStat(t, "MKNOD regular", mn.Status, nfs3.ErrBadType)

	// LINK.
	fh := u.create(tmp, "f", 0o644, "data")
	ln, _ := u.nfs.Link(bg, &nfs3.LinkArgs{File: fh, Link: nfs3.DirOpArgs{Dir: mk.FH.FH, Name: "f2"}})
	if ln.Status != nfs3.OK || ln.Attr.Attr.Nlink != 2 {
		t.Errorf("LINK: %+v", ln)
	}
	ln, _ = u.nfs.Link(bg, &nfs3.LinkArgs{File: mk.FH.FH, Link: nfs3.DirOpArgs{Dir: tmp, Name: "dl"}})
	wantStat(t, "LINK a directory", ln.Status, nfs3.ErrIsDir)
	ln, _ = u.nfs.Link(bg, &nfs3.LinkArgs{File: fh, Link: nfs3.DirOpArgs{Dir: u.root, Name: "f3"}})
	wantStat(t, "LINK into a root-owned directory", ln.Status, nfs3.ErrAcces)

	// RENAME.
	rn, _ := u.nfs.Rename(bg, &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: tmp, Name: "f"}, To: nfs3.DirOpArgs{Dir: mk.FH.FH, Name: "g"}})
	if rn.Status != nfs3.OK || !rn.FromWcc.After.Present || !rn.ToWcc.After.Present {
		t.Errorf("RENAME: %+v", rn)
	}
	if b, st := u.readAll(u.mustWalk("tmp/d/g")); st != nfs3.OK || string(b) != "data" {
		t.Errorf("renamed file: %q %v", b, st)
	}
	if b, _ := u.readAll(fh); string(b) != "data" {
		t.Errorf("old handle after rename: %q", b)
	}
	rn, _ = u.nfs.Rename(bg, &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: tmp, Name: "nope"}, To: nfs3.DirOpArgs{Dir: tmp, Name: "x"}})
	wantStat(t, "RENAME missing", rn.Status, nfs3.ErrNoEnt)
	rn, _ = u.nfs.Rename(bg, &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: tmp, Name: "d"}, To: nfs3.DirOpArgs{Dir: mk.FH.FH, Name: "inside"}})
	wantStat(t, "RENAME a directory into itself", rn.Status, nfs3.ErrInval)

	// Sticky directory: uid 1000 cannot remove or rename root's file.
	sticky := u.mustWalk("sticky")
	rm, _ := u.nfs.Remove(bg, sticky, "rootfile")
	wantStat(t, "REMOVE another user's file in a sticky dir", rm.Status, nfs3.ErrPerm)
	rn, _ = u.nfs.Rename(bg, &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: sticky, Name: "rootfile"}, To: nfs3.DirOpArgs{Dir: sticky, Name: "x"}})
	wantStat(t, "RENAME another user's file in a sticky dir", rn.Status, nfs3.ErrPerm)
	u.create(sticky, "userfile", 0o644, "")
	rm, _ = u.nfs.Remove(bg, sticky, "userfile")
	wantStat(t, "REMOVE own file in a sticky dir", rm.Status, nfs3.OK)

	// REMOVE and RMDIR.
	rm, _ = u.nfs.Remove(bg, tmp, "d")
	wantStat(t, "REMOVE a directory", rm.Status, nfs3.ErrIsDir)
	rm, _ = u.nfs.Rmdir(bg, tmp, "d")
	wantStat(t, "RMDIR non-empty", rm.Status, nfs3.ErrNotEmpty)
	rm, _ = u.nfs.Rmdir(bg, tmp, "s")
	wantStat(t, "RMDIR a symlink", rm.Status, nfs3.ErrNotDir)
	rm, _ = u.nfs.Remove(bg, u.mustWalk("etc"), "motd")
	wantStat(t, "REMOVE in a root-owned dir", rm.Status, nfs3.ErrAcces)
	for _, n := range []string{"g", "f2"} {
		rm, _ = u.nfs.Remove(bg, mk.FH.FH, n)
		wantStat(t, "REMOVE "+n, rm.Status, nfs3.OK)
	}
	g, _ := u.nfs.Getattr(bg, fh)
	wantStat(t, "GETATTR of a removed file", g.Status, nfs3.ErrStale)
	rm, _ = u.nfs.Rmdir(bg, tmp, "d")
	if rm.Status != nfs3.OK || !rm.Wcc.Before.Present || !rm.Wcc.After.Present {
		t.Errorf("RMDIR: %+v", rm)
	}
	g, _ = u.nfs.Getattr(bg, mk.FH.FH)
	wantStat(t, "GETATTR of a removed directory", g.Status, nfs3.ErrStale)
	// Root removes a base file; it disappears from this host's view only.
	rm, _ = root.nfs.Remove(bg, root.mustWalk("etc"), "motd")
	wantStat(t, "REMOVE base file", rm.Status, nfs3.OK)
	if _, st := root.walk("etc/motd"); st != nfs3.ErrNoEnt {
		t.Errorf("removed base file: %v", st)
	}
	if _, st := root.walk("data/motd-hard"); st != nfs3.OK {
		t.Errorf("other name of a removed base file: %v", st)
	}
}

func TestReaddir(t *testing.T) {
	f := oneHost(t, RootSquash)
	u := f.dial("127.0.0.1", 1000, 1000)
	sub := u.mustWalk("data/sub")
	var names []string
	var cookie uint64
	var verf [8]byte
	calls := 0
	for {
		r, err := u.nfs.Readdir(bg, &nfs3.ReaddirArgs{Dir: sub, Cookie: cookie, Verf: verf, Count: 1024})
		if err != nil || r.Status != nfs3.OK {
			t.Fatalf("READDIR: %v %v", r.Status, err)
		}
		calls++
		for _, e := range r.Entries {
			names = append(names, e.Name)
			cookie = e.Cookie
		}
		verf = r.Verf
		if r.EOF {
			break
		}
		if calls == 3 {
			// Changes between calls do not disturb the listing.
			u.create(u.mustWalk("tmp"), "unrelated", 0o644, "")
		}
	}
	if calls < 5 {
		t.Errorf("1 KiB READDIR pages: only %d calls", calls)
	}
	sort.Strings(names)
	if len(names) != 302 || names[0] != "." || names[1] != ".." {
		t.Errorf("READDIR: %d names, first %v", len(names), names[:2])
	}
	r, _ := u.nfs.Readdir(bg, &nfs3.ReaddirArgs{Dir: sub, Count: 100})
	wantStat(t, "READDIR with a 100-byte budget", r.Status, nfs3.ErrTooSmall)
	r, _ = u.nfs.Readdir(bg, &nfs3.ReaddirArgs{Dir: u.mustWalk("etc/motd"), Count: 4096})
	wantStat(t, "READDIR of a file", r.Status, nfs3.ErrNotDir)

	// READDIRPLUS: handles and attributes that work.
	seen := map[string]bool{}
	cookie = 0
	for {
		p, err := u.nfs.Readdirplus(bg, &nfs3.ReaddirplusArgs{Dir: u.mustWalk("data"), Cookie: cookie, DirCount: 512, MaxCount: 4096})
		if err != nil || p.Status != nfs3.OK {
			t.Fatalf("READDIRPLUS: %v %v", p.Status, err)
		}
		for _, e := range p.Entries {
			seen[e.Name] = true
			cookie = e.Cookie
			if !e.FH.Present || !e.Attr.Present || e.Attr.Attr.FileID != e.FileID {
				t.Errorf("READDIRPLUS entry %s: %+v", e.Name, e)
				continue
			}
			if e.Name == "big" {
				if a := u.getattr(e.FH.FH); a.Size != 3<<20 {
					t.Errorf("handle from READDIRPLUS: size %d", a.Size)
				}
			}
		}
		if p.EOF {
			break
		}
	}
	for _, n := range []string{".", "..", "big", "sub", "link", "motd-hard", "fifo"} {
		if !seen[n] {
			t.Errorf("READDIRPLUS misses %s", n)
		}
	}
	// Root-owned 0700 directory is unreadable by uid 1000.
	root := f.dial("127.0.0.2", 0, 0)
	_ = root
}

// TestDuplicateRequestCache sends the same RENAME twice with one XID:
// the second answer is the first one, not NOENT.
func TestDuplicateRequestCache(t *testing.T) {
	f := oneHost(t, RootSquash)
	u := f.dial("127.0.0.1", 1000, 1000)
	tmp := u.mustWalk("tmp")
	u.create(tmp, "a", 0o644, "")
	args := &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: tmp, Name: "a"}, To: nfs3.DirOpArgs{Dir: tmp, Name: "b"}}
	nc := rawDial(t, f)
	r1 := sendWithXID(t, nc, 77, nfs3.ProcRename, args)
	r2 := sendWithXID(t, nc, 77, nfs3.ProcRename, args)
	r3 := sendWithXID(t, nc, 78, nfs3.ProcRename, args)
	var a, b, c nfs3.RenameRes
	a.DecodeXDR(xdr.NewDecoder(r1))
	b.DecodeXDR(xdr.NewDecoder(r2))
	c.DecodeXDR(xdr.NewDecoder(r3))
	if a.Status != nfs3.OK || b.Status != nfs3.OK || c.Status != nfs3.ErrNoEnt {
		t.Errorf("RENAME xid 77, 77 again, 78: %v %v %v", a.Status, b.Status, c.Status)
	}
	// Another call that happens to reuse XID 77 is executed, not answered
	// from the cache; so is the same call from another port.
	u.create(tmp, "c", 0o644, "")
	var d nfs3.RenameRes
	d.DecodeXDR(xdr.NewDecoder(sendWithXID(t, nc, 77, nfs3.ProcRename, &nfs3.RenameArgs{From: nfs3.DirOpArgs{Dir: tmp, Name: "c"}, To: nfs3.DirOpArgs{Dir: tmp, Name: "d"}})))
	if d.Status != nfs3.OK {
		t.Errorf("RENAME c d with a reused XID: %v", d.Status)
	}
	if _, st := u.walk("tmp/d"); st != nfs3.OK {
		t.Errorf("tmp/d after the rename: %v", st)
	}
	var e nfs3.RenameRes
	e.DecodeXDR(xdr.NewDecoder(sendWithXID(t, rawDial(t, f), 77, nfs3.ProcRename, args)))
	if e.Status != nfs3.ErrNoEnt {
		t.Errorf("RENAME a b with XID 77 from another port: %v, want NOENT", e.Status)
	}
}
