package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/testimg"
)

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vmroot.toml")
	os.WriteFile(cfg, []byte("image = \"x.img\"\n\n[[host]]\nname = \"a\"\nip = [\"10.0.0.1\"]\nsquash = \"sometimes\"\n"), 0o644)
	fails(t, "vmroot.toml:6: host[1].squash", "serve", "--config", cfg)
	os.WriteFile(cfg, []byte("image = \"x.img\"\n[nfs]\nport = 1\nportt = 2\n"), 0o644)
	fails(t, "vmroot.toml:4: nfs.portt: unknown key", "serve", "--config", cfg)
	os.WriteFile(cfg, []byte("image = \"missing.img\"\n"), 0o644)
	fails(t, "missing.img", "serve", "--config", cfg)
	if r := vmroot(t, "serve", filepath.Join(dir, "x.img")); r.code != 2 || !strings.Contains(r.stderr, "--hosts-dir") {
		t.Errorf("IMAGE without --hosts-dir: exit %d %s", r.code, r.stderr)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeConfigReloadAndStop runs `vmroot serve --config` with libnfs
// as the client: a listed host mounts and writes, SIGHUP drops it from
// the table, SIGTERM stops the server cleanly with the write on disk.
func TestServeConfigReloadAndStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: diffs keep foreign owners")
	}
	testimg.Need(t, "mke2fs", "nfs-cat", "nfs-cp")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "tmp"), 0o1777)
	os.Chmod(filepath.Join(tree, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(tree, "motd"), []byte("hello\n"), 0o644)
	img := testimg.Ext(t, dir, tree, "ext4", 16)
	before := testimg.FileSHA256(t, img)
	port := freePort(t)
	write := func(hostIP string) {
		cfg := fmt.Sprintf("image = %q\nstate_dir = %q\n[nfs]\nlisten = [\"127.0.0.1\"]\nport = %d\nportmap_port = -1\n[[host]]\nname = \"local\"\nip = [%q]\ndiff = %q\n",
			img, filepath.Join(dir, "state"), port, hostIP, filepath.Join(dir, "diff"))
		os.WriteFile(filepath.Join(dir, "vmroot.toml"), []byte(cfg), 0o644)
	}
	write("127.0.0.1")
	srv := startServe(t, "--config", filepath.Join(dir, "vmroot.toml"))
	srv.waitLog("msg=serving")
	url := func(p string) string {
		return fmt.Sprintf("nfs://127.0.0.1/vmroot/%s?version=3&nfsport=%d&mountport=%d&uid=1000&gid=1000", p, port, port)
	}
	if out, err := exec.Command("nfs-cat", url("motd")).CombinedOutput(); err != nil || string(out) != "hello\n" {
		t.Fatalf("nfs-cat: %v %q", err, out)
	}
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("written\n"), 0o644)
	if out, err := exec.Command("nfs-cp", src, url("tmp/new")).CombinedOutput(); err != nil {
		t.Fatalf("nfs-cp: %v %s", err, out)
	}
	// Every log line about a host names it.
	srv.waitLog(`msg=mounted host=local`)
	write("127.0.0.9")
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog("msg=\"host table reloaded\"")
	if out, err := exec.Command("nfs-cat", url("motd")).CombinedOutput(); err == nil {
		t.Errorf("host removed by SIGHUP still reads: %q", out)
	}
	srv.waitLog(`mount refused: unknown host" host=127.0.0.1`)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.log())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "diff", "tmp", "new")); err != nil || string(b) != "written\n" {
		t.Errorf("file in the diff: %q %v", b, err)
	}
	if testimg.FileSHA256(t, img) != before {
		t.Error("the base image changed")
	}
}

// serveProc is a running "vmroot serve" whose log the test reads line by
// line; it is killed when the test ends.
type serveProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	logged []string
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{t: t, cmd: exec.Command(vmrootBin, append([]string{"serve"}, args...)...), lines: make(chan string, 100)}
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// waitLog reads the log until a line matches re, failing after 10 s or
// when the server exits first.
func (p *serveProc) waitLog(re string) {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("server exited before logging %q:\n%s", re, p.log())
			}
			p.logged = append(p.logged, l)
			if rx.MatchString(l) {
				return
			}
		case <-timeout:
			p.t.Fatalf("no log line %q:\n%s", re, p.log())
		}
	}
}

func (p *serveProc) log() string { return strings.Join(p.logged, "\n") }
