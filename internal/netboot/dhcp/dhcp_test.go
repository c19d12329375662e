package dhcp

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

var (
	mac1    = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 1}
	mac2    = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 2}
	macNone = net.HardwareAddr{0x52, 0x54, 0, 0x99, 0x99, 0x99}
	srvIP   = netip.MustParseAddr("192.0.2.1")
)

func table(t testing.TB) *netboot.Table {
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "web1", MAC: mac1, IP: netip.MustParseAddr("192.0.2.11"), Prefix: 24,
			Gateway: netip.MustParseAddr("192.0.2.1"), DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Export: "/hosts/web1"},
		{Name: "web2", MAC: mac2, IP: netip.MustParseAddr("192.0.2.12"), Prefix: 25, Export: "/hosts/web2", Boot: "pxelinux"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func server(t testing.TB, mode Mode, efi string) *Server {
	s, err := New(Config{Mode: mode, Table: table(t), ServerIP: srvIP, EFIBootFile: efi,
		HTTPBase: "http://192.0.2.1:8080/", Logger: slog.New(&netboottest.Recorder{})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Request modifiers a BIOS PXE ROM, iPXE and an EFI ROM send.
var (
	pxeBIOS = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 0}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, make([]byte, 16)...)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionBootfileName, dhcpv4.OptionTFTPServerName),
	}
	ipxe = append(append([]dhcpv4.Modifier{}, pxeBIOS...), dhcpv4.WithUserClass("iPXE", false),
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{0x13, 1, 1}))
	pxeEFI = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 7}),
	}
)

// wire round-trips a packet through its encoding, as the network would.
func wire(t testing.TB, p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	q, err := dhcpv4.FromBytes(p.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func discover(t testing.TB, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return wire(t, d)
}

func TestClassify(t *testing.T) {
	if c := Classify(discover(t, mac1, pxeBIOS...)); c != (Client{PXE: true}) {
		t.Errorf("BIOS PXE: %+v", c)
	}
	if c := Classify(discover(t, mac1, ipxe...)); c != (Client{PXE: true, IPXE: true}) {
		t.Errorf("iPXE: %+v", c)
	}
	if c := Classify(discover(t, mac1, dhcpv4.WithUserClass("iPXE", true))); c != (Client{IPXE: true}) {
		t.Errorf("RFC 3004 user class iPXE: %+v", c)
	}
	if c := Classify(discover(t, mac1, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{1}))); !c.IPXE {
		t.Errorf("option 175: %+v", c)
	}
	if c := Classify(discover(t, mac1, pxeEFI...)); c != (Client{PXE: true, Arch: 7}) {
		t.Errorf("EFI: %+v", c)
	}
	if c := Classify(discover(t, mac1, dhcpv4.WithUserClass("iPXEx", false),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{7}))); c != (Client{}) {
		t.Errorf("near misses and a short option 93: %+v", c)
	}
}

func TestProxyOffer(t *testing.T) {
	s := server(t, Proxy, "")
	req := discover(t, mac1, pxeBIOS...)
	resp, dst, why := s.Reply(req, ServerPort, &net.UDPAddr{IP: net.IPv4zero, Port: ClientPort})
	if resp == nil {
		t.Fatalf("no offer: %s", why)
	}
	resp = wire(t, resp)
	if resp.MessageType() != dhcpv4.MessageTypeOffer || resp.TransactionID != req.TransactionID ||
		!resp.YourIPAddr.IsUnspecified() || !resp.ServerIPAddr.Equal(net.IPv4(192, 0, 2, 1)) ||
		resp.BootFileName != "pxelinux.0" || resp.ClassIdentifier() != "PXEClient" ||
		!resp.ServerIdentifier().Equal(net.IPv4(192, 0, 2, 1)) || resp.BootFileNameOption() != "pxelinux.0" ||
		resp.TFTPServerName() != "192.0.2.1" || resp.ClientHWAddr.String() != mac1.String() {
		t.Errorf("proxy offer:\n%s", resp.Summary())
	}
	if got := resp.Options.Get(dhcpv4.OptionVendorSpecificInformation); string(got) != "\x06\x01\x08\xff" {
		t.Errorf("option 43 = %x", got)
	}
	if got := resp.Options.Get(dhcpv4.OptionClientMachineIdentifier); len(got) != 17 {
		t.Errorf("GUID not echoed: %x", got)
	}
	if resp.SubnetMask() != nil || resp.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Errorf("a proxy offer leases nothing:\n%s", resp.Summary())
	}
	if dst.String() != "255.255.255.255:68" {
		t.Errorf("sent to %s", dst)
	}

	// iPXE gets the HTTP script, unless its host asks for pxelinux.
	resp, _, _ = s.Reply(discover(t, mac1, ipxe...), ServerPort, nil)
	if resp == nil || resp.BootFileName != "http://192.0.2.1:8080/ipxe/52-54-00-12-34-01" {
		t.Errorf("iPXE: %v", resp)
	}
	resp, _, _ = s.Reply(discover(t, mac2, ipxe...), ServerPort, nil)
	if resp == nil || resp.BootFileName != "pxelinux.0" {
		t.Errorf("iPXE, host boot=pxelinux: %v", resp)
	}

	// Not answered: unknown MAC, non-PXE client, EFI without an EFI file,
	// a REQUEST on 67 (it belongs to the real DHCP server).
	for name, req := range map[string]*dhcpv4.DHCPv4{
		"unknown MAC": discover(t, macNone, pxeBIOS...),
		"not PXE":     discover(t, mac1),
		"EFI":         discover(t, mac1, pxeEFI...),
		"REQUEST":     wire(t, must(dhcpv4.NewRequestFromOffer(offerFor(t, mac1), pxeBIOS...))),
	} {
		if resp, _, why := s.Reply(req, ServerPort, nil); resp != nil {
			t.Errorf("%s answered:\n%s", name, resp.Summary())
		} else if why == "" {
			t.Errorf("%s: no reason", name)
		}
	}
	resp, _, _ = server(t, Proxy, "efi/grubnetx64.efi").Reply(discover(t, mac1, pxeEFI...), ServerPort, nil)
	if resp == nil || resp.BootFileName != "efi/grubnetx64.efi" {
		t.Errorf("EFI with a file: %v", resp)
	}
}

