// Package pxetest boots real qemu guests (TCG) through vmroot's own DHCP,
// TFTP and HTTP boot services, inside network namespaces the tests create
// (192.0.2.0/24 on a tap device; no traffic leaves them): the guest's iPXE
// NIC ROM gets its address and boot file from vmroot's DHCP (full mode, or
// proxyDHCP beside busybox udhcpd), then either loads pxelinux.0, its
// per-MAC config, the kernel and initrd over TFTP, or the per-host iPXE
// script, kernel and initrd over HTTP. The last two tests run everything
// (DHCP, TFTP, HTTP and NFS) from one "vmroot serve --config" process
// and mount the root over NFS: two hosts boot the same root, each writes
// a file of its own, a second boot sees its earlier write, each host's
// diff holds only its own change and the image stays untouched; and a
// host known by MAC only boots beside udhcpd and is recognised by MAC.
//
// The tests need root, qemu-system-x86, ipxe-qemu, pxelinux,
// syslinux-common, busybox-static and a Debian kernel package (fetched
// once with apt-get download into netboottest.CacheDir); they skip
// with the reason otherwise, and under -short.
package pxetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/dhcp"
	"github.com/vmroot/vmroot/internal/netboot/httpboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
	"github.com/vmroot/vmroot/internal/netboot/tftp"
)

// bootRoot makes a host view holding the kernel and a busybox initramfs
// that takes a DHCP lease and prints it with the kernel command line.
func bootRoot(t *testing.T) string { return buildRoot(t, false) }

// buildRoot makes the root; with nfs set, the initramfs mounts the root
// named by nfsroot= (with busybox mount, as the project's notes describe)
// and switches to it, and the root is a busybox system whose init writes
// a file named after its address, says whether an earlier boot left it,
// and powers off.
func buildRoot(t *testing.T, nfs bool) string {
	if testing.Short() {
		t.Skip("boots qemu guests: skipped under -short")
	}
	for _, p := range []string{"qemu-system-x86_64", "busybox", "gzip", "dpkg"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
	kroot, kv := netboottest.DebianKernel(t)
	d := t.TempDir()
	root := filepath.Join(d, "root")
	script := `
set -eu
NFSMODS="` + map[bool]string{true: "nfsv3", false: ""}[nfs] + `"
K=` + kroot + `; KV=` + kv + `; R=` + root + `; I=` + d + `/initrd
M=$K/lib/modules/$KV
[ -f $M/modules.dep ] || busybox depmod -b $K $KV
mkdir -p $R/boot $I/bin $I/proc $I/sys $I/dev $I/tmp $I/usr/share/udhcpc $I/lib/modules/$KV
cp $K/boot/vmlinuz-$KV $R/boot/
cp /bin/busybox $I/bin/
mkdir -p $I/newroot
for a in sh mount umount modprobe ip udhcpc cat poweroff switch_root; do ln -s busybox $I/bin/$a; done
for f in $(for m in virtio_pci virtio_net $NFSMODS; do grep -E "/$m\.ko[^:]*:" $M/modules.dep | tr -d ':'; done | tr ' ' '\n' | sort -u); do
  mkdir -p $I/lib/modules/$KV/$(dirname $f); cp $M/$f $I/lib/modules/$KV/$f
done
cp $M/modules.order $M/modules.builtin $I/lib/modules/$KV/ 2>/dev/null || true
busybox depmod -b $I $KV
printf '#!/bin/sh\n[ "$1" = bound ] && echo "$ip" > /tmp/ip\nexit 0\n' > $I/usr/share/udhcpc/default.script
if [ -n "$NFSMODS" ]; then
mkdir -p $R/bin $R/sbin $R/proc $R/sys $R/dev $R/tmp $R/etc $R/root
cp /bin/busybox $R/bin/
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox $R/bin/$a; done
echo image-content > $R/etc/marker.txt
cat > $R/sbin/init <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
IP=$(ip -4 -o addr show dev eth0 | sed -n 's/.* inet \([0-9.]*\).*/\1/p')
[ -f /root/written-by-$IP ] && echo "NFSROOT-SEEN $IP"
echo "boot of $IP" >> /root/written-by-$IP || echo "NFSROOT-WRITE-FAILED"
echo "NFSROOT-OK ip=$IP marker=$(cat /etc/marker.txt) files=$(ls /root | tr '\n' ' ')"
sync; poweroff -f
EOF
chmod 755 $R/sbin/init
cat > $I/init <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
modprobe virtio_pci 2>/dev/null; modprobe virtio_net; modprobe nfsv3
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script
IP=$(cat /tmp/ip)
ip addr add $IP/24 dev eth0
for x in $(cat /proc/cmdline); do case "$x" in nfsroot=*) NFSROOT="${x#nfsroot=}";; esac; done
SRV_PATH="${NFSROOT%%,*}"; OPTS="${NFSROOT#*,},addr=${SRV_PATH%%:*}"
echo "INITRAMFS: mount -t nfs -o $OPTS $SRV_PATH"
mount -t nfs -o "$OPTS" "$SRV_PATH" /newroot || { echo "INITRAMFS: nfs mount failed"; poweroff -f; }
mount --move /dev /newroot/dev; umount /sys /proc
exec switch_root /newroot /sbin/init
EOF
else
cat > $I/init <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
modprobe virtio_pci 2>/dev/null; modprobe virtio_net
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script
echo "PXE-MARK ip=$(cat /tmp/ip) cmdline=$(cat /proc/cmdline)"
poweroff -f
EOF
fi
chmod 755 $I/init $I/usr/share/udhcpc/default.script
(cd $I && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > $R/boot/initrd.img-$KV
ln -s boot/vmlinuz-$KV $R/vmlinuz
ln -s boot/initrd.img-$KV $R/initrd.img
`
	if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("building the boot root: %v\n%s", err, out)
	}
	return root
}

