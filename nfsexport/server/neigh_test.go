package server

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

func TestARPLookup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "arp")
	os.WriteFile(p, []byte(`IP address       HW type     Flags       HW address            Mask     Device
192.0.2.11       0x1         0x2         52:54:00:12:34:11     *        tap0
192.0.2.12       0x1         0x0         00:00:00:00:00:00     *        tap0
192.0.2.13       0x1         0x6         52:54:00:12:34:13     *        tap0
`), 0o644)
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.11", "52:54:00:12:34:11"},
		{"192.0.2.12", ""}, // incomplete: no MAC yet
		{"192.0.2.13", "52:54:00:12:34:13"},
		{"192.0.2.1", ""},
		{"::1", ""},
	} {
		got := arpLookup(p, netip.MustParseAddr(c.ip))
		if (got == nil && c.want != "") || (got != nil && got.String() != c.want) {
			t.Errorf("%s: %v, want %q", c.ip, got, c.want)
		}
	}
	if arpLookup(filepath.Join(t.TempDir(), "none"), netip.MustParseAddr("192.0.2.11")) != nil {
		t.Error("missing table gave a MAC")
	}
}

// fakeNeigh is a neighbour table the test fills, counting lookups.
type fakeNeigh struct {
	mu    sync.Mutex
	m     map[netip.Addr]net.HardwareAddr
	calls map[netip.Addr]int
}

func (n *fakeNeigh) lookup(a netip.Addr) net.HardwareAddr {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls[a]++
	return n.m[a]
}

func (n *fakeNeigh) count(a string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[netip.MustParseAddr(a)]
}

// TestMACOnlyHost: a host listed by MAC alone (its address leased by some
// other DHCP server) is recognised by the peer's MAC, looked up at MOUNT
// and not at every call; a peer whose MAC and address match no host is
// an unknown host.
func TestMACOnlyHost(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	mac, _ := net.ParseMAC("52:54:00:12:34:11")
	unknownDir := filepath.Join(t.TempDir(), "unknown")
	f := newFixture(t, tree, []Host{{Name: "m", MAC: mac}, {Name: "a", Addrs: addrs("127.0.0.2")}},
		Unknown{Dir: unknownDir, AnonUID: DefaultAnon, AnonGID: DefaultAnon})
	neigh := &fakeNeigh{m: map[netip.Addr]net.HardwareAddr{
		netip.MustParseAddr("127.0.0.3"): mac,
		netip.MustParseAddr("127.0.0.2"): {0x52, 0x54, 0, 0, 0, 2},
	}, calls: map[netip.Addr]int{}}
	f.stop()
	f.cfg.LookupMAC = neigh.lookup
	f.port = 0 // no client needs the old port; another test may hold it by now
	f.start()

	m := f.dial("127.0.0.3", 1000, 1000)
	if m.root == nil {
		t.Fatal("MAC-only host cannot mount")
	}
	tmp := m.mustWalk("tmp")
	for i := 0; i < 5; i++ {
		m.create(tmp, "f"+string(rune('0'+i)), 0o644, "from m")
	}
	if got := diffFiles(t, f.cfg.Hosts[0].Diff); got["tmp/f4"] != "from m" {
		t.Errorf("diff of m: %v", got)
	}
	if n := neigh.count("127.0.0.3"); n != 1 {
		t.Errorf("neighbour table read %d times for one mount and many calls; want 1", n)
	}
	// Host a is found by address: its MAC is never asked for.
	a := f.dial("127.0.0.2", 1000, 1000)
	a.create(a.mustWalk("tmp"), "x", 0o644, "from a")
	if n := neigh.count("127.0.0.2"); n != 0 {
		t.Errorf("neighbour table read %d times for a host listed by address", n)
	}

	// The MAC moves to another card: 127.0.0.3 is now unknown, from its
	// next MOUNT on.
	neigh.mu.Lock()
	neigh.m[netip.MustParseAddr("127.0.0.3")] = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	neigh.mu.Unlock()
	u := f.dial("127.0.0.3", 1000, 1000)
	if _, st := u.walk("tmp/f1"); st != nfs3.ErrNoEnt {
		t.Errorf("an unknown MAC sees host m's files: %v", st)
	}
	u.create(u.mustWalk("tmp"), "y", 0o644, "from unknown")
	if got := diffFiles(t, filepath.Join(unknownDir, "127.0.0.3")); got["tmp/y"] != "from unknown" {
		t.Errorf("unknown host's diff: %v", got)
	}
	if err := f.srv.SetHosts([]Host{{Name: "m", MAC: mac}, {Name: "n", MAC: mac}}, Unknown{}); err == nil {
		t.Error("two hosts with one MAC accepted")
	}
}
