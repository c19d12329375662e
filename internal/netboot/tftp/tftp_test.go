package tftp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ptftp "github.com/pin/tftp/v3"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

var nfs = netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 20490, MountPort: 20490}

// start serves tab on an ephemeral loopback port and returns "127.0.0.1", port.
func start(t *testing.T, tab *netboot.Table, view netboot.ViewFunc) (string, *Server, *netboottest.Recorder) {
	t.Helper()
	dir := t.TempDir()
	pxe := filepath.Join(dir, "pxelinux.0")
	ld := filepath.Join(dir, "ldlinux.c32")
	os.WriteFile(pxe, bytes.Repeat([]byte("PXELINUX"), 5000), 0o644)
	os.WriteFile(ld, bytes.Repeat([]byte("LDLINUX"), 20000), 0o644)
	rec := &netboottest.Recorder{}
	s, err := New(Config{Table: tab, NFS: nfs, View: view,
		Static:  map[string]string{"pxelinux.0": pxe, "ldlinux.c32": ld},
		Timeout: time.Second, Retries: 2, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(conn); close(done) }()
	t.Cleanup(func() { s.Shutdown(); conn.Close(); <-done })
	return conn.LocalAddr().String(), s, rec
}

func need(t *testing.T, prog string) string {
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s not installed (Debian: apt-get install tftp-hpa busybox-static)", prog)
	}
	return p
}

// hpaGet fetches name with tftp-hpa and returns the file and the client's output.
func hpaGet(t *testing.T, addr, name string) ([]byte, string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out := filepath.Join(t.TempDir(), "got")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg, err := exec.CommandContext(ctx, need(t, "tftp"), "-m", "binary", host, port, "-c", "get", name, out).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tftp get %s: timed out: %s", name, msg)
	}
	if err != nil {
		t.Logf("tftp get %s: %v", name, err)
	}
	b, _ := os.ReadFile(out)
	return b, string(msg)
}

func TestTFTPHPAServesTheVirtualSet(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	addr, _, rec := start(t, tab, view)

	got, msg := hpaGet(t, addr, "pxelinux.0")
	if !bytes.Equal(got, bytes.Repeat([]byte("PXELINUX"), 5000)) || msg != "" {
		t.Errorf("pxelinux.0: %d bytes, output %q", len(got), msg)
	}
	got, _ = hpaGet(t, addr, "/ldlinux.c32")
	if !bytes.Equal(got, bytes.Repeat([]byte("LDLINUX"), 20000)) {
		t.Errorf("/ldlinux.c32: %d bytes", len(got))
	}
	got, _ = hpaGet(t, addr, "pxelinux.cfg/01-52-54-00-12-34-01")
	want := "# vmroot: host web1\nDEFAULT vmroot\nPROMPT 0\nTIMEOUT 0\nLABEL vmroot\n" +
		"  KERNEL 01-52-54-00-12-34-01/vmlinuz\n  INITRD 01-52-54-00-12-34-01/initrd.img\n" +
		"  APPEND root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock,port=20490,mountport=20490,mountproto=tcp ip=dhcp boot=nfs rw console=ttyS0\n"
	if string(got) != want {
		t.Errorf("pxelinux.cfg for web1:\n%s\nwant:\n%s", got, want)
	}
	// pxelinux asks with lower-case hex; upper case names the same host.
	got, _ = hpaGet(t, addr, "pxelinux.cfg/01-52-54-00-12-34-02")
	if !strings.Contains(string(got), "nfsroot=192.0.2.1:/hosts/web2,vers=3,tcp,nolock,port=20490") || strings.Contains(string(got), "console=") {
		t.Errorf("pxelinux.cfg for web2:\n%s", got)
	}
	for _, c := range []struct{ name, tag string }{{"web1", "01-52-54-00-12-34-01"}, {"web2", "01-52-54-00-12-34-02"}} {
		got, _ = hpaGet(t, addr, c.tag+"/vmlinuz")
		if !bytes.Equal(got, netboottest.Kernel(c.name)) {
			t.Errorf("%s kernel: %d bytes, want %d", c.name, len(got), len(netboottest.Kernel(c.name)))
		}
		got, _ = hpaGet(t, addr, c.tag+"/initrd.img")
		if !bytes.Equal(got, netboottest.Initrd(c.name)) {
			t.Errorf("%s initrd: %d bytes, want %d", c.name, len(got), len(netboottest.Initrd(c.name)))
		}
	}
	if !hasLine(rec, "sent", "file=01-52-54-00-12-34-02/initrd.img") {
		t.Errorf("no transfer logged: %q", rec.Lines())
	}
}