type services struct {
	ns  string
	log *netboottest.Recorder
}

// start runs DHCP (full mode), TFTP and HTTP on 192.0.2.1 in a new
// namespace holding the tap the guest will use.
func start(t *testing.T, tab *netboot.Table, view fsys.FS, mode dhcp.Mode, nfs netboot.NFSServer) *services {
	netboottest.NeedRoot(t)
	static, err := tftp.FindStatic(tftp.DebianDirs, []string{"pxelinux.0", "ldlinux.c32"})
	if err != nil {
		t.Skip(err)
	}
	ns, tap := netboottest.NewTapNS(t, "192.0.2.1/24")
	rec := &netboottest.Recorder{}
	log := slog.New(rec)
	views := func(*netboot.Host) (fsys.FS, error) { return view, nil }
	srvIP := netip.MustParseAddr("192.0.2.1")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	ds, err := dhcp.New(dhcp.Config{Mode: mode, Table: tab, ServerIP: srvIP, Interface: tap, HTTPBase: "http://192.0.2.1:8080", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var conns map[int]net.PacketConn
	if err := netboottest.InNS(ns, func() (err error) { conns, err = ds.Listen(); return }); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); ds.Serve(ctx, conns) }()

	ts, err := tftp.New(tftp.Config{Table: tab, NFS: nfs, View: views, Static: static, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// Transfers open their own sockets from the serving goroutine: serve
	// from a thread inside the namespace.
	tftpUp := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		netboottest.InNS(ns, func() error {
			conn, err := tftp.Listen("192.0.2.1:69")
			tftpUp <- err
			if err != nil {
				return err
			}
			return ts.Serve(conn)
		})
	}()
	if err := <-tftpUp; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Shutdown)

	hh, err := httpboot.New(httpboot.Config{Table: tab, NFS: nfs, View: views, BaseURL: "http://192.0.2.1:8080", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	if err := netboottest.InNS(ns, func() (err error) { l, err = net.Listen("tcp4", "192.0.2.1:8080"); return }); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: hh}
	wg.Add(1)
	go func() { defer wg.Done(); hs.Serve(l) }()
	t.Cleanup(func() { hs.Close() })
	if mode == dhcp.Proxy {
		netboottest.Udhcpd(t, ns, tap, "192.0.2.100", "192.0.2.150")
	}
	return &services{ns: ns, log: rec}
}

// boot runs qemu with mac in the namespace until the initramfs's marker
// line (or the timeout) and returns the console output.
func (s *services) boot(t *testing.T, mac string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", s.ns, "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-nographic", "-no-reboot", "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac="+mac, "-boot", "n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &out, nil
	t0 := time.Now()
	err := cmd.Run()
	t.Logf("qemu %s: %v after %.1fs", mac, err, time.Since(t0).Seconds())
	return out.String()
}

var mark = regexp.MustCompile(`PXE-MARK ip=(\S*) cmdline=(.*)`)

func TestPXEBootThroughPxelinuxAndIPXE(t *testing.T) {
	t.Parallel()
	root := bootRoot(t)
	view := netboottest.Open(t, root)
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "web1", MAC: mustMAC("52:54:00:12:34:01"), IP: netip.MustParseAddr("192.0.2.11"), Prefix: 24, Export: "/vmroot",
			Args: "console=ttyS0 panic=-1", Boot: "pxelinux"},
		{Name: "web2", MAC: mustMAC("52:54:00:12:34:02"), IP: netip.MustParseAddr("192.0.2.12"), Prefix: 24, Export: "/vmroot",
			Args: "console=ttyS0 panic=-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, tab, view, dhcp.Full, netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")})
	for _, c := range []struct{ mac, ip, via string }{
		{"52:54:00:12:34:01", "192.0.2.11", "file=01-52-54-00-12-34-01/initrd.img"},    // pxelinux over TFTP
		{"52:54:00:12:34:02", "192.0.2.12", "path=/boot/52-54-00-12-34-02/initrd.img"}, // iPXE script over HTTP
	} {
		out := s.boot(t, c.mac)
		m := mark.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: no marker; console tail:\n%s\nservice log:\n%s", c.mac, netboottest.Tail(out, 40), strings.Join(s.log.Lines(), "\n"))
			continue
		}
		want := "root=/dev/nfs nfsroot=192.0.2.1:/vmroot,vers=3,tcp,nolock ip=dhcp boot=nfs rw console=ttyS0 panic=-1"
		if m[1] != c.ip || !strings.Contains(m[2], want) {
			t.Errorf("%s: guest says ip=%s cmdline=%s; want ip=%s and %q", c.mac, m[1], m[2], c.ip, want)
		}
		if !logged(s.log, c.via) {
			t.Errorf("%s: initrd not served as %s:\n%s", c.mac, c.via, strings.Join(s.log.Lines(), "\n"))
		}
	}
	if !logged(s.log, "file=pxelinux.cfg/01-52-54-00-12-34-01") || !logged(s.log, "file=http://192.0.2.1:8080/ipxe/52-54-00-12-34-02") {
		t.Errorf("boot paths not seen in the log:\n%s", strings.Join(s.log.Lines(), "\n"))
	}
}

