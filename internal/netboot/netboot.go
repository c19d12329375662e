// Package netboot holds what vmroot's boot services (TFTP, HTTP, DHCP)
// share: the host table they answer from, the kernel command line that
// mounts a host's root over NFSv3, and how a host's kernel and initrd are
// found in that host's own view of the image.
//
// Everything here is derived from the host table; nothing is copied out of
// the image. Lookups never panic on malformed names or addresses.
package netboot

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
)

// Host is one machine that boots the shared image.
type Host struct {
	Name string
	MAC  net.HardwareAddr // 6-byte Ethernet address (required)

	// Static addressing. IP is optional for proxyDHCP; full DHCP mode and
	// guestinfo (vmx) boots need it.
	IP      netip.Addr
	Prefix  int // netmask length of IP; 0 means 24
	Gateway netip.Addr
	DNS     []netip.Addr

	// Export is the NFS path of this host's root, for example "/hosts/web1".
	Export string
	// Kernel and Initrd are paths inside the host's view; empty means
	// found automatically (see FindBootFiles). Initrd "none" boots without one.
	Kernel, Initrd string
	// Args are extra kernel arguments appended to the generated ones.
	Args string
	// Boot is how an iPXE client of this host boots: "ipxe" (the HTTP
	// script, the default when the HTTP service is on) or "pxelinux".
	Boot string
}

// Netmask returns the dotted netmask of the host's prefix.
func (h *Host) Netmask() netip.Addr {
	p := h.Prefix
	if p <= 0 || p > 32 {
		p = 24
	}
	m := ^uint32(0) << (32 - p)
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// PrefixLen is Prefix with the default applied.
func (h *Host) PrefixLen() int {
	if h.Prefix <= 0 || h.Prefix > 32 {
		return 24
	}
	return h.Prefix
}

// NFSServer says how clients reach the NFS server.
type NFSServer struct {
	Addr netip.Addr // address clients mount from
	// Port is the NFS port; 0 means 2049. MountPort is the MOUNT port; 0
	// means clients ask the portmapper on port 111.
	Port, MountPort int
}

// NFSRootOptions returns the nfsroot= value for h:
// SERVER:EXPORT,vers=3,tcp,nolock plus the ports when they are not the
// standard ones, or when MountPort is set (a client then needs no
// portmapper). nolock because vmroot serves no NLM: a client that tries
// to lock would hang or fail.
func (s NFSServer) NFSRootOptions(h *Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s,vers=3,tcp,nolock", s.Addr, h.Export)
	// Without a portmapper (MountPort set) the kernel needs the NFS port
	// too: it asks rpcbind for any port not given.
	if s.Port != 0 && s.Port != 2049 || s.MountPort != 0 {
		fmt.Fprintf(&b, ",port=%d", s.nfsPort())
	}
	if s.MountPort != 0 {
		fmt.Fprintf(&b, ",mountport=%d,mountproto=tcp", s.MountPort)
	}
	return b.String()
}

func (s NFSServer) nfsPort() int {
	if s.Port == 0 {
		return 2049
	}
	return s.Port
}

// KernelArgs is the kernel command line that boots h with its root on
// NFS. ipArg is the ip= value: "dhcp" when the kernel or initramfs asks
// DHCP, or StaticIPArg(h) when there is no DHCP on the link. boot=nfs
// makes Debian's stock initramfs-tools mount the root over NFS.
func (s NFSServer) KernelArgs(h *Host, ipArg string) string {
	a := "root=/dev/nfs nfsroot=" + s.NFSRootOptions(h) + " ip=" + ipArg + " boot=nfs rw"
	if extra := strings.TrimSpace(h.Args); extra != "" {
		a += " " + extra
	}
	return a
}

// StaticIPArg is the kernel's ip= value for h's static address:
// client::gateway:netmask:hostname::off[:dns0[:dns1]].
func StaticIPArg(h *Host) string {
	gw := ""
	if h.Gateway.IsValid() {
		gw = h.Gateway.String()
	}
	s := fmt.Sprintf("%s::%s:%s:%s::off", h.IP, gw, h.Netmask(), h.Name)
	for i, d := range h.DNS {
		if i == 2 {
			break
		}
		s += ":" + d.String()
	}
	return s
}

// MACDash formats mac as pxelinux and iPXE's ${mac:hexhyp} do: "52-54-00-12-34-56".
func MACDash(mac net.HardwareAddr) string {
	return strings.ReplaceAll(mac.String(), ":", "-")
}

// ParseMAC accepts a 6-byte MAC written with '-' or ':' separators.
func ParseMAC(s string) (net.HardwareAddr, error) {
	if len(s) != 17 {
		return nil, fmt.Errorf("bad MAC address %q", s)
	}
	m, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("bad MAC address %q", s)
	}
	return m, nil
}

