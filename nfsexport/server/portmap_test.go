package server

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/testimg"
	"github.com/vmroot/vmroot/nfsexport/client"
	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/portmap"
)

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPortmap: the server's own portmapper tells clients where NFS and
// MOUNT are, over TCP and UDP; on port 111 (when free) libnfs finds the
// server with no port options at all, as a stock initramfs would.
func TestPortmap(t *testing.T) {
	needRoot(t)
	tree := baseTree(t, t.TempDir())
	f := newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{})
	f.stop()
	start := func(pm int) (*Server, Bound) {
		t.Helper()
		s, err := New(f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Start(context.Background(), Listen{Addrs: []string{"127.0.0.1"}, PortmapPort: pm, UDP: true})
		if err != nil {
			t.Fatal(err)
		}
		return s, b
	}
	pmPort := freeTCPPort(t)
	s, b := start(pmPort)
	if b.PortmapPort != pmPort {
		t.Fatalf("portmap on %d, asked %d", b.PortmapPort, pmPort)
	}
	for _, network := range []string{"tcp", "udp"} {
		c, err := client.Dial(bg, network, fmt.Sprintf("127.0.0.1:%d", pmPort), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := client.Portmap{C: c}
		for _, q := range []struct{ prog, vers, prot, want uint32 }{
			{nfs3.Prog, 3, portmap.ProtoTCP, uint32(b.Port)},
			{mount.Prog, 3, portmap.ProtoTCP, uint32(b.Port)},
			{mount.Prog, 3, portmap.ProtoUDP, uint32(b.Port)},
			{nfs3.Prog, 3, portmap.ProtoUDP, 0},
			{100021, 4, portmap.ProtoTCP, 0}, // no NLM
		} {
			got, err := p.GetPort(bg, q.prog, q.vers, q.prot)
			if err != nil || got != q.want {
				t.Errorf("%s GETPORT %d/%d/%d: %d %v, want %d", network, q.prog, q.vers, q.prot, got, err, q.want)
			}
		}
		c.Close()
	}
	s.Shutdown(bg)

	// Port 111, if nothing else holds it.
	if l, err := net.Listen("tcp", "127.0.0.1:111"); err != nil {
		t.Skipf("port 111 is taken (%v): the no-options libnfs check needs it", err)
	} else {
		l.Close()
	}
	testimg.Need(t, "nfs-cat")
	s, b = start(0)
	defer s.Shutdown(bg)
	if b.PortmapPort != 111 {
		t.Fatalf("portmap on %d, want 111", b.PortmapPort)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nfs-cat", "nfs://127.0.0.1"+exportPath+"/etc/motd?version=3").CombinedOutput()
	if err != nil || string(out) != "welcome to the appliance\n" {
		t.Errorf("nfs-cat without port options: %v %q", err, out)
	}
}
