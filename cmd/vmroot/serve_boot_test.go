package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/testimg"
)

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// tftpGet fetches name with busybox tftp, a client of its own.
func tftpGet(t *testing.T, port int, name string) ([]byte, error) {
	local := filepath.Join(t.TempDir(), "got")
	out, err := exec.Command("busybox", "tftp", "-g", "-r", name, "-l", local, "127.0.0.1", fmt.Sprint(port)).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	return os.ReadFile(local)
}

func httpGet(t *testing.T, url, rng string) (int, []byte) {
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeBootServices runs `vmroot serve --config` with [tftp] and
// [http] on loopback beside NFS: busybox tftp fetches pxelinux.0 (from
// boot_dirs), a host's pxelinux config (nfsroot= with nolock) and its
// kernel, which comes from the host's own diff and not the image; a name
// outside the served set is refused; HTTP gives the iPXE script and a
// byte range of a kernel; SIGHUP adding a host makes its config appear.
func TestServeBootServices(t *testing.T) {
	testimg.Need(t, "mke2fs", "busybox")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "boot"), 0o755)
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	imageKernel := bytes.Repeat([]byte("image kernel 6.1.0-9|"), 5000)
	os.WriteFile(filepath.Join(tree, "boot", "vmlinuz-6.1.0-9-amd64"), imageKernel, 0o644)
	os.WriteFile(filepath.Join(tree, "boot", "initrd.img-6.1.0-9-amd64"), []byte("image initrd"), 0o644)
	os.WriteFile(filepath.Join(tree, "etc", "shadow"), []byte("secret"), 0o600)
	img := testimg.Ext(t, dir, tree, "ext4", 16)
	// web1 updated its kernel: the new one is in its diff only.
	web1Kernel := bytes.Repeat([]byte("web1's updated kernel|"), 3000)
	os.MkdirAll(filepath.Join(dir, "diffs", "web1", "boot"), 0o755)
	os.WriteFile(filepath.Join(dir, "diffs", "web1", "boot", "vmlinuz-6.1.0-9-amd64"), web1Kernel, 0o644)
	// boot_dirs (relative to the file) supplies pxelinux.0 and ldlinux.c32.
	os.MkdirAll(filepath.Join(dir, "pxe"), 0o755)
	os.WriteFile(filepath.Join(dir, "pxe", "pxelinux.0"), []byte("fake pxelinux"), 0o644)
	os.WriteFile(filepath.Join(dir, "pxe", "ldlinux.c32"), []byte("fake ldlinux"), 0o644)

	nfsPort, tftpPort, httpPort := freePort(t), freeUDPPort(t), freePort(t)
	cfgPath := filepath.Join(dir, "vmroot.toml")
	write := func(extra string) {
		cfg := fmt.Sprintf(`image = %q
state_dir = "state"
[nfs]
listen = ["127.0.0.1"]
port = %d
portmap_port = -1
udp = false
[tftp]
listen = "127.0.0.1:%d"
boot_dirs = ["pxe"]
[http]
listen = "127.0.0.1:%d"
[[host]]
name = "web1"
mac = "52:54:00:12:34:01"
diff = "diffs/web1"
args = "console=ttyS0"
boot = "pxelinux"
%s`, img, nfsPort, tftpPort, httpPort, extra)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	srv := startServe(t, "--config", cfgPath)
	srv.waitLog(fmt.Sprintf(`msg="tftp serving" addr=127.0.0.1:%d`, tftpPort))
	srv.waitLog(fmt.Sprintf(`msg="http serving" addr=127.0.0.1:%d base_url=http://127.0.0.1:%d`, httpPort, httpPort))

	if b, err := tftpGet(t, tftpPort, "pxelinux.0"); err != nil || string(b) != "fake pxelinux" {
		t.Errorf("pxelinux.0: %q %v", b, err)
	}
	b, err := tftpGet(t, tftpPort, "pxelinux.cfg/01-52-54-00-12-34-01")
	// No portmap: the kernel is given the MOUNT port as well.
	wantRoot := fmt.Sprintf("nfsroot=127.0.0.1:/vmroot,vers=3,tcp,nolock,port=%d,mountport=%d,mountproto=tcp ip=dhcp boot=nfs rw console=ttyS0", nfsPort, nfsPort)
	if err != nil || !strings.Contains(string(b), wantRoot) || !strings.Contains(string(b), "KERNEL 01-52-54-00-12-34-01/vmlinuz") {
		t.Errorf("pxelinux config: %v\n%s\nwant %s", err, b, wantRoot)
	}
	if b, err := tftpGet(t, tftpPort, "01-52-54-00-12-34-01/vmlinuz"); err != nil || !bytes.Equal(b, web1Kernel) {
		t.Errorf("web1's kernel over TFTP: %d bytes, %v; want its diff's %d bytes", len(b), err, len(web1Kernel))
	}
	for _, name := range []string{"etc/shadow", "01-52-54-00-12-34-01/../etc/shadow", "01-52-54-00-12-34-01/shadow", "pxelinux.cfg/01-52-54-00-12-34-02"} {
		if b, err := tftpGet(t, tftpPort, name); err == nil {
			t.Errorf("%s served: %q", name, b)
		}
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	code, body := httpGet(t, base+"/ipxe/52-54-00-12-34-01", "")
	if code != 200 || !strings.Contains(string(body), "kernel "+base+"/boot/52-54-00-12-34-01/vmlinuz") || !strings.Contains(string(body), wantRoot) {
		t.Errorf("/ipxe: %d\n%s", code, body)
	}
	if code, body := httpGet(t, base+"/boot/52-54-00-12-34-01/vmlinuz", "bytes=100-199"); code != 206 || !bytes.Equal(body, web1Kernel[100:200]) {
		t.Errorf("Range of web1's kernel: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/ipxe/52-54-00-12-34-02", ""); code != 404 {
		t.Errorf("unlisted host's script: %d", code)
	}

	// SIGHUP: web2 appears, with the image's kernel.
	write("[[host]]\nname = \"web2\"\nmac = \"52:54:00:12:34:02\"\n")
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(`msg="host table reloaded" hosts=2`)
	for _, l := range srv.logged {
		if strings.Contains(l, "take effect after a restart") {
			t.Errorf("host-only reload warned: %s", l)
		}
	}
	if b, err := tftpGet(t, tftpPort, "pxelinux.cfg/01-52-54-00-12-34-02"); err != nil || !strings.Contains(string(b), "nfsroot=127.0.0.1:/vmroot,vers=3,tcp,nolock") {
		t.Errorf("web2's config after SIGHUP: %v\n%s", err, b)
	}
	if code, body := httpGet(t, base+"/boot/52-54-00-12-34-02/vmlinuz", "bytes=-50"); code != 206 || !bytes.Equal(body, imageKernel[len(imageKernel)-50:]) {
		t.Errorf("Range of web2's kernel: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/ipxe/52-54-00-12-34-02", ""); code != 200 {
		t.Errorf("web2's script after SIGHUP: %d", code)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.log())
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort), time.Second); err == nil {
		c.Close()
		t.Error("HTTP still served after SIGTERM")
	}
	// Boot files missing from boot_dirs: one error naming the file and section.
	os.WriteFile(cfgPath, bytes.Replace(mustRead(t, cfgPath), []byte(`boot_dirs = ["pxe"]`), []byte(`boot_dirs = ["nowhere"]`), 1), 0o644)
	fails(t, "vmroot.toml: [tftp] boot_dirs: tftp: pxelinux.0 not found in "+filepath.Join(dir, "nowhere"), "serve", "--config", cfgPath)
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