// Table is an immutable host table indexed by MAC and by static address.
type Table struct {
	hosts []*Host
	byMAC map[[6]byte]*Host
	byIP  map[netip.Addr]*Host
}

// NewTable checks hosts (a 6-byte MAC each, no duplicate MAC, address or
// name, an absolute export path) and indexes them.
func NewTable(hosts []Host) (*Table, error) {
	t := &Table{byMAC: map[[6]byte]*Host{}, byIP: map[netip.Addr]*Host{}}
	names := map[string]bool{}
	for i := range hosts {
		h := hosts[i]
		h.MAC = append(net.HardwareAddr(nil), h.MAC...)
		h.DNS = append([]netip.Addr(nil), h.DNS...)
		if len(h.MAC) != 6 {
			return nil, fmt.Errorf("host %q: need a 6-byte Ethernet MAC address", h.Name)
		}
		if !strings.HasPrefix(h.Export, "/") {
			return nil, fmt.Errorf("host %q: export %q is not an absolute path", h.Name, h.Export)
		}
		if strings.ContainsAny(h.Export, " ,\n\t") || strings.ContainsAny(h.Args, "\n\r") {
			return nil, fmt.Errorf("host %q: export or kernel args contain a separator", h.Name)
		}
		if !validName(h.Name) {
			return nil, fmt.Errorf("host name %q: use letters, digits, '.', '-' and '_' (at most 63)", h.Name)
		}
		if h.Boot != "" && h.Boot != "ipxe" && h.Boot != "pxelinux" {
			return nil, fmt.Errorf("host %q: boot = %q, want \"ipxe\" or \"pxelinux\"", h.Name, h.Boot)
		}
		var k [6]byte
		copy(k[:], h.MAC)
		if t.byMAC[k] != nil {
			return nil, fmt.Errorf("host %q: MAC %s used twice", h.Name, h.MAC)
		}
		if names[h.Name] {
			return nil, fmt.Errorf("host name %q used twice", h.Name)
		}
		names[h.Name] = true
		hp := &h
		if h.IP.IsValid() {
			if !h.IP.Is4() {
				return nil, fmt.Errorf("host %q: address %s is not IPv4", h.Name, h.IP)
			}
			if t.byIP[h.IP] != nil {
				return nil, fmt.Errorf("host %q: address %s used twice", h.Name, h.IP)
			}
			t.byIP[h.IP] = hp
		}
		t.byMAC[k] = hp
		t.hosts = append(t.hosts, hp)
	}
	return t, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Hosts returns the hosts in table order.
func (t *Table) Hosts() []*Host { return t.hosts }

// ByMAC returns the host with that MAC, or nil.
func (t *Table) ByMAC(mac net.HardwareAddr) *Host {
	if len(mac) != 6 {
		return nil
	}
	var k [6]byte
	copy(k[:], mac)
	return t.byMAC[k]
}

// ByIP returns the host whose static address is ip, or nil.
func (t *Table) ByIP(ip netip.Addr) *Host { return t.byIP[ip.Unmap()] }

// ByName returns the host with that name, or nil.
func (t *Table) ByName(name string) *Host {
	for _, h := range t.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// ViewFunc returns a host's view of its root filesystem (in vmroot serve,
// the host's overlay). netboot reads from it and never closes it.
type ViewFunc func(h *Host) (fsys.FS, error)

// ErrNoBootFile is returned when a host's view has no kernel or initrd.
var ErrNoBootFile = errors.New("no boot file")

// File is one open file of a host's view.
type File struct {
	*io.SectionReader
	ModTime time.Time
}

// Open resolves path in f (following symbolic links, never above the
// root) and opens it if it is a regular file.
func Open(f fsys.FS, path string) (*File, error) {
	ino, err := fsys.Resolve(f, path, true)
	if err != nil {
		return nil, err
	}
	a, err := f.Stat(ino)
	if err != nil {
		return nil, err
	}
	if !a.IsRegular() {
		return nil, &fsys.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	return &File{io.NewSectionReader(fileAt{f, ino}, 0, a.Size), a.Mtime}, nil
}

type fileAt struct {
	f   fsys.FS
	ino uint64
}

func (r fileAt) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(r.ino, p, off) }

// FindBootFiles returns the paths of h's kernel and initrd inside f: the
// configured ones, else /vmlinuz and /initrd.img (Debian's links), else
// /boot/vmlinuz and /boot/initrd.img, else the newest /boot/vmlinuz-VER
// and its /boot/initrd.img-VER (an initrd found no other way is the newest
// /boot/initrd.img-VER). initrd is "" when h.Initrd is "none".
func FindBootFiles(f fsys.FS, h *Host) (kernel, initrd string, err error) {
	isFile := func(p string) bool {
		ino, err := fsys.Resolve(f, p, true)
		if err != nil {
			return false
		}
		a, err := f.Stat(ino)
		return err == nil && a.IsRegular()
	}
	kernel = h.Kernel
	ver := ""
	if kernel == "" {
		for _, p := range []string{"/vmlinuz", "/boot/vmlinuz"} {
			if isFile(p) {
				kernel = p
				break
			}
		}
	}
	if kernel == "" {
		kernel, ver = newest(f, "vmlinuz-")
	}
	if kernel == "" || !isFile(kernel) {
		return "", "", fmt.Errorf("%w: no kernel (looked for %s)", ErrNoBootFile, orDefault(h.Kernel, "/vmlinuz, /boot/vmlinuz, /boot/vmlinuz-*"))
	}
	switch initrd = h.Initrd; initrd {
	case "none":
		return kernel, "", nil
	case "":
		cands := []string{"/initrd.img", "/boot/initrd.img"}
		if ver != "" {
			cands = []string{"/boot/initrd.img-" + ver}
		} else if strings.HasPrefix(kernel, "/boot/vmlinuz-") {
			cands = append([]string{"/boot/initrd.img-" + strings.TrimPrefix(kernel, "/boot/vmlinuz-")}, cands...)
		}
		if p, _ := newest(f, "initrd.img-"); p != "" && ver == "" {
			cands = append(cands, p)
		}
		for _, p := range cands {
			if isFile(p) {
				return kernel, p, nil
			}
		}
		return "", "", fmt.Errorf("%w: no initrd for %s (looked for %s)", ErrNoBootFile, kernel, strings.Join(cands, ", "))
	}
	if !isFile(initrd) {
		return "", "", fmt.Errorf("%w: initrd %s not found", ErrNoBootFile, initrd)
	}
	return kernel, initrd, nil
}

func orDefault(s, d string) string {
	if s != "" {
		return s
	}
	return d
}

// newest returns /boot/PREFIX<ver> with the highest version and the version.
func newest(f fsys.FS, prefix string) (string, string) {
	boot, err := fsys.Resolve(f, "/boot", true)
	if err != nil {
		return "", ""
	}
	ents, err := f.ReadDir(boot)
	if err != nil {
		return "", ""
	}
	best := ""
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name, prefix)
		if !ok || v == "" {
			continue
		}
		if best == "" || VersionLess(best, v) {
			best = v
		}
	}
	if best == "" {
		return "", ""
	}
	return "/boot/" + prefix + best, best
}

// VersionLess orders version strings with digit runs compared as numbers
// ("6.1.0-9" < "6.1.0-10"), as kernel versions need.
func VersionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digits(a)
			nb, rb := digits(b)
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digits splits off a run of digits, without leading zeros, so runs of
// any length compare by length and then bytewise.
func digits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return strings.TrimLeft(s[:i], "0"), s[i:]
}
