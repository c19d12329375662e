package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/testimg"
)

// TestInstallerBIOS makes an ISO booting Debian's isolinux, turns it into
// a disk with --bios and boots that disk in qemu with no CD drive: the
// isolinux.cfg of the ISO names a kernel that is unique to this run, and
// isolinux printing it on the serial console proves it was loaded from the
// disk through the MBR and read its configuration there.
func TestInstallerBIOS(t *testing.T) {
	testimg.Need(t, "xorriso", "sfdisk", "qemu-system-x86_64")
	for p, pkg := range map[string]string{"/usr/lib/ISOLINUX/isolinux.bin": "isolinux", "/usr/lib/ISOLINUX/isohdpfx.bin": "isolinux", "/usr/lib/syslinux/modules/bios/ldlinux.c32": "syslinux-common"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (Debian package %s)", p, pkg)
		}
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "isolinux"), 0o755)
	testimg.Run(t, "cp", "/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32", filepath.Join(tree, "isolinux"))
	marker := "/vmroot-" + strings.ToLower(rand.Text()[:12])
	// SAY output does not reach the serial console in isolinux 6.04; the
	// "Loading KERNEL" line does.
	cfg := "SERIAL 0 115200\nSAY vmroot bios test\nPROMPT 0\nDEFAULT " + marker + "\n"
	os.WriteFile(filepath.Join(tree, "isolinux/isolinux.cfg"), []byte(cfg), 0o644)
	iso := filepath.Join(dir, "in.iso")
	// No -boot-info-table: vmroot has to write it.
	testimg.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", iso,
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", tree)
	disk := filepath.Join(dir, "disk.raw")
	ok(t, "installer", iso, "-o", disk, "--bios")
	fi, _ := os.Stat(disk)
	dump := testimg.Run(t, "sfdisk", "--dump", disk)
	if want := fmt.Sprintf("disk.raw1 : start=%12d, size=%12d, type=17, bootable", 0, 2048); fi.Size() != 1<<20 || !strings.Contains(dump, want) {
		t.Fatalf("%d-byte disk, want one MiB with %q:\n%s", fi.Size(), want, dump)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	q := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-m", "128",
		"-drive", "file="+disk+",format=raw,if=ide", "-boot", "c", "-serial", "stdio", "-monitor", "none", "-no-reboot")
	out, err := q.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { q.Process.Kill(); q.Wait() }()
	var seen strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Loading "+marker) {
			return
		}
	}
	t.Fatalf("no %q on the serial console (%v):\n%s", "Loading "+marker, ctx.Err(), seen.String())
}

func TestInstallerBIOSErrors(t *testing.T) {
	testimg.Need(t, "xorriso")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	iso := filepath.Join(t.TempDir(), "plain.iso")
	testimg.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", iso, dir)
	mbr := filepath.Join(dir, "mbr.bin")
	os.WriteFile(mbr, append([]byte{0xeb, 0xfe}, make([]byte, 430)...), 0o644)
	out := filepath.Join(t.TempDir(), "disk.raw")
	fails(t, iso+": no El Torito BIOS boot image", "installer", iso, "-o", out, "--bios", "--bios-mbr", mbr)
	fails(t, "f: not MBR boot code", "installer", iso, "-o", out, "--bios", "--bios-mbr", filepath.Join(dir, "f"))
	for _, args := range [][]string{
		{"--bios", "--config-drive", instConfigDrive},
		{"--bios", "--size", "100"},
		{"--bios-mbr", mbr, "--config-drive", instConfigDrive},
	} {
		if r := vmroot(t, append([]string{"installer", iso, "-o", out}, args...)...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}
