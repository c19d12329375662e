// Package debiantest boots a real Debian root (debootstrap minbase with
// systemd as init) from a twoGbMaxExtentFlat split VMDK served by
// "vmroot serve" over NFSv3, under qemu TCG. testdata/mkdebian.sh builds
// the image once per test binary (the debootstrap tarball and the kernel
// package are cached in /var/cache/vmroot-netboot). At boot the guest
// appends to /root/written-by-ADDRESS, says whether an earlier boot left
// that file, checksums /usr and powers off; the tests compare the
// checksum with the one taken on the host from the tree, look for each
// write in its host's diff only, and check that the VMDK files' sha256
// did not change. The guests boot three ways: qemu user networking with
// -kernel/-initrd; PXE from vmroot's own DHCP, TFTP and HTTP in a network
// namespace; and PXE with vmroot as proxyDHCP beside busybox udhcpd.
//
// The tests need root, debootstrap, qemu-system-x86, busybox-static,
// e2fsprogs, fdisk and qemu-utils; they skip with the reason otherwise,
// and under -short.
package debiantest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/netboot/netboottest"
	"github.com/vmroot/vmroot/internal/netboot/tftp"
)

var tmpRoot string

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// image is the Debian appliance, built once for all tests.
type image struct {
	dir, vmdk, usrSum, vmroot, tcpfwd string
	err                               error
}

var (
	imgOnce sync.Once
	img     image
)

// debian builds (once) the image and the vmroot binary, or skips.
func debian(t *testing.T) *image {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Debian root and boots qemu guests: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (debootstrap, mke2fs -d with owners, network namespaces; CI runs as root)")
	}
	for _, p := range []string{"debootstrap", "qemu-system-x86_64", "busybox", "mke2fs", "sfdisk", "qemu-img", "dpkg", "gzip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", p)
		}
	}
	imgOnce.Do(func() {
		d, err := os.MkdirTemp("", "vmroot-debiantest-")
		if err != nil {
			img.err = err
			return
		}
		tmpRoot = d
		img.dir = d
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "../../../testdata/mkdebian.sh")
		t0 := time.Now()
		if out, err := exec.Command("bash", script, filepath.Join(d, "img")).CombinedOutput(); err != nil {
			img.err = fmt.Errorf("mkdebian.sh: %v\n%s", err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "debiantest: image built in %.1fs\n", time.Since(t0).Seconds())
		img.vmdk = filepath.Join(d, "img", "debian.vmdk")
		b, err := os.ReadFile(filepath.Join(d, "img", "usr.sha256"))
		if err != nil {
			img.err = err
			return
		}
		img.usrSum = strings.TrimSpace(string(b))
		img.vmroot, img.tcpfwd = filepath.Join(d, "vmroot"), filepath.Join(d, "tcpfwd")
		for bin, pkg := range map[string]string{img.vmroot: "cmd/vmroot", img.tcpfwd: "internal/netboot/netboottest/tcpfwd"} {
			if out, err := exec.Command("go", "build", "-o", bin, "github.com/vmroot/vmroot/"+pkg).CombinedOutput(); err != nil {
				img.err = fmt.Errorf("go build: %v %s", err, out)
			}
		}
	})
	if img.err != nil {
		t.Fatal(img.err)
	}
	return &img
}

// vmdkSums hashes every file of the split VMDK (descriptor and extents).
func (im *image) vmdkSums(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(im.vmdk), "debian*.vmdk"))
	if len(files) < 3 {
		t.Fatalf("want a descriptor and two or more extents, have %v", files)
	}
	sums := map[string]string{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		sums[filepath.Base(f)] = hex.EncodeToString(h.Sum(nil))
	}
	return sums
}

func sameSums(t *testing.T, before, after map[string]string) {
	t.Helper()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the VMDK changed:\nbefore %v\nafter  %v", before, after)
	}
}

