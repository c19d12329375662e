package installer

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// MetaData is the part of an OpenStack meta_data.json the installer uses.
type MetaData struct {
	Hostname   string            `json:"hostname"`
	AdminPass  string            `json:"admin_pass"`
	PublicKeys map[string]string `json:"public_keys"`
}

// Keys returns the public keys sorted by their names.
func (m MetaData) Keys() []string {
	names := make([]string, 0, len(m.PublicKeys))
	for n := range m.PublicKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSpace(m.PublicKeys[n]))
	}
	return out
}

// NetworkData is an OpenStack network_data.json.
type NetworkData struct {
	Links    []Link    `json:"links"`
	Networks []Network `json:"networks"`
	Services []Service `json:"services"`
}

// Link is a NIC or a VLAN on top of one.
type Link struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	MAC      string `json:"ethernet_mac_address"`
	MTU      int    `json:"mtu"`
	VLANLink string `json:"vlan_link"`
	VLANID   int    `json:"vlan_id"`
}

// Network is an address configuration on a link.
type Network struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"` // ipv4, ipv4_dhcp, ipv6, ipv6_dhcp, ipv6_slaac
	Link      string  `json:"link"`
	IPAddress string  `json:"ip_address"`
	Netmask   string  `json:"netmask"`
	Routes    []Route `json:"routes"`
}

// Route is a static route of a network.
type Route struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// Service is a network service; only "dns" is used.
type Service struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// physicalTypes are the link types OpenStack uses for a NIC (see the
// Nova network metadata documentation); "vlan" is handled apart.
var physicalTypes = map[string]bool{"phy": true, "ethernet": true, "bridge": true, "ovs": true, "tap": true,
	"vif": true, "hw_veb": true, "dvs": true, "vhostuser": true, "vrouter": true, "hyperv": true, "tap_vif": true}

// MaxJSONSize bounds config-drive files; real ones are a few KiB.
const MaxJSONSize = 1 << 20

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

// ParseMetaData decodes and checks meta_data.json; name is used in errors.
func ParseMetaData(name string, b []byte) (*MetaData, error) {
	if len(b) > MaxJSONSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxJSONSize)
	}
	var m MetaData
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if m.Hostname != "" && (len(m.Hostname) > 253 || !hostnameRE.MatchString(m.Hostname)) {
		return nil, fmt.Errorf("%s: hostname %q is not a valid host name", name, m.Hostname)
	}
	if m.AdminPass == "" {
		return nil, fmt.Errorf("%s: no admin_pass: the kickstart's rootpw needs one", name)
	}
	if strings.ContainsAny(m.AdminPass, "\r\n\x00") {
		return nil, fmt.Errorf("%s: admin_pass contains a line break or NUL", name)
	}
	for k, v := range m.PublicKeys {
		f := strings.Fields(v)
		if strings.ContainsAny(strings.TrimSpace(v), "\r\n\x00") || len(f) < 2 || !strings.HasPrefix(f[0], "ssh-") && !strings.HasPrefix(f[0], "ecdsa-") && !strings.HasPrefix(f[0], "sk-") {
			return nil, fmt.Errorf("%s: public_keys[%q] is not one OpenSSH public key line", name, k)
		}
	}
	return &m, nil
}

