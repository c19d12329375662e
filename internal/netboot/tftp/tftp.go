// Package tftp serves the files a PXE client needs to boot a host from the
// host table over TFTP (on pin/tftp): pxelinux.0 and its modules from
// configured host files, a generated pxelinux.cfg/01-<mac> per host, and
// the host's kernel and initrd read from that host's own view of the image.
//
// The served set is virtual and closed: a name is served only if it is one
// of those, so "../", absolute host paths and every other name get a TFTP
// error. Write requests are refused. Read-only: nothing is ever written.
//
// Names served (a leading "/" is ignored):
//
//	pxelinux.0, ldlinux.c32, ...       Config.Static
//	pxelinux.cfg/01-aa-bb-cc-dd-ee-ff  generated for the host with that MAC
//	01-aa-bb-cc-dd-ee-ff/vmlinuz       that host's kernel (and initrd.img)
//	vmlinuz, initrd.img                the kernel and initrd of the host whose
//	                                   static address the request comes from
package tftp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	ptftp "github.com/pin/tftp/v3"
	"github.com/vmroot/vmroot/internal/netboot"
	"golang.org/x/net/ipv4"
)

// Config configures a Server.
type Config struct {
	Table *netboot.Table
	NFS   netboot.NFSServer
	View  netboot.ViewFunc
	// Static maps served names (such as "pxelinux.0") to files on the
	// vmroot host. Only these names are served from the host's disk.
	Static map[string]string
	// MaxBlockSize caps the negotiated blksize (0: the interface MTU
	// decides, as pin/tftp does by default).
	MaxBlockSize int
	Timeout      time.Duration // per packet; 0 means 5 s
	Retries      int           // 0 means 5
	Logger       *slog.Logger
}

// Debian's locations of the BIOS pxelinux files (packages pxelinux and
// syslinux-common).
var DebianDirs = []string{"/usr/lib/PXELINUX", "/usr/lib/syslinux/modules/bios"}

// FindStatic maps each name to the first dir that holds it, so a
// configuration can list names ("pxelinux.0", "ldlinux.c32", "menu.c32")
// and directories instead of full paths.
func FindStatic(dirs []string, names []string) (map[string]string, error) {
	m := map[string]string{}
	for _, n := range names {
		if _, ok := cleanName(n); !ok {
			return nil, fmt.Errorf("tftp: bad file name %q", n)
		}
		for _, d := range dirs {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				m[n] = p
				break
			}
		}
		if m[n] == "" {
			return nil, fmt.Errorf("tftp: %s not found in %s (Debian: apt-get install pxelinux syslinux-common)", n, strings.Join(dirs, ", "))
		}
	}
	return m, nil
}

// Server is a TFTP server for the boot files of a host table.
type Server struct {
	cfg   Config
	table atomic.Pointer[netboot.Table]
	log   *slog.Logger
	srv   *ptftp.Server
}

// New checks cfg and makes a server.
func New(cfg Config) (*Server, error) {
	if cfg.Table == nil || cfg.View == nil {
		return nil, errors.New("tftp: Config needs Table and View")
	}
	for n := range cfg.Static {
		if c, ok := cleanName(n); !ok || c != n {
			return nil, fmt.Errorf("tftp: bad static file name %q", n)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.table.Store(cfg.Table)
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", "tftp")
	s.srv = ptftp.NewServer(s.read, nil)
	if cfg.Timeout > 0 {
		s.srv.SetTimeout(cfg.Timeout)
	}
	if cfg.Retries > 0 {
		s.srv.SetRetries(cfg.Retries)
	}
	if cfg.MaxBlockSize > 0 {
		s.srv.SetBlockSize(cfg.MaxBlockSize)
	}
	s.srv.SetHook(hook{s.log})
	return s, nil
}

// SetTable replaces the host table; transfers in flight keep their host.
func (s *Server) SetTable(t *netboot.Table) { s.table.Store(t) }

// Listen opens a UDP socket on addr ("192.0.2.1:69") for Serve. It turns on
// per-packet destination and interface info before returning: the kernel
// only attaches it to datagrams queued after that, and a request without it
// is held to 512-byte blocks.
func Listen(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, err
	}
	if err := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tftp: %s: %w", addr, err)
	}
	return conn, nil
}

// Serve answers requests arriving on conn until Shutdown. Each transfer
// runs from its own UDP port, bound to the address the request came to.
func (s *Server) Serve(conn net.PacketConn) error { return s.srv.Serve(conn) }

// ListenAndServe listens on addr ("192.0.2.1:69") and serves.
func (s *Server) ListenAndServe(addr string) error { return s.srv.ListenAndServe(addr) }

// Shutdown stops serving and waits for running transfers to end.
func (s *Server) Shutdown() { s.srv.Shutdown() }

// errNotFound is what clients see for every name outside the set; the log
// says why.
var errNotFound = errors.New("file not found")

func (s *Server) read(name string, rf io.ReaderFrom) error {
	var client netip.Addr
	if ot, ok := rf.(ptftp.OutgoingTransfer); ok {
		ra := ot.RemoteAddr()
		client, _ = netip.AddrFromSlice(ra.IP)
		client = client.Unmap()
	}
	r, size, closer, err := s.Open(name, client)
	if err != nil {
		s.log.Info("refused", "file", name, "client", client, "reason", err)
		return errNotFound
	}
	defer closer()
	if ot, ok := rf.(ptftp.OutgoingTransfer); ok {
		ot.SetSize(size)
	}
	_, err = rf.ReadFrom(io.LimitReader(r, size))
	return err
}

