package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

// diffFiles lists the regular files and symlinks of a diff directory
// (without aufs bookkeeping) with their contents.
func diffFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.Base(p), ".wh.") {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

func TestTwoHosts(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	f := newFixture(t, tree, []Host{
		{Name: "a", Addrs: addrs("127.0.0.2")},
		{Name: "b", Addrs: addrs("127.0.0.3")},
	}, Unknown{})
	a := f.dial("127.0.0.2", 1000, 1000)
	b := f.dial("127.0.0.3", 1000, 1000)
	if a.root == nil || b.root == nil {
		t.Fatal("mount failed")
	}
	var wg sync.WaitGroup
	for _, c := range []*conn{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := c.mustWalk("tmp")
			for i := 0; i < 20; i++ {
				c.create(tmp, fmt.Sprintf("f%d", i), 0o644, fmt.Sprintf("%s %d", c.c.LocalAddr(), i))
			}
			// Same path, different content; and a change to a base file.
			w, _ := c.nfs.Write(bg, &nfs3.WriteArgs{File: c.mustWalk("home/user/notes"), Stable: nfs3.FileSync, Data: []byte(c.c.LocalAddr().String())})
			if w.Status != nfs3.OK {
				t.Errorf("write notes: %v", w.Status)
			}
		}()
	}
	wg.Wait()
	for _, c := range []*conn{a, b} {
		host := strings.Split(c.c.LocalAddr().String(), ":")[0]
		for i := 0; i < 20; i++ {
			got, st := c.readAll(c.mustWalk(fmt.Sprintf("tmp/f%d", i)))
			if st != nfs3.OK || !strings.HasPrefix(string(got), host+":") {
				t.Errorf("%s reads tmp/f%d: %q %v", host, i, got, st)
			}
		}
	}
	// Each diff holds exactly its host's files.
	for _, h := range f.cfg.Hosts {
		files := diffFiles(t, h.Diff)
		var names []string
		for n, content := range files {
			names = append(names, n)
			ip := h.Addrs[0].String()
			if !strings.HasPrefix(content, ip+":") && !(n == "home/user/notes" && strings.HasPrefix(content, ip)) {
				t.Errorf("diff of %s: %s holds %q", h.Name, n, content)
			}
		}
		sort.Strings(names)
		if len(names) != 21 {
			t.Errorf("diff of %s holds %d files: %v", h.Name, len(names), names)
		}
	}
	// A handle from host a is refused when host b presents it.
	fa := a.mustWalk("tmp/f1")
	g, _ := b.nfs.Getattr(bg, fa)
	wantStat(t, "host b presents host a's handle", g.Status, nfs3.ErrStale)
	g, _ = b.nfs.Getattr(bg, a.root)
	wantStat(t, "host b presents host a's root", g.Status, nfs3.ErrStale)
}

// TestUnknownHostsGetOwnDiff is the zero-config form: every client
// address gets a diff under one directory.
func TestUnknownHostsGetOwnDiff(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	hostsDir := filepath.Join(t.TempDir(), "hosts")
	f := newFixture(t, tree, nil, Unknown{Dir: hostsDir, AnonUID: DefaultAnon, AnonGID: DefaultAnon})
	a := f.dial("127.0.0.2", 1000, 1000)
	b := f.dial("127.0.0.3", 1000, 1000)
	a.create(a.mustWalk("tmp"), "x", 0o644, "from a")
	if _, st := b.walk("tmp/x"); st != nfs3.ErrNoEnt {
		t.Errorf("b sees a's file: %v", st)
	}
	if got := diffFiles(t, filepath.Join(hostsDir, "127.0.0.2")); got["tmp/x"] != "from a" {
		t.Errorf("diff of 127.0.0.2: %v", got)
	}
	ex, _ := a.mnt.Export(bg)
	if len(ex) != 1 || len(ex[0].Groups) != 1 || ex[0].Groups[0] != "*" {
		t.Errorf("EXPORT: %+v", ex)
	}
}

// TestReloadKeepsMounts changes the host table under a mounted client.
func TestReloadKeepsMounts(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	f := newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.2")}}, Unknown{})
	a := f.dial("127.0.0.2", 0, 0)
	a.create(a.mustWalk("tmp"), "before", 0o644, "x")
	diff := f.cfg.Hosts[0].Diff
	if err := f.srv.SetHosts([]Host{{Name: "a", Addrs: addrs("127.0.0.2"), Diff: diff, Squash: NoRootSquash}, {Name: "c", Addrs: addrs("127.0.0.3")}}, Unknown{}); err != nil {
		t.Fatal(err)
	}
	// Same connection, same handles; the new squash mode applies.
	fh := a.create(a.mustWalk("tmp"), "after", 0o644, "y")
	if at := a.getattr(fh); at.UID != 0 {
		t.Errorf("after reload to no_root_squash, root's file is owned by %d", at.UID)
	}
	c := f.dial("127.0.0.3", 0, 0)
	if c.root == nil {
		t.Error("new host c cannot mount after reload")
	}
	if err := f.srv.SetHosts(nil, Unknown{}); err != nil {
		t.Fatal(err)
	}
	g, _ := a.nfs.Getattr(bg, a.root)
	wantStat(t, "removed host", g.Status, nfs3.ErrAcces)
	if err := f.srv.SetHosts([]Host{{Name: "a", Addrs: addrs("127.0.0.2")}, {Name: "b", Addrs: addrs("127.0.0.2")}}, Unknown{}); err == nil {
		t.Error("two hosts with one address accepted")
	}
}

