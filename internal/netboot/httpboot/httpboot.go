// Package httpboot serves iPXE clients over HTTP: a generic boot.ipxe that
// chains to the booting NIC's own script, a per-host iPXE script that
// boots the host's kernel with its root on NFS, and each host's kernel
// and initrd read from the host's own view of the image, with range
// requests (http.ServeContent).
//
// Routes (GET and HEAD only):
//
//	/boot.ipxe                   chain ${base}/ipxe/${netX/mac:hexhyp}
//	/ipxe/<mac>[?ip=static]      the host's script; ip=static puts the host
//	                             table's static address on the kernel command
//	                             line (for boots without DHCP, such as
//	                             VMware guestinfo)
//	/boot/<mac>/vmlinuz          the host's kernel
//	/boot/<mac>/initrd.img       the host's initrd
//
// <mac> is "52-54-00-12-34-56" (iPXE's hexhyp) or with colons. Everything
// else is 404. A client whose address is a host's static address may read
// only that host's files.
package httpboot

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/vmroot/vmroot/internal/netboot"
)

// Config configures a Handler.
type Config struct {
	Table *netboot.Table
	NFS   netboot.NFSServer
	View  netboot.ViewFunc
	// BaseURL is how clients reach this handler ("http://192.0.2.1:8080");
	// empty means "http://" + the request's Host header.
	BaseURL string
	Logger  *slog.Logger
}

// Handler is an http.Handler for the routes above.
type Handler struct {
	cfg   Config
	table atomic.Pointer[netboot.Table]
	log   *slog.Logger
}

// New makes a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Table == nil || cfg.View == nil {
		return nil, fmt.Errorf("httpboot: Config needs Table and View")
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	h := &Handler{cfg: cfg, log: cfg.Logger}
	h.table.Store(cfg.Table)
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("service", "http")
	return h, nil
}

// SetTable replaces the host table.
func (h *Handler) SetTable(t *netboot.Table) { h.table.Store(t) }

// BootScript is /boot.ipxe: it chains to the script of the NIC iPXE
// booted from, so one file serves every host.
func BootScript(base string) string {
	return "#!ipxe\nchain " + base + "/ipxe/${netX/mac:hexhyp}\n"
}

// Script is h's iPXE script. ipArg is the kernel's ip= value ("dhcp" or
// netboot.StaticIPArg(h)).
func Script(base string, nfs netboot.NFSServer, h *netboot.Host, withInitrd bool, ipArg string) string {
	d := base + "/boot/" + netboot.MACDash(h.MAC)
	var b strings.Builder
	fmt.Fprintf(&b, "#!ipxe\n# vmroot: host %s\n", h.Name)
	args := nfs.KernelArgs(h, ipArg)
	if withInitrd {
		args = "initrd=initrd.img " + args
	}
	fmt.Fprintf(&b, "kernel %s/vmlinuz %s\n", d, args)
	if withInitrd {
		fmt.Fprintf(&b, "initrd --name initrd.img %s/initrd.img\n", d)
	}
	b.WriteString("boot\n")
	return b.String()
}

func (h *Handler) base(r *http.Request) string {
	if h.cfg.BaseURL != "" {
		return h.cfg.BaseURL
	}
	return "http://" + r.Host
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	client := clientAddr(r)
	p := r.URL.Path
	switch {
	case p == "/boot.ipxe":
		h.text(w, r, BootScript(h.base(r)))
		return
	case strings.HasPrefix(p, "/ipxe/"):
		host, ok := h.host(w, r, client, strings.TrimPrefix(p, "/ipxe/"))
		if !ok {
			return
		}
		ipArg := "dhcp"
		switch r.URL.Query().Get("ip") {
		case "", "dhcp":
		case "static":
			if !host.IP.IsValid() {
				h.fail(w, r, http.StatusNotFound, "host has no static address", "host", host.Name)
				return
			}
			ipArg = netboot.StaticIPArg(host)
		default:
			h.fail(w, r, http.StatusBadRequest, "ip= must be dhcp or static")
			return
		}
		view, err := h.cfg.View(host)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, "host view", "host", host.Name, "err", err)
			return
		}
		_, initrd, err := netboot.FindBootFiles(view, host)
		if err != nil {
			h.fail(w, r, http.StatusNotFound, "no boot files", "host", host.Name, "err", err)
			return
		}
		h.text(w, r, Script(h.base(r), h.cfg.NFS, host, initrd != "", ipArg))
		return
	case strings.HasPrefix(p, "/boot/"):
		mac, file, ok := strings.Cut(strings.TrimPrefix(p, "/boot/"), "/")
		if !ok || (file != "vmlinuz" && file != "initrd.img") {
			break
		}
		host, ok := h.host(w, r, client, mac)
		if !ok {
			return
		}
		h.bootFile(w, r, host, file)
		return
	}
	h.fail(w, r, http.StatusNotFound, "not in the served set")
}

func (h *Handler) bootFile(w http.ResponseWriter, r *http.Request, host *netboot.Host, which string) {
	view, err := h.cfg.View(host)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "host view", "host", host.Name, "err", err)
		return
	}
	kernel, initrd, err := netboot.FindBootFiles(view, host)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "no boot files", "host", host.Name, "err", err)
		return
	}
	path := kernel
	if which == "initrd.img" {
		path = initrd
	}
	if path == "" {
		h.fail(w, r, http.StatusNotFound, "host boots without an initrd", "host", host.Name)
		return
	}
	f, err := netboot.Open(view, path)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "open", "host", host.Name, "path", path, "err", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	h.log.Info("serving", "path", r.URL.Path, "client", r.RemoteAddr, "file", path, "range", r.Header.Get("Range"))
	http.ServeContent(w, r, which, f.ModTime, f)
}

// host finds the host named by a MAC in the path and checks the client
// may read it.
func (h *Handler) host(w http.ResponseWriter, r *http.Request, client netip.Addr, s string) (*netboot.Host, bool) {
	mac, err := netboot.ParseMAC(s)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "bad MAC in path")
		return nil, false
	}
	tab := h.table.Load()
	host := tab.ByMAC(mac)
	if host == nil {
		h.fail(w, r, http.StatusNotFound, "no such host", "mac", mac)
		return nil, false
	}
	if self := tab.ByIP(client); self != nil && self != host {
		h.fail(w, r, http.StatusForbidden, "another host's files", "client_host", self.Name, "host", host.Name)
		return nil, false
	}
	return host, true
}

func (h *Handler) text(w http.ResponseWriter, r *http.Request, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	h.log.Info("serving", "path", r.URL.Path, "client", r.RemoteAddr)
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", fmt.Sprint(len(s)))
		return
	}
	fmt.Fprint(w, s)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, why string, args ...any) {
	h.log.Info("refused", append([]any{"path", r.URL.Path, "client", r.RemoteAddr, "status", code, "reason", why}, args...)...)
	http.Error(w, http.StatusText(code), code)
}

func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
