package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// scriptLine lists how every line of a rendered network script may begin:
// metadata that smuggled a line break into the script would start a line
// with something else.
var scriptLine = []string{"", "#", "\t", "}", "set -e", "nic_for_mac()", "has_uplink", "nic", "[ -n ", "esxcli ",
	"mkdir -p /etc/ssh/keys-root", "echo '", "chmod 0600", "vim-cmd hostsvc/"}

func checkScript(t *testing.T, s string) {
	for _, l := range strings.Split(s, "\n") {
		ok := false
		for _, p := range scriptLine {
			if strings.HasPrefix(l, p) && (p != "" || l == "") {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("unexpected script line %q", l)
		}
	}
}

func seedFile(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join(testimg.RepoRoot(), "testdata", "installer", "configdrive", "openstack", "latest", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzParseNetworkData(f *testing.F) {
	seedFile(f, "network_data.json")
	for _, s := range []string{`{}`, `{"links":[{"id":"a","type":"phy","ethernet_mac_address":"52:54:00:00:00:01","mtu":9000}],"networks":[{"id":"n","type":"ipv6","link":"a","ip_address":"2001:db8::2","netmask":"64","routes":[{"network":"::","netmask":"0","gateway":"2001:db8::1"}]}]}`,
		`{"links":[{"id":"v","type":"vlan","vlan_link":"a"}]}`, `[1,2]`, `{"links":null}`} {
		f.Add([]byte(s))
	}
	md := &MetaData{Hostname: "h", AdminPass: "p"}
	f.Fuzz(func(t *testing.T, b []byte) {
		nd, err := ParseNetworkData("nd.json", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "nd.json: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name the file in one line", err)
			}
			return
		}
		checkScript(t, NetworkScript(md, nd))
		if l := NetworkLine(md, nd); strings.ContainsAny(l, "\n\r'\"") || !strings.HasPrefix(l, "network --bootproto=") {
			t.Fatalf("network line %q", l)
		}
	})
}

func FuzzParseMetaData(f *testing.F) {
	seedFile(f, "meta_data.json")
	for _, s := range []string{`{"admin_pass":"x"}`, `{"admin_pass":"x","public_keys":{"a":"ssh-ed25519 AAAA a'b"}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseMetaData("md.json", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "md.json: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		checkScript(t, NetworkScript(md, &NetworkData{}))
		ks, err := Kickstart("", KSData{RootPW: md.AdminPass, Network: NetworkScript(md, &NetworkData{})})
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(ks), "\nrootpw "); n != 1 {
			t.Fatalf("%d rootpw lines", n)
		}
	})
}
