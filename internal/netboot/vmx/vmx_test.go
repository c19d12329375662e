package vmx

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/netboot"
)

func host() *netboot.Host {
	return &netboot.Host{Name: "web1", MAC: net.HardwareAddr{0, 0x50, 0x56, 0, 0, 1}, IP: netip.MustParseAddr("192.0.2.11"), Prefix: 26,
		Gateway: netip.MustParseAddr("192.0.2.1"), DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Export: "/web1"}
}

func TestVMXLines(t *testing.T) {
	got, err := VMXLines(host(), Options{HTTPBase: "http://192.0.2.1:8080", ROMDir: "/vmfs/volumes/ds1/ipxe/"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# vmroot host web1: iPXE boot with a static address, no DHCP
# The VM's ethernet0 must have MAC 00:50:56:00:00:01; the ROM must be iPXE built with VMWARE_SETTINGS.
ethernet0.virtualDev = "vmxnet3"
bios.bootOrder = "ethernet0"
guestinfo.ipxe.scriptlet = "ifopen net0 && chain http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"
guestinfo.ipxe.filename = "http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"
guestinfo.ipxe.net0.ip = "192.0.2.11"
guestinfo.ipxe.net0.netmask = "255.255.255.192"
guestinfo.ipxe.net0.gateway = "192.0.2.1"
guestinfo.ipxe.dns = "192.0.2.53"
ethernet0.opromsize = "262144"
nx3bios.filename = "/vmfs/volumes/ds1/ipxe/15ad07b0.rom"
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNICModels(t *testing.T) {
	h := host()
	h.Gateway, h.DNS = netip.Addr{}, nil
	for nic, want := range map[string][]string{
		"e1000":  {`ethernet1.virtualDev = "e1000"`, `e1000bios.filename = "/r/8086100f.mrom"`, `ethernet1.opromsize = "262144"`, `bios.bootOrder = "ethernet1"`},
		"e1000e": {`ethernet1.virtualDev = "e1000e"`, `e1000ebios.filename = "/r/808610d3.mrom"`},
	} {
		got, err := VMXLines(h, Options{NIC: nic, Ethernet: 1, ROMDir: "/r", HTTPBase: "http://192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(got, w+"\n") {
				t.Errorf("%s: no line %s in\n%s", nic, w, got)
			}
		}
		if strings.Contains(got, "gateway") || strings.Contains(got, "guestinfo.ipxe.dns") || strings.Contains(got, "nx3bios") {
			t.Errorf("%s: unexpected lines\n%s", nic, got)
		}
	}
}

func TestTerraform(t *testing.T) {
	got, err := Terraform(host(), Options{NIC: "e1000e", HTTPBase: "http://192.0.2.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# vmroot host web1; in network_interface: adapter_type = "e1000e", use_static_mac = true, mac_address = "00:50:56:00:00:01"
extra_config = {
  "guestinfo.ipxe.scriptlet"    = "ifopen net0 && chain http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"
  "guestinfo.ipxe.filename"     = "http://192.0.2.1:8080/ipxe/00-50-56-00-00-01?ip=static"
  "guestinfo.ipxe.net0.ip"      = "192.0.2.11"
  "guestinfo.ipxe.net0.netmask" = "255.255.255.192"
  "guestinfo.ipxe.net0.gateway" = "192.0.2.1"
  "guestinfo.ipxe.dns"          = "192.0.2.53"
  "ethernet0.opromsize"         = "262144"
  "e1000ebios.filename"         = "/vmfs/volumes/datastore1/ipxe/808610d3.mrom"
}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := hclString(`a"b\c${x}%{y}`); got != `"a\"b\\c$${x}%%{y}"` {
		t.Errorf("hclString = %s", got)
	}
}

func TestErrors(t *testing.T) {
	h := host()
	if _, err := Settings(h, Options{HTTPBase: "http://x", NIC: "vlance"}); err == nil {
		t.Error("vlance accepted")
	}
	if _, err := Settings(h, Options{}); err == nil || !strings.Contains(err.Error(), "http_port") {
		t.Errorf("no HTTP: %v", err)
	}
	if _, err := Settings(h, Options{HTTPBase: "http://x", ROMDir: `/a"b`}); err == nil {
		t.Error("quote in a value accepted")
	}
	h.IP = netip.Addr{}
	if _, err := Settings(h, Options{HTTPBase: "http://x"}); err == nil || !strings.Contains(err.Error(), "no static address") {
		t.Errorf("no address: %v", err)
	}
}