// Open returns the content of a served name as client would get it,
// with its size. It is what the TFTP read handler calls.
func (s *Server) Open(name string, client netip.Addr) (io.Reader, int64, func(), error) {
	n, ok := cleanName(name)
	if !ok {
		return nil, 0, nil, fmt.Errorf("name outside the served set")
	}
	if p, ok := s.cfg.Static[n]; ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, 0, nil, fmt.Errorf("static file %s is not a regular file", p)
		}
		return f, st.Size(), func() { f.Close() }, nil
	}
	// The client's own host, when its address is in the table, may fetch
	// only its own files.
	self := s.table.Load().ByIP(client)
	hostByMAC := func(m string) (*netboot.Host, error) {
		rest, ok := strings.CutPrefix(m, "01-")
		if !ok {
			return nil, errors.New("name outside the served set")
		}
		mac, err := netboot.ParseMAC(rest)
		if err != nil {
			return nil, err
		}
		h := s.table.Load().ByMAC(mac)
		if h == nil {
			return nil, fmt.Errorf("no host with MAC %s", mac)
		}
		if self != nil && self != h {
			return nil, fmt.Errorf("client %s is host %q, not %q", client, self.Name, h.Name)
		}
		return h, nil
	}
	dir, base, hasDir := strings.Cut(n, "/")
	switch {
	case hasDir && dir == "pxelinux.cfg":
		h, err := hostByMAC(strings.ToLower(base))
		if err != nil {
			return nil, 0, nil, err
		}
		cfg, err := s.pxeConfig(h)
		if err != nil {
			return nil, 0, nil, err
		}
		return strings.NewReader(cfg), int64(len(cfg)), func() {}, nil
	case hasDir && (base == "vmlinuz" || base == "initrd.img"):
		h, err := hostByMAC(strings.ToLower(dir))
		if err != nil {
			return nil, 0, nil, err
		}
		return s.bootFile(h, base)
	case !hasDir && (n == "vmlinuz" || n == "initrd.img"):
		if self == nil {
			return nil, 0, nil, fmt.Errorf("client %s has no static address in the host table", client)
		}
		return s.bootFile(self, n)
	}
	return nil, 0, nil, errors.New("name outside the served set")
}

func (s *Server) bootFile(h *netboot.Host, which string) (io.Reader, int64, func(), error) {
	view, err := s.cfg.View(h)
	if err != nil {
		return nil, 0, nil, err
	}
	kernel, initrd, err := netboot.FindBootFiles(view, h)
	if err != nil {
		return nil, 0, nil, err
	}
	p := kernel
	if which == "initrd.img" {
		if initrd == "" {
			return nil, 0, nil, fmt.Errorf("host %q boots without an initrd", h.Name)
		}
		p = initrd
	}
	f, err := netboot.Open(view, p)
	if err != nil {
		return nil, 0, nil, err
	}
	return f, f.Size(), func() {}, nil
}

func (s *Server) pxeConfig(h *netboot.Host) (string, error) {
	view, err := s.cfg.View(h)
	if err != nil {
		return "", err
	}
	_, initrd, err := netboot.FindBootFiles(view, h)
	if err != nil {
		return "", err
	}
	return PXELinuxConfig(s.cfg.NFS, h, initrd != ""), nil
}

// PXELinuxConfig is the pxelinux.cfg/01-<mac> file for h: boot at once,
// kernel and initrd from the host's own TFTP names, root on NFS.
func PXELinuxConfig(nfs netboot.NFSServer, h *netboot.Host, withInitrd bool) string {
	d := "01-" + netboot.MACDash(h.MAC)
	var b strings.Builder
	fmt.Fprintf(&b, "# vmroot: host %s\nDEFAULT vmroot\nPROMPT 0\nTIMEOUT 0\nLABEL vmroot\n", h.Name)
	fmt.Fprintf(&b, "  KERNEL %s/vmlinuz\n", d)
	if withInitrd {
		fmt.Fprintf(&b, "  INITRD %s/initrd.img\n", d)
	}
	fmt.Fprintf(&b, "  APPEND %s\n", nfs.KernelArgs(h, "dhcp"))
	return b.String()
}

// cleanName normalises a requested name to the form keys of the served
// set have, rejecting anything that is not a plain relative path.
func cleanName(name string) (string, bool) {
	if len(name) == 0 || len(name) > 255 {
		return "", false
	}
	name = strings.TrimPrefix(name, "/")
	if strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return "", false
		}
	}
	return name, true
}

type hook struct{ log *slog.Logger }

func (h hook) OnSuccess(st ptftp.TransferStats) {
	h.log.Info("sent", "file", st.Filename, "client", st.RemoteAddr, "blksize", st.Opts["blksize"],
		"tsize", st.Opts["tsize"], "datagrams", st.DatagramsSent, "duration", st.Duration)
}

func (h hook) OnFailure(st ptftp.TransferStats, err error) {
	if st.Filename == "" {
		h.log.Debug("bad packet", "err", err)
		return
	}
	h.log.Info("transfer failed", "file", st.Filename, "client", st.RemoteAddr, "err", err)
}