func TestTFTPHPARefusesOutsideTheSet(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	addr, _, rec := start(t, tab, view)
	for _, name := range []string{
		"../../etc/passwd", "/etc/passwd", "etc/passwd", "pxelinux.cfg/../../../../etc/passwd",
		"01-52-54-00-12-34-01/../../../../etc/passwd", "01-52-54-00-12-34-01/etc/passwd",
		"./pxelinux.0", "pxelinux.0/", "//pxelinux.0", "PXELINUX.0", "pxelinux.cfg/default",
		"pxelinux.cfg/01-52-54-00-99-99-99", "pxelinux.cfg/C000020B", "01-52-54-00-99-99-99/vmlinuz",
		"vmlinuz", // 127.0.0.1 is no host's address
		"..\\..\\etc\\passwd", "boot/vmlinuz-6.1.0-10-amd64",
	} {
		got, msg := hpaGet(t, addr, name)
		if len(got) != 0 || !strings.Contains(msg, "Error code 1: file not found") {
			t.Errorf("%q: got %d bytes, client said %q", name, len(got), msg)
		}
	}
	if !hasLine(rec, "refused", "file=../../etc/passwd") {
		t.Errorf("refusal not logged: %q", rec.Lines())
	}
	// Write requests are refused outright.
	host, port, _ := net.SplitHostPort(addr)
	src := filepath.Join(t.TempDir(), "x")
	os.WriteFile(src, []byte("x"), 0o644)
	msg, _ := exec.Command(need(t, "tftp"), host, port, "-c", "put", src, "pxelinux.0").CombinedOutput()
	if !strings.Contains(string(msg), "Error code") {
		t.Errorf("put: client said %q", msg)
	}
}

// The client's own address picks its host for the short names, and a host
// in the table may not read another host's files.
func TestTFTPByClientAddress(t *testing.T) {
	root := netboottest.Root(t, "lo")
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "lo", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, IP: netip.MustParseAddr("127.0.0.1"), Export: "/lo"},
		{Name: "other", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Export: "/other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	fs := netboottest.Open(t, root)
	addr, _, _ := start(t, tab, func(*netboot.Host) (fsys.FS, error) { return fs, nil })
	if got, _ := hpaGet(t, addr, "vmlinuz"); !bytes.Equal(got, netboottest.Kernel("lo")) {
		t.Errorf("vmlinuz by client address: %d bytes", len(got))
	}
	if got, _ := hpaGet(t, addr, "initrd.img"); !bytes.Equal(got, netboottest.Initrd("lo")) {
		t.Errorf("initrd.img by client address: %d bytes", len(got))
	}
	if got, _ := hpaGet(t, addr, "01-02-00-00-00-00-01/vmlinuz"); !bytes.Equal(got, netboottest.Kernel("lo")) {
		t.Errorf("own kernel by MAC: %d bytes", len(got))
	}
	if got, msg := hpaGet(t, addr, "01-02-00-00-00-00-02/vmlinuz"); len(got) != 0 || !strings.Contains(msg, "Error code 1") {
		t.Errorf("another host's kernel: %d bytes, %q", len(got), msg)
	}
	if got, msg := hpaGet(t, addr, "pxelinux.cfg/01-02-00-00-00-00-02"); len(got) != 0 || !strings.Contains(msg, "Error code 1") {
		t.Errorf("another host's config: %d bytes, %q", len(got), msg)
	}
}

