// Package dhcp answers PXE and iPXE clients of the host table (packets
// parsed and built with insomniacslk/dhcp), in one of two modes:
//
//   - Proxy: a proxyDHCP server (PXE 2.1) beside an existing DHCP server.
//     It answers a PXE client's DHCPDISCOVER on port 67 with an offer that
//     leases nothing (yiaddr 0) but carries "PXEClient", next-server and the
//     boot file, and answers its DHCPREQUEST on port 4011 with the same in
//     an ACK. Clients that are not PXE clients, and MACs not in the host
//     table, are never answered.
//   - Full: a DHCP server for an isolated link that leases each host its
//     static address from the host table (and nothing to unknown MACs),
//     adding the boot information for PXE clients.
//
// An iPXE client (user class "iPXE", or iPXE's option 175) is given the
// URL of its HTTP boot script when the HTTP service is configured and the
// host does not ask for pxelinux; other PXE clients get the BIOS boot file
// (pxelinux.0), or the configured EFI boot file when option 93 names an
// EFI architecture.
//
// Every request is handled in the reading goroutine, so a flood of packets
// costs no more than one packet at a time; malformed packets are dropped.
package dhcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vmroot/vmroot/internal/netboot"
)

// Mode selects proxyDHCP or full DHCP.
type Mode int

const (
	Proxy Mode = iota
	Full
)

func (m Mode) String() string {
	if m == Full {
		return "full"
	}
	return "proxy"
}

// Ports of DHCP (RFC 2131) and the PXE boot server (PXE 2.1).
const (
	ServerPort = 67
	ClientPort = 68
	PXEPort    = 4011
)

// Config configures a Server.
type Config struct {
	Mode  Mode
	Table *netboot.Table
	// ServerIP is vmroot's address on the boot link: next-server and
	// server identifier.
	ServerIP netip.Addr
	// Interface is the link to serve. Required by ListenAndServe: replies
	// to clients without an address are broadcast on it.
	Interface string
	// BIOSBootFile is the TFTP name for BIOS PXE clients; "" means pxelinux.0.
	BIOSBootFile string
	// EFIBootFile is the TFTP name for UEFI PXE clients; "" means they are
	// not answered (except iPXE clients given an HTTP script).
	EFIBootFile string
	// HTTPBase is the HTTP boot service's URL ("http://192.0.2.1:8080");
	// "" means iPXE clients are treated as plain PXE clients.
	HTTPBase string
	// LeaseTime of full-mode leases; 0 means one hour.
	LeaseTime time.Duration
	Logger    *slog.Logger
}

// Server is a proxyDHCP or DHCP server.
type Server struct {
	cfg   Config
	table atomic.Pointer[netboot.Table]
	log   *slog.Logger

	mu    sync.Mutex
	conns []net.PacketConn
}

// New checks cfg and makes a server.
func New(cfg Config) (*Server, error) {
	if cfg.Table == nil {
		return nil, errors.New("dhcp: Config needs a Table")
	}
	if !cfg.ServerIP.Is4() {
		return nil, fmt.Errorf("dhcp: server address %v is not IPv4", cfg.ServerIP)
	}
	if cfg.BIOSBootFile == "" {
		cfg.BIOSBootFile = "pxelinux.0"
	}
	if len(cfg.BIOSBootFile) > 127 || len(cfg.EFIBootFile) > 127 || len(cfg.HTTPBase)+len("/ipxe/")+17 > 127 {
		return nil, errors.New("dhcp: boot file names must fit the 128-byte file field")
	}
	cfg.HTTPBase = strings.TrimSuffix(cfg.HTTPBase, "/")
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = time.Hour
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if err := s.SetTable(cfg.Table); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", "dhcp", "mode", cfg.Mode.String())
	return s, nil
}

// SetTable replaces the host table; in full mode every host needs a
// static address, else the old table is kept.
func (s *Server) SetTable(t *netboot.Table) error {
	if s.cfg.Mode == Full {
		for _, h := range t.Hosts() {
			if !h.IP.IsValid() {
				return fmt.Errorf("dhcp: full mode: host %q has no static address", h.Name)
			}
		}
	}
	s.table.Store(t)
	return nil
}

// Client describes what a request says about the client.
type Client struct {
	PXE  bool   // vendor class begins "PXEClient"
	IPXE bool   // user class "iPXE" or option 175
	Arch uint16 // option 93's first entry (0: BIOS, or absent)
}

