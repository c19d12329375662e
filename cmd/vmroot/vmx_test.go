package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const vmxTOML = `
image = "appliance.vmdk"   # not opened by vmx

[nfs]
port = 2049
advertise = "192.0.2.1"

[http]
listen = "192.0.2.1:8080"

[[host]]
name = "web1"
mac = "00:50:56:00:00:01"
ip = ["192.0.2.11"]
prefix = 24
gateway = "192.0.2.1"
dns = ["192.0.2.53", "192.0.2.54"]

[[host]]
name = "dhcponly"
mac = "00:50:56:00:00:02"
`

func TestVMXCommand(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "vmroot.toml")
	os.WriteFile(cfg, []byte(vmxTOML), 0o644)
	out := ok(t, "vmx", "-c", cfg, "--nic", "e1000", "--rom-dir", "/vmfs/volumes/ds/rom", "web1")
	for _, want := range []string{
		`ethernet0.virtualDev = "e1000"`,
		`guestinfo.ipxe.scriptlet = "ifopen net0 && chain http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"`,
		`guestinfo.ipxe.filename = "http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"`,
		`guestinfo.ipxe.net0.ip = "192.0.2.11"`, `guestinfo.ipxe.net0.netmask = "255.255.255.0"`,
		`guestinfo.ipxe.net0.gateway = "192.0.2.1"`, `guestinfo.ipxe.dns = "192.0.2.53"`,
		`ethernet0.opromsize = "262144"`, `e1000bios.filename = "/vmfs/volumes/ds/rom/8086100f.mrom"`,
		`extra_config = {`, `"guestinfo.ipxe.net0.ip"      = "192.0.2.11"`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no line %s in\n%s", want, out)
		}
	}
	// By MAC, one format only.
	out = ok(t, "vmx", "-c", cfg, "--format", "terraform", "00-50-56-00-00-01")
	if strings.Contains(out, "virtualDev") || !strings.Contains(out, `"nx3bios.filename"`) {
		t.Errorf("terraform only:\n%s", out)
	}
	fails(t, "no static address", "vmx", "-c", cfg, "dhcponly")
	fails(t, "no host", "vmx", "-c", cfg, "nosuch")
	fails(t, "nope.toml", "vmx", "-c", filepath.Join(t.TempDir(), "nope.toml"), "web1")
	if r := vmroot(t, "vmx", "-c", cfg, "--nic", "vlance", "web1"); r.code != 2 {
		t.Errorf("bad --nic: exit %d", r.code)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte(strings.Replace(vmxTOML, "gateway =", "gatway =", 1)), 0o644)
	fails(t, "bad.toml:16: host.gatway: unknown key", "vmx", "-c", bad, "web1")
	noHTTP := filepath.Join(t.TempDir(), "nohttp.toml")
	os.WriteFile(noHTTP, []byte(strings.Replace(vmxTOML, "[http]\n", "[http]\nenabled = false\n", 1)), 0o644)
	fails(t, "no [http] section", "vmx", "-c", noHTTP, "web1")
}
