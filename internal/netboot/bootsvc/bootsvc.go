// Package bootsvc starts the boot services "vmroot serve" switches on
// (TFTP, HTTP, DHCP, each optional) from one configuration, and stops them
// together. It also makes the per-host views the services read kernels
// and initrds from, when the NFS server's own unions are not at hand.
package bootsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/dhcp"
	"github.com/vmroot/vmroot/internal/netboot/httpboot"
	"github.com/vmroot/vmroot/internal/netboot/tftp"
	"github.com/vmroot/vmroot/overlay"
)

// Config says which services to run. A nil section is off.
type Config struct {
	Table  *netboot.Table
	NFS    netboot.NFSServer
	View   netboot.ViewFunc
	TFTP   *TFTP
	HTTP   *HTTP
	DHCP   *dhcp.Config // Table and Logger are filled in from here
	Logger *slog.Logger
}

// TFTP is the [tftp] section.
type TFTP struct {
	Listen       string            // "192.0.2.1:69"
	Static       map[string]string // see tftp.FindStatic
	MaxBlockSize int
}

// HTTP is the [http] section.
type HTTP struct {
	Listen  string // "192.0.2.1:8080"
	BaseURL string // "" means from the request's Host header
}

// Services are running boot services.
type Services struct {
	log   *slog.Logger
	tftp  *tftp.Server
	http  *http.Server
	httpH *httpboot.Handler
	dhcp  *dhcp.Server
	// TFTPAddr and HTTPAddr are the bound addresses (ports resolved).
	TFTPAddr, HTTPAddr string
	wg                 sync.WaitGroup
	cancel             context.CancelFunc
}

// Start opens every configured service's sockets (so that a busy port
// is an error here, not later) and serves in the background.
func Start(cfg Config) (s *Services, err error) {
	if cfg.Table == nil || cfg.View == nil {
		return nil, errors.New("bootsvc: Config needs Table and View")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = &Services{log: log, cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if c := cfg.TFTP; c != nil {
		ts, err := tftp.New(tftp.Config{Table: cfg.Table, NFS: cfg.NFS, View: cfg.View, Static: c.Static, MaxBlockSize: c.MaxBlockSize, Logger: log})
		if err != nil {
			return s, err
		}
		conn, err := tftp.Listen(c.Listen)
		if err != nil {
			return s, fmt.Errorf("tftp: %w", err)
		}
		s.tftp, s.TFTPAddr = ts, conn.LocalAddr().String()
		s.wg.Add(1)
		go func() { defer s.wg.Done(); ts.Serve(conn) }()
	}
	if c := cfg.HTTP; c != nil {
		h, err := httpboot.New(httpboot.Config{Table: cfg.Table, NFS: cfg.NFS, View: cfg.View, BaseURL: c.BaseURL, Logger: log})
		if err != nil {
			return s, err
		}
		l, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return s, fmt.Errorf("http: %w", err)
		}
		s.httpH = h
		s.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.HTTPAddr = l.Addr().String()
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.http.Serve(l) }()
	}
	if cfg.DHCP != nil {
		dc := *cfg.DHCP
		dc.Table, dc.Logger = cfg.Table, log
		ds, err := dhcp.New(dc)
		if err != nil {
			return s, err
		}
		conns, err := ds.Listen()
		if err != nil {
			return s, err
		}
		s.dhcp = ds
		s.wg.Add(1)
		go func() { defer s.wg.Done(); ds.Serve(ctx, conns) }()
	}
	return s, nil
}

// SetTable replaces the host table of every service (SIGHUP). It fails,
// changing nothing, when full-mode DHCP would have a host without a
// static address.
func (s *Services) SetTable(t *netboot.Table) error {
	if s.dhcp != nil {
		if err := s.dhcp.SetTable(t); err != nil {
			return err
		}
	}
	if s.tftp != nil {
		s.tftp.SetTable(t)
	}
	if s.httpH != nil {
		s.httpH.SetTable(t)
	}
	return nil
}

// Close stops every service and waits for them; TFTP transfers in flight
// end first.
func (s *Services) Close() error {
	s.cancel()
	if s.http != nil {
		s.http.Close()
	}
	if s.dhcp != nil {
		s.dhcp.Close()
	}
	if s.tftp != nil {
		s.tftp.Shutdown()
	}
	s.wg.Wait()
	return nil
}

// DiffViews returns a ViewFunc that shows each host the read-only union
// of its diff directory (diffOf(h), "" for none) over lowers, top first:
// what the host sees over NFS, read without writing, so a kernel the host
// installed is the one it boots. The diff is read as a plain aufs layer:
// a file whose data still lives below (a metadata-only copy-up) reads as
// zeros, so such a kernel is not bootable until rewritten. Views are
// opened once per host name and diff and kept, so a reloaded host table
// (new *Host values) reuses them.
func DiffViews(lowers []fsys.FS, diffOf func(*netboot.Host) string) netboot.ViewFunc {
	var mu sync.Mutex
	type key struct{ name, diff string }
	views := map[key]fsys.FS{}
	return func(h *netboot.Host) (fsys.FS, error) {
		d := diffOf(h)
		k := key{h.Name, d}
		mu.Lock()
		defer mu.Unlock()
		if v := views[k]; v != nil {
			return v, nil
		}
		ls, keep := lowers, true
		if d != "" {
			df, err := dirfs.Open(d)
			switch {
			case err == nil:
				ls = append([]fsys.FS{df}, lowers...)
			case errors.Is(err, fsys.ErrNotExist):
				keep = false // the host has no diff yet: look again next time
			default:
				return nil, err
			}
		}
		o, err := overlay.New(overlay.Config{Lowers: ls})
		if err != nil {
			return nil, err
		}
		v := netboot.OverlayFS(o)
		if keep {
			views[k] = v
		}
		return v, nil
	}
}