// ParseNetworkData decodes and checks network_data.json.
func ParseNetworkData(name string, b []byte) (*NetworkData, error) {
	if len(b) > MaxJSONSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxJSONSize)
	}
	var n NetworkData
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	bad := func(f string, a ...any) error { return fmt.Errorf("%s: %s", name, fmt.Sprintf(f, a...)) }
	links := map[string]*Link{}
	for i := range n.Links {
		l := &n.Links[i]
		if !idRE.MatchString(l.ID) {
			return nil, bad("link %d: id %q is empty or has characters other than letters, digits, '.', '_' and '-'", i, l.ID)
		}
		if links[l.ID] != nil {
			return nil, bad("link %q is defined twice", l.ID)
		}
		links[l.ID] = l
		if l.MTU != 0 && (l.MTU < 1280 || l.MTU > 9000) {
			return nil, bad("link %q: MTU %d is outside 1280-9000", l.ID, l.MTU)
		}
		switch {
		case l.Type == "vlan":
			if l.VLANID < 0 || l.VLANID > 4094 {
				return nil, bad("link %q: VLAN id %d is outside 0-4094", l.ID, l.VLANID)
			}
		case physicalTypes[l.Type]:
			if _, err := net.ParseMAC(l.MAC); err != nil || len(l.MAC) != 17 {
				return nil, bad("link %q: ethernet_mac_address %q is not a MAC address", l.ID, l.MAC)
			}
			l.MAC = strings.ToLower(l.MAC)
		case l.Type == "bond":
			return nil, bad("link %q: bond links are not supported", l.ID)
		default:
			return nil, bad("link %q: unknown link type %q", l.ID, l.Type)
		}
	}
	for _, l := range n.Links {
		if l.Type != "vlan" {
			continue
		}
		p := links[l.VLANLink]
		if p == nil || p.Type == "vlan" {
			return nil, bad("VLAN link %q: vlan_link %q is not a physical link", l.ID, l.VLANLink)
		}
	}
	for i, nw := range n.Networks {
		if links[nw.Link] == nil {
			return nil, bad("network %d (%q): link %q is not defined", i, nw.ID, nw.Link)
		}
		switch nw.Type {
		case "ipv4", "ipv6":
			ip, err := netip.ParseAddr(nw.IPAddress)
			if err != nil || ip.Is4() != (nw.Type == "ipv4") || ip.Zone() != "" {
				return nil, bad("network %q: ip_address %q is not an %s address", nw.ID, nw.IPAddress, nw.Type)
			}
			if _, err := prefixLen(nw.Netmask, ip.Is4()); err != nil {
				return nil, bad("network %q: netmask: %v", nw.ID, err)
			}
		case "ipv4_dhcp", "ipv6_dhcp", "ipv6_slaac":
		default:
			return nil, bad("network %q: unknown network type %q", nw.ID, nw.Type)
		}
		for _, r := range nw.Routes {
			gw, err1 := netip.ParseAddr(r.Gateway)
			dst, err2 := netip.ParseAddr(r.Network)
			if err1 != nil || err2 != nil || gw.Is4() != dst.Is4() || gw.Zone() != "" || dst.Zone() != "" {
				return nil, bad("network %q: route %s/%s via %s is not valid", nw.ID, r.Network, r.Netmask, r.Gateway)
			}
			if _, err := prefixLen(r.Netmask, dst.Is4()); err != nil {
				return nil, bad("network %q: route netmask: %v", nw.ID, err)
			}
		}
	}
	for _, s := range n.Services {
		if s.Type != "dns" {
			continue
		}
		if a, err := netip.ParseAddr(s.Address); err != nil || a.Zone() != "" {
			return nil, bad("DNS service address %q is not an IP address", s.Address)
		}
	}
	return &n, nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// prefixLen accepts a dotted mask, an IPv6 mask or a prefix length.
func prefixLen(mask string, v4 bool) (int, error) {
	bits := 128
	if v4 {
		bits = 32
	}
	var n int
	if _, err := fmt.Sscanf(mask, "%d", &n); err == nil && fmt.Sprint(n) == mask {
		if n < 0 || n > bits {
			return 0, fmt.Errorf("prefix length %d is out of range", n)
		}
		return n, nil
	}
	a, err := netip.ParseAddr(mask)
	if err != nil || a.Is4() != v4 {
		return 0, fmt.Errorf("%q is not a netmask", mask)
	}
	ones, size := net.IPMask(a.AsSlice()).Size()
	if size == 0 {
		return 0, fmt.Errorf("%q is not a contiguous netmask", mask)
	}
	return ones, nil
}

// LoadConfigDrive reads meta_data.json and network_data.json from a config
// drive directory (DIR/openstack/latest/ or DIR itself).
func LoadConfigDrive(dir string) (*MetaData, *NetworkData, error) {
	base := filepath.Join(dir, "openstack", "latest")
	if _, err := os.Stat(filepath.Join(base, "meta_data.json")); err != nil {
		base = dir
	}
	return LoadFiles(filepath.Join(base, "meta_data.json"), filepath.Join(base, "network_data.json"))
}

// LoadFiles reads the two metadata files; networkPath may be empty.
func LoadFiles(metaPath, networkPath string) (*MetaData, *NetworkData, error) {
	read := func(p string) ([]byte, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() || st.Size() > MaxJSONSize {
			return nil, fmt.Errorf("%s: not a metadata file (a JSON file of at most %d bytes)", p, MaxJSONSize)
		}
		b := make([]byte, st.Size())
		_, err = f.ReadAt(b, 0)
		return b, err
	}
	b, err := read(metaPath)
	if err != nil {
		return nil, nil, err
	}
	md, err := ParseMetaData(metaPath, b)
	if err != nil {
		return nil, nil, err
	}
	nd := &NetworkData{}
	if networkPath != "" {
		if b, err = read(networkPath); err != nil {
			return nil, nil, err
		}
		if nd, err = ParseNetworkData(networkPath, b); err != nil {
			return nil, nil, err
		}
	}
	return md, nd, nil
}
