// Package config reads vmroot's configuration, one TOML file for the NFS
// server and the boot services:
//
//	image = "appliance.vmdk"     # base image (required)
//	partition = 2                # default: the only Linux partition
//	layers = ["/srv/site"]       # shared read-only layers, top first
//	export = "/vmroot"           # path clients mount
//	state_dir = "/var/lib/vmroot" # handle key, default diffs
//
//	[nfs]
//	listen = ["0.0.0.0"]
//	port = 2049                  # NFS and MOUNT
//	portmap_port = 111           # 0: try 111, go without when busy; -1: off
//	udp = true                   # MOUNT and portmap over UDP too
//	advertise = "192.0.2.1"      # server address in nfsroot= (see below)
//
//	[unknown_hosts]
//	policy = "refuse"            # or "throwaway", "persistent"
//	dir = "/srv/diffs/unknown"   # per-address diffs for the other policies
//	squash = "root_squash"
//
//	[tftp]                       # pxelinux.0, per-MAC configs, kernels
//	listen = "192.0.2.1:69"
//	boot_dirs = ["/usr/lib/PXELINUX", "/usr/lib/syslinux/modules/bios"]
//	max_block_size = 0           # 0: the interface MTU decides
//
//	[http]                       # iPXE scripts, kernels
//	listen = "192.0.2.1:8080"
//	base_url = ""                # default: http://LISTEN
//
//	[dhcp]
//	mode = "proxy"               # or "full": leases the hosts' static ip
//	interface = "tap0"           # the boot link (required)
//	server = "192.0.2.1"         # default: the interface's first IPv4 address
//
//	[[host]]
//	name = "web1"
//	mac = "52:54:00:12:34:56"    # boot services and NFS identity
//	ip = ["10.0.0.11"]           # NFS identity; the first IPv4 is the static address
//	diff = "/srv/diffs/web1"     # default: STATE_DIR/hosts/NAME
//	squash = "root_squash"       # or no_root_squash, all_squash
//	anonuid = 65534
//	anongid = 65534
//	prefix = 24                  # netmask of the static address
//	gateway = "10.0.0.254"
//	dns = ["10.0.0.53"]
//	kernel = ""                  # path in the host's view; default found automatically
//	initrd = ""                  # likewise; "none": boot without one
//	args = "console=ttyS0"       # appended to the generated kernel arguments
//	boot = "ipxe"                # or "pxelinux" (what an iPXE client is given)
//
// A section [tftp], [http] or [dhcp] turns its service on; "enabled =
// false" in it turns it off again. A host needs an ip or a mac: over NFS
// a peer is recognised by its address, else by its MAC on a directly
// attached link (so a host listed by mac alone may take any address
// another DHCP server leases it); only hosts with a mac are netbooted.
// Every host mounts the one export. advertise defaults to the [dhcp]
// server, else the first [nfs] listen address that is not a wildcard; a
// boot service needs one.
//
// Relative paths are taken from the file's directory. Unknown keys are
// errors, and every error names the file, the line and the key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/vmroot/vmroot/internal/netboot"
)

// File is the configuration as written.
type File struct {
	Image     string       `toml:"image"`
	Partition *int         `toml:"partition"`
	Layers    []string     `toml:"layers"`
	Export    string       `toml:"export"`
	StateDir  string       `toml:"state_dir"`
	NFS       NFS          `toml:"nfs"`
	Unknown   UnknownHosts `toml:"unknown_hosts"`
	TFTP      *TFTPSection `toml:"tftp"`
	HTTP      *HTTPSection `toml:"http"`
	DHCP      *DHCPSection `toml:"dhcp"`
	Hosts     []HostEntry  `toml:"host"`
}

// TFTPSection is the [tftp] section.
type TFTPSection struct {
	Enabled      *bool    `toml:"enabled"`
	Listen       string   `toml:"listen"`
	BootDirs     []string `toml:"boot_dirs"`
	MaxBlockSize int      `toml:"max_block_size"`
}

// HTTPSection is the [http] section.
type HTTPSection struct {
	Enabled *bool  `toml:"enabled"`
	Listen  string `toml:"listen"`
	BaseURL string `toml:"base_url"`
}

// DHCPSection is the [dhcp] section.
type DHCPSection struct {
	Enabled   *bool  `toml:"enabled"`
	Mode      string `toml:"mode"`
	Interface string `toml:"interface"`
	Server    string `toml:"server"`
}

