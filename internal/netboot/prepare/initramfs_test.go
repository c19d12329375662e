package prepare

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const kv = "6.1.0-10-amd64"

// tree writes files (name -> content; "->target" makes a symlink) under a new dir.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for n, c := range files {
		p := filepath.Join(d, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if tgt, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(tgt, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// debianTree is the part of an initramfs-tools image the check looks at.
func debianTree(extra map[string]string) map[string]string {
	m := map[string]string{
		"init":                "#!/bin/sh\n",
		"scripts/local":       "local",
		"scripts/nfs":         "nfs_mount_root() { :; }\n",
		"conf/initramfs.conf": "MODULES=most\nBUSYBOX=auto\nBOOT=local\n",
		"conf/arch.conf":      "DPKG_ARCH=amd64\n",
		"lib/modules/" + kv + "/kernel/net/sunrpc/sunrpc.ko":                      "\x7fELF sunrpc",
		"lib/modules/" + kv + "/kernel/fs/nfs/nfs.ko":                             "\x7fELF nfs",
		"lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko":                           "\x7fELF nfsv3",
		"lib/modules/" + kv + "/kernel/drivers/net/vmxnet3/vmxnet3.ko":            "\x7fELF vmxnet3",
		"lib/modules/" + kv + "/kernel/drivers/net/ethernet/intel/e1000/e1000.ko": "\x7fELF e1000",
		"lib/modules/" + kv + "/modules.builtin":                                  "kernel/fs/ext4/ext4.ko\n",
		"bin/sh":                                                                  "->busybox",
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// newc packs dir with GNU cpio (or busybox cpio) in newc format.
func newc(t testing.TB, dir string, busybox bool) []byte {
	t.Helper()
	var cmd *exec.Cmd
	if busybox {
		if _, err := exec.LookPath("busybox"); err != nil {
			t.Skip("busybox not installed")
		}
		cmd = exec.Command("sh", "-c", "find . | sort | busybox cpio -o -H newc")
	} else {
		if _, err := exec.LookPath("cpio"); err != nil {
			t.Skip("cpio not installed (apt-get install cpio)")
		}
		cmd = exec.Command("sh", "-c", "find . | sort | cpio --quiet -o -H newc -R 0:0")
	}
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio: %v", err)
	}
	return out
}

func compress(t testing.TB, data []byte, prog string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		t.Skipf("%s not installed", prog)
	}
	cmd := exec.Command(prog, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return out
}

func check(t testing.TB, img []byte) (*InitramfsReport, error) {
	return CheckInitramfs(bytes.NewReader(img), int64(len(img)), "/initrd.img", DefaultLimits)
}

func TestWalkNamesAndData(t *testing.T) {
	arch := newc(t, tree(t, debianTree(nil)), false)
	var names []string
	var conf []byte
	err := Walk(bytes.NewReader(arch), int64(len(arch)), DefaultLimits, func(n string) bool { return n == "conf/initramfs.conf" }, func(e Entry) error {
		names = append(names, e.Name)
		if e.Name == "conf/initramfs.conf" {
			conf = e.Data
		}
		if e.Name == "bin/sh" && (e.Mode&0o170000 != 0o120000 || e.Size != int64(len("busybox"))) {
			t.Errorf("bin/sh: mode %o size %d", e.Mode, e.Size)
		}
		if e.Data != nil && e.Name != "conf/initramfs.conf" {
			t.Errorf("%s: data kept unasked", e.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(conf) != "MODULES=most\nBUSYBOX=auto\nBOOT=local\n" {
		t.Errorf("conf = %q", conf)
	}
	joined := "\n" + strings.Join(names, "\n") + "\n"
	for _, n := range []string{"scripts/nfs", "lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko", "bin/sh", "lib/modules"} {
		if !strings.Contains(joined, "\n"+n+"\n") {
			t.Errorf("%s not walked; got %v", n, names)
		}
	}
	if strings.Contains(joined, "TRAILER") || strings.Contains(joined, "\n.\n") == false {
		t.Errorf("trailer reported or '.' missing: %v", names)
	}
}

// The formats initramfs-tools, dracut and the kernel use, and the early
// microcode archive update-initramfs puts in front.
func TestCheckInitramfsFormats(t *testing.T) {
	arch := newc(t, tree(t, debianTree(nil)), false)
	micro := newc(t, tree(t, map[string]string{"kernel/x86/microcode/GenuineIntel.bin": "ucode"}), false)
	for name, img := range map[string][]byte{
		"plain":           arch,
		"busybox cpio":    newc(t, tree(t, debianTree(nil)), true),
		"gzip":            compress(t, arch, "gzip", "-c"),
		"zstd":            compress(t, arch, "zstd", "-q", "-c"),
		"xz crc32":        compress(t, arch, "xz", "--check=crc32", "-c"),
		"xz multi-block":  compress(t, bytes.Repeat(arch, 1), "xz", "--check=crc32", "--block-size=4096", "-c"),
		"lzma":            compress(t, arch, "xz", "--format=lzma", "-c"),
		"bzip2":           compress(t, arch, "bzip2", "-c"),
		"lz4 legacy":      compress(t, arch, "lz4", "-l", "-q", "-c"),
		"microcode+zstd":  append(append(append([]byte{}, micro...), make([]byte, 512)...), compress(t, arch, "zstd", "-q", "-c")...),
		"microcode+gzip":  append(append([]byte{}, micro...), compress(t, arch, "gzip", "-c")...),
		"two in one gzip": compress(t, append(append([]byte{}, micro...), arch...), "gzip", "-c"),
	} {
		r, err := check(t, img)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.Tool != "initramfs-tools" || !r.NFSBoot || r.BootVar != "local" || strings.Join(r.Modules, ",") != "sunrpc,nfs,nfsv3" ||
			strings.Join(r.NICs, ",") != "vmxnet3,e1000" || !r.OK() {
			t.Errorf("%s: %+v", name, r)
		}
		if len(r.Notes) != 2 || !strings.Contains(r.Notes[0], "boot=nfs") {
			t.Errorf("%s: notes %q", name, r.Notes)
		}
	}
}

func TestCheckInitramfsProblems(t *testing.T) {
	gz := func(m map[string]string) []byte { return compress(t, newc(t, tree(t, m), false), "gzip", "-c") }
	// No NFS modules, no scripts/nfs.
	r, err := check(t, gz(debianTree(map[string]string{
		"scripts/nfs": "", "lib/modules/" + kv + "/kernel/fs/nfs/nfs.ko": "", "lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko": "",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || len(r.Problems) != 2 || !strings.Contains(r.Problems[0], "scripts/nfs") ||
		!strings.Contains(r.Problems[1], "nfs, nfsv3") || !strings.Contains(r.Problems[1], "MODULES=netboot") || !strings.Contains(r.Problems[1], "update-initramfs -u") {
		t.Errorf("problems: %q", r.Problems)
	}
	// Built in (modules.builtin), compressed module files (.ko.xz), BOOT=nfs.
	r, err = check(t, gz(debianTree(map[string]string{
		"lib/modules/" + kv + "/kernel/fs/nfs/nfs.ko":                 "",
		"lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko":               "",
		"lib/modules/" + kv + "/kernel/net/sunrpc/sunrpc.ko":          "",
		"lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko.xz":            "x",
		"lib/modules/" + kv + "/modules.builtin":                      "kernel/fs/nfs/nfs.ko\nkernel/net/sunrpc/sunrpc.ko\n",
		"lib/modules/" + kv + "/kernel/drivers/net/virtio_net.ko.zst": "x",
		"conf/initramfs.conf":                                         "BOOT=nfs\n",
	})))
	if err != nil || !r.OK() || strings.Join(r.Modules, ",") != "sunrpc,nfs,nfsv3" || r.BootVar != "nfs" || len(r.Notes) != 1 {
		t.Errorf("built in: %+v %v", r, err)
	}
	// A custom busybox initramfs: not initramfs-tools, no NIC drivers.
	r, err = check(t, gz(map[string]string{"init": "#!/bin/sh\n", "bin/busybox": "x"}))
	if err != nil || r.Tool != "unknown" || r.OK() || !strings.Contains(r.Problems[0], "not an initramfs-tools or dracut") ||
		!strings.Contains(r.Notes[0], "no driver for vmxnet3") {
		t.Errorf("custom: %+v %v", r, err)
	}
	// dracut without its nfs module.
	r, err = check(t, gz(map[string]string{"usr/lib/dracut/build-parameter.txt": "x", "init": "x",
		"usr/lib/modules/" + kv + "/kernel/fs/nfs/nfs.ko": "x", "usr/lib/modules/" + kv + "/kernel/fs/nfs/nfsv3.ko": "x",
		"usr/lib/modules/" + kv + "/kernel/net/sunrpc/sunrpc.ko": "x"}))
	if err != nil || r.Tool != "dracut" || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "add_dracutmodules") {
		t.Errorf("dracut: %+v %v", r, err)
	}
}

func TestWalkBadInput(t *testing.T) {
	arch := newc(t, tree(t, debianTree(nil)), false)
	gz := compress(t, arch, "gzip", "-c")
	for name, img := range map[string][]byte{
		"truncated cpio":   arch[:len(arch)/2],
		"truncated gzip":   gz[:len(gz)/2],
		"garbage":          []byte("hello, this is not an initramfs"),
		"bad hex":          append([]byte("070701zzzzzzzz"), make([]byte, 200)...),
		"old binary cpio":  append([]byte{0xc7, 0x71}, make([]byte, 200)...),
		"odc cpio":         append([]byte("070707"), make([]byte, 200)...),
		"huge name length": []byte("070701" + strings.Repeat("00000000", 11) + "7fffffff" + "00000000"),
	} {
		if _, err := check(t, img); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Zeros only and nothing at all are empty, not errors.
	for _, img := range [][]byte{nil, make([]byte, 4096)} {
		if err := Walk(bytes.NewReader(img), int64(len(img)), DefaultLimits, nil, func(Entry) error { return nil }); err != nil {
			t.Errorf("%d zero bytes: %v", len(img), err)
		}
	}
	// Limits.
	lim := DefaultLimits
	lim.MaxEntries = 5
	if err := Walk(bytes.NewReader(gz), int64(len(gz)), lim, nil, func(Entry) error { return nil }); !errors.Is(err, ErrLimit) {
		t.Errorf("MaxEntries: %v", err)
	}
	lim = DefaultLimits
	lim.MaxBytes = 1000
	if err := Walk(bytes.NewReader(gz), int64(len(gz)), lim, nil, func(Entry) error { return nil }); !errors.Is(err, ErrLimit) {
		t.Errorf("MaxBytes: %v", err)
	}
	// A gzip bomb stops at MaxBytes.
	bomb := compress(t, make([]byte, 64<<20), "gzip", "-c")
	lim.MaxBytes = 8 << 20
	if err := Walk(bytes.NewReader(bomb), int64(len(bomb)), lim, nil, func(Entry) error { return nil }); err == nil {
		t.Errorf("gzip of zeros accepted")
	}
}

// An xz stream whose header asks for a dictionary beyond maxDict is
// refused before any decoder allocates it.
func TestXZDictionaryLimit(t *testing.T) {
	arch := newc(t, tree(t, debianTree(nil)), false)
	big := compress(t, arch, "xz", "--check=crc32", "--lzma2=dict=128MiB", "-c")
	if _, err := check(t, big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("128 MiB dictionary: %v", err)
	}
	ok := compress(t, arch, "xz", "--check=crc32", "--lzma2=dict=64MiB", "-c")
	if _, err := check(t, ok); err != nil {
		t.Errorf("64 MiB dictionary: %v", err)
	}
	// Stream padding after the footer is allowed; two streams are not.
	if _, err := check(t, append(append([]byte{}, ok...), make([]byte, 8)...)); err != nil {
		t.Errorf("padded: %v", err)
	}
	if _, err := check(t, append(append([]byte{}, ok...), ok...)); err == nil {
		t.Error("two xz streams accepted")
	}
	// Corrupt index and footer.
	for _, i := range []int{len(ok) - 1, len(ok) - 8, len(ok) - 13, 13} {
		b := append([]byte{}, ok...)
		b[i] ^= 0xff
		if _, err := check(t, b); err == nil {
			t.Errorf("xz with byte %d flipped accepted", i)
		}
	}
}