// serve runs "vmroot serve --config" with the given TOML (prefixed by
// image and export), in namespace ns when ns is not empty, until the test
// ends, and waits until addr accepts connections. It returns the
// server's log.
func (im *image) serve(t *testing.T, ns, addr, toml string) *netboottest.Output {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "vmroot.toml")
	toml = fmt.Sprintf("image = %q\nexport = \"/vmroot\"\nstate_dir = %q\n", im.vmdk, filepath.Join(t.TempDir(), "state")) + toml
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out := netboottest.StartServe(t, ns, im.vmroot, cfg)
	dial := func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	for i := 0; ; i++ {
		var err error
		if ns != "" {
			err = netboottest.InNS(ns, dial)
		} else {
			err = dial()
		}
		if err == nil {
			return out
		}
		if i == 100 || cmd.ProcessState != nil {
			t.Fatalf("vmroot serve not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// qemu runs a guest (TCG, 512 MiB) with the given network and boot
// arguments until it powers off or 300 s pass; it returns the console
// output and the time from start to the marker line.
func qemu(t *testing.T, ns string, args ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	a := append([]string{"qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-no-reboot"}, args...)
	if ns != "" {
		a = append([]string{"ip", "netns", "exec", ns}, a...)
	}
	cmd := exec.CommandContext(ctx, a[0], a[1:]...)
	out := &syncBuf{mark: "NFSROOT-OK"}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = out, out, nil
	out.t0 = time.Now()
	err := cmd.Run()
	t.Logf("qemu: %v after %.1fs, marker after %.1fs", err, time.Since(out.t0).Seconds(), out.at.Seconds())
	return out.String(), out.at
}

// syncBuf collects output and notes when a line with mark first arrived.
type syncBuf struct {
	mu   sync.Mutex
	b    bytes.Buffer
	mark string
	t0   time.Time
	at   time.Duration
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.mark != "" && s.at == 0 && bytes.Contains(s.b.Bytes(), []byte(s.mark)) {
		s.at = time.Since(s.t0)
	}
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var okLine = regexp.MustCompile(`NFSROOT-OK id=(\S+) usr=(\S+)`)

// checkBoot checks one boot's console: the marker for id, with walk the
// /usr checksum of the image (the guest walks /usr only when its command
// line has vmroot_usrsum=1), a successful write, and whether the guest
// saw an earlier write of its own.
func (im *image) checkBoot(t *testing.T, name, out, id string, walk, again bool) {
	t.Helper()
	m := okLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no marker line; console tail:\n%s", name, netboottest.Tail(out, 50))
	}
	if m[1] != id {
		t.Errorf("%s: guest calls itself %s, want %s", name, m[1], id)
	}
	if want := map[bool]string{true: im.usrSum, false: "skipped"}[walk]; m[2] != want {
		t.Errorf("%s: /usr checksum in the guest %s, want %s", name, m[2], want)
	}
	if strings.Contains(out, "NFSROOT-WRITE-FAILED") {
		t.Errorf("%s: the guest could not write its root", name)
	}
	if seen := strings.Contains(out, "NFSROOT-SEEN "+id); seen != again {
		t.Errorf("%s: saw an earlier write: %v, want %v", name, seen, again)
	}
}

// checkDiff checks that diff holds, under /root, exactly the files named
// in want with the given contents.
func checkDiff(t *testing.T, diff string, want map[string]string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(diff, "root"))
	if err != nil {
		t.Errorf("diff %s: %v", diff, err)
		return
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	sort.Strings(wantNames)
	if fmt.Sprint(names) != fmt.Sprint(wantNames) {
		t.Errorf("diff %s: /root holds %v, want %v", diff, names, wantNames)
	}
	for n, w := range want {
		if b, err := os.ReadFile(filepath.Join(diff, "root", n)); err != nil || string(b) != w {
			t.Errorf("diff %s: %s is %q (%v), want %q", diff, n, b, err, w)
		}
	}
}

// The quick path: qemu user networking (restrict=on; the guest reaches
// only vmroot's loopback port through guestfwd and tcpfwd), the kernel
// and initrd read out of the VMDK with "vmroot cat".
func TestDebianUserNet(t *testing.T) {
	im := debian(t)
	before := im.vmdkSums(t)
	d := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		b, err := exec.Command(im.vmroot, "cat", im.vmdk, "/"+f).Output()
		if err != nil || len(b) < 1<<20 {
			t.Fatalf("vmroot cat /%s: %d bytes, %v", f, len(b), err)
		}
		if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	diff := filepath.Join(d, "diff")
	im.serve(t, "", fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf(`[nfs]
listen = ["127.0.0.1"]
port = %d
portmap_port = -1
udp = false
[[host]]
name = "usernet"
ip = ["127.0.0.1"]
diff = %q
squash = "no_root_squash"
`, port, diff))
	out, took := qemu(t, "", "-kernel", filepath.Join(d, "vmlinuz"), "-initrd", filepath.Join(d, "initrd.img"),
		"-append", "console=ttyS0 panic=-1 vmroot_usrsum=1 root=/dev/nfs nfsroot=10.0.2.100:/vmroot,vers=3,tcp,port=2049 ip=dhcp rw",
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:2049-cmd:%s 127.0.0.1:%d", im.tcpfwd, port),
		"-device", "virtio-net-pci,netdev=n0")
	t.Logf("user-net boot to the marker: %.1fs", took.Seconds())
	im.checkBoot(t, "user-net boot", out, "10.0.2.15", true, false)
	checkDiff(t, diff, map[string]string{"written-by-10.0.2.15": "boot of 10.0.2.15\n"})
	sameSums(t, before, im.vmdkSums(t))
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The PXE path from one "vmroot serve --config" process inside a network
// namespace (DHCP in full mode, TFTP, HTTP and NFS on 192.0.2.1, the
// guests on tap0): two hosts boot through pxelinux over TFTP, a third
// through an iPXE script over HTTP, then the first boots again and finds
// its earlier write. The kernel and initrd come from each host's view of
// the image.
func TestDebianPXE(t *testing.T) {
	im := debian(t)
	if _, err := tftp.FindStatic(tftp.DebianDirs, []string{"pxelinux.0", "ldlinux.c32"}); err != nil {
		t.Skip(err)
	}
	before := im.vmdkSums(t)
	ns, _ := netboottest.NewTapNS(t, "192.0.2.1/24")
	diffs := t.TempDir()
	// deb2 and deb3 (one per boot path) walk /usr; deb1, booting twice,
	// does not: the walk adds 10-15 s under TCG.
	type host struct{ name, mac, ip, boot, args string }
	hosts := []host{
		{"deb1", "52:54:00:12:35:01", "192.0.2.11", "pxelinux", ""},
		{"deb2", "52:54:00:12:35:02", "192.0.2.12", "pxelinux", " vmroot_usrsum=1"},
		{"deb3", "52:54:00:12:35:03", "192.0.2.13", "ipxe", " vmroot_usrsum=1"},
	}
	toml := `[nfs]
listen = ["192.0.2.1"]
advertise = "192.0.2.1"
port = 2049
portmap_port = -1
udp = false
[tftp]
listen = "192.0.2.1:69"
[http]
listen = "192.0.2.1:8080"
[dhcp]
mode = "full"
interface = "tap0"
server = "192.0.2.1"
`
	for _, h := range hosts {
		toml += fmt.Sprintf("[[host]]\nname = %q\nmac = %q\nip = [%q]\nprefix = 24\ndiff = %q\nsquash = \"no_root_squash\"\nargs = \"console=ttyS0 panic=-1%s\"\nboot = %q\n",
			h.name, h.mac, h.ip, filepath.Join(diffs, h.name), h.args, h.boot)
	}
	log := im.serve(t, ns, "192.0.2.1:2049", toml)
	for i := 0; !strings.Contains(log.String(), `msg="boot services"`); i++ {
		if i == 100 {
			t.Fatalf("vmroot serve did not start its boot services:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, h := range []host{hosts[0], hosts[1], hosts[2], hosts[0]} {
		out, took := pxeBoot(t, ns, h.mac)
		t.Logf("boot %d (%s, %s): marker after %.1fs", i+1, h.name, h.boot, took.Seconds())
		im.checkBoot(t, fmt.Sprintf("boot %d (%s)", i+1, h.name), out, h.ip, h.args != "", i == 3)
	}
	// Each path was taken, each host mounted as itself.
	l := log.String()
	for _, want := range []string{"service=dhcp mode=full",
		"file=pxelinux.cfg/01-52-54-00-12-35-01", "file=01-52-54-00-12-35-01/vmlinuz",
		"file=pxelinux.cfg/01-52-54-00-12-35-02", "file=01-52-54-00-12-35-02/initrd.img",
		"path=/ipxe/52-54-00-12-35-03", "path=/boot/52-54-00-12-35-03/vmlinuz",
		"msg=mounted host=deb1", "msg=mounted host=deb2", "msg=mounted host=deb3"} {
		if !strings.Contains(l, want) {
			t.Errorf("vmroot serve did not log %q", want)
		}
	}
	checkDiff(t, filepath.Join(diffs, "deb1"), map[string]string{"written-by-192.0.2.11": "boot of 192.0.2.11\nboot of 192.0.2.11\n"})
	checkDiff(t, filepath.Join(diffs, "deb2"), map[string]string{"written-by-192.0.2.12": "boot of 192.0.2.12\n"})
	checkDiff(t, filepath.Join(diffs, "deb3"), map[string]string{"written-by-192.0.2.13": "boot of 192.0.2.13\n"})
	sameSums(t, before, im.vmdkSums(t))
}

// pxeBoot network-boots a guest with mac on ns's tap0 (the NIC's iPXE ROM).
func pxeBoot(t *testing.T, ns, mac string) (string, time.Duration) {
	return qemu(t, ns, "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac="+mac, "-boot", "n")
}

// vmroot as proxyDHCP beside a plain DHCP server (busybox udhcpd) that
// leases the addresses: vmroot names only the boot file. The host is
// listed by MAC alone, so NFS must recognise it by the MAC of the peer.
func TestDebianProxyDHCP(t *testing.T) {
	im := debian(t)
	if _, err := tftp.FindStatic(tftp.DebianDirs, []string{"pxelinux.0", "ldlinux.c32"}); err != nil {
		t.Skip(err)
	}
	before := im.vmdkSums(t)
	ns, tap := netboottest.NewTapNS(t, "192.0.2.1/24")
	diff := filepath.Join(t.TempDir(), "deb4")
	log := im.serve(t, ns, "192.0.2.1:2049", fmt.Sprintf(`[nfs]
listen = ["192.0.2.1"]
advertise = "192.0.2.1"
port = 2049
portmap_port = -1
udp = false
[tftp]
listen = "192.0.2.1:69"
[dhcp]
mode = "proxy"
interface = "tap0"
server = "192.0.2.1"
[[host]]
name = "deb4"
mac = "52:54:00:12:35:04"
diff = %q
squash = "no_root_squash"
args = "console=ttyS0 panic=-1"
boot = "pxelinux"
`, diff))
	netboottest.Udhcpd(t, ns, tap, "192.0.2.100", "192.0.2.150")
	out, took := pxeBoot(t, ns, "52:54:00:12:35:04")
	t.Logf("proxyDHCP boot: marker after %.1fs", took.Seconds())
	m := okLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no marker line; console tail:\n%s\nvmroot serve:\n%s", netboottest.Tail(out, 50), netboottest.Tail(log.String(), 30))
	}
	ip := net.ParseIP(m[1]).To4()
	if ip == nil || ip[0] != 192 || ip[1] != 0 || ip[2] != 2 || ip[3] < 100 || ip[3] > 150 {
		t.Fatalf("guest address %s is not from udhcpd's pool", m[1])
	}
	im.checkBoot(t, "proxyDHCP boot", out, m[1], false, false)
	l := log.String()
	for _, want := range []string{"service=dhcp mode=proxy", "yiaddr=0.0.0.0",
		"file=pxelinux.cfg/01-52-54-00-12-35-04", "msg=mounted host=deb4"} {
		if !strings.Contains(l, want) {
			t.Errorf("vmroot serve did not log %q", want)
		}
	}
	checkDiff(t, diff, map[string]string{"written-by-" + m[1]: "boot of " + m[1] + "\n"})
	sameSums(t, before, im.vmdkSums(t))
}
