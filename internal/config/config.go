// Package config reads vmroot's server configuration, a TOML file:
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
//
//	[unknown_hosts]
//	policy = "refuse"            # or "throwaway", "persistent"
//	dir = "/srv/diffs/unknown"   # per-address diffs for the other policies
//	squash = "root_squash"
//
//	[[host]]
//	name = "web1"
//	mac = "52:54:00:12:34:56"
//	ip = ["10.0.0.11"]
//	diff = "/srv/diffs/web1"     # default: STATE_DIR/hosts/NAME
//	squash = "root_squash"       # or no_root_squash, all_squash
//	anonuid = 65534
//	anongid = 65534
//
// Relative paths are taken from the file's directory. Unknown keys are
// errors, and every error names the file, the line and the key. New
// sections (netboot services) are added as fields of File.
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
	Hosts     []HostEntry  `toml:"host"`
}

// NFS is the [nfs] section.
type NFS struct {
	Listen      []string `toml:"listen"`
	Port        *int     `toml:"port"`
	PortmapPort *int     `toml:"portmap_port"`
	UDP         *bool    `toml:"udp"`
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
	Unknown     Unknown
	Hosts       []Host
}

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
}

// Defaults.
const (
	DefaultExport   = "/vmroot"
	DefaultStateDir = "/var/lib/vmroot"
	DefaultPort     = 2049
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
			if hc.MAC, err = net.ParseMAC(h.MAC); err != nil {
				return nil, p.err(hostKey(i, "mac"), "%q is not a MAC address", h.MAC)
			}
			if j, dup := macs[hc.MAC.String()]; dup {
				return nil, p.err(hostKey(i, "mac"), "%s is also the MAC of host %d", hc.MAC, j+1)
			}
			macs[hc.MAC.String()] = i
		}
		if len(h.IP) == 0 {
			return nil, p.err(hostKey(i, ""), "host %q has no ip: hosts are recognised by address", h.Name)
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
		c.Hosts = append(c.Hosts, hc)
	}
	return c, nil
}
