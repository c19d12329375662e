package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// vmrootBin is the CLI built once for the package's tests: the tests run the
// real binary, exit status and stderr included.
var vmrootBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vmroot-bin-")
	if err != nil {
		panic(err)
	}
	vmrootBin = filepath.Join(dir, "vmroot")
	args := []string{"build", "-o", vmrootBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(2)
	}
	code := m.Run()
	testimg.Cleanup()
	if appl != nil {
		os.RemoveAll(appl.dir)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func vmroot(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(vmrootBin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{so.String(), se.String(), code}
}

// ok runs vmroot and fails the test unless it succeeds.
func ok(t testing.TB, args ...string) string {
	t.Helper()
	r := vmroot(t, args...)
	if r.code != 0 {
		t.Fatalf("vmroot %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fails runs vmroot on bad input and checks the error contract: exit status
// 1, one line on stderr naming want (the file), no panic.
func fails(t testing.TB, want string, args ...string) string {
	t.Helper()
	r := vmroot(t, args...)
	if r.code != 1 {
		t.Fatalf("vmroot %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	msg := strings.TrimRight(r.stderr, "\n")
	if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
		t.Fatalf("vmroot %s: want one error line, got:\n%s", strings.Join(args, " "), r.stderr)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("vmroot %s: error does not name %q:\n%s", strings.Join(args, " "), want, msg)
	}
	return msg
}