// vmroot as proxyDHCP beside busybox udhcpd: udhcpd leases the address
// (to the NIC ROM and later to the initramfs), vmroot names the boot file.
func TestPXEBootBesideUdhcpd(t *testing.T) {
	t.Parallel()
	root := bootRoot(t)
	view := netboottest.Open(t, root)
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "web3", MAC: mustMAC("52:54:00:12:34:03"), Export: "/vmroot", Args: "console=ttyS0 panic=-1", Boot: "pxelinux"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, tab, view, dhcp.Proxy, netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")})
	out := s.boot(t, "52:54:00:12:34:03")
	m := mark.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no marker; console tail:\n%s\nservice log:\n%s", netboottest.Tail(out, 40), strings.Join(s.log.Lines(), "\n"))
	}
	if !strings.HasPrefix(m[1], "192.0.2.1") || len(m[1]) != len("192.0.2.100") || !strings.Contains(m[2], "nfsroot=192.0.2.1:/vmroot,vers=3,tcp") {
		t.Errorf("guest says ip=%s cmdline=%s; want an address from udhcpd's pool", m[1], m[2])
	}
	if !logged(s.log, "reply=OFFER yiaddr=0.0.0.0 file=pxelinux.0") || !logged(s.log, "file=01-52-54-00-12-34-03/vmlinuz") {
		t.Errorf("proxy offer or kernel transfer not logged:\n%s", strings.Join(s.log.Lines(), "\n"))
	}
}