// NFS is the [nfs] section.
type NFS struct {
	Listen      []string `toml:"listen"`
	Port        *int     `toml:"port"`
	PortmapPort *int     `toml:"portmap_port"`
	UDP         *bool    `toml:"udp"`
	Advertise   string   `toml:"advertise"`
}

// UnknownHosts is the [unknown_hosts] section.
type UnknownHosts struct {
	Policy  string `toml:"policy"`
	Dir     string `toml:"dir"`
	Squash  string `toml:"squash"`
	AnonUID *int64 `toml:"anonuid"`
	AnonGID *int64 `toml:"anongid"`
}

// HostEntry is one [[host]] table.
type HostEntry struct {
	Name    string   `toml:"name"`
	MAC     string   `toml:"mac"`
	IP      []string `toml:"ip"`
	Diff    string   `toml:"diff"`
	Squash  string   `toml:"squash"`
	AnonUID *int64   `toml:"anonuid"`
	AnonGID *int64   `toml:"anongid"`
	Prefix  *int     `toml:"prefix"`
	Gateway string   `toml:"gateway"`
	DNS     []string `toml:"dns"`
	Kernel  string   `toml:"kernel"`
	Initrd  string   `toml:"initrd"`
	Args    string   `toml:"args"`
	Boot    string   `toml:"boot"`
}

// Config is a checked configuration with defaults filled in.
type Config struct {
	Path        string // the file read
	Image       string
	Partition   int // -1: automatic
	Layers      []string
	Export      string
	StateDir    string
	Listen      []string
	Port        int
	PortmapPort int
	UDP         bool
	// Advertise is the server address written into nfsroot=; invalid
	// when no boot service is on and none was given.
	Advertise netip.Addr
	Unknown   Unknown
	TFTP      *TFTP // nil: off
	HTTP      *HTTP // nil: off
	DHCP      *DHCP // nil: off
	Hosts     []Host
}

// TFTP is an enabled [tftp] section.
type TFTP struct {
	Listen       string
	BootDirs     []string
	MaxBlockSize int
}

// HTTP is an enabled [http] section.
type HTTP struct {
	Listen  string
	BaseURL string // never empty, no trailing slash
}

// DHCP is an enabled [dhcp] section.
type DHCP struct {
	Mode      string // "proxy" or "full"
	Interface string
	Server    netip.Addr
}

// BootServices reports whether any of TFTP, HTTP and DHCP is on.
func (c *Config) BootServices() bool { return c.TFTP != nil || c.HTTP != nil || c.DHCP != nil }

// Unknown is the policy for hosts not listed.
type Unknown struct {
	Policy           string // "refuse", "throwaway" or "persistent"
	Dir              string
	Squash           string
	AnonUID, AnonGID uint32
}

// Host is one client host.
type Host struct {
	Name             string
	MAC              net.HardwareAddr
	IPs              []netip.Addr
	Diff             string
	Squash           string
	AnonUID, AnonGID uint32
	// Boot settings (see netboot.Host).
	Prefix         int // 24 when not given
	Gateway        netip.Addr
	DNS            []netip.Addr
	Kernel, Initrd string
	Args           string
	Boot           string
}

// Defaults.
const (
	DefaultExport   = "/vmroot"
	DefaultStateDir = "/var/lib/vmroot"
	DefaultPort     = 2049
	DefaultTFTP     = ":69"
	DefaultHTTP     = ":8080"
	anon            = 65534
)

// Error is a configuration error at a place in the file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key path, with [[host]] indexes: host[2].squash
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Load reads and checks the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse checks a configuration read from path (used for messages and for
// relative paths).
func Parse(path string, data []byte) (*Config, error) {
	var f File
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if msg == "" {
				msg = strings.TrimPrefix(lineRE.ReplaceAllString(pe.Error(), ""), "toml: : ")
			}
			return nil, &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: msg}
		}
		// Type mismatches: "toml: line N (last key "k"): ..."
		msg := err.Error()
		if i := strings.Index(msg, "): "); i >= 0 {
			msg = msg[i+3:]
		}
		key := ""
		if m := lastKeyRE.FindStringSubmatch(err.Error()); m != nil {
			key = m[1]
		}
		return nil, &Error{File: path, Line: lineOf(err.Error()), Key: key, Msg: msg}
	}
	p := &parser{path: path, lines: strings.Split(string(data), "\n")}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, p.err(k, "unknown key")
	}
	return p.check(&f)
}

