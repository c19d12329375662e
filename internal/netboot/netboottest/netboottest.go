// Package netboottest builds host views and host tables for the netboot
// packages' tests: a real directory read through dirfs, laid out as a
// Debian root's boot files are.
package netboottest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
)

// Kernel and Initrd return distinct, recognisable contents for a host
// root tag, large enough to take many TFTP blocks.
func Kernel(tag string) []byte { return pattern("KERNEL-"+tag+"|", 300_001) }
func Initrd(tag string) []byte { return pattern("INITRD-"+tag+"|", 123_457) }

func pattern(seed string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(seed)
		b.WriteByte(byte(i))
	}
	return b.Bytes()[:n]
}

// Root writes a Debian-like root under a new temp dir: /boot/vmlinuz-VER
// and /boot/initrd.img-VER for an older and the current version, and the
// /vmlinuz and /initrd.img links pointing at the current one.
func Root(t testing.TB, tag string) string {
	t.Helper()
	d := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(d, "boot"), 0o755))
	must(t, os.WriteFile(filepath.Join(d, "boot/vmlinuz-6.1.0-9-amd64"), []byte("old kernel"), 0o644))
	must(t, os.WriteFile(filepath.Join(d, "boot/initrd.img-6.1.0-9-amd64"), []byte("old initrd"), 0o644))
	must(t, os.WriteFile(filepath.Join(d, "boot/vmlinuz-6.1.0-10-amd64"), Kernel(tag), 0o644))
	must(t, os.WriteFile(filepath.Join(d, "boot/initrd.img-6.1.0-10-amd64"), Initrd(tag), 0o644))
	must(t, os.Symlink("boot/vmlinuz-6.1.0-10-amd64", filepath.Join(d, "vmlinuz")))
	must(t, os.Symlink("/boot/initrd.img-6.1.0-10-amd64", filepath.Join(d, "initrd.img")))
	return d
}

// Open opens dir as an fsys.FS closed at the end of the test.
func Open(t testing.TB, dir string) fsys.FS {
	t.Helper()
	f, err := dirfs.Open(dir)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// Hosts is a two-host table on 192.0.2.0/24, each with its own root.
func Hosts(t testing.TB) (*netboot.Table, netboot.ViewFunc) {
	t.Helper()
	hs := []netboot.Host{
		{Name: "web1", MAC: mac("52:54:00:12:34:01"), IP: netip.MustParseAddr("192.0.2.11"), Prefix: 24,
			Gateway: netip.MustParseAddr("192.0.2.1"), DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")},
			Export: "/hosts/web1", Args: "console=ttyS0"},
		{Name: "web2", MAC: mac("52:54:00:12:34:02"), IP: netip.MustParseAddr("192.0.2.12"), Prefix: 24,
			Export: "/hosts/web2"},
	}
	tab, err := netboot.NewTable(hs)
	must(t, err)
	views := map[string]fsys.FS{"web1": Open(t, Root(t, "web1")), "web2": Open(t, Root(t, "web2"))}
	return tab, func(h *netboot.Host) (fsys.FS, error) { return views[h.Name], nil }
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Recorder is a slog.Handler that keeps records' messages and attributes
// as text, so tests can check what a server logged.
type Recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}
func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &shared{r, append([]slog.Attr(nil), as...)}
}
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Lines returns what was logged so far.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// shared records into its parent with extra attributes.
type shared struct {
	r     *Recorder
	attrs []slog.Attr
}

func (s *shared) Enabled(context.Context, slog.Level) bool { return true }
func (s *shared) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(s.attrs...)
	return s.r.Handle(ctx, rec)
}
func (s *shared) WithAttrs(as []slog.Attr) slog.Handler {
	return &shared{s.r, append(append([]slog.Attr(nil), s.attrs...), as...)}
}
func (s *shared) WithGroup(string) slog.Handler { return s }