// TestLibnfs drives the server with libnfs-utils, an independent client.
func TestLibnfs(t *testing.T) {
	needRoot(t)
	testimg.Need(t, "nfs-ls", "nfs-cat", "nfs-cp")
	tree := baseTree(t, t.TempDir())
	f := newFixture(t, tree, []Host{{Name: "local", Addrs: addrs("127.0.0.1")}}, Unknown{})
	url := func(p string, uid, gid int) string {
		return fmt.Sprintf("nfs://127.0.0.1%s/%s?version=3&nfsport=%d&mountport=%d&uid=%d&gid=%d", exportPath, strings.TrimPrefix(p, "/"), f.port, f.port, uid, gid)
	}
	run := func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("nfs-cat", url("etc/shadow", 1000, 1000)); err == nil || strings.Contains(out, "top secret") {
		t.Errorf("uid 1000 reads a 0600 root file: %v %q", err, out)
	}
	if out, err := run("nfs-cat", url("etc/shadow", 0, 0)); err == nil || strings.Contains(out, "top secret") {
		t.Errorf("root (squashed) reads a 0600 root file: %v %q", err, out)
	}
	if out, err := run("nfs-cat", url("etc/motd", 1000, 1000)); err != nil || out != "welcome to the appliance\n" {
		t.Errorf("nfs-cat motd: %v %q", err, out)
	}
	src := filepath.Join(t.TempDir(), "upload")
	os.WriteFile(src, []byte("uploaded by 1000\n"), 0o644)
	if out, err := run("nfs-cp", src, url("tmp/upload", 1000, 1000)); err != nil {
		t.Fatalf("nfs-cp into the 1777 dir: %v %s", err, out)
	}
	var st = mustStat(t, filepath.Join(f.cfg.Hosts[0].Diff, "tmp", "upload"))
	if st.uid != 1000 || st.content != "uploaded by 1000\n" {
		t.Errorf("uploaded file in the diff: %+v", st)
	}
	if out, err := run("nfs-cp", src, url("etc/upload", 1000, 1000)); err == nil {
		t.Errorf("nfs-cp into root's 0755 dir as 1000 succeeded: %s", out)
	}
	if out, err := run("nfs-cp", src, url("tmp/byroot", 0, 0)); err != nil {
		t.Fatalf("nfs-cp as root: %v %s", err, out)
	}
	if st := mustStat(t, filepath.Join(f.cfg.Hosts[0].Diff, "tmp", "byroot")); st.uid != DefaultAnon {
		t.Errorf("root's upload owned by %d, want squashed to %d", st.uid, DefaultAnon)
	}
	out, err := run("nfs-ls", url("bin", 1000, 1000))
	if err != nil || !regexpLine(out, "-rwxr-xr-x", "su") {
		t.Errorf("nfs-ls of bin: %v\n%s", err, out)
	}
	// nfs-ls prints no setuid letter: a libnfs program prints the mode.
	t.Run("modes", func(t *testing.T) {
		stat := libnfsStat(t)
		for p, want := range map[string]string{"bin/su": "104755 0 0", "bin/wall": "102755 0 5", "tmp": "41777 0 0"} {
			out, err := run(stat, url(p, 1000, 1000))
			if err != nil || strings.TrimSpace(out) != want {
				t.Errorf("libnfs stat of %s: %v %q, want %q", p, err, out, want)
			}
		}
	})
	out, err = run("nfs-ls", "-R", url("data", 1000, 1000))
	if err != nil || strings.Count(out, "file-") != 300 {
		t.Errorf("nfs-ls -R data: %v, %d file- entries", err, strings.Count(out, "file-"))
	}
}

type statInfo struct {
	uid     uint32
	content string
}

func mustStat(t *testing.T, p string) statInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	b, _ := os.ReadFile(p)
	return statInfo{uid: fi.Sys().(*syscall.Stat_t).Uid, content: string(b)}
}

func regexpLine(out, mode, name string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, mode) && strings.HasSuffix(strings.TrimSpace(l), " "+name) {
			return true
		}
	}
	return false
}

// libnfsStat builds testdata/nfs-stat.c against libnfs.
func libnfsStat(t *testing.T) string {
	t.Helper()
	testimg.Need(t, "cc")
	if _, err := os.Stat("/usr/include/nfsc/libnfs.h"); err != nil {
		t.Skip("libnfs-dev not installed (apt-get install libnfs-dev): cannot build testdata/nfs-stat.c")
	}
	bin := filepath.Join(t.TempDir(), "nfs-stat")
	if out, err := exec.Command("cc", "-O2", "-o", bin, "testdata/nfs-stat.c", "-lnfs").CombinedOutput(); err != nil {
		t.Fatalf("building nfs-stat: %v\n%s", err, out)
	}
	return bin
}

// TestThrowawayDiffs: with a throw-away policy, unknown hosts write to a
// diff that is gone after shutdown.
func TestThrowawayDiffs(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "tmp-diffs")
	f := newFixture(t, tree, nil, Unknown{Dir: dir, Throwaway: true, AnonUID: DefaultAnon, AnonGID: DefaultAnon})
	a := f.dial("127.0.0.3", 1000, 1000)
	a.create(a.mustWalk("tmp"), "scratch", 0o644, "x")
	if _, err := os.Stat(filepath.Join(dir, "127.0.0.3", "tmp", "scratch")); err != nil {
		t.Fatal(err)
	}
	f.stop()
	if _, err := os.Stat(filepath.Join(dir, "127.0.0.3")); !os.IsNotExist(err) {
		t.Errorf("throw-away diff still there after shutdown: %v", err)
	}
}