// Classify reads the PXE-related options of req; malformed ones count as absent.
func Classify(req *dhcpv4.DHCPv4) Client {
	var c Client
	c.PXE = bytes.HasPrefix(req.Options.Get(dhcpv4.OptionClassIdentifier), []byte("PXEClient"))
	if uc := req.Options.Get(dhcpv4.OptionUserClassInformation); uc != nil {
		c.IPXE = string(uc) == "iPXE" || rfc3004Has(uc, "iPXE")
	}
	if req.Options.Has(dhcpv4.GenericOptionCode(175)) {
		c.IPXE = true
	}
	if a := req.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(a) >= 2 {
		c.Arch = uint16(a[0])<<8 | uint16(a[1])
	}
	return c
}

// rfc3004Has reports whether the RFC 3004 user class list b holds s.
func rfc3004Has(b []byte, s string) bool {
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || 1+n > len(b) {
			return false
		}
		if string(b[1:1+n]) == s {
			return true
		}
		b = b[1+n:]
	}
	return false
}

// BootFile is what a client of host h is told to load, or "" when it
// should not be answered.
func (s *Server) BootFile(h *netboot.Host, c Client) string {
	if c.IPXE && s.cfg.HTTPBase != "" && h.Boot != "pxelinux" {
		return s.cfg.HTTPBase + "/ipxe/" + netboot.MACDash(h.MAC)
	}
	if c.Arch == 0 {
		return s.cfg.BIOSBootFile
	}
	return s.cfg.EFIBootFile
}

// Reply computes the answer to req, which arrived on port (67 or 4011)
// from peer, and where to send it. A nil reply means no answer; the
// string says why (for the log).
func (s *Server) Reply(req *dhcpv4.DHCPv4, port int, peer *net.UDPAddr) (*dhcpv4.DHCPv4, *net.UDPAddr, string) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil, "not a request"
	}
	if len(req.ClientHWAddr) != 6 {
		return nil, nil, "not an Ethernet client"
	}
	host := s.table.Load().ByMAC(req.ClientHWAddr)
	if host == nil {
		return nil, nil, "MAC not in the host table"
	}
	c := Classify(req)
	mt := req.MessageType()
	boot := ""
	if c.PXE || c.IPXE {
		boot = s.BootFile(host, c)
	}
	if port == PXEPort {
		// The PXE boot server: a client with an address asks for its boot file.
		if s.cfg.Mode != Proxy || (mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform) {
			return nil, nil, "not a boot server request"
		}
		if boot == "" {
			return nil, nil, "no boot file for this client"
		}
		resp, err := s.base(req, dhcpv4.MessageTypeAck, host, c, boot)
		if err != nil {
			return nil, nil, err.Error()
		}
		return resp, peer, ""
	}
	switch s.cfg.Mode {
	case Proxy:
		if mt != dhcpv4.MessageTypeDiscover {
			return nil, nil, "proxyDHCP answers only DISCOVER on port 67"
		}
		if !c.PXE && !c.IPXE {
			return nil, nil, "not a PXE client"
		}
		if boot == "" {
			return nil, nil, "no boot file for this client"
		}
		resp, err := s.base(req, dhcpv4.MessageTypeOffer, host, c, boot)
		if err != nil {
			return nil, nil, err.Error()
		}
		return resp, s.dest(req, false), ""
	}
	// Full DHCP.
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		resp, err := s.lease(req, dhcpv4.MessageTypeOffer, host, c, boot)
		if err != nil {
			return nil, nil, err.Error()
		}
		return resp, s.dest(req, false), ""
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.cfg.ServerIP.AsSlice()) {
			return nil, nil, "client chose another server"
		}
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr
		}
		if !want.Equal(host.IP.AsSlice()) {
			nak, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP.AsSlice())))
			if err != nil {
				return nil, nil, err.Error()
			}
			return nak, s.dest(req, true), ""
		}
		resp, err := s.lease(req, dhcpv4.MessageTypeAck, host, c, boot)
		if err != nil {
			return nil, nil, err.Error()
		}
		return resp, s.dest(req, false), ""
	case dhcpv4.MessageTypeInform:
		resp, err := s.base(req, dhcpv4.MessageTypeAck, host, c, boot)
		if err != nil {
			return nil, nil, err.Error()
		}
		s.addNetwork(resp, req, host)
		return resp, s.dest(req, false), ""
	}
	return nil, nil, "message type " + mt.String() + " needs no answer"
}