// The whole chain from one "vmroot serve --config" process in the
// namespace: full-mode DHCP, TFTP (pxelinux) or HTTP (iPXE script), then
// the root mounted over NFS, one diff per host.
func TestPXEBootNFSRootFromServe(t *testing.T) {
	t.Parallel()
	root := buildRoot(t, true)
	diffs := filepath.Join(t.TempDir(), "diffs")
	hosts := ""
	for _, h := range []struct{ name, mac, ip, boot string }{
		{"web1", "52:54:00:12:34:11", "192.0.2.11", "pxelinux"},
		{"web2", "52:54:00:12:34:12", "192.0.2.12", "ipxe"},
	} {
		hosts += fmt.Sprintf("[[host]]\nname = %q\nmac = %q\nip = [%q]\ndiff = %q\nsquash = \"no_root_squash\"\nargs = \"console=ttyS0 panic=-1\"\nboot = %q\n",
			h.name, h.mac, h.ip, filepath.Join(diffs, h.ip), h.boot)
	}
	s := serveAll(t, root, diffs, "[dhcp]\nmode = \"full\"\ninterface = \"tap0\"\n", hosts)
	for i, c := range []struct{ mac, ip string }{
		{"52:54:00:12:34:11", "192.0.2.11"}, {"52:54:00:12:34:12", "192.0.2.12"}, {"52:54:00:12:34:11", "192.0.2.11"},
	} {
		out := s.boot(t, c.mac)
		if !strings.Contains(out, "NFSROOT-OK ip="+c.ip+" marker=image-content") {
			t.Fatalf("boot %d (%s): no NFS root; console tail:\n%s\nvmroot serve:\n%s", i+1, c.mac, netboottest.Tail(out, 40), netboottest.Tail(s.out.String(), 40))
		}
		if strings.Contains(out, "NFSROOT-WRITE-FAILED") {
			t.Errorf("boot %d (%s): the guest could not write its root", i+1, c.mac)
		}
		if seen := strings.Contains(out, "NFSROOT-SEEN "+c.ip); seen != (i == 2) {
			t.Errorf("boot %d (%s): saw its earlier write: %v", i+1, c.mac, seen)
		}
	}
	// Both boot paths were taken, from the one process.
	log := s.out.String()
	for _, want := range []string{"service=dhcp mode=full", "file=pxelinux.cfg/01-52-54-00-12-34-11", "file=01-52-54-00-12-34-11/vmlinuz",
		"path=/ipxe/52-54-00-12-34-12", "path=/boot/52-54-00-12-34-12/vmlinuz", "msg=mounted host=web1", "msg=mounted host=web2"} {
		if !strings.Contains(log, want) {
			t.Errorf("vmroot serve did not log %q:\n%s", want, netboottest.Tail(log, 60))
		}
	}
	// Each host's changes are in its own diff only; the image is untouched.
	for _, c := range []struct{ ip, other, want string }{
		{"192.0.2.11", "192.0.2.12", "boot of 192.0.2.11\nboot of 192.0.2.11\n"},
		{"192.0.2.12", "192.0.2.11", "boot of 192.0.2.12\n"},
	} {
		b, err := os.ReadFile(filepath.Join(diffs, c.ip, "root", "written-by-"+c.ip))
		if err != nil || string(b) != c.want {
			t.Errorf("diff of %s: %q %v", c.ip, b, err)
		}
		if _, err := os.Stat(filepath.Join(diffs, c.ip, "root", "written-by-"+c.other)); err == nil {
			t.Errorf("diff of %s holds %s's file", c.ip, c.other)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "root")); len(ents) != 0 {
		t.Errorf("the image's /root changed: %v", ents)
	}
}

