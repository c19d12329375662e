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
		{"unknown table", "image = \"a\"\n[tftp]\nroot = \"/x\"\n", "f.toml:2: tftp: unknown key"},
		{"no image", "export = \"/x\"\n", "f.toml: image: missing"},
		{"bad squash", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\n[[host]]\nname = \"b\"\nip = [\"10.0.0.2\"]\nsquash = \"maybe\"\n", "f.toml:8: host[2].squash: \"maybe\""},
		{"dup ip", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\n[[host]]\nname = \"b\"\nip = [\"10.0.0.1\"]\n", "f.toml:7: host[2].ip: 10.0.0.1 is also an address of host 1"},
		{"bad mac", "image = \"a\"\n[[host]]\nname = \"a\"\nmac = \"zz\"\nip = [\"10.0.0.1\"]\n", "f.toml:4: host[1].mac"},
		{"no ip", "image = \"a\"\n[[host]]\nname = \"a\"\n", "f.toml:2: host[1]: host \"a\" has no ip"},
		{"bad port", "image = \"a\"\n[nfs]\nport = 70000\n", "f.toml:3: nfs.port"},
		{"bad policy", "image = \"a\"\n[unknown_hosts]\npolicy = \"open\"\n", "f.toml:3: unknown_hosts.policy"},
		{"bad anonuid", "image = \"a\"\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nanonuid = -4\n", "f.toml:5: host[1].anonuid"},
		{"bad listen", "image = \"a\"\n[nfs]\nlisten = [\"eth0\"]\n", "f.toml:3: nfs.listen"},
	}
	for _, tc := range cases {
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
