package bootsvc

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/dhcp"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

func table(t *testing.T) *netboot.Table {
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "web1", MAC: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 1}, IP: netip.MustParseAddr("192.0.2.11"), Export: "/vmroot"},
		{Name: "web2", MAC: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 2}, IP: netip.MustParseAddr("192.0.2.12"), Export: "/vmroot"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// web1 installed its own kernel (in its diff); web2 has no diff yet.
func views(t *testing.T) netboot.ViewFunc {
	base := netboottest.Open(t, netboottest.Root(t, "image"))
	diffs := t.TempDir()
	os.MkdirAll(filepath.Join(diffs, "web1/boot"), 0o755)
	os.WriteFile(filepath.Join(diffs, "web1/boot/vmlinuz-6.1.0-10-amd64"), []byte("web1's own kernel"), 0o644)
	return DiffViews([]fsys.FS{base}, func(h *netboot.Host) string { return filepath.Join(diffs, h.Name) })
}

func TestStartTFTPAndHTTP(t *testing.T) {
	tftpc, err := exec.LookPath("tftp")
	if err != nil {
		t.Skip("tftp-hpa not installed")
	}
	s, err := Start(Config{Table: table(t), NFS: netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")}, View: views(t),
		TFTP: &TFTP{Listen: "127.0.0.1:0"}, HTTP: &HTTP{Listen: "127.0.0.1:0"}, Logger: slog.New(&netboottest.Recorder{})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	host, port, _ := net.SplitHostPort(s.TFTPAddr)
	out := filepath.Join(t.TempDir(), "k")
	if msg, err := exec.Command(tftpc, "-m", "binary", host, port, "-c", "get", "01-52-54-00-12-34-01/vmlinuz", out).CombinedOutput(); err != nil || len(msg) > 0 {
		t.Fatalf("tftp: %v %s", err, msg)
	}
	if b, _ := os.ReadFile(out); string(b) != "web1's own kernel" {
		t.Errorf("web1's kernel over TFTP: %q", b)
	}
	resp, err := http.Get("http://" + s.HTTPAddr + "/boot/52-54-00-12-34-02/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, netboottest.Kernel("image")) {
		t.Errorf("web2's kernel over HTTP: %d bytes", len(b))
	}
	// A busy port is an error at Start, and nothing is left running.
	if _, err := Start(Config{Table: table(t), View: views(t), HTTP: &HTTP{Listen: s.HTTPAddr}}); err == nil || !strings.Contains(err.Error(), "http") {
		t.Errorf("busy HTTP port: %v", err)
	}
	if _, err := Start(Config{Table: table(t), View: views(t), TFTP: &TFTP{Listen: s.TFTPAddr}}); err == nil {
		t.Error("busy TFTP port accepted")
	}
	s.Close()
	if _, err := http.Get("http://" + s.HTTPAddr + "/boot.ipxe"); err == nil {
		t.Error("HTTP still answering after Close")
	}
}

func TestStartDHCP(t *testing.T) {
	l := netboottest.NewLink(t, "192.0.2.1/24", "52:54:00:12:34:02")
	var s *Services
	err := netboottest.InNS(l.Srv, func() (err error) {
		s, err = Start(Config{Table: table(t), View: views(t), Logger: slog.New(&netboottest.Recorder{}),
			DHCP: &dhcp.Config{Mode: dhcp.Full, ServerIP: netip.MustParseAddr("192.0.2.1"), Interface: l.SrvIf}})
		return
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	script := filepath.Join(t.TempDir(), "s")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE $ip\"\nexit 0\n"), 0o755)
	out, err := l.Command(l.Cli, bb, "udhcpc", "-i", l.CliIf, "-f", "-n", "-q", "-t", "3", "-T", "1", "-s", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LEASE 192.0.2.12") {
		t.Errorf("udhcpc: %v\n%s", err, out)
	}
}

// SetTable (SIGHUP) gives the running services a new host table; views
// are kept per host name and diff, not per *Host of one table.
func TestSetTable(t *testing.T) {
	one, err := netboot.NewTable([]netboot.Host{*table(t).ByName("web1")})
	if err != nil {
		t.Fatal(err)
	}
	view := views(t)
	s, err := Start(Config{Table: one, NFS: netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")}, View: view,
		HTTP: &HTTP{Listen: "127.0.0.1:0"}, Logger: slog.New(&netboottest.Recorder{})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	status := func() int {
		resp, err := http.Get("http://" + s.HTTPAddr + "/ipxe/52-54-00-12-34-02")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := status(); c != 404 {
		t.Errorf("host not in the table: %d", c)
	}
	if err := s.SetTable(table(t)); err != nil {
		t.Fatal(err)
	}
	if c := status(); c != 200 {
		t.Errorf("host added by SetTable: %d", c)
	}
	a, _ := view(table(t).ByName("web1"))
	b, _ := view(table(t).ByName("web1"))
	if a == nil || a != b {
		t.Error("one host's view opened twice across tables")
	}
}