// blksize and tsize (RFC 2348/2349) with busybox's client and pin/tftp's.
func TestTFTPOptionNegotiation(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	addr, _, rec := start(t, tab, view)
	host, port, _ := net.SplitHostPort(addr)
	bb := need(t, "busybox")
	out := filepath.Join(t.TempDir(), "k")
	msg, err := exec.Command(bb, "tftp", "-g", "-b", "1432", "-r", "01-52-54-00-12-34-01/vmlinuz", "-l", out, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("busybox tftp: %v: %s", err, msg)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, netboottest.Kernel("web1")) {
		t.Errorf("busybox blksize 1432: %d bytes", len(got))
	}
	want := fmt.Sprintf("datagrams=%d", len(netboottest.Kernel("web1"))/1432+2) // data blocks + OACK
	if !hasLine(rec, "sent", "file=01-52-54-00-12-34-01/vmlinuz", "blksize=1432", want) {
		t.Errorf("blksize 1432 not negotiated: %q", rec.Lines())
	}

	c, err := ptftp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetBlockSize(8192)
	c.RequestTSize(true)
	wt, err := c.Receive("01-52-54-00-12-34-02/initrd.img", "octet")
	if err != nil {
		t.Fatal(err)
	}
	size, ok := wt.(ptftp.IncomingTransfer).Size()
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !ok || size != int64(len(netboottest.Initrd("web2"))) || !bytes.Equal(buf.Bytes(), netboottest.Initrd("web2")) {
		t.Errorf("tsize %d (%v), got %d bytes", size, ok, buf.Len())
	}
	if !hasLine(rec, "sent", "file=01-52-54-00-12-34-02/initrd.img", "blksize=8192") {
		t.Errorf("blksize 8192 not negotiated: %q", rec.Lines())
	}
	// The server's cap wins over a client asking more.
	s2, err := New(Config{Table: tab, NFS: nfs, View: view, MaxBlockSize: 1024, Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s2.Serve(conn)
	defer func() { s2.Shutdown(); conn.Close() }()
	_, p2, _ := net.SplitHostPort(conn.LocalAddr().String())
	if msg, err := exec.Command(bb, "tftp", "-g", "-b", "4096", "-r", "01-52-54-00-12-34-01/vmlinuz", "-l", out, host, p2).CombinedOutput(); err != nil {
		t.Fatalf("busybox tftp: %v: %s", err, msg)
	}
	if !hasLine(rec, "sent", "file=01-52-54-00-12-34-01/vmlinuz", "blksize=1024", "datagrams=294") {
		t.Errorf("cap 1024 not applied: %q", rec.Lines())
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"pxelinux.0": "pxelinux.0", "/pxelinux.0": "pxelinux.0", "a/b": "a/b"} {
		if got, ok := cleanName(in); !ok || got != want {
			t.Errorf("cleanName(%q) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "/", "..", "a/../b", "a//b", "a/", "a\x00", "a\\b", strings.Repeat("a", 256)} {
		if got, ok := cleanName(in); ok {
			t.Errorf("cleanName(%q) = %q, accepted", in, got)
		}
	}
}

func TestNewRejectsBadStatic(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	for _, n := range []string{"../x", "/pxelinux.0", "a//b"} {
		if _, err := New(Config{Table: tab, View: view, Static: map[string]string{n: "/dev/null"}}); err == nil {
			t.Errorf("static name %q accepted", n)
		}
	}
	if _, err := FindStatic([]string{t.TempDir()}, []string{"pxelinux.0"}); err == nil || !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("missing pxelinux.0: %v", err)
	}
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err == nil {
		m, err := FindStatic(DebianDirs, []string{"pxelinux.0", "ldlinux.c32"})
		if err != nil || m["ldlinux.c32"] != "/usr/lib/syslinux/modules/bios/ldlinux.c32" {
			t.Errorf("FindStatic(DebianDirs) = %v, %v", m, err)
		}
	}
}

// hasLine waits a little for a log line holding all parts: the server logs
// a transfer after the client has its last block.
func hasLine(rec *netboottest.Recorder, parts ...string) bool {
	for i := 0; i < 100; i++ {
		if hasLineNow(rec, parts...) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func hasLineNow(rec *netboottest.Recorder, parts ...string) bool {
	for _, l := range rec.Lines() {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}
