package netboot_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

var mac = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}

func TestKernelArgs(t *testing.T) {
	h := &netboot.Host{Name: "web1", MAC: mac, Export: "/hosts/web1", Args: " console=ttyS0 panic=-1 ",
		IP: netip.MustParseAddr("192.0.2.11"), Prefix: 25, Gateway: netip.MustParseAddr("192.0.2.1"),
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54"), netip.MustParseAddr("192.0.2.55")}}
	for _, c := range []struct {
		srv  netboot.NFSServer
		want string
	}{
		{netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")},
			"root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock ip=dhcp boot=nfs rw console=ttyS0 panic=-1"},
		{netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 2049},
			"root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock ip=dhcp boot=nfs rw console=ttyS0 panic=-1"},
		{netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 20490, MountPort: 20490},
			"root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock,port=20490,mountport=20490,mountproto=tcp ip=dhcp boot=nfs rw console=ttyS0 panic=-1"},
		{netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1"), MountPort: 635},
			"root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock,port=2049,mountport=635,mountproto=tcp ip=dhcp boot=nfs rw console=ttyS0 panic=-1"},
	} {
		if got := c.srv.KernelArgs(h, "dhcp"); got != c.want {
			t.Errorf("KernelArgs(%+v)\n got %s\nwant %s", c.srv, got, c.want)
		}
	}
	if got, want := netboot.StaticIPArg(h), "192.0.2.11::192.0.2.1:255.255.255.128:web1::off:192.0.2.53:192.0.2.54"; got != want {
		t.Errorf("StaticIPArg = %s, want %s", got, want)
	}
	h2 := &netboot.Host{Name: "b", IP: netip.MustParseAddr("198.51.100.7")}
	if got, want := netboot.StaticIPArg(h2), "198.51.100.7:::255.255.255.0:b::off"; got != want {
		t.Errorf("StaticIPArg = %s, want %s", got, want)
	}
	if got := h2.Netmask().String(); got != "255.255.255.0" {
		t.Errorf("default netmask %s", got)
	}
}

