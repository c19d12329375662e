// Package testimg builds test images at test time with real tools
// (mke2fs -d, sfdisk, qemu-img, vmdkstream). Nothing it makes is checked in.
package testimg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// packages maps tools to the Debian package that ships them, for skip messages.
var packages = map[string]string{
	"mke2fs": "e2fsprogs", "debugfs": "e2fsprogs", "e2fsck": "e2fsprogs",
	"sfdisk": "fdisk", "sgdisk": "gdisk", "qemu-img": "qemu-utils", "qemu-io": "qemu-utils",
	"vmdkstream": "python3-vmdkstream", "xorriso": "xorriso", "mkfs.vfat": "dosfstools",
	"mcopy": "mtools", "getfattr": "attr", "setfacl": "acl", "python3": "python3",
}

// Need skips the test unless every tool is on PATH.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			pkg := packages[tool]
			if pkg == "" {
				pkg = tool
			}
			t.Skipf("%s not installed (Debian package %s; `make test` installs it as root)", tool, pkg)
		}
	}
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sh runs a shell script with bash.
func Sh(t testing.TB, script string) string {
	t.Helper()
	return Run(t, "bash", "-euo", "pipefail", "-c", script)
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
)

// Tree returns the standard test tree made by testdata/mktree.sh, built once
// per test binary in a directory removed by Cleanup.
func Tree(t testing.TB) string {
	t.Helper()
	Need(t, "python3")
	treeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmroot-tree-")
		if err != nil {
			treeErr = err
			return
		}
		treeDir = filepath.Join(dir, "tree")
		out, err := exec.Command("bash", filepath.Join(RepoRoot(), "testdata", "mktree.sh"), treeDir).CombinedOutput()
		if err != nil {
			treeErr = fmt.Errorf("mktree.sh: %v\n%s", err, out)
		}
	})
	if treeErr != nil {
		t.Fatal(treeErr)
	}
	return treeDir
}

// Cleanup removes the shared tree; call it from TestMain after m.Run.
func Cleanup() {
	if treeDir != "" {
		os.RemoveAll(filepath.Dir(treeDir))
	}
}

// Ext makes an ext filesystem image of sizeMiB from tree. extra holds more
// mke2fs arguments (such as "-b", "1024", "-O", "^64bit").
func Ext(t testing.TB, dir, tree, fstype string, sizeMiB int, extra ...string) string {
	t.Helper()
	Need(t, "mke2fs")
	img := filepath.Join(dir, fmt.Sprintf("%s-%d.img", fstype, len(extra)))
	args := append([]string{"-q", "-F", "-t", fstype, "-L", "testfs", "-U", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}, extra...)
	args = append(args, "-d", tree, img, fmt.Sprintf("%dM", sizeMiB))
	Run(t, "mke2fs", args...)
	return img
}

// RestoreTimes writes the full mtimes (nanoseconds, epoch bits) of the
// given tree paths into an ext image with 256-byte inodes, which mke2fs -d
// drops. Paths must be free of spaces and newlines (debugfs syntax).
func RestoreTimes(t testing.TB, img, tree string, paths ...string) {
	t.Helper()
	Need(t, "debugfs")
	var cmds strings.Builder
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(tree, p), &st); err != nil {
			t.Fatal(err)
		}
		epoch := (st.Mtim.Sec - int64(int32(st.Mtim.Sec))) >> 32
		fmt.Fprintf(&cmds, "sif /%s mtime @%d\nsif /%s mtime_extra %d\n", p, st.Mtim.Sec, p, st.Mtim.Nsec<<2|epoch&3)
	}
	cf := filepath.Join(t.TempDir(), "debugfs.cmds")
	if err := os.WriteFile(cf, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "debugfs", "-w", "-f", cf, img)
}

// Part is one partition of a disk built by Disk.
type Part struct {
	Type     string // sfdisk type: "83", "c", "5" (extended), "L", GPT GUIDs...
	SizeMiB  int    // 0 = rest of the disk (or of the extended partition)
	Bootable bool
	Content  string // file copied to the partition's start ("" = none)
}

// Disk builds a raw disk of sizeMiB with label "dos" or "gpt". Partitions
// are laid out in order from 1 MiB; a Type "5" entry becomes the extended
// partition and the entries after it logical ones (sfdisk numbering).
func Disk(t testing.TB, dir, label string, sizeMiB int, parts ...Part) string {
	t.Helper()
	Need(t, "sfdisk")
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(sizeMiB) << 20)
	f.Close()
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", label)
	if label == "dos" {
		script.WriteString("label-id: 0x1234abcd\n")
	}
	for _, p := range parts {
		fmt.Fprintf(&script, "type=%s", p.Type)
		if p.SizeMiB > 0 {
			fmt.Fprintf(&script, ", size=%dMiB", p.SizeMiB)
		}
		if p.Bootable {
			script.WriteString(", bootable")
		}
		script.WriteString("\n")
	}
	cmd := exec.Command("sfdisk", "-q", raw)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s\n%s", err, out, script.String())
	}
	starts := SfdiskStarts(t, raw)
	for i, p := range parts {
		if p.Content == "" {
			continue
		}
		Run(t, "dd", "if="+p.Content, "of="+raw, "bs=512", fmt.Sprintf("seek=%d", starts[i]), "conv=notrunc,sparse", "status=none")
	}
	return raw
}

// SfdiskStarts returns each partition's start sector in sfdisk's order.
func SfdiskStarts(t testing.TB, raw string) []int64 {
	t.Helper()
	out := Run(t, "sfdisk", "-d", raw)
	var starts []int64
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "start=")
		if i < 0 {
			continue
		}
		var s int64
		fmt.Sscanf(strings.TrimSpace(line[i+len("start="):]), "%d", &s)
		starts = append(starts, s)
	}
	return starts
}

// VMDKStream writes a VMware-layout streamOptimized VMDK with Debian's
// python3-vmdkstream (a module, not a command; pyenv's python3 on PATH
// can't import it, hence /usr/bin/python3 first).
func VMDKStream(t testing.TB, raw, out string) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import VMDKstream").Run() == nil {
			Run(t, py, "-c", "import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])", raw, out)
			return out
		}
	}
	t.Skip("python3 module VMDKstream not installed (Debian package python3-vmdkstream)")
	return ""
}

// Convert converts a raw disk with qemu-img to format (vmdk, qcow2) with options.
func Convert(t testing.TB, raw, out, format string, opts ...string) string {
	t.Helper()
	Need(t, "qemu-img")
	args := []string{"convert", "-f", "raw", "-O", format}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	Run(t, "qemu-img", append(args, raw, out)...)
	return out
}
