package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	testimg.Run(t, "cp", "--sparse=always", src, dst)
}

func TestBadInputOneClearError(t *testing.T) {
	a := buildAppliance(t)
	v := a.variants(t)

	t.Run("missing split extent", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Dir(v["twoGbMaxExtentFlat"])
		for _, n := range []string{"appliance.vmdk", "appliance-f001.vmdk", "appliance-f003.vmdk"} {
			copyFile(t, filepath.Join(src, n), filepath.Join(dir, n))
		}
		fails(t, "appliance-f002.vmdk", "info", filepath.Join(dir, "appliance.vmdk"))
	})
	t.Run("corrupt descriptor", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.vmdk")
		os.WriteFile(p, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW banana FLAT \"x-flat.vmdk\" 0\n"), 0o644)
		fails(t, "bad.vmdk", "info", p)
	})
	t.Run("truncated sparse file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "trunc.vmdk")
		copyFile(t, v["monolithicSparse"], p)
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()/2)
		fails(t, "trunc.vmdk", "cp", "-r", p, "/", t.TempDir())
	})
	t.Run("qcow2", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "disk.qcow2")
		testimg.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", p, "1M")
		fails(t, "disk.qcow2: qcow2", "ls", p)
	})
	t.Run("not an image", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "notes.txt")
		os.WriteFile(p, []byte(strings.Repeat("hello\n", 1000)), 0o644)
		fails(t, "notes.txt", "ls", p)
	})
	t.Run("missing file", func(t *testing.T) {
		fails(t, "nope.vmdk", "info", filepath.Join(t.TempDir(), "nope.vmdk"))
	})
	t.Run("ambiguous partition", func(t *testing.T) {
		dir := t.TempDir()
		e1 := testimg.Ext(t, dir, a.tree, "ext2", 64)
		raw := testimg.Disk(t, dir, "dos", 200, testimg.Part{Type: "83", SizeMiB: 64, Content: e1}, testimg.Part{Type: "83", SizeMiB: 64, Content: e1})
		msg := fails(t, "disk.raw", "ls", raw)
		if !strings.Contains(msg, "1 (ext)") || !strings.Contains(msg, "2 (ext)") {
			t.Errorf("error does not list the candidates: %s", msg)
		}
	})
	t.Run("absurd superblock", func(t *testing.T) {
		dir := t.TempDir()
		img := testimg.Ext(t, dir, a.tree, "ext2", 64)
		patch(t, img, 1024+4, 0xfffffff0) // s_blocks_count_lo far past the device
		fails(t, "ext2-0.img", "ls", img)
	})
	t.Run("directory loop", func(t *testing.T) {
		testimg.Need(t, "debugfs")
		dir := t.TempDir()
		img := testimg.Ext(t, dir, a.tree, "ext2", 64)
		testimg.Run(t, "debugfs", "-w", "-R", "link /deep /deep/d01/d02/loop", img)
		msg := fails(t, "ext2-0.img", "cp", "-r", img, "/deep", t.TempDir())
		if !strings.Contains(msg, "loop") {
			t.Errorf("error does not say loop: %s", msg)
		}
		fails(t, "ext2-0.img", "ls", "-R", img, "/deep")
	})
	t.Run("block pointer past the filesystem", func(t *testing.T) {
		testimg.Need(t, "debugfs")
		dir := t.TempDir()
		img := testimg.Ext(t, dir, a.tree, "ext2", 64)
		testimg.Run(t, "debugfs", "-w", "-R", "sif /files/size-4096 block[0] 0x7ffffff0", img)
		fails(t, "ext2-0.img", "cat", img, "/files/size-4096")
	})
}

func patch(t *testing.T, path string, off int64, v uint32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// A filesystem whose journal was not replayed is still read, with a warning.
func TestNeedsRecoveryWarns(t *testing.T) {
	testimg.Need(t, "debugfs")
	a := buildAppliance(t)
	dir := t.TempDir()
	img := testimg.Ext(t, dir, a.tree, "ext3", 64)
	testimg.Run(t, "debugfs", "-w", "-R", "feature needs_recovery", img)
	r := vmroot(t, "ls", img, "/files")
	if r.code != 0 || !strings.Contains(r.stdout, "size-4096") {
		t.Fatalf("ls of a filesystem needing recovery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "needs recovery") {
		t.Errorf("no recovery warning on stderr: %q", r.stderr)
	}
	var info infoJSON
	if err := json.Unmarshal([]byte(ok(t, "info", "--json", img)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Filesystem == nil || !info.Filesystem.NeedsRecovery {
		t.Errorf("info --json does not report needs-recovery: %+v", info.Filesystem)
	}
}
