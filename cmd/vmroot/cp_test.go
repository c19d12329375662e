package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// cp follows cp(1)'s rules for DEST and refuses directories without -r.
func TestCpDestinations(t *testing.T) {
	a := buildAppliance(t)
	img := a.variants(t)["monolithicSparse"]
	want, _ := os.ReadFile(filepath.Join(a.tree, "files/text"))

	dir := t.TempDir()
	ok(t, "cp", img, "/files/text", dir) // into an existing directory
	if got, _ := os.ReadFile(filepath.Join(dir, "text")); string(got) != string(want) {
		t.Errorf("cp into dir: %q", got)
	}
	ok(t, "cp", img, "/files/text", filepath.Join(dir, "renamed")) // to a new name
	if got, _ := os.ReadFile(filepath.Join(dir, "renamed")); string(got) != string(want) {
		t.Errorf("cp to new name: %q", got)
	}
	ok(t, "cp", img, "/files/text", filepath.Join(dir, "renamed")) // over an existing file
	ok(t, "cp", img, "/files/text", "/files/size-1", "/links/fast", dir)
	if l, err := os.Readlink(filepath.Join(dir, "fast")); err != nil || l != "target" {
		t.Errorf("symlink copied as %q, %v", l, err)
	}
	fails(t, "not a directory", "cp", img, "/files/text", "/files/size-1", filepath.Join(dir, "renamed"))
	fails(t, "/files", "cp", img, "/files", dir)
	fails(t, "nope", "cp", img, "/nope", dir)
	ok(t, "cp", "-r", img, "/deep", filepath.Join(dir, "d"))
	if _, err := os.Stat(filepath.Join(dir, "d", "d01", "d02")); err != nil {
		t.Error(err)
	}
}

// extract shows a progress bar only on a terminal (script(1) provides one).
func TestExtractProgressOnTerminal(t *testing.T) {
	testimg.Need(t, "script")
	a := buildAppliance(t)
	img := a.variants(t)["twoGbMaxExtentSparse"]
	dir := t.TempDir()
	cmd := exec.Command("script", "-qec", vmrootBin+" extract -p 5 "+img+" -o "+filepath.Join(dir, "p5.raw"), "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "extracting") || !strings.Contains(string(out), "100%") {
		t.Errorf("no progress bar on a terminal:\n%q", out)
	}
	r := vmroot(t, "extract", "-p", "5", img, "-o", filepath.Join(dir, "p5b.raw"))
	if r.code != 0 || strings.Contains(r.stderr, "extracting") {
		t.Errorf("progress bar without a terminal: exit %d %q", r.code, r.stderr)
	}
}

// extract never writes over one of the image's own files.
func TestExtractRefusesInputs(t *testing.T) {
	a := buildAppliance(t)
	img := a.variants(t)["twoGbMaxExtentFlat"]
	extent := filepath.Join(filepath.Dir(img), "appliance-f002.vmdk")
	before := testimg.FileSHA256(t, img)
	fails(t, "refusing", "extract", "-p", "0", img, "-o", img)
	fails(t, "appliance-f002.vmdk", "extract", "-p", "0", img, "-o", extent)
	if testimg.FileSHA256(t, img) != before {
		t.Fatal("descriptor changed")
	}
}