// offerFor is a full-mode style offer from another DHCP server.
func offerFor(t testing.TB, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	o, err := dhcpv4.NewReplyFromRequest(discover(t, mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 100)), dhcpv4.WithServerIP(net.IPv4(192, 0, 2, 254)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 254))))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestProxyBootServer(t *testing.T) {
	s := server(t, Proxy, "")
	// After its lease from the real server, the client asks on port 4011.
	req := wire(t, must(dhcpv4.New(dhcpv4.WithHwAddr(mac1), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 100)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))))))
	for _, m := range pxeBIOS {
		m(req)
	}
	peer := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 100), Port: ClientPort}
	resp, dst, why := s.Reply(req, PXEPort, peer)
	if resp == nil {
		t.Fatal(why)
	}
	if resp.MessageType() != dhcpv4.MessageTypeAck || resp.BootFileName != "pxelinux.0" || !resp.YourIPAddr.IsUnspecified() || dst != peer {
		t.Errorf("4011 ACK to %s:\n%s", dst, resp.Summary())
	}
	if resp, _, _ := s.Reply(discover(t, mac1, pxeBIOS...), PXEPort, peer); resp != nil {
		t.Errorf("DISCOVER on 4011 answered")
	}
	if resp, _, _ := server(t, Full, "").Reply(req, PXEPort, peer); resp != nil {
		t.Errorf("full mode answered on 4011")
	}
}

