// Package vmx produces what a VMware VM needs to boot a host of the host
// table through iPXE with a static address and no DHCP: iPXE's VMware
// GuestInfo settings (guestinfo.ipxe.*, read by an iPXE ROM built with
// VMWARE_SETTINGS) and the .vmx lines that replace the NIC's boot ROM
// with that iPXE ROM, as .vmx lines or a Terraform extra_config block.
package vmx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vmroot/vmroot/internal/netboot"
)

// NIC is a VMware virtual NIC model with its iPXE ROM.
type NIC struct {
	Model   string // ethernetN.virtualDev
	ROMKey  string // .vmx key naming the ROM file for this model
	ROMFile string // iPXE's ROM image name (make bin/<ROMFile>)
}

// NICs lists the models iPXE has drivers and ROM images for (ipxe.org/howto/vmware).
var NICs = map[string]NIC{
	"vmxnet3": {"vmxnet3", "nx3bios.filename", "15ad07b0.rom"},
	"e1000":   {"e1000", "e1000bios.filename", "8086100f.mrom"},
	"e1000e":  {"e1000e", "e1000ebios.filename", "808610d3.mrom"},
}

// Options select the NIC and where the ROM lives.
type Options struct {
	NIC      string // key of NICs; "" means vmxnet3
	ROMDir   string // directory of the iPXE ROMs as the ESXi host sees it
	Ethernet int    // N of ethernetN
	// HTTPBase is vmroot's HTTP boot service ("http://192.0.2.1:8080").
	HTTPBase string
}

// Setting is one .vmx key and value.
type Setting struct{ Key, Value string }

// Settings returns h's guestinfo and ROM settings, in a fixed order.
func Settings(h *netboot.Host, o Options) ([]Setting, error) {
	if o.NIC == "" {
		o.NIC = "vmxnet3"
	}
	nic, ok := NICs[o.NIC]
	if !ok {
		return nil, fmt.Errorf("NIC model %q: want vmxnet3, e1000 or e1000e", o.NIC)
	}
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("host %q has no static address (ip = \"A.B.C.D/N\" in its [[host]] entry)", h.Name)
	}
	if o.HTTPBase == "" {
		return nil, errors.New("the HTTP boot service is off ([netboot] http_port)")
	}
	if o.ROMDir == "" {
		o.ROMDir = "/vmfs/volumes/datastore1/ipxe"
	}
	script := strings.TrimSuffix(o.HTTPBase, "/") + "/ipxe/" + netboot.MACDash(h.MAC) + "?ip=static"
	eth := fmt.Sprintf("ethernet%d", o.Ethernet)
	s := []Setting{
		{"guestinfo.ipxe.scriptlet", "ifopen net0 && chain " + script},
		{"guestinfo.ipxe.filename", script},
		{"guestinfo.ipxe.net0.ip", h.IP.String()},
		{"guestinfo.ipxe.net0.netmask", h.Netmask().String()},
	}
	if h.Gateway.IsValid() {
		s = append(s, Setting{"guestinfo.ipxe.net0.gateway", h.Gateway.String()})
	}
	if len(h.DNS) > 0 {
		s = append(s, Setting{"guestinfo.ipxe.dns", h.DNS[0].String()})
	}
	s = append(s,
		Setting{eth + ".opromsize", "262144"},
		Setting{nic.ROMKey, strings.TrimSuffix(o.ROMDir, "/") + "/" + nic.ROMFile},
	)
	for _, kv := range s {
		if strings.ContainsAny(kv.Value, "\"|\n\r") {
			return nil, fmt.Errorf("%s: value %q cannot be written to a .vmx file", kv.Key, kv.Value)
		}
	}
	return s, nil
}

// VMXLines formats h's settings as .vmx lines, with the NIC model and
// boot order that go with them.
func VMXLines(h *netboot.Host, o Options) (string, error) {
	s, err := Settings(h, o)
	if err != nil {
		return "", err
	}
	nic := NICs[orDefault(o.NIC)]
	eth := fmt.Sprintf("ethernet%d", o.Ethernet)
	var b strings.Builder
	fmt.Fprintf(&b, "# vmroot host %s: iPXE boot with a static address, no DHCP\n", h.Name)
	fmt.Fprintf(&b, "# The VM's %s must have MAC %s; the ROM must be iPXE built with VMWARE_SETTINGS.\n", eth, h.MAC)
	// Values never hold '"', '|' or line breaks (Settings checks), so
	// plain quoting is exact: .vmx has no backslash escapes.
	fmt.Fprintf(&b, "%s.virtualDev = \"%s\"\n", eth, nic.Model)
	fmt.Fprintf(&b, "bios.bootOrder = \"%s\"\n", eth)
	for _, kv := range s {
		fmt.Fprintf(&b, "%s = \"%s\"\n", kv.Key, kv.Value)
	}
	return b.String(), nil
}

// Terraform formats h's settings as the extra_config argument of a
// vsphere_virtual_machine resource. The NIC model and MAC are set in its
// network_interface block instead (adapter_type, mac_address).
func Terraform(h *netboot.Host, o Options) (string, error) {
	s, err := Settings(h, o)
	if err != nil {
		return "", err
	}
	w := 0
	for _, kv := range s {
		w = max(w, len(kv.Key)+2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# vmroot host %s; in network_interface: adapter_type = %q, use_static_mac = true, mac_address = %q\n",
		h.Name, NICs[orDefault(o.NIC)].Model, h.MAC)
	b.WriteString("extra_config = {\n")
	for _, kv := range s {
		fmt.Fprintf(&b, "  %-*s = %s\n", w, hclString(kv.Key), hclString(kv.Value))
	}
	b.WriteString("}\n")
	return b.String(), nil
}

func orDefault(nic string) string {
	if nic == "" {
		return "vmxnet3"
	}
	return nic
}

// hclString quotes s for HCL, where "${" and "%{" start templates.
func hclString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", "$${", "%{", "%%{")
	return `"` + r.Replace(s) + `"`
}
