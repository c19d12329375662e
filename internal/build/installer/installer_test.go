package installer

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

var update = flag.Bool("update", false, "rewrite the golden network script")

func configDrive(t *testing.T) (*MetaData, *NetworkData) {
	t.Helper()
	md, nd, err := LoadConfigDrive(filepath.Join(testimg.RepoRoot(), "testdata", "installer", "configdrive"))
	if err != nil {
		t.Fatal(err)
	}
	return md, nd
}

// TestNetworkScript renders the two-link, VLAN, static-route metadata and
// compares with the reviewed golden script.
func TestNetworkScript(t *testing.T) {
	md, nd := configDrive(t)
	got := NetworkScript(md, nd)
	golden := filepath.Join(testimg.RepoRoot(), "testdata", "installer", "network.golden.sh")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("network script differs from %s:\n%s", golden, got)
	}
	// The facts the golden file must hold, so that a wrong golden fails too.
	for _, line := range []string{
		"esxcli system hostname set --host='esx01' --domain='lab.example'",
		"nic0=$(nic_for_mac '52:54:00:12:34:56')",
		"nic1=$(nic_for_mac '52:54:00:ab:cd:ef')",
		"esxcli network vswitch standard add -v vSwitch1",
		"esxcli network vswitch standard set -v vSwitch1 -m 9000",
		"esxcli network vswitch standard portgroup add -p 'pg-storage' -v vSwitch1",
		"esxcli network vswitch standard portgroup set -p 'pg-storage' --vlan-id 100",
		"esxcli network ip interface add -i vmk1 -p 'pg-storage' -m 9000",
		"esxcli network ip interface ipv4 set -i vmk0 -t static -I 192.0.2.10 -N 255.255.255.0",
		"esxcli network ip interface ipv4 set -i vmk1 -t static -I 198.51.100.20 -N 255.255.254.0",
		"esxcli network ip interface ipv4 set -i vmk2 -t dhcp",
		"esxcli network ip route ipv4 add -n default -g 192.0.2.1",
		"esxcli network ip route ipv4 add -n 203.0.113.0/25 -g 198.51.100.1",
		"esxcli network ip dns server add -s 192.0.2.53",
		"esxcli network ip dns server add -s 2001:db8::53",
		"echo 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7dGVzdGtleQ== admin@example' >> /etc/ssh/keys-root/authorized_keys",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("script lacks %q", line)
		}
	}
	if strings.Contains(got, "192.0.2.123") {
		t.Error("an NTP service became a DNS server")
	}
	// busybox sh must accept it.
	if _, err := os.Stat("/bin/sh"); err == nil {
		p := filepath.Join(t.TempDir(), "n.sh")
		os.WriteFile(p, []byte(got), 0o644)
		testimg.Run(t, "sh", "-n", p)
	}
}

func TestNetworkLine(t *testing.T) {
	md, nd := configDrive(t)
	if got, want := NetworkLine(md, nd), "network --bootproto=static --device=52:54:00:12:34:56 --ip=192.0.2.10 --netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.53 --hostname=esx01.lab.example"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The VLAN network first: the NIC under it, tagged.
	nd.Networks[0], nd.Networks[1] = nd.Networks[1], nd.Networks[0]
	if got, want := NetworkLine(md, nd), "network --bootproto=static --device=52:54:00:ab:cd:ef --vlanid=100 --ip=198.51.100.20 --netmask=255.255.254.0 --nameserver=192.0.2.53 --hostname=esx01.lab.example"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := NetworkLine(&MetaData{}, &NetworkData{}); got != "network --bootproto=dhcp" {
		t.Errorf("no metadata: %s", got)
	}
}

func TestEditBootCfg(t *testing.T) {
	in := "bootstate=0\ntitle=Loading ESXi installer\nkernel=/b.b00\nkernelopt=runweasel ks=cdrom:/KS.CFG cdromBoot\nmodules=/jumpstrt.gz --- /s.v00\n"
	out, err := EditBootCfg([]byte(in), "vmroot.tgz", "/vmroot/KS.CFG")
	if err != nil {
		t.Fatal(err)
	}
	want := "bootstate=0\ntitle=Loading ESXi installer\nkernel=/b.b00\nkernelopt=runweasel cdromBoot ks=file:///vmroot/KS.CFG\nmodules=/jumpstrt.gz --- /s.v00 --- /vmroot.tgz\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	again, _ := EditBootCfg(out, "vmroot.tgz", "/vmroot/KS.CFG")
	if string(again) != want {
		t.Errorf("editing twice changed it again:\n%s", again)
	}
	out, _ = EditBootCfg([]byte("modules=/a\n"), "vmroot.tgz", "/vmroot/KS.CFG")
	if string(out) != "modules=/a --- /vmroot.tgz\nkernelopt=ks=file:///vmroot/KS.CFG\n" {
		t.Errorf("no kernelopt: %q", out)
	}
	if _, err := EditBootCfg([]byte("kernel=/b.b00\n"), "vmroot.tgz", "/x"); err == nil {
		t.Error("a BOOT.CFG without modules= was accepted")
	}
}

func TestBadNetworkData(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"links":[{"id":"a","type":"wifi","ethernet_mac_address":"52:54:00:00:00:01"}]}`, `unknown link type "wifi"`},
		{`{"links":[{"id":"a","type":"bond"}]}`, "bond links are not supported"},
		{`{"links":[{"id":"a","type":"phy","ethernet_mac_address":"nope"}]}`, "not a MAC"},
		{`{"links":[{"id":"v","type":"vlan","vlan_link":"x","vlan_id":5}]}`, "not a physical link"},
		{`{"links":[{"id":"a","type":"phy","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","type":"ipv4","link":"a","ip_address":"1.2.3.4","netmask":"255.0.255.0"}]}`, "contiguous"},
		{`{"links":[{"id":"a","type":"phy","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","type":"ipv4","link":"a","ip_address":"1.2.3.4; reboot","netmask":"24"}]}`, "not an ipv4 address"},
		{`{"links":[`, "unexpected end"},
	} {
		if _, err := ParseNetworkData("nd.json", []byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "nd.json: ") {
			t.Errorf("%s: %v, want %q", c.json, err, c.want)
		}
	}
	for _, c := range []struct{ json, want string }{
		{`{"hostname":"x"}`, "no admin_pass"},
		{`{"admin_pass":"a","hostname":"bad host"}`, "not a valid host name"},
		{`{"admin_pass":"a","public_keys":{"k":"ssh-rsa AAA\nssh-rsa BBB"}}`, "not one OpenSSH"},
		{`{"admin_pass":"a\nreboot"}`, "line break"},
	} {
		if _, err := ParseMetaData("md.json", []byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.json, err, c.want)
		}
	}
}
