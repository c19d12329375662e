package httpboot

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/netboottest"
)

var nfs = netboot.NFSServer{Addr: netip.MustParseAddr("192.0.2.1")}

func serve(t *testing.T, tab *netboot.Table, view netboot.ViewFunc, base string) *httptest.Server {
	t.Helper()
	h, err := New(Config{Table: tab, NFS: nfs, View: view, BaseURL: base, Logger: slog.New(&netboottest.Recorder{})})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestScripts(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	ts := serve(t, tab, view, "")
	resp, b := get(t, "GET", ts.URL+"/boot.ipxe")
	if resp.StatusCode != 200 || string(b) != "#!ipxe\nchain "+ts.URL+"/ipxe/${netX/mac:hexhyp}\n" {
		t.Errorf("boot.ipxe: %d %q", resp.StatusCode, b)
	}
	resp, b = get(t, "GET", ts.URL+"/ipxe/52-54-00-12-34-01")
	want := "#!ipxe\n# vmroot: host web1\n" +
		"kernel " + ts.URL + "/boot/52-54-00-12-34-01/vmlinuz initrd=initrd.img root=/dev/nfs nfsroot=192.0.2.1:/hosts/web1,vers=3,tcp,nolock ip=dhcp boot=nfs rw console=ttyS0\n" +
		"initrd --name initrd.img " + ts.URL + "/boot/52-54-00-12-34-01/initrd.img\nboot\n"
	if resp.StatusCode != 200 || string(b) != want {
		t.Errorf("ipxe/web1: %d\n%s\nwant\n%s", resp.StatusCode, b, want)
	}
	// iPXE's ${mac} form (colons) names the same host; ip=static uses the table's address.
	resp, b = get(t, "GET", ts.URL+"/ipxe/52:54:00:12:34:01?ip=static")
	if resp.StatusCode != 200 || !strings.Contains(string(b), " ip=192.0.2.11::192.0.2.1:255.255.255.0:web1::off:192.0.2.53 boot=nfs rw console=ttyS0\n") {
		t.Errorf("ipxe/web1?ip=static: %d\n%s", resp.StatusCode, b)
	}
	// A configured base URL is used instead of the Host header.
	ts2 := serve(t, tab, view, "http://192.0.2.1:8080/")
	_, b = get(t, "GET", ts2.URL+"/ipxe/52-54-00-12-34-02")
	if !strings.Contains(string(b), "kernel http://192.0.2.1:8080/boot/52-54-00-12-34-02/vmlinuz ") {
		t.Errorf("ipxe/web2 with base URL:\n%s", b)
	}
	resp, b = get(t, "HEAD", ts.URL+"/boot.ipxe")
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(BootScript(ts.URL))) {
		t.Errorf("HEAD boot.ipxe: %d len %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestBootFilesAndRanges(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	ts := serve(t, tab, view, "")
	k2 := netboottest.Kernel("web2")
	resp, b := get(t, "GET", ts.URL+"/boot/52-54-00-12-34-02/vmlinuz")
	if resp.StatusCode != 200 || !bytes.Equal(b, k2) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("kernel: %d, %d bytes, Accept-Ranges %q", resp.StatusCode, len(b), resp.Header.Get("Accept-Ranges"))
	}
	resp, b = get(t, "GET", ts.URL+"/boot/52-54-00-12-34-01/initrd.img", "Range", "bytes=1000-1999")
	i1 := netboottest.Initrd("web1")
	if resp.StatusCode != 206 || !bytes.Equal(b, i1[1000:2000]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(i1)) {
		t.Errorf("range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	resp, b = get(t, "GET", ts.URL+"/boot/52-54-00-12-34-02/vmlinuz", "Range", "bytes=-10")
	if resp.StatusCode != 206 || !bytes.Equal(b, k2[len(k2)-10:]) {
		t.Errorf("suffix range: %d %q", resp.StatusCode, b)
	}
	resp, b = get(t, "GET", ts.URL+"/boot/52-54-00-12-34-02/vmlinuz", "Range", "bytes=0-9,100-109")
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		pb, _ := io.ReadAll(p)
		parts = append(parts, pb)
	}
	if resp.StatusCode != 206 || len(parts) != 2 || !bytes.Equal(parts[0], k2[:10]) || !bytes.Equal(parts[1], k2[100:110]) {
		t.Errorf("multi-range: %d, %d parts", resp.StatusCode, len(parts))
	}
	resp, _ = get(t, "GET", ts.URL+"/boot/52-54-00-12-34-02/vmlinuz", "Range", fmt.Sprintf("bytes=%d-", len(k2)+5))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d", resp.StatusCode)
	}
	resp, b = get(t, "HEAD", ts.URL+"/boot/52-54-00-12-34-01/vmlinuz")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(netboottest.Kernel("web1"))) || len(b) != 0 {
		t.Errorf("HEAD kernel: %d len %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestRefusals(t *testing.T) {
	tab, view := netboottest.Hosts(t)
	ts := serve(t, tab, view, "")
	for _, p := range []string{
		"/", "/etc/passwd", "/ipxe/", "/ipxe/52-54-00-99-99-99", "/ipxe/zz-54-00-12-34-01", "/ipxe/52-54-00-12-34-01/x",
		"/boot/52-54-00-12-34-01/", "/boot/52-54-00-12-34-01/boot/vmlinuz-6.1.0-10-amd64",
		"/boot/52-54-00-12-34-01/../../etc/passwd", "/boot/52-54-00-12-34-01/vmlinuz/x",
		"/boot/52-54-00-99-99-99/vmlinuz", "/boot.ipxe/x", "/%2e%2e/%2e%2e/etc/passwd",
	} {
		if resp, b := get(t, "GET", ts.URL+p); resp.StatusCode != 404 || bytes.Contains(b, []byte("root:")) {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := get(t, "GET", ts.URL+"/ipxe/52-54-00-12-34-01?ip=bogus"); resp.StatusCode != 400 {
		t.Errorf("ip=bogus: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "POST", ts.URL+"/boot.ipxe"); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	// A raw request line with dot segments (clients that don't clean paths).
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /boot/52-54-00-12-34-01/../../../../etc/passwd HTTP/1.0\r\n\r\n")
	raw, _ := io.ReadAll(c)
	if !bytes.HasPrefix(raw, []byte("HTTP/1.0 404")) {
		t.Errorf("raw dot-dot request: %q", raw[:min(len(raw), 40)])
	}
}

// A client at a host's static address reads only that host's files.
func TestOwnHostOnly(t *testing.T) {
	fs := netboottest.Open(t, netboottest.Root(t, "lo"))
	tab, err := netboot.NewTable([]netboot.Host{
		{Name: "lo", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, IP: netip.MustParseAddr("127.0.0.1"), Export: "/lo"},
		{Name: "other", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Export: "/other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, tab, func(*netboot.Host) (fsys.FS, error) { return fs, nil }, "")
	if resp, _ := get(t, "GET", ts.URL+"/boot/02-00-00-00-00-01/vmlinuz"); resp.StatusCode != 200 {
		t.Errorf("own kernel: %d", resp.StatusCode)
	}
	for _, p := range []string{"/boot/02-00-00-00-00-02/vmlinuz", "/ipxe/02-00-00-00-00-02"} {
		if resp, _ := get(t, "GET", ts.URL+p); resp.StatusCode != 403 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// "other" has no static address, so ip=static has nothing to give.
	if resp, _ := get(t, "GET", ts.URL+"/ipxe/02-00-00-00-00-01?ip=static"); resp.StatusCode != 200 {
		t.Errorf("own static script: %d", resp.StatusCode)
	}
}

// A host whose view has no kernel gets 404, not a broken script.
func TestNoKernel(t *testing.T) {
	empty := netboottest.Open(t, t.TempDir())
	tab, _ := netboot.NewTable([]netboot.Host{{Name: "x", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, Export: "/x"}})
	ts := serve(t, tab, func(*netboot.Host) (fsys.FS, error) { return empty, nil }, "")
	for _, p := range []string{"/ipxe/02-00-00-00-00-09", "/boot/02-00-00-00-00-09/vmlinuz"} {
		if resp, _ := get(t, "GET", ts.URL+p); resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestCurlRanges(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	tab, view := netboottest.Hosts(t)
	ts := serve(t, tab, view, "")
	out := filepath.Join(t.TempDir(), "part")
	k := netboottest.Kernel("web1")
	msg, err := exec.Command(curl, "-sS", "-f", "-r", "4096-8191", "-o", out, ts.URL+"/boot/52-54-00-12-34-01/vmlinuz").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, msg)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, k[4096:8192]) {
		t.Errorf("curl -r 4096-8191: %d bytes", len(got))
	}
	// Resume a partial download (curl -C -) and get the whole file.
	os.WriteFile(out, k[:100000], 0o644)
	msg, err = exec.Command(curl, "-sS", "-f", "-C", "-", "-o", out, ts.URL+"/boot/52-54-00-12-34-01/vmlinuz").CombinedOutput()
	if err != nil {
		t.Fatalf("curl -C -: %v %s", err, msg)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, k) {
		t.Errorf("curl -C -: %d bytes", len(got))
	}
}