func TestTable(t *testing.T) {
	good := netboot.Host{Name: "a", MAC: mac, Export: "/a", IP: netip.MustParseAddr("192.0.2.5")}
	tab, err := netboot.NewTable([]netboot.Host{good, {Name: "b", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Export: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	if h := tab.ByMAC(mac); h == nil || h.Name != "a" {
		t.Errorf("ByMAC: %v", h)
	}
	if h := tab.ByIP(netip.MustParseAddr("::ffff:192.0.2.5")); h == nil || h.Name != "a" {
		t.Errorf("ByIP (mapped): %v", h)
	}
	if tab.ByMAC(net.HardwareAddr{1, 2, 3}) != nil || tab.ByIP(netip.Addr{}) != nil || tab.ByName("zz") != nil || tab.ByName("b") == nil {
		t.Error("lookups of absent entries")
	}
	mac[0] = 0x99 // the table keeps its own copy
	if tab.ByMAC(net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}) == nil {
		t.Error("table shares the caller's MAC slice")
	}
	mac[0] = 0x52
	bad := func(mod func(h *netboot.Host)) []netboot.Host {
		h := good
		mod(&h)
		return []netboot.Host{h}
	}
	for name, hs := range map[string][]netboot.Host{
		"short MAC":    bad(func(h *netboot.Host) { h.MAC = h.MAC[:4] }),
		"relative":     bad(func(h *netboot.Host) { h.Export = "a" }),
		"comma":        bad(func(h *netboot.Host) { h.Export = "/a,port=1" }),
		"newline args": bad(func(h *netboot.Host) { h.Args = "a\nAPPEND x" }),
		"bad name":     bad(func(h *netboot.Host) { h.Name = "a b" }),
		"no name":      bad(func(h *netboot.Host) { h.Name = "" }),
		"v6":           bad(func(h *netboot.Host) { h.IP = netip.MustParseAddr("2001:db8::1") }),
		"boot":         bad(func(h *netboot.Host) { h.Boot = "grub" }),
		"dup MAC":      {good, {Name: "b", MAC: mac, Export: "/b"}},
		"dup IP":       {good, {Name: "b", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Export: "/b", IP: good.IP}},
		"dup name":     {good, {Name: "a", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Export: "/b"}},
	} {
		if _, err := netboot.NewTable(hs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseMAC(t *testing.T) {
	for _, s := range []string{"52-54-00-12-34-56", "52:54:00:12:34:56", "52-54-00-12-34-56"} {
		if m, err := netboot.ParseMAC(s); err != nil || m.String() != "52:54:00:12:34:56" {
			t.Errorf("%s: %v %v", s, m, err)
		}
	}
	for _, s := range []string{"", "52-54-00-12-34", "52-54-00-12-34-5g", "0000.0000.0000", "52-54-00-12-34-56-78-9a", "../../etc/pass"} {
		if _, err := netboot.ParseMAC(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if got := netboot.MACDash(mac); got != "52-54-00-12-34-56" {
		t.Errorf("MACDash = %s", got)
	}
}

func TestFindBootFiles(t *testing.T) {
	h := &netboot.Host{Name: "a", MAC: mac, Export: "/a"}
	// Debian's links.
	root := netboottest.Root(t, "x")
	fs := netboottest.Open(t, root)
	k, i, err := netboot.FindBootFiles(fs, h)
	if err != nil || k != "/vmlinuz" || i != "/initrd.img" {
		t.Fatalf("links: %s %s %v", k, i, err)
	}
	f, err := netboot.Open(fs, k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	if string(b) != string(netboottest.Kernel("x")) {
		t.Errorf("kernel through the link: %d bytes", len(b))
	}
	// No links: the newest /boot/vmlinuz-* (numeric order) and its initrd.
	os.Remove(filepath.Join(root, "vmlinuz"))
	os.Remove(filepath.Join(root, "initrd.img"))
	fs = netboottest.Open(t, root)
	if k, i, err = netboot.FindBootFiles(fs, h); err != nil || k != "/boot/vmlinuz-6.1.0-10-amd64" || i != "/boot/initrd.img-6.1.0-10-amd64" {
		t.Errorf("newest: %s %s %v", k, i, err)
	}
	// Configured paths win; "none" boots without an initrd.
	h2 := *h
	h2.Kernel, h2.Initrd = "/boot/vmlinuz-6.1.0-9-amd64", "none"
	if k, i, err = netboot.FindBootFiles(fs, &h2); err != nil || k != h2.Kernel || i != "" {
		t.Errorf("configured: %s %q %v", k, i, err)
	}
	h2.Kernel, h2.Initrd = "/boot/missing", ""
	if _, _, err = netboot.FindBootFiles(fs, &h2); !errors.Is(err, netboot.ErrNoBootFile) {
		t.Errorf("missing configured kernel: %v", err)
	}
	// A kernel without its initrd.
	os.Remove(filepath.Join(root, "boot/initrd.img-6.1.0-10-amd64"))
	fs = netboottest.Open(t, root)
	if _, _, err = netboot.FindBootFiles(fs, h); !errors.Is(err, netboot.ErrNoBootFile) || !strings.Contains(err.Error(), "initrd.img-6.1.0-10-amd64") {
		t.Errorf("missing initrd: %v", err)
	}
	// A link escaping the root stays inside it; a directory is not a kernel.
	empty := t.TempDir()
	os.Symlink("../../../../etc/hostname", filepath.Join(empty, "vmlinuz"))
	os.Mkdir(filepath.Join(empty, "boot"), 0o755)
	os.Mkdir(filepath.Join(empty, "boot/vmlinuz-1"), 0o755)
	fs = netboottest.Open(t, empty)
	if _, _, err = netboot.FindBootFiles(fs, h); !errors.Is(err, netboot.ErrNoBootFile) {
		t.Errorf("empty root: %v", err)
	}
	if _, err := netboot.Open(fs, "/boot/vmlinuz-1"); err == nil {
		t.Error("opened a directory")
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range [][2]string{{"6.1.0-9-amd64", "6.1.0-10-amd64"}, {"5.10.0-28-amd64", "6.1.0-1-amd64"}, {"6.1", "6.1.0"}, {"a", "b"},
		{"99999999999999999999", "999999999999999999999"}} {
		if !netboot.VersionLess(c[0], c[1]) || netboot.VersionLess(c[1], c[0]) {
			t.Errorf("%s < %s", c[0], c[1])
		}
	}
}
