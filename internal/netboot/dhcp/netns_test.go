package dhcp

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

// serveIn runs s inside the link's server namespace until the test ends.
func serveIn(t *testing.T, l *netboottest.Link, mode Mode) *netboottest.Recorder {
	t.Helper()
	rec := &netboottest.Recorder{}
	s, err := New(Config{Mode: mode, Table: table(t), ServerIP: srvIP, Interface: l.SrvIf,
		HTTPBase: "http://192.0.2.1:8080", Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	var conns map[int]net.PacketConn
	if err := netboottest.InNS(l.Srv, func() (err error) { conns, err = s.Listen(); return }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conns) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return rec
}

// udhcpc runs busybox udhcpc once in the client namespace and returns the
// variables its script saw on "bound", or nil when it got no lease.
func udhcpc(t *testing.T, l *netboottest.Link, args ...string) map[string]string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && env > "+out+"\nexit 0\n"), 0o755)
	argv := append([]string{"udhcpc", "-i", l.CliIf, "-f", "-n", "-q", "-t", "3", "-T", "1", "-s", script}, args...)
	msg, err := l.Command(l.Cli, bb, argv...).CombinedOutput()
	f, ferr := os.Open(out)
	if ferr != nil {
		t.Logf("udhcpc %v: %v\n%s", args, err, msg)
		return nil
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

const pxeVendor = "PXEClient:Arch:00000:UNDI:002001"

func TestFullModeWithUdhcpc(t *testing.T) {
	l := netboottest.NewLink(t, "192.0.2.1/24", mac1.String())
	rec := serveIn(t, l, Full)

	env := udhcpc(t, l, "-V", pxeVendor)
	want := map[string]string{"ip": "192.0.2.11", "subnet": "255.255.255.0", "router": "192.0.2.1",
		"dns": "192.0.2.53", "serverid": "192.0.2.1", "siaddr": "192.0.2.1", "boot_file": "pxelinux.0", "hostname": "web1", "lease": "3600"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("PXE client: %s=%q, want %q (all: %v)", k, env[k], v, env)
		}
	}
	// iPXE's raw user class: the HTTP script.
	env = udhcpc(t, l, "-V", pxeVendor, "-x", "0x4d:69505845")
	if env["ip"] != "192.0.2.11" || env["boot_file"] != "http://192.0.2.1:8080/ipxe/52-54-00-12-34-01" {
		t.Errorf("iPXE client: %v", env)
	}
	// A plain client (an initramfs's) still gets its address, and no boot file.
	env = udhcpc(t, l)
	if env["ip"] != "192.0.2.11" || env["boot_file"] != "" {
		t.Errorf("plain client: %v", env)
	}
	// A MAC not in the table gets nothing.
	if out, err := exec.Command("ip", "-n", l.Cli, "link", "set", l.CliIf, "address", macNone.String()).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if env = udhcpc(t, l, "-V", pxeVendor); env != nil {
		t.Errorf("unknown MAC leased: %v", env)
	}
	if !hasLog(rec, "answered", "reply=ACK", "yiaddr=192.0.2.11") || !hasLog(rec, "not answered", "mac=52:54:00:99:99:99", "MAC not in the host table") {
		t.Errorf("log: %q", rec.Lines())
	}
}

// vmroot as proxyDHCP beside busybox udhcpd, which leases the addresses.
func TestProxyBesideUdhcpd(t *testing.T) {
	l := netboottest.NewLink(t, "192.0.2.1/24", mac1.String())
	rec := serveIn(t, l, Proxy)
	netboottest.Udhcpd(t, l.Srv, l.SrvIf, "192.0.2.100", "192.0.2.150")

	// A plain client gets udhcpd's lease; vmroot stays silent.
	env := udhcpc(t, l)
	if !strings.HasPrefix(env["ip"], "192.0.2.1") || env["ip"] == "192.0.2.11" || env["boot_file"] != "" {
		t.Errorf("plain client: %v", env)
	}
	if !hasLog(rec, "not answered", "mac=52:54:00:12:34:01", "not a PXE client") {
		t.Errorf("log: %q", rec.Lines())
	}

	// A PXE client (insomniacslk's raw-socket client) sees both offers.
	var c *nclient4.Client
	if err := netboottest.InNS(l.Cli, func() (err error) {
		c, err = nclient4.New(l.CliIf, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disc, err := dhcpv4.NewDiscovery(mac1, append(pxeBIOS, dhcpv4.WithBroadcast(true))...)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lease, proxy *dhcpv4.DHCPv4
	_, err = c.SendAndRead(context.Background(), nclient4.DefaultServers, disc, func(m *dhcpv4.DHCPv4) bool {
		mu.Lock()
		defer mu.Unlock()
		if m.MessageType() != dhcpv4.MessageTypeOffer {
			return false
		}
		if m.YourIPAddr.IsUnspecified() {
			proxy = m
		} else {
			lease = m
		}
		return proxy != nil && lease != nil
	})
	if err != nil {
		t.Fatalf("waiting for both offers: %v (lease %v, proxy %v)", err, lease, proxy)
	}
	if proxy.ClassIdentifier() != "PXEClient" || proxy.BootFileName != "pxelinux.0" || !proxy.ServerIPAddr.Equal(srvIP.AsSlice()) ||
		!proxy.ServerIdentifier().Equal(srvIP.AsSlice()) {
		t.Errorf("proxy offer:\n%s", proxy.Summary())
	}
	// Take udhcpd's lease, then ask vmroot's boot server on port 4011.
	ack, err := c.RequestFromOffer(context.Background(), lease)
	if err != nil {
		t.Fatalf("lease from udhcpd: %v", err)
	}
	ip := ack.ACK.YourIPAddr
	if out, err := exec.Command("ip", "-n", l.Cli, "addr", "add", ip.String()+"/24", "dev", l.CliIf).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	var conn *net.UDPConn
	if err := netboottest.InNS(l.Cli, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: ClientPort})
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac1), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(ip),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP.AsSlice())))
	for _, m := range pxeBIOS {
		m(req)
	}
	var got *dhcpv4.DHCPv4
	buf := make([]byte, 1500)
	for try := 0; try < 3 && got == nil; try++ {
		conn.WriteTo(req.ToBytes(), &net.UDPAddr{IP: srvIP.AsSlice(), Port: PXEPort})
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err == nil {
			got, _ = dhcpv4.FromBytes(buf[:n])
		}
	}
	if got == nil || got.MessageType() != dhcpv4.MessageTypeAck || got.BootFileName != "pxelinux.0" || !got.YourIPAddr.IsUnspecified() {
		t.Fatalf("port 4011 answer: %v", got)
	}
}

func hasLog(rec *netboottest.Recorder, parts ...string) bool {
	for i := 0; i < 50; i++ {
		for _, l := range rec.Lines() {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
