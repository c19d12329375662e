package netboot

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the netboot part of vmroot.toml: the [netboot] section and the
// [[host]] table. Other sections are left to their own readers.
//
//	[netboot]
//	server = "192.0.2.1"   # the address hosts reach vmroot at
//	nfs_port = 2049        # default 2049
//	mount_port = 0         # 0: clients ask the portmapper
//	http_port = 8080       # 0: no HTTP boot service
//
//	[[host]]
//	name = "web1"
//	mac = "00:50:56:00:00:01"
//	ip = "192.0.2.11/24"   # optional
//	gateway = "192.0.2.1"  # optional
//	dns = ["192.0.2.53"]   # optional
//	export = "/web1"       # default "/" + name
//	kernel = ""            # default: /vmlinuz, /boot/vmlinuz-* ...
//	initrd = ""            # "none" for no initrd
//	args = "console=ttyS0"
//	boot = "ipxe"          # or "pxelinux" (for iPXE clients)
type Config struct {
	Server    netip.Addr
	NFSPort   int
	MountPort int
	HTTPPort  int
	Table     *Table
}

// NFS is how hosts reach the NFS server.
func (f *Config) NFS() NFSServer {
	return NFSServer{Addr: f.Server, Port: f.NFSPort, MountPort: f.MountPort}
}

// HTTPBase is the HTTP boot service's URL, or "" when it is off.
func (f *Config) HTTPBase() string {
	switch f.HTTPPort {
	case 0:
		return ""
	case 80:
		return "http://" + f.Server.String()
	}
	return fmt.Sprintf("http://%s:%d", f.Server, f.HTTPPort)
}

type rawFile struct {
	Netboot struct {
		Server    string `toml:"server"`
		NFSPort   int    `toml:"nfs_port"`
		MountPort int    `toml:"mount_port"`
		HTTPPort  int    `toml:"http_port"`
	} `toml:"netboot"`
	Host []struct {
		Name    string   `toml:"name"`
		MAC     string   `toml:"mac"`
		IP      string   `toml:"ip"`
		Gateway string   `toml:"gateway"`
		DNS     []string `toml:"dns"`
		Export  string   `toml:"export"`
		Kernel  string   `toml:"kernel"`
		Initrd  string   `toml:"initrd"`
		Args    string   `toml:"args"`
		Boot    string   `toml:"boot"`
	} `toml:"host"`
}

// LoadConfig reads the netboot part of a vmroot.toml.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseConfig parses the netboot part of a vmroot.toml. Unknown keys in
// [netboot] and [[host]] are errors (a typo must not go unnoticed).
func ParseConfig(b []byte) (*Config, error) {
	var raw rawFile
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&raw)
	if err != nil {
		return nil, err
	}
	for _, k := range md.Undecoded() {
		if len(k) > 1 && (k[0] == "netboot" || k[0] == "host") {
			return nil, fmt.Errorf("unknown key %s", k)
		}
	}
	f := &Config{NFSPort: raw.Netboot.NFSPort, MountPort: raw.Netboot.MountPort, HTTPPort: raw.Netboot.HTTPPort}
	if raw.Netboot.Server != "" {
		if f.Server, err = netip.ParseAddr(raw.Netboot.Server); err != nil || !f.Server.Is4() {
			return nil, fmt.Errorf("[netboot] server = %q: want an IPv4 address", raw.Netboot.Server)
		}
	}
	for _, p := range []int{f.NFSPort, f.MountPort, f.HTTPPort} {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("[netboot]: port %d out of range", p)
		}
	}
	var hosts []Host
	for i, r := range raw.Host {
		h := Host{Name: r.Name, Export: r.Export, Kernel: r.Kernel, Initrd: r.Initrd, Args: r.Args, Boot: r.Boot}
		where := fmt.Sprintf("host %d (%q)", i+1, r.Name)
		if h.MAC, err = ParseMAC(r.MAC); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if h.Export == "" {
			h.Export = "/" + h.Name
		}
		if r.IP != "" {
			p, err := netip.ParsePrefix(r.IP)
			if err != nil {
				a, err2 := netip.ParseAddr(r.IP)
				if err2 != nil {
					return nil, fmt.Errorf("%s: ip = %q: want ADDRESS/PREFIX", where, r.IP)
				}
				p = netip.PrefixFrom(a, 24)
			}
			if p.Bits() < 1 || p.Bits() > 30 {
				return nil, fmt.Errorf("%s: ip = %q: prefix must be 1-30", where, r.IP)
			}
			h.IP, h.Prefix = p.Addr(), p.Bits()
		}
		if r.Gateway != "" {
			if h.Gateway, err = netip.ParseAddr(r.Gateway); err != nil || !h.Gateway.Is4() {
				return nil, fmt.Errorf("%s: gateway = %q: want an IPv4 address", where, r.Gateway)
			}
		}
		for _, d := range r.DNS {
			a, err := netip.ParseAddr(d)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%s: dns = %q: want IPv4 addresses", where, d)
			}
			h.DNS = append(h.DNS, a)
		}
		if strings.ContainsAny(h.Kernel+h.Initrd, "\n\r ") {
			return nil, fmt.Errorf("%s: kernel/initrd paths may not contain spaces", where)
		}
		hosts = append(hosts, h)
	}
	if f.Table, err = NewTable(hosts); err != nil {
		return nil, err
	}
	if len(hosts) > 0 && !f.Server.IsValid() {
		return nil, fmt.Errorf("[netboot] server is required when hosts are defined")
	}
	return f, nil
}