// The same from "vmroot serve" as proxyDHCP beside busybox udhcpd: the
// host is listed by MAC only, its address comes from udhcpd's pool, and
// the NFS server recognises it by the MAC of the peer (ARP table).
func TestPXEBootNFSRootProxyMACOnly(t *testing.T) {
	t.Parallel()
	root := buildRoot(t, true)
	diffs := filepath.Join(t.TempDir(), "diffs")
	web3 := filepath.Join(diffs, "web3")
	s := serveAll(t, root, diffs, "[dhcp]\nmode = \"proxy\"\ninterface = \"tap0\"\n",
		fmt.Sprintf("[[host]]\nname = \"web3\"\nmac = \"52:54:00:12:34:13\"\ndiff = %q\nsquash = \"no_root_squash\"\nargs = \"console=ttyS0 panic=-1\"\nboot = \"pxelinux\"\n", web3))
	netboottest.Udhcpd(t, s.ns, "tap0", "192.0.2.100", "192.0.2.150")
	out := s.boot(t, "52:54:00:12:34:13")
	m := regexp.MustCompile(`NFSROOT-OK ip=(192\.0\.2\.1[0-5][0-9]) marker=image-content`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no NFS root from udhcpd's pool; console tail:\n%s\nvmroot serve:\n%s", netboottest.Tail(out, 40), netboottest.Tail(s.out.String(), 40))
	}
	if b, err := os.ReadFile(filepath.Join(web3, "root", "written-by-"+m[1])); err != nil || string(b) != "boot of "+m[1]+"\n" {
		t.Errorf("web3's diff: %q %v\nvmroot serve:\n%s", b, err, netboottest.Tail(s.out.String(), 40))
	}
	if log := s.out.String(); !strings.Contains(log, "msg=mounted host=web3") || !strings.Contains(log, "service=dhcp mode=proxy") {
		t.Errorf("mount by MAC or proxy DHCP not logged:\n%s", netboottest.Tail(log, 60))
	}
}

// served is a "vmroot serve" process in a namespace of its own.
type served struct {
	services
	out *netboottest.Output
}

// serveAll runs "vmroot serve --config" with DHCP (the given [dhcp]
// section), TFTP, HTTP and NFS on 192.0.2.1 inside a new namespace
// holding tap0, until the test ends. NFS has no portmap: the kernel
// command line carries the ports.
func serveAll(t *testing.T, image, diffs, dhcpSection, hosts string) *served {
	netboottest.NeedRoot(t)
	if _, err := tftp.FindStatic(tftp.DebianDirs, []string{"pxelinux.0", "ldlinux.c32"}); err != nil {
		t.Skip(err)
	}
	ns, _ := netboottest.NewTapNS(t, "192.0.2.1/24")
	bin := filepath.Join(t.TempDir(), "vmroot")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vmroot/vmroot/cmd/vmroot").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "vmroot.toml")
	toml := fmt.Sprintf(`image = %q
export = "/vmroot"
state_dir = %q
[nfs]
listen = ["192.0.2.1"]
port = 2049
portmap_port = -1
udp = false
[tftp]
listen = "192.0.2.1:69"
[http]
listen = "192.0.2.1:8080"
%s%s`, image, filepath.Join(diffs, ".state"), dhcpSection, hosts)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out := netboottest.StartServe(t, ns, bin, cfg)
	for i := 0; !strings.Contains(out.String(), `msg="boot services"`); i++ {
		if i == 100 {
			t.Fatalf("vmroot serve did not start its boot services:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &served{services{ns: ns, log: &netboottest.Recorder{}}, out}
}

func logged(r *netboottest.Recorder, s string) bool {
	for _, l := range r.Lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return m
}
