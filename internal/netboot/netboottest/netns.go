package netboottest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Link is a veth pair between two network namespaces made for one test:
// a server side (Srv, interface SrvIf) and a client side (Cli, CliIf).
type Link struct {
	Srv, Cli     string
	SrvIf, CliIf string
}

var seq atomic.Int32

// NeedRoot skips the test unless it runs as root with iproute2.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

// NewLink creates the namespaces and the veth pair, gives the server side
// srvCIDR (a documentation range such as 192.0.2.1/24) and the client
// side the MAC cliMAC and no address, and removes it all at cleanup.
func NewLink(t testing.TB, srvCIDR, cliMAC string) *Link {
	t.Helper()
	NeedRoot(t)
	n := seq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, n)
	l := &Link{Srv: "vmrs-" + id, Cli: "vmrc-" + id, SrvIf: fmt.Sprintf("vs%d", n), CliIf: fmt.Sprintf("vc%d", n)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", l.Srv)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.Srv).Run() })
	run("netns", "add", l.Cli)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.Cli).Run() })
	run("-n", l.Srv, "link", "add", l.SrvIf, "type", "veth", "peer", "name", l.CliIf, "netns", l.Cli)
	run("-n", l.Cli, "link", "set", l.CliIf, "address", cliMAC)
	run("-n", l.Srv, "addr", "add", srvCIDR, "dev", l.SrvIf)
	for _, ns := range []struct{ ns, dev string }{{l.Srv, l.SrvIf}, {l.Cli, l.CliIf}, {l.Srv, "lo"}, {l.Cli, "lo"}} {
		run("-n", ns.ns, "link", "set", ns.dev, "up")
	}
	return l
}

// Command runs name inside namespace ns.
func (l *Link) Command(ns string, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// InNS runs f on an OS thread switched into namespace ns; sockets f
// opens stay in ns for their whole life. The thread is discarded after.
func InNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// NewTapNS creates a network namespace holding a tap device (for a qemu
// guest run inside the namespace) with address cidr, and removes it at
// cleanup. It returns the namespace and the tap's name.
func NewTapNS(t testing.TB, cidr string) (ns, tap string) {
	t.Helper()
	NeedRoot(t)
	n := seq.Add(1)
	ns, tap = fmt.Sprintf("vmrt-%d-%d", os.Getpid()%100000, n), "tap0"
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"},
		{"-n", ns, "addr", "add", cidr, "dev", tap},
		{"-n", ns, "link", "set", tap, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	return ns, tap
}

// Udhcpd runs busybox udhcpd in namespace ns on iface, leasing
// start-end of 192.0.2.0/24, until the test ends: the "existing DHCP
// server" a proxyDHCP sits beside.
func Udhcpd(t testing.TB, ns, iface, start, end string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644)
	os.WriteFile(conf, []byte(fmt.Sprintf("start %s\nend %s\ninterface %s\nlease_file %s/leases\npidfile %s/pid\noption subnet 255.255.255.0\noption router 192.0.2.1\n",
		start, end, iface, dir, dir)), 0o644)
	cmd := exec.Command("ip", "netns", "exec", ns, bb, "udhcpd", "-f", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("udhcpd: %s", out.String())
		}
	})
	time.Sleep(300 * time.Millisecond)
}