var (
	lineRE    = regexp.MustCompile(`line (\d+)`)
	lastKeyRE = regexp.MustCompile(`last key "([^"]*)"`)
)

func lineOf(msg string) int {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

type parser struct {
	path  string
	lines []string
}

// err makes an Error for key (as toml.Key: table names and keys, array
// tables counted by occurrence), finding its line in the text.
func (p *parser) err(k toml.Key, format string, a ...any) *Error {
	return &Error{File: p.path, Line: p.find(k), Key: keyString(k), Msg: fmt.Sprintf(format, a...)}
}

func keyString(k toml.Key) string { return strings.Join(k, ".") }

// hostKey names key of the i-th [[host]] (0-based).
func hostKey(i int, key string) toml.Key {
	k := toml.Key{fmt.Sprintf("host[%d]", i+1)}
	if key != "" {
		k = append(k, key)
	}
	return k
}

var (
	headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?`)
	keyRE    = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)
)

// find returns the 1-based line of key k, or 0. Keys of the n-th [[host]]
// are written "host[n]"; undecoded keys come as plain "host" paths, whose
// first match is reported.
func (p *parser) find(k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	table, want := "", k[len(k)-1]
	index := 0
	if len(k) > 1 {
		table = strings.Join(k[:len(k)-1], ".")
	}
	if m := regexp.MustCompile(`^(\w+)\[(\d+)\]$`).FindStringSubmatch(table); m != nil {
		table = m[1]
		fmt.Sscan(m[2], &index)
	}
	if m := regexp.MustCompile(`^(\w+)\[(\d+)\]$`).FindStringSubmatch(want); m != nil && len(k) == 1 {
		// A whole [[host]] table.
		n := 0
		for i, l := range p.lines {
			if h := headerRE.FindStringSubmatch(l); h != nil && h[2] == m[1] {
				n++
				if fmt.Sprint(n) == m[2] {
					return i + 1
				}
			}
		}
		return 0
	}
	cur, seen := "", map[string]int{}
	for i, l := range p.lines {
		if h := headerRE.FindStringSubmatch(l); h != nil {
			cur = h[2]
			seen[cur]++
			if table != "" && cur == table && want == "" {
				return i + 1
			}
			continue
		}
		if cur != table || (index > 0 && seen[cur] != index) {
			continue
		}
		if m := keyRE.FindStringSubmatch(l); m != nil && m[1] == want {
			return i + 1
		}
	}
	// A table: point at its header (or the section holding the key).
	for _, name := range []string{strings.Join(k, "."), table} {
		for i, l := range p.lines {
			if h := headerRE.FindStringSubmatch(l); h != nil && name != "" && h[2] == name {
				return i + 1
			}
		}
	}
	return 0
}

func (p *parser) abs(v string) string {
	if v == "" || filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(filepath.Dir(p.path), v)
}

func validSquash(s string) bool {
	return s == "" || s == "root_squash" || s == "no_root_squash" || s == "all_squash"
}

func orSquash(s string) string {
	if s == "" {
		return "root_squash"
	}
	return s
}

func (p *parser) id(k toml.Key, v *int64) (uint32, error) {
	if v == nil {
		return anon, nil
	}
	if *v < 0 || *v > 1<<32-2 {
		return 0, p.err(k, "%d is not a valid uid/gid", *v)
	}
	return uint32(*v), nil
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (p *parser) check(f *File) (*Config, error) {
	c := &Config{Path: p.path, Partition: -1, Export: DefaultExport, StateDir: DefaultStateDir, Port: DefaultPort, UDP: true}
	if f.Image == "" {
		return nil, &Error{File: p.path, Key: "image", Msg: "missing: the base image is required"}
	}
	c.Image = p.abs(f.Image)
	if f.Partition != nil {
		if *f.Partition < 0 {
			return nil, p.err(toml.Key{"partition"}, "must be 0 (whole disk) or a partition number")
		}
		c.Partition = *f.Partition
	}
	for _, l := range f.Layers {
		if l == "" {
			return nil, p.err(toml.Key{"layers"}, "empty path")
		}
		c.Layers = append(c.Layers, p.abs(l))
	}
	if f.Export != "" {
		if !strings.HasPrefix(f.Export, "/") || len(f.Export) > 1024 {
			return nil, p.err(toml.Key{"export"}, "%q is not an absolute path", f.Export)
		}
		c.Export = filepath.Clean(f.Export)
	}
	if f.StateDir != "" {
		c.StateDir = p.abs(f.StateDir)
	}
	c.Listen = f.NFS.Listen
	for _, a := range c.Listen {
		if _, err := netip.ParseAddr(a); err != nil {
			return nil, p.err(toml.Key{"nfs", "listen"}, "%q is not an IP address", a)
		}
	}
	if f.NFS.Port != nil {
		if *f.NFS.Port < 0 || *f.NFS.Port > 65535 {
			return nil, p.err(toml.Key{"nfs", "port"}, "%d is not a port", *f.NFS.Port)
		}
		c.Port = *f.NFS.Port
	}
	if f.NFS.PortmapPort != nil {
		if *f.NFS.PortmapPort < -1 || *f.NFS.PortmapPort > 65535 {
			return nil, p.err(toml.Key{"nfs", "portmap_port"}, "%d is not a port (0: 111 when free, -1: off)", *f.NFS.PortmapPort)
		}
		c.PortmapPort = *f.NFS.PortmapPort
	}
	if f.NFS.UDP != nil {
		c.UDP = *f.NFS.UDP
	}
	u := f.Unknown
	c.Unknown.Policy = u.Policy
	switch u.Policy {
	case "":
		c.Unknown.Policy = "refuse"
	case "refuse":
	case "throwaway", "persistent":
		c.Unknown.Dir = p.abs(u.Dir)
		if c.Unknown.Dir == "" {
			c.Unknown.Dir = filepath.Join(c.StateDir, "unknown")
		}
	default:
		return nil, p.err(toml.Key{"unknown_hosts", "policy"}, "%q: want refuse, throwaway or persistent", u.Policy)
	}
	if !validSquash(u.Squash) {
		return nil, p.err(toml.Key{"unknown_hosts", "squash"}, "%q: want root_squash, no_root_squash or all_squash", u.Squash)
	}
	c.Unknown.Squash = orSquash(u.Squash)
	var err error
	if c.Unknown.AnonUID, err = p.id(toml.Key{"unknown_hosts", "anonuid"}, u.AnonUID); err != nil {
		return nil, err
	}
	if c.Unknown.AnonGID, err = p.id(toml.Key{"unknown_hosts", "anongid"}, u.AnonGID); err != nil {
		return nil, err
	}
	if err := p.services(f, c); err != nil {
		return nil, err
	}
	names, ips, macs := map[string]int{}, map[netip.Addr]int{}, map[string]int{}
	for i, h := range f.Hosts {
		if h.Name == "" {
			return nil, p.err(hostKey(i, ""), "host without a name")
		}
		if !hostNameRE.MatchString(h.Name) || len(h.Name) > 64 {
			return nil, p.err(hostKey(i, "name"), "%q: use letters, digits, '.', '_' and '-'", h.Name)
		}
		if j, dup := names[h.Name]; dup {
			return nil, p.err(hostKey(i, "name"), "%q is also the name of host %d", h.Name, j+1)
		}
		names[h.Name] = i
		hc := Host{Name: h.Name, Squash: orSquash(h.Squash)}
		if h.MAC != "" {
			if hc.MAC, err = net.ParseMAC(h.MAC); err != nil || len(hc.MAC) != 6 {
				return nil, p.err(hostKey(i, "mac"), "%q is not an Ethernet MAC address", h.MAC)
			}
			if j, dup := macs[hc.MAC.String()]; dup {
				return nil, p.err(hostKey(i, "mac"), "%s is also the MAC of host %d", hc.MAC, j+1)
			}
			macs[hc.MAC.String()] = i
		}
		if len(h.IP) == 0 && hc.MAC == nil {
			return nil, p.err(hostKey(i, ""), "host %q has no ip and no mac: hosts are recognised by one of them", h.Name)
		}
		for _, s := range h.IP {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, p.err(hostKey(i, "ip"), "%q is not an IP address", s)
			}
			a = a.Unmap()
			if j, dup := ips[a]; dup {
				return nil, p.err(hostKey(i, "ip"), "%s is also an address of host %d", a, j+1)
			}
			ips[a] = i
			hc.IPs = append(hc.IPs, a)
		}
		hc.Diff = p.abs(h.Diff)
		if hc.Diff == "" {
			hc.Diff = filepath.Join(c.StateDir, "hosts", h.Name)
		}
		if !validSquash(h.Squash) {
			return nil, p.err(hostKey(i, "squash"), "%q: want root_squash, no_root_squash or all_squash", h.Squash)
		}
		if hc.AnonUID, err = p.id(hostKey(i, "anonuid"), h.AnonUID); err != nil {
			return nil, err
		}
		if hc.AnonGID, err = p.id(hostKey(i, "anongid"), h.AnonGID); err != nil {
			return nil, err
		}
		if err := p.bootKeys(i, h, &hc); err != nil {
			return nil, err
		}
		if c.DHCP != nil && c.DHCP.Mode == "full" && hc.MAC != nil && !staticIP(hc).IsValid() {
			return nil, p.err(hostKey(i, ""), "host %q has no IPv4 ip: [dhcp] mode \"full\" leases only static addresses", h.Name)
		}
		c.Hosts = append(c.Hosts, hc)
	}
	if c.Advertise, err = p.advertise(f, c); err != nil {
		return nil, err
	}
	return c, nil
}

// staticIP is the address a host is given by full DHCP and in ip=: its
// first IPv4 one.
func staticIP(h Host) netip.Addr {
	for _, a := range h.IPs {
		if a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// on reports whether a section is present and not switched off.
func on(present bool, enabled *bool) bool { return present && (enabled == nil || *enabled) }

func (p *parser) ipv4(k toml.Key, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Unmap().Is4() {
		return netip.Addr{}, p.err(k, "%q is not an IPv4 address", s)
	}
	return a.Unmap(), nil
}

// hostPort checks a listen address "HOST:PORT" (HOST may be empty: all
// addresses) and reports whether it is a wildcard.
func (p *parser) hostPort(k toml.Key, s string) (wildcard bool, err error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false, p.err(k, "%q: want ADDRESS:PORT", s)
	}
	var n int
	if _, err := fmt.Sscan(port, &n); err != nil || n < 0 || n > 65535 || fmt.Sprint(n) != port {
		return false, p.err(k, "%q: bad port", s)
	}
	if host == "" {
		return true, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false, p.err(k, "%q: %q is not an IP address", s, host)
	}
	return a.IsUnspecified(), nil
}

// InterfaceAddr returns the first IPv4 address of a network interface; a
// variable so tests need no such interface.
var InterfaceAddr = func(name string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, err
	}
	as, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", name)
}

// services checks [tftp], [http] and [dhcp].
func (p *parser) services(f *File, c *Config) error {
	if t := f.TFTP; t != nil && on(true, t.Enabled) {
		c.TFTP = &TFTP{Listen: t.Listen, MaxBlockSize: t.MaxBlockSize}
		if c.TFTP.Listen == "" {
			c.TFTP.Listen = DefaultTFTP
		}
		if _, err := p.hostPort(toml.Key{"tftp", "listen"}, c.TFTP.Listen); err != nil {
			return err
		}
		if t.MaxBlockSize != 0 && (t.MaxBlockSize < 512 || t.MaxBlockSize > 65464) {
			return p.err(toml.Key{"tftp", "max_block_size"}, "%d: want 0 (the MTU decides) or 512-65464", t.MaxBlockSize)
		}
		c.TFTP.BootDirs = []string{"/usr/lib/PXELINUX", "/usr/lib/syslinux/modules/bios"}
		if t.BootDirs != nil {
			c.TFTP.BootDirs = nil
			for _, d := range t.BootDirs {
				if d == "" {
					return p.err(toml.Key{"tftp", "boot_dirs"}, "empty path")
				}
				c.TFTP.BootDirs = append(c.TFTP.BootDirs, p.abs(d))
			}
		}
	}
	if h := f.HTTP; h != nil && on(true, h.Enabled) {
		c.HTTP = &HTTP{Listen: h.Listen, BaseURL: strings.TrimSuffix(h.BaseURL, "/")}
		if c.HTTP.Listen == "" {
			c.HTTP.Listen = DefaultHTTP
		}
		wild, err := p.hostPort(toml.Key{"http", "listen"}, c.HTTP.Listen)
		if err != nil {
			return err
		}
		switch {
		case c.HTTP.BaseURL != "":
			if !strings.HasPrefix(c.HTTP.BaseURL, "http://") || strings.ContainsAny(c.HTTP.BaseURL, " \n\t\"") {
				return p.err(toml.Key{"http", "base_url"}, "%q is not an http:// URL", h.BaseURL)
			}
		case wild:
			return p.err(toml.Key{"http", "listen"}, "%q is a wildcard: set base_url, the URL clients reach this service at", c.HTTP.Listen)
		default:
			c.HTTP.BaseURL = "http://" + c.HTTP.Listen
		}
	}
	if d := f.DHCP; d != nil && on(true, d.Enabled) {
		c.DHCP = &DHCP{Mode: d.Mode, Interface: d.Interface}
		switch d.Mode {
		case "":
			c.DHCP.Mode = "proxy"
		case "proxy", "full":
		default:
			return p.err(toml.Key{"dhcp", "mode"}, "%q: want proxy or full", d.Mode)
		}
		if d.Interface == "" {
			return p.err(toml.Key{"dhcp"}, "interface is required: the link to answer on")
		}
		if d.Server != "" {
			a, err := p.ipv4(toml.Key{"dhcp", "server"}, d.Server)
			if err != nil {
				return err
			}
			c.DHCP.Server = a
		} else {
			a, err := InterfaceAddr(d.Interface)
			if err != nil {
				return p.err(toml.Key{"dhcp", "interface"}, "no server address given and none found: %v", err)
			}
			c.DHCP.Server = a
		}
	}
	return nil
}

// bootKeys checks a host's boot settings.
func (p *parser) bootKeys(i int, h HostEntry, hc *Host) error {
	hc.Prefix = 24
	if h.Prefix != nil {
		if *h.Prefix < 1 || *h.Prefix > 30 {
			return p.err(hostKey(i, "prefix"), "%d: want 1-30", *h.Prefix)
		}
		hc.Prefix = *h.Prefix
	}
	var err error
	if h.Gateway != "" {
		if hc.Gateway, err = p.ipv4(hostKey(i, "gateway"), h.Gateway); err != nil {
			return err
		}
	}
	for _, d := range h.DNS {
		a, err := p.ipv4(hostKey(i, "dns"), d)
		if err != nil {
			return err
		}
		hc.DNS = append(hc.DNS, a)
	}
	for _, kv := range []struct{ key, v string }{{"kernel", h.Kernel}, {"initrd", h.Initrd}} {
		if kv.v == "" || kv.key == "initrd" && kv.v == "none" {
			continue
		}
		if !strings.HasPrefix(kv.v, "/") || strings.ContainsAny(kv.v, " \t\n\r") {
			return p.err(hostKey(i, kv.key), "%q: want an absolute path in the host's view, without spaces", kv.v)
		}
	}
	hc.Kernel, hc.Initrd = h.Kernel, h.Initrd
	if strings.ContainsAny(h.Args, "\n\r") {
		return p.err(hostKey(i, "args"), "kernel arguments are one line")
	}
	hc.Args = strings.TrimSpace(h.Args)
	if h.Boot != "" && h.Boot != "ipxe" && h.Boot != "pxelinux" {
		return p.err(hostKey(i, "boot"), "%q: want ipxe or pxelinux", h.Boot)
	}
	hc.Boot = h.Boot
	return nil
}

// advertise picks the address written into nfsroot=.
func (p *parser) advertise(f *File, c *Config) (netip.Addr, error) {
	if f.NFS.Advertise != "" {
		return p.ipv4(toml.Key{"nfs", "advertise"}, f.NFS.Advertise)
	}
	if c.DHCP != nil {
		return c.DHCP.Server, nil
	}
	for _, l := range c.Listen {
		if a := netip.MustParseAddr(l).Unmap(); a.Is4() && !a.IsUnspecified() {
			return a, nil
		}
	}
	if c.BootServices() {
		return netip.Addr{}, &Error{File: p.path, Key: "nfs.advertise", Msg: "missing: boot services need the NFS server address clients mount (no [dhcp] server or IPv4 [nfs] listen address to default to)"}
	}
	return netip.Addr{}, nil
}

// Table is the boot services' host table: the hosts with a mac, each
// mounting the export, with its first IPv4 ip as its static address.
func (c *Config) Table() (*netboot.Table, error) {
	var hs []netboot.Host
	for _, h := range c.Hosts {
		if h.MAC == nil {
			continue
		}
		hs = append(hs, netboot.Host{
			Name: h.Name, MAC: h.MAC, IP: staticIP(h), Prefix: h.Prefix, Gateway: h.Gateway, DNS: h.DNS,
			Export: c.Export, Kernel: h.Kernel, Initrd: h.Initrd, Args: h.Args, Boot: h.Boot,
		})
	}
	t, err := netboot.NewTable(hs)
	if err != nil {
		return nil, &Error{File: c.Path, Msg: err.Error()}
	}
	return t, nil
}
