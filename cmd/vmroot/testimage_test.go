package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/bootsector"
)

// TestTestimage runs the command for every format and checks the file
// names, that the listed sizes are the files' sizes, that the raw image
// is the boot sector for the message, and that no temporary file remains.
// The images themselves are checked against qemu in internal/imgfmt.
func TestTestimage(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "tiny")
	stdout := ok(t, "testimage", "-o", base, "--message", "hello from testimage")

	wantFiles := []string{"tiny-fixed.vhd", "tiny.img", "tiny.iso", "tiny.qcow2", "tiny.vdi", "tiny.vhd", "tiny.vmdk"}
	if got := dirNames(t, dir); !slices.Equal(got, wantFiles) {
		t.Fatalf("files %v, want %v", got, wantFiles)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(wantFiles) {
		t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(wantFiles), stdout)
	}
	for _, line := range lines {
		f := strings.Fields(line) // PATH FORMAT N bytes
		if len(f) != 4 || f[3] != "bytes" {
			t.Fatalf("stdout line %q", line)
		}
		st, err := os.Stat(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.ParseInt(f[2], 10, 64); n != st.Size() {
			t.Errorf("%s: listed as %s bytes, is %d", f[0], f[2], st.Size())
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", f[0], st.Mode())
		}
	}
	raw, err := os.ReadFile(base + ".img")
	if err != nil {
		t.Fatal(err)
	}
	want, err := bootsector.Build([]byte("hello from testimage"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, want) {
		t.Error("tiny.img is not the boot sector for the message")
	}
	vmdk, err := os.ReadFile(base + ".vmdk")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(vmdk, []byte(`RW 1 SPARSE "tiny.vmdk"`)) {
		t.Error("the VMDK descriptor does not name tiny.vmdk as its extent")
	}
}

func TestTestimageSomeFormats(t *testing.T) {
	dir := t.TempDir()
	ok(t, "testimage", "-o", filepath.Join(dir, "x"), "--format", "iso,qcow2,qcow2")
	if got := dirNames(t, dir); !slices.Equal(got, []string{"x.iso", "x.qcow2"}) {
		t.Errorf("files %v", got)
	}
}

func TestTestimageHelp(t *testing.T) {
	out := ok(t, "testimage", "--help")
	for _, s := range []string{"NAME.img", "NAME.qcow2", "NAME.vmdk", "NAME.vdi", "NAME.vhd", "NAME-fixed.vhd", "NAME.iso",
		strconv.Itoa(bootsector.MaxMessageLen)} {
		if !strings.Contains(out, s) {
			t.Errorf("help does not mention %s", s)
		}
	}
}

// TestTestimageErrors checks usage errors (exit 2) and a failure that
// must leave nothing behind.
func TestTestimageErrors(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "e")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"testimage"}, "-o NAME is required"},
		{[]string{"testimage", "-o", base, "--format", "floppy"}, `unknown format "floppy"`},
		{[]string{"testimage", "-o", base, "--message", strings.Repeat("m", bootsector.MaxMessageLen+1)},
			"at most " + strconv.Itoa(bootsector.MaxMessageLen)},
		{[]string{"testimage", "-o", base, "extra"}, `unexpected argument "extra"`},
		{[]string{"testimage", "-o", base, "--bogus"}, "unknown flag: --bogus"},
		{[]string{"testimage", "-o", dir + "/"}, "must end in a file name"},
	} {
		r := vmroot(t, c.args...)
		msg := strings.TrimRight(r.stderr, "\n")
		if r.code != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
			t.Errorf("vmroot %s: exit %d, stderr %q; want exit 2 and one line with %q",
				strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}

	// A directory where the ISO should go: nothing else may be written.
	if err := os.Mkdir(base+".iso", 0o755); err != nil {
		t.Fatal(err)
	}
	fails(t, base+".iso: is a directory", "testimage", "-o", base)
	if got := dirNames(t, dir); !slices.Equal(got, []string{"e.iso"}) {
		t.Errorf("after a failure the directory holds %v", got)
	}
	// Output into a missing directory names the file.
	fails(t, filepath.Join(dir, "missing", "x.img"), "testimage", "-o", filepath.Join(dir, "missing", "x"))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
