package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// nfsrootImage makes an ext3 image of a small Debian-like root whose
// initramfs (gzip, newc) has what initramfs-tools' NFS boot needs, or
// lacks its NFS modules when broken is set.
func nfsrootImage(t *testing.T, broken bool) string {
	testimg.Need(t, "mke2fs", "cpio", "gzip")
	d := t.TempDir()
	root, ird := filepath.Join(d, "root"), filepath.Join(d, "initrd")
	mods := "lib/modules/6.1.0-10-amd64/kernel"
	nfs := "mkdir -p " + ird + "/" + mods + "/fs/nfs " + ird + "/" + mods + "/net/sunrpc && " +
		"touch " + ird + "/" + mods + "/fs/nfs/nfs.ko " + ird + "/" + mods + "/fs/nfs/nfsv3.ko " + ird + "/" + mods + "/net/sunrpc/sunrpc.ko && "
	if broken {
		nfs = ""
	}
	testimg.Sh(t, `
mkdir -p `+root+`/etc `+root+`/boot `+root+`/usr/share/zoneinfo/Europe `+ird+`/scripts `+ird+`/conf `+ird+`/`+mods+`/drivers/net/vmxnet3
printf 'UUID=1234 / ext3 errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\nproc /proc proc defaults 0 0\n' > `+root+`/etc/fstab
echo TZif2 > `+root+`/usr/share/zoneinfo/Europe/Oslo
echo kernel > `+root+`/boot/vmlinuz-6.1.0-10-amd64
echo nfs > `+ird+`/scripts/nfs; echo local > `+ird+`/scripts/local; echo BOOT=local > `+ird+`/conf/initramfs.conf
touch `+ird+`/`+mods+`/drivers/net/vmxnet3/vmxnet3.ko
`+nfs+`(cd `+ird+` && find . | cpio --quiet -o -H newc -R 0:0 | gzip) > `+root+`/boot/initrd.img-6.1.0-10-amd64
ln -s boot/vmlinuz-6.1.0-10-amd64 `+root+`/vmlinuz
ln -s boot/initrd.img-6.1.0-10-amd64 `+root+`/initrd.img
`)
	img := filepath.Join(d, "root.ext3")
	testimg.Run(t, "mke2fs", "-q", "-t", "ext3", "-d", root, img, "8M")
	return img
}

func TestPrepareNFSRootCommand(t *testing.T) {
	img := nfsrootImage(t, false)
	sum := testimg.FileSHA256(t, img)
	layer := filepath.Join(t.TempDir(), "layer")
	apt := filepath.Join(t.TempDir(), "sources.list")
	os.WriteFile(apt, []byte("deb http://deb.debian.org/debian bookworm main\n"), 0o644)
	out := ok(t, "prepare-nfsroot", img, "-o", layer, "--nameserver", "192.0.2.53", "--timezone", "Europe/Oslo", "--apt-sources", apt)
	for _, want := range []string{
		"layer " + layer + ": wrote /etc/fstab /etc/resolv.conf /etc/timezone /etc/localtime /etc/apt/sources.list\n",
		"/etc/fstab: commented out: UUID=1234 / ext3 errors=remount-ro 0 1\n",
		"/etc/fstab: commented out: /dev/sda5 none swap sw 0 0\n",
		"initramfs /initrd.img (initramfs-tools): can mount an NFS root\n",
		"  NFS modules: sunrpc nfs nfsv3; NIC drivers: vmxnet3\n",
		"  note: conf/initramfs.conf has BOOT=local: boot with boot=nfs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if testimg.FileSHA256(t, img) != sum {
		t.Error("the image changed")
	}
	b, _ := os.ReadFile(filepath.Join(layer, "etc/fstab"))
	if !strings.Contains(string(b), "\nproc /proc proc defaults 0 0\n") || !strings.HasPrefix(string(b), "# vmroot prepare-nfsroot (root on NFS): UUID=1234") {
		t.Errorf("layer fstab:\n%s", b)
	}
}

func TestPrepareNFSRootReportsProblems(t *testing.T) {
	img := nfsrootImage(t, true)
	layer := filepath.Join(t.TempDir(), "layer")
	r := vmroot(t, "prepare-nfsroot", img, "-o", layer)
	if r.code != 0 || !strings.Contains(r.stdout, "CANNOT mount an NFS root") ||
		!strings.Contains(r.stdout, "problem: no NFS modules (sunrpc, nfs, nfsv3, neither files nor built in): set MODULES=netboot") ||
		!strings.Contains(r.stderr, "warning") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := vmroot(t, "prepare-nfsroot", img); r.code != 2 {
		t.Errorf("without -o: exit %d", r.code)
	}
	if r := vmroot(t, "prepare-nfsroot", img, "-o", layer, "--nameserver", "dns.example"); r.code != 2 {
		t.Errorf("bad nameserver: exit %d", r.code)
	}
	fails(t, "Europe/Nowhere", "prepare-nfsroot", img, "-o", layer, "--timezone", "Europe/Nowhere")
}