// base is a reply carrying the server identifier and, for PXE clients,
// the boot information.
func (s *Server) base(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, h *netboot.Host, c Client, boot string) (*dhcpv4.DHCPv4, error) {
	sip := s.cfg.ServerIP.AsSlice()
	resp, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sip)))
	if err != nil {
		return nil, err
	}
	if boot == "" {
		return resp, nil
	}
	resp.ServerIPAddr = sip
	resp.BootFileName = boot
	if c.PXE {
		resp.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
		// PXE discovery control: boot the file named here, no boot server discovery.
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
		if g := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); g != nil {
			resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, g))
		}
	}
	if req.IsOptionRequested(dhcpv4.OptionTFTPServerName) {
		resp.UpdateOption(dhcpv4.OptTFTPServerName(s.cfg.ServerIP.String()))
	}
	if req.IsOptionRequested(dhcpv4.OptionBootfileName) {
		resp.UpdateOption(dhcpv4.OptBootFileName(boot))
	}
	return resp, nil
}

func (s *Server) lease(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, h *netboot.Host, c Client, boot string) (*dhcpv4.DHCPv4, error) {
	resp, err := s.base(req, mt, h, c, boot)
	if err != nil {
		return nil, err
	}
	resp.YourIPAddr = h.IP.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(s.cfg.LeaseTime))
	s.addNetwork(resp, req, h)
	return resp, nil
}

func (s *Server) addNetwork(resp, req *dhcpv4.DHCPv4, h *netboot.Host) {
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.IPMask(h.Netmask().AsSlice())))
	if h.Gateway.IsValid() {
		resp.UpdateOption(dhcpv4.OptRouter(h.Gateway.AsSlice()))
	}
	if len(h.DNS) > 0 {
		var d []net.IP
		for _, a := range h.DNS {
			d = append(d, a.AsSlice())
		}
		resp.UpdateOption(dhcpv4.OptDNS(d...))
	}
	resp.UpdateOption(dhcpv4.OptHostName(h.Name))
}

// dest follows RFC 2131 4.1: a relay gets it on port 67, a client with an
// address by unicast, any other (and every NAK) by broadcast.
func (s *Server) dest(req *dhcpv4.DHCPv4, nak bool) *net.UDPAddr {
	if gi := req.GatewayIPAddr; gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: ServerPort}
	}
	if ci := req.ClientIPAddr; !nak && ci != nil && !ci.IsUnspecified() && !req.IsBroadcast() {
		return &net.UDPAddr{IP: ci, Port: ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
}

// ListenAndServe opens the sockets (Listen) and serves until ctx is done
// or Close is called.
func (s *Server) ListenAndServe(ctx context.Context) error {
	conns, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, conns)
}

// Listen opens port 67 (and, in proxy mode, 4011) bound to cfg.Interface,
// in the calling thread's network namespace.
func (s *Server) Listen() (map[int]net.PacketConn, error) {
	if s.cfg.Interface == "" {
		return nil, errors.New("dhcp: Config.Interface is required to serve")
	}
	c67, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{IP: net.IPv4zero, Port: ServerPort})
	if err != nil {
		return nil, fmt.Errorf("dhcp: port %d on %s: %w", ServerPort, s.cfg.Interface, err)
	}
	conns := map[int]net.PacketConn{ServerPort: c67}
	if s.cfg.Mode == Proxy {
		c4011, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{IP: net.IPv4zero, Port: PXEPort})
		if err != nil {
			c67.Close()
			return nil, fmt.Errorf("dhcp: port %d on %s: %w", PXEPort, s.cfg.Interface, err)
		}
		conns[PXEPort] = c4011
	}
	return conns, nil
}

// Serve serves on already open sockets, keyed by the port each stands
// for (ServerPort, PXEPort). It closes them when it returns.
func (s *Server) Serve(ctx context.Context, conns map[int]net.PacketConn) error {
	s.mu.Lock()
	for _, c := range conns {
		s.conns = append(s.conns, c)
	}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for port, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.loop(c, port)
		}()
	}
	s.log.Info("serving", "interface", s.cfg.Interface, "server", s.cfg.ServerIP)
	wg.Wait()
	close(errs)
	if ctx.Err() != nil {
		return nil
	}
	return <-errs
}

// Close stops Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	return nil
}

func (s *Server) loop(c net.PacketConn, port int) error {
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		peer, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.log.Debug("bad packet", "from", peer, "err", err)
			continue
		}
		resp, dst, why := s.Reply(req, port, peer)
		if resp == nil {
			s.log.Debug("not answered", "port", port, "mac", req.ClientHWAddr, "type", req.MessageType(), "reason", why)
			continue
		}
		if _, err := c.WriteTo(resp.ToBytes(), dst); err != nil {
			s.log.Warn("send failed", "to", dst, "err", err)
			continue
		}
		s.log.Info("answered", "port", port, "mac", req.ClientHWAddr, "request", req.MessageType(),
			"reply", resp.MessageType(), "yiaddr", resp.YourIPAddr, "file", resp.BootFileName, "to", dst)
	}
}