func TestFullLease(t *testing.T) {
	s := server(t, Full, "")
	offer, dst, why := s.Reply(discover(t, mac1, pxeBIOS...), ServerPort, nil)
	if offer == nil {
		t.Fatal(why)
	}
	offer = wire(t, offer)
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(net.IPv4(192, 0, 2, 11)) ||
		offer.SubnetMask().String() != "ffffff00" || len(offer.Router()) != 1 || !offer.Router()[0].Equal(net.IPv4(192, 0, 2, 1)) ||
		len(offer.DNS()) != 1 || !offer.DNS()[0].Equal(net.IPv4(192, 0, 2, 53)) || offer.IPAddressLeaseTime(0) != time.Hour ||
		offer.HostName() != "web1" || offer.BootFileName != "pxelinux.0" || dst.String() != "255.255.255.255:68" {
		t.Errorf("offer to %s:\n%s", dst, offer.Summary())
	}
	ack, _, why := s.Reply(wire(t, must(dhcpv4.NewRequestFromOffer(offer, pxeBIOS...))), ServerPort, nil)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(net.IPv4(192, 0, 2, 11)) || ack.BootFileName != "pxelinux.0" {
		t.Errorf("ack (%s): %v", why, ack)
	}
	// A plain client (the initramfs's) gets a lease and no boot file.
	o2, _, _ := s.Reply(discover(t, mac2), ServerPort, nil)
	if o2 == nil || !o2.YourIPAddr.Equal(net.IPv4(192, 0, 2, 12)) || o2.BootFileName != "" || o2.SubnetMask().String() != "ffffff80" || o2.Router() != nil {
		t.Errorf("plain client offer: %v", o2)
	}
	// A renewal (ciaddr set, no broadcast flag) is unicast.
	renew := wire(t, must(dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 12)))))
	if a, dst, why := s.Reply(renew, ServerPort, nil); a == nil || a.MessageType() != dhcpv4.MessageTypeAck || dst.String() != "192.0.2.12:68" {
		t.Errorf("renew: %v to %v (%s)", a, dst, why)
	}
	// Asking for another address gets a NAK, broadcast.
	bad := wire(t, must(dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 99))))))
	if n, dst, _ := s.Reply(bad, ServerPort, nil); n == nil || n.MessageType() != dhcpv4.MessageTypeNak || dst.String() != "255.255.255.255:68" {
		t.Errorf("wrong address: %v to %v", n, dst)
	}
	// A REQUEST for another server's offer is not ours to answer.
	other := wire(t, must(dhcpv4.NewRequestFromOffer(offerFor(t, mac1))))
	if r, _, _ := s.Reply(other, ServerPort, nil); r != nil {
		t.Errorf("answered a request for another server: %s", r.Summary())
	}
	// Relayed: back to the relay on port 67.
	relayed := discover(t, mac1, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))
	if r, dst, _ := s.Reply(relayed, ServerPort, nil); r == nil || dst.String() != "198.51.100.1:67" {
		t.Errorf("relayed: %v to %v", r, dst)
	}
	// Unknown MACs get nothing: there is no dynamic pool.
	if r, _, _ := s.Reply(discover(t, macNone, pxeBIOS...), ServerPort, nil); r != nil {
		t.Errorf("unknown MAC leased %s", r.YourIPAddr)
	}
	// INFORM: configuration, no address.
	inf := wire(t, must(dhcpv4.NewInform(mac1, net.IPv4(192, 0, 2, 11))))
	if r, dst, _ := s.Reply(inf, ServerPort, nil); r == nil || r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.IsUnspecified() || r.SubnetMask() == nil || dst.String() != "192.0.2.11:68" {
		t.Errorf("inform: %v to %v", r, dst)
	}
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeOffer} {
		p := wire(t, must(dhcpv4.New(dhcpv4.WithHwAddr(mac1), dhcpv4.WithMessageType(mt))))
		if r, _, _ := s.Reply(p, ServerPort, nil); r != nil {
			t.Errorf("%s answered", mt)
		}
	}
	reply := wire(t, must(dhcpv4.NewReplyFromRequest(discover(t, mac1))))
	if r, _, _ := s.Reply(reply, ServerPort, nil); r != nil {
		t.Errorf("BOOTREPLY answered")
	}
}

func TestNewChecks(t *testing.T) {
	tab, _ := netboot.NewTable([]netboot.Host{{Name: "x", MAC: mac1, Export: "/x"}})
	if _, err := New(Config{Mode: Full, Table: tab, ServerIP: srvIP}); err == nil {
		t.Error("full mode accepted a host without an address")
	}
	if _, err := New(Config{Mode: Proxy, Table: tab, ServerIP: srvIP}); err != nil {
		t.Errorf("proxy mode: %v", err)
	}
	if _, err := New(Config{Table: tab, ServerIP: netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("IPv6 server address accepted")
	}
	if _, err := New(Config{Table: tab, ServerIP: srvIP, BIOSBootFile: string(make([]byte, 200))}); err == nil {
		t.Error("oversized boot file accepted")
	}
	s, _ := New(Config{Table: tab, ServerIP: srvIP})
	if err := s.ListenAndServe(t.Context()); err == nil {
		t.Error("served without an interface")
	}
}

// SetTable (SIGHUP): a full-mode server refuses a host without an address
// and keeps answering from its old table; an accepted table is used at
// the next request.
func TestSetTable(t *testing.T) {
	s := server(t, Full, "")
	noIP, _ := netboot.NewTable([]netboot.Host{{Name: "x", MAC: mac1, Export: "/x"}})
	if err := s.SetTable(noIP); err == nil {
		t.Error("full mode accepted a host without an address")
	}
	if r, _, _ := s.Reply(discover(t, mac1, pxeBIOS...), ServerPort, nil); r == nil || r.YourIPAddr.String() != "192.0.2.11" {
		t.Fatalf("old table not kept: %v", r)
	}
	other, _ := netboot.NewTable([]netboot.Host{{Name: "y", MAC: mac2, IP: netip.MustParseAddr("192.0.2.99"), Export: "/y"}})
	if err := s.SetTable(other); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.Reply(discover(t, mac1, pxeBIOS...), ServerPort, nil); r != nil {
		t.Errorf("host removed by SetTable answered: %v", r)
	}
	if r, _, _ := s.Reply(discover(t, mac2, pxeBIOS...), ServerPort, nil); r == nil || r.YourIPAddr.String() != "192.0.2.99" {
		t.Errorf("new table not used: %v", r)
	}
}
