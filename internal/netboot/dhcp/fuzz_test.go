package dhcp

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzReply feeds arbitrary datagrams through the parser and both modes'
// answers on both ports: no panic, and any answer is well formed, goes
// to the client that asked, and leases only that client's own address.
func FuzzReply(f *testing.F) {
	for _, mods := range [][]dhcpv4.Modifier{pxeBIOS, ipxe, pxeEFI, nil} {
		f.Add(discover(f, mac1, mods...).ToBytes())
		f.Add(discover(f, mac2, mods...).ToBytes())
	}
	f.Add(must(dhcpv4.NewRequestFromOffer(offerFor(f, mac1), pxeBIOS...)).ToBytes())
	f.Add(must(dhcpv4.NewInform(mac1, net.IPv4(192, 0, 2, 11))).ToBytes())
	f.Add([]byte{})
	servers := []*Server{server(f, Proxy, ""), server(f, Full, "efi/x.efi")}
	peer := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 100), Port: ClientPort}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		Classify(req)
		for _, s := range servers {
			for _, port := range []int{ServerPort, PXEPort} {
				resp, dst, why := s.Reply(req, port, peer)
				if resp == nil {
					if why == "" {
						t.Fatal("no answer and no reason")
					}
					continue
				}
				if dst == nil {
					t.Fatal("answer without a destination")
				}
				back, err := dhcpv4.FromBytes(resp.ToBytes())
				if err != nil {
					t.Fatalf("answer does not parse: %v", err)
				}
				if back.ClientHWAddr.String() != req.ClientHWAddr.String() || back.TransactionID != req.TransactionID {
					t.Fatalf("answer for another client: %s", back.Summary())
				}
				h := s.cfg.Table.ByMAC(req.ClientHWAddr)
				if h == nil {
					t.Fatalf("answered unknown MAC %s", req.ClientHWAddr)
				}
				if y := back.YourIPAddr; !y.IsUnspecified() && (s.cfg.Mode == Proxy || !y.Equal(h.IP.AsSlice())) {
					t.Fatalf("%s mode leased %s to %s", s.cfg.Mode, y, h.Name)
				}
			}
		}
	})
}
