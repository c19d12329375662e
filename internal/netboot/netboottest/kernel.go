package netboottest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CacheDir holds what the boot tests fetch once per machine: the Debian
// kernel package, unpacked beside it, and testdata/mkdebian.sh's
// debootstrap root.
const CacheDir = "/var/cache/vmroot-netboot"

// LockCache holds CacheDir's lock until the returned function is called.
// go test runs packages at once and tests in parallel, and two unpacks
// into one directory break each other; testdata/mkdebian.sh takes the same
// lock with flock(1).
func LockCache(t *testing.T) (unlock func()) {
	t.Helper()
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		t.Skipf("no cache directory %s: %v", CacheDir, err)
	}
	f, err := os.OpenFile(filepath.Join(CacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { f.Close() }
}

// DebianKernel returns an unpacked Debian kernel package (fetched once
// with apt-get download into CacheDir, never installed) and its version.
func DebianKernel(t *testing.T) (kroot, kv string) {
	t.Helper()
	unlock := LockCache(t)
	defer unlock()
	debs, _ := filepath.Glob(CacheDir + "/linux-image-*.deb")
	if len(debs) == 0 {
		out, err := exec.Command("sh", "-c", `cd `+CacheDir+` && apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"`).CombinedOutput()
		debs, _ = filepath.Glob(CacheDir + "/linux-image-*.deb")
		if err != nil || len(debs) == 0 {
			t.Skipf("no Debian kernel package in %s and apt-get download failed: %v %s", CacheDir, err, out)
		}
	}
	kroot = strings.TrimSuffix(debs[0], ".deb") + ".root"
	if _, err := os.Stat(kroot); err != nil {
		tmp := kroot + ".tmp"
		os.RemoveAll(tmp)
		if out, err := exec.Command("dpkg", "-x", debs[0], tmp).CombinedOutput(); err != nil {
			t.Fatalf("dpkg -x: %v %s", err, out)
		}
		if err := os.Rename(tmp, kroot); err != nil {
			t.Fatal(err)
		}
	}
	ks, _ := filepath.Glob(kroot + "/boot/vmlinuz-*")
	if len(ks) != 1 {
		t.Fatalf("kernels in %s: %v", kroot, ks)
	}
	return kroot, strings.TrimPrefix(filepath.Base(ks[0]), "vmlinuz-")
}
