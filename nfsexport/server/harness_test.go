package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/testimg"
	"github.com/vmroot/vmroot/nfsexport/client"
	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testimg.Cleanup()
	os.Exit(code)
}

const exportPath = "/vmroot"

// needRoot skips tests that build trees with foreign owners and device
// nodes.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test image has files owned by other users")
	}
}

// baseTree builds the small appliance tree the protocol tests share.
func baseTree(t testing.TB, dir string) string {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	testimg.Sh(t, fmt.Sprintf(`set -e
T=%q
mkdir -p $T/etc $T/bin $T/tmp $T/home/user $T/data/sub $T/sticky
echo "welcome to the appliance" > $T/etc/motd
echo "top secret" > $T/etc/shadow && chmod 0600 $T/etc/shadow
printf '#!/bin/sh\necho su\n' > $T/bin/su && chmod 04755 $T/bin/su
printf 'sgid' > $T/bin/wall && chgrp 5 $T/bin/wall && chmod 02755 $T/bin/wall
printf 'exec only' > $T/bin/xonly && chmod 0711 $T/bin/xonly
chmod 1777 $T/tmp
chmod 1777 $T/sticky && echo mine > $T/sticky/rootfile
chown 1000:1000 $T/home/user && echo hi > $T/home/user/notes && chown 1000:1000 $T/home/user/notes
head -c 3145728 /dev/urandom > $T/data/big
for i in $(seq 1 300); do echo $i > $T/data/sub/file-$i; done
ln -s ../etc/motd $T/data/link
ln $T/etc/motd $T/data/motd-hard
mkfifo $T/data/fifo
`, tree))
	return tree
}

type fixture struct {
	t      testing.TB
	dir    string
	img    string
	imgSum [32]byte
	srv    *Server
	port   int
	cfg    Config
	m      *image.Mounted
}

// newFixture makes an ext4 image of tree and serves it with cfg's hosts
// (diffs under dir) on an ephemeral port.
func newFixture(t testing.TB, tree string, hosts []Host, unknown Unknown, mkfsArgs ...string) *fixture {
	t.Helper()
	testimg.Need(t, "mke2fs")
	dir := t.TempDir()
	img := testimg.Ext(t, dir, tree, "ext4", 64, mkfsArgs...)
	f := &fixture{t: t, dir: dir, img: img, imgSum: fileSum(t, img)}
	m, err := image.OpenFS(img, image.Auto)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	for i := range hosts {
		if hosts[i].Diff == "" {
			hosts[i].Diff = filepath.Join(dir, "diff-"+hosts[i].Name)
		}
		if hosts[i].AnonUID == 0 {
			hosts[i].AnonUID, hosts[i].AnonGID = DefaultAnon, DefaultAnon
		}
	}
	f.cfg = Config{Export: exportPath, Lowers: []fsys.FS{m.FS}, Hosts: hosts, Unknown: unknown,
		KeyFile: filepath.Join(dir, "state", "key"), Logger: testLogger(t)}
	f.start()
	t.Cleanup(func() {
		f.stop()
		m.Close()
		if got := fileSum(t, img); got != f.imgSum {
			t.Errorf("base image changed: sha256 %x, was %x", got, f.imgSum)
		}
	})
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	s, err := New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := s.Start(context.Background(), Listen{Addrs: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, Port: f.port, PortmapPort: -1, UDP: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.srv, f.port = s, b.Port
}

func (f *fixture) stop() {
	if f.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		f.t.Errorf("shutdown: %v", err)
	}
	f.srv = nil
}

func (f *fixture) restart() {
	f.t.Helper()
	f.stop()
	f.start()
}

func fileSum(t testing.TB, p string) [32]byte {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("VMROOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// conn is a client host: an NFS and a MOUNT client from one local address.
type conn struct {
	t    testing.TB
	c    *rpc.Client
	nfs  client.NFS
	mnt  client.Mount
	root nfs3.FH
}

func (f *fixture) dial(local string, uid, gid uint32, gids ...uint32) *conn {
	f.t.Helper()
	c, err := client.Dial(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", f.port),
		client.Options{LocalAddr: local, UID: uid, GID: gid, GIDs: gids, MachineName: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	cn := &conn{t: f.t, c: c, nfs: client.NFS{C: c}, mnt: client.Mount{C: c}}
	r, err := cn.mnt.Mnt(context.Background(), exportPath)
	if err != nil {
		f.t.Fatal(err)
	}
	if r.Status == mount.OK {
		cn.root = r.FH
	}
	return cn
}

var bg = context.Background()

// walk looks a slash-separated path up from the root.
func (c *conn) walk(p string) (nfs3.FH, nfs3.Stat) {
	c.t.Helper()
	fh := c.root
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		r, err := c.nfs.Lookup(bg, fh, part)
		if err != nil {
			c.t.Fatal(err)
		}
		if r.Status != nfs3.OK {
			return nil, r.Status
		}
		fh = r.Object
	}
	return fh, nfs3.OK
}

func (c *conn) mustWalk(p string) nfs3.FH {
	c.t.Helper()
	fh, st := c.walk(p)
	if st != nfs3.OK {
		c.t.Fatalf("lookup %s: %v", p, st)
	}
	return fh
}

func (c *conn) getattr(fh nfs3.FH) nfs3.Fattr {
	c.t.Helper()
	r, err := c.nfs.Getattr(bg, fh)
	if err != nil {
		c.t.Fatal(err)
	}
	if r.Status != nfs3.OK {
		c.t.Fatalf("getattr: %v", r.Status)
	}
	return r.Attr
}

func (c *conn) readAll(fh nfs3.FH) ([]byte, nfs3.Stat) {
	c.t.Helper()
	var out []byte
	for {
		r, err := c.nfs.Read(bg, fh, uint64(len(out)), 1<<20)
		if err != nil {
			c.t.Fatal(err)
		}
		if r.Status != nfs3.OK {
			return nil, r.Status
		}
		out = append(out, r.Data...)
		if r.EOF {
			return out, nfs3.OK
		}
		if len(r.Data) == 0 {
			c.t.Fatal("short read without EOF")
		}
	}
}

func (c *conn) create(dir nfs3.FH, name string, mode uint32, data string) nfs3.FH {
	c.t.Helper()
	r, err := c.nfs.Create(bg, &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: dir, Name: name}, Mode: nfs3.Guarded,
		Attr: nfs3.Sattr{SetMode: true, Mode: mode}})
	if err != nil {
		c.t.Fatal(err)
	}
	if r.Status != nfs3.OK {
		c.t.Fatalf("create %s: %v", name, r.Status)
	}
	if data != "" {
		w, err := c.nfs.Write(bg, &nfs3.WriteArgs{File: r.FH.FH, Stable: nfs3.FileSync, Data: []byte(data)})
		if err != nil {
			c.t.Fatal(err)
		}
		if w.Status != nfs3.OK || int(w.Count) != len(data) {
			c.t.Fatalf("write %s: %v %d", name, w.Status, w.Count)
		}
	}
	return r.FH.FH
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}
