package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `# test
image = "app.vmdk"
partition = 2
layers = ["/srv/site", "rel"]
export = "/vmroot/"

[nfs]
listen = ["127.0.0.1"]
port = 2050
portmap_port = -1
udp = false

[unknown_hosts]
policy = "throwaway"
squash = "all_squash"

[[host]]
name = "web1"
mac = "52:54:00:12:34:56"
ip = ["10.0.0.11", "::ffff:10.0.0.12"]
squash = "no_root_squash"
anonuid = 1001

[[host]]
name = "web2"
ip = ["10.0.0.21"]
diff = "/srv/diffs/web2"
`

func TestParse(t *testing.T) {
	c, err := Parse("/etc/vmroot/vmroot.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != "/etc/vmroot/app.vmdk" || c.Partition != 2 || c.Export != "/vmroot" || c.Port != 2050 || c.PortmapPort != -1 || c.UDP {
		t.Errorf("top level: %+v", c)
	}
	if strings.Join(c.Layers, ",") != "/srv/site,/etc/vmroot/rel" {
		t.Errorf("layers %v", c.Layers)
	}
	if c.Unknown.Policy != "throwaway" || c.Unknown.Dir != "/var/lib/vmroot/unknown" || c.Unknown.Squash != "all_squash" || c.Unknown.AnonUID != 65534 {
		t.Errorf("unknown: %+v", c.Unknown)
	}
	if len(c.Hosts) != 2 {
		t.Fatalf("hosts: %+v", c.Hosts)
	}
	h := c.Hosts[0]
	if h.Name != "web1" || h.MAC.String() != "52:54:00:12:34:56" || len(h.IPs) != 2 || h.IPs[1] != netip.MustParseAddr("10.0.0.12") ||
		h.Squash != "no_root_squash" || h.AnonUID != 1001 || h.AnonGID != 65534 || h.Diff != "/var/lib/vmroot/hosts/web1" {
		t.Errorf("host 1: %+v", h)
	}
	if h := c.Hosts[1]; h.Diff != "/srv/diffs/web2" || h.Squash != "root_squash" {
		t.Errorf("host 2: %+v", h)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"syntax", "image = \"a\"\n[nfs\nport = 1\n", "f.toml:3: expected '.' or ']' to end table name"},
		{"wrong type", "image = \"a\"\n\n[nfs]\nport = \"x\"\n", "f.toml:4: nfs.port: incompatible types"},
		{"unknown key", "image = \"a\"\n\n[nfs]\nport = 1\nspeed = 3\n", "f.toml:5: nfs.speed: unknown key"},
		{"unknown table", "image = \"a\"\n[ftp]\nroot = \"/x\"\n", "f.toml:2: ftp: unknown key"},
		{"unknown tftp key", "image = \"a\"\n[tftp]\nroot = \"/x\"\n", "f.toml:3: tftp.root: unknown key"},
		{"no image", "export = \"/x\"\n", "f.toml: image: missing"},
		{"bad squash", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\n[[host]]\nname = \"b\"\nip = [\"10.0.0.2\"]\nsquash = \"maybe\"\n", "f.toml:8: host[2].squash: \"maybe\""},
		{"dup ip", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\n[[host]]\nname = \"b\"\nip = [\"10.0.0.1\"]\n", "f.toml:7: host[2].ip: 10.0.0.1 is also an address of host 1"},
		{"bad mac", "image = \"a\"\n[[host]]\nname = \"a\"\nmac = \"zz\"\nip = [\"10.0.0.1\"]\n", "f.toml:4: host[1].mac"},
		{"no ip", "image = \"a\"\n[[host]]\nname = \"a\"\n", "f.toml:2: host[1]: host \"a\" has no ip and no mac"},
		{"long mac", "image = \"a\"\n[[host]]\nname = \"a\"\nmac = \"00:00:00:00:fe:80:00:00\"\n", "f.toml:4: host[1].mac"},
		{"bad port", "image = \"a\"\n[nfs]\nport = 70000\n", "f.toml:3: nfs.port"},
		{"bad policy", "image = \"a\"\n[unknown_hosts]\npolicy = \"open\"\n", "f.toml:3: unknown_hosts.policy"},
		{"bad anonuid", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nanonuid = -4\n", "f.toml:5: host[1].anonuid"},
		{"bad listen", "image = \"a\"\n[nfs]\nlisten = [\"eth0\"]\n", "f.toml:3: nfs.listen"},
	}
	for _, tc := range append(cases, netbootErrors...) {
		_, err := Parse("f.toml", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v.toml")
	os.WriteFile(p, []byte("image = \"disk.vmdk\"\n"), 0o644)
	c, err := Load(p)
	if err != nil || c.Image != filepath.Join(filepath.Dir(p), "disk.vmdk") || c.Unknown.Policy != "refuse" || c.PortmapPort != 0 || !c.UDP {
		t.Errorf("%+v %v", c, err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Error("missing file accepted")
	}
}

// FuzzParse: any input gives a configuration or one error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add("image = \"a\"\n[[host]]\nname = \"x\"\nip = [\"::1\"]\n")
	f.Add("[nfs]\nport = 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse("f.toml", []byte(s))
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
	})
}

const netbootTOML = `image = "app.vmdk"
export = "/vmroot"
[nfs]
listen = ["0.0.0.0", "192.0.2.1"]
[tftp]
listen = "192.0.2.1:69"
boot_dirs = ["/usr/lib/PXELINUX", "syslinux"]
max_block_size = 1468
[http]
listen = "192.0.2.1:8080"
[dhcp]
interface = "tap0"
[[host]]
name = "web1"
mac = "52:54:00:12:34:01"
ip = ["fd00::1", "192.0.2.11"]
prefix = 25
gateway = "192.0.2.254"
dns = ["192.0.2.53", "192.0.2.54"]
kernel = "/boot/vmlinuz-6.1"
initrd = "none"
args = " console=ttyS0 "
boot = "pxelinux"
[[host]]
name = "web2"
mac = "52:54:00:12:34:02"
[[host]]
name = "nfsonly"
ip = ["192.0.2.30"]
`

func TestParseNetboot(t *testing.T) {
	old := InterfaceAddr
	t.Cleanup(func() { InterfaceAddr = old })
	InterfaceAddr = func(name string) (netip.Addr, error) {
		if name != "tap0" {
			t.Errorf("interface %q looked up", name)
		}
		return netip.MustParseAddr("192.0.2.7"), nil
	}
	c, err := Parse("/etc/vmroot/vmroot.toml", []byte(netbootTOML))
	if err != nil {
		t.Fatal(err)
	}
	if c.TFTP == nil || c.TFTP.Listen != "192.0.2.1:69" || c.TFTP.MaxBlockSize != 1468 ||
		strings.Join(c.TFTP.BootDirs, ",") != "/usr/lib/PXELINUX,/etc/vmroot/syslinux" {
		t.Errorf("tftp: %+v", c.TFTP)
	}
	if c.HTTP == nil || c.HTTP.BaseURL != "http://192.0.2.1:8080" {
		t.Errorf("http: %+v", c.HTTP)
	}
	// The DHCP server address comes from the interface, and advertise from it.
	if c.DHCP == nil || c.DHCP.Mode != "proxy" || c.DHCP.Interface != "tap0" || c.DHCP.Server.String() != "192.0.2.7" || c.Advertise.String() != "192.0.2.7" {
		t.Errorf("dhcp: %+v advertise %v", c.DHCP, c.Advertise)
	}
	h := c.Hosts[0]
	if h.Prefix != 25 || h.Gateway.String() != "192.0.2.254" || len(h.DNS) != 2 || h.DNS[1].String() != "192.0.2.54" ||
		h.Kernel != "/boot/vmlinuz-6.1" || h.Initrd != "none" || h.Args != "console=ttyS0" || h.Boot != "pxelinux" {
		t.Errorf("host 1: %+v", h)
	}
	if h := c.Hosts[1]; h.MAC.String() != "52:54:00:12:34:02" || len(h.IPs) != 0 || h.Prefix != 24 {
		t.Errorf("host 2 (MAC only): %+v", h)
	}
	tab, err := c.Table()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Hosts()) != 2 || tab.ByName("nfsonly") != nil {
		t.Errorf("table holds %d hosts; want the two with a mac", len(tab.Hosts()))
	}
	nh := tab.ByName("web1")
	if nh.IP.String() != "192.0.2.11" || nh.Export != "/vmroot" || nh.Netmask().String() != "255.255.255.128" || nh.Boot != "pxelinux" || nh.Initrd != "none" {
		t.Errorf("table host web1: %+v", nh)
	}

	// Present sections switched off, and the defaults of the others.
	text := strings.Replace(netbootTOML, "[tftp]\n", "[tftp]\nenabled = false\n", 1)
	text = strings.Replace(text, "[dhcp]\n", "[dhcp]\nenabled = false\n", 1)
	text = strings.Replace(text, "listen = \"192.0.2.1:8080\"", "listen = \":8081\"\nbase_url = \"http://boot.example:8081/\"\nenabled = true", 1)
	if c, err = Parse("/etc/vmroot/vmroot.toml", []byte(text)); err != nil {
		t.Fatal(err)
	}
	if c.TFTP != nil || c.DHCP != nil || c.HTTP.BaseURL != "http://boot.example:8081" || c.Advertise.String() != "192.0.2.1" {
		t.Errorf("switched off: tftp %+v dhcp %+v http %+v advertise %v", c.TFTP, c.DHCP, c.HTTP, c.Advertise)
	}
	c, err = Parse("f.toml", []byte("image = \"a\"\n[nfs]\nadvertise = \"198.51.100.1\"\n[tftp]\n[dhcp]\nmode = \"full\"\ninterface = \"tap0\"\nserver = \"192.0.2.1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TFTP.Listen != ":69" || strings.Join(c.TFTP.BootDirs, ",") != "/usr/lib/PXELINUX,/usr/lib/syslinux/modules/bios" ||
		c.DHCP.Mode != "full" || c.DHCP.Server.String() != "192.0.2.1" || c.Advertise.String() != "198.51.100.1" {
		t.Errorf("defaults: tftp %+v dhcp %+v advertise %v", c.TFTP, c.DHCP, c.Advertise)
	}
	// No boot service: no section, no address needed.
	if c, err = Parse("f.toml", []byte("image = \"a\"\n")); err != nil || c.BootServices() || c.Advertise.IsValid() {
		t.Errorf("no services: %+v %v", c, err)
	}
}

var netbootErrors = []struct{ name, text, want string }{
	{"tftp listen", "image = \"a\"\n[tftp]\nlisten = \"192.0.2.1\"\n", "f.toml:3: tftp.listen: \"192.0.2.1\": want ADDRESS:PORT"},
	{"tftp port", "image = \"a\"\n[tftp]\nlisten = \"192.0.2.1:99999\"\n", "f.toml:3: tftp.listen: \"192.0.2.1:99999\": bad port"},
	{"tftp block", "image = \"a\"\n[tftp]\nlisten = \"192.0.2.1:69\"\nmax_block_size = 8\n", "f.toml:4: tftp.max_block_size"},
	{"tftp dirs", "image = \"a\"\n[tftp]\nboot_dirs = [\"\"]\n", "f.toml:3: tftp.boot_dirs: empty path"},
	{"tftp enabled", "image = \"a\"\n[tftp]\nenabled = \"yes\"\n", "f.toml:3: tftp.enabled: incompatible types"},
	{"http wildcard", "image = \"a\"\n[nfs]\nadvertise = \"192.0.2.1\"\n[http]\nlisten = \"0.0.0.0:8080\"\n", "f.toml:5: http.listen: \"0.0.0.0:8080\" is a wildcard: set base_url"},
	{"http default wildcard", "image = \"a\"\n[nfs]\nadvertise = \"192.0.2.1\"\n[http]\n", "f.toml:4: http.listen: \":8080\" is a wildcard"},
	{"http host", "image = \"a\"\n[http]\nlisten = \"boot:8080\"\n", "f.toml:3: http.listen"},
	{"http base", "image = \"a\"\n[http]\nlisten = \"192.0.2.1:80\"\nbase_url = \"ftp://x\"\n", "f.toml:4: http.base_url"},
	{"dhcp mode", "image = \"a\"\n[dhcp]\nmode = \"relay\"\ninterface = \"x\"\n", "f.toml:3: dhcp.mode: \"relay\""},
	{"dhcp interface", "image = \"a\"\n[dhcp]\nserver = \"192.0.2.1\"\n", "f.toml:2: dhcp: interface is required"},
	{"dhcp server", "image = \"a\"\n[dhcp]\ninterface = \"x\"\nserver = \"::1\"\n", "f.toml:4: dhcp.server: \"::1\" is not an IPv4"},
	{"dhcp no interface", "image = \"a\"\n[dhcp]\ninterface = \"no-such-if0\"\n", "f.toml:3: dhcp.interface: no server address given and none found"},
	{"dhcp full no ip", "image = \"a\"\n[dhcp]\nmode = \"full\"\ninterface = \"x\"\nserver = \"192.0.2.1\"\n[[host]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\nip = [\"fd00::1\"]\n",
		"f.toml:6: host[1]: host \"a\" has no IPv4 ip: [dhcp] mode \"full\""},
	{"advertise bad", "image = \"a\"\n[nfs]\nadvertise = \"nfs.example\"\n", "f.toml:3: nfs.advertise: \"nfs.example\" is not an IPv4"},
	{"advertise missing", "image = \"a\"\n[nfs]\nlisten = [\"0.0.0.0\"]\n[tftp]\n", "f.toml: nfs.advertise: missing: boot services need"},
	{"prefix", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nprefix = 33\n", "f.toml:5: host[1].prefix: 33"},
	{"gateway", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\ngateway = \"gw\"\n", "f.toml:5: host[1].gateway"},
	{"dns", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\ndns = [\"10.0.0.53\", \"x\"]\n", "f.toml:5: host[1].dns: \"x\""},
	{"dns type", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\ndns = \"10.0.0.53\"\n", "f.toml:5: host.dns: incompatible types"},
	{"kernel", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nkernel = \"vmlinuz\"\n", "f.toml:5: host[1].kernel: \"vmlinuz\": want an absolute path"},
	{"initrd", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\ninitrd = \"/boot/a b\"\n", "f.toml:5: host[1].initrd"},
	{"args", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nargs = \"a\\nb\"\n", "f.toml:5: host[1].args: kernel arguments are one line"},
	{"boot", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nboot = \"efi\"\n", "f.toml:5: host[1].boot: \"efi\""},
	{"unknown host key", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nexport = \"/a\"\n", "f.toml:5: host.export: unknown key"},
}

// TestREADMEExample: the vmroot.toml in the README parses and means what
// it says.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```toml\n")
	text, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no toml example in README.md")
	}
	old := InterfaceAddr
	t.Cleanup(func() { InterfaceAddr = old })
	InterfaceAddr = func(string) (netip.Addr, error) { return netip.MustParseAddr("192.0.2.1"), nil }
	c, err := Parse("/etc/vmroot/vmroot.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := c.Table()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Hosts()) != 2 || c.DHCP.Mode != "full" || c.HTTP.BaseURL != "http://192.0.2.1:8080" || c.Advertise.String() != "192.0.2.1" {
		t.Errorf("README example: %+v", c)
	}
}
