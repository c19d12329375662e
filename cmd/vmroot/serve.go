package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/config"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/bootsvc"
	"github.com/vmroot/vmroot/internal/netboot/dhcp"
	"github.com/vmroot/vmroot/internal/netboot/tftp"
	"github.com/vmroot/vmroot/nfsexport/server"
)

func init() {
	var (
		cfgPath, hostsDir, export, stateDir, logFormat string
		listen, layers                                 []string
		port, pmPort, partNum                          int
		noUDP                                          bool
	)
	c := &cobra.Command{
		Use:   "serve (--config FILE | IMAGE --hosts-dir DIR)",
		Short: "Serve the image over NFSv3, one copy-on-write view per client host",
		Long: `serve exports a union of the image (and shared layers) over NFSv3, MOUNT
and portmap. Each client host, recognised by its address, gets the shared
read-only layers plus its own diff directory.

With --config, hosts come from a TOML file (see internal/config); SIGHUP
reloads its host table without dropping mounted clients. Its [tftp],
[http] and [dhcp] sections start the boot services in the same process:
each host boots the kernel and initrd of its own view (its diff over the
layers and the image). Without --config, every client address gets its
own diff under --hosts-dir.
SIGTERM or SIGINT finish the calls in flight, flush written files and stop.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var cfg *config.Config
			switch {
			case cfgPath != "" && len(args) > 0:
				return usageError{errors.New("give either --config or IMAGE, not both")}
			case cfgPath != "":
				var err error
				if cfg, err = config.Load(cfgPath); err != nil {
					return err
				}
			case len(args) == 1:
				if hostsDir == "" {
					return usageError{errors.New("IMAGE needs --hosts-dir DIR (or use --config)")}
				}
				abs, err := filepath.Abs(hostsDir)
				if err != nil {
					return err
				}
				cfg = &config.Config{
					Image: args[0], Partition: partNum, Layers: layers, Export: export,
					StateDir: stateDir, Listen: listen, Port: port, PortmapPort: pmPort, UDP: !noUDP,
					Unknown: config.Unknown{Policy: "persistent", Dir: abs, Squash: "root_squash", AnonUID: server.DefaultAnon, AnonGID: server.DefaultAnon},
				}
				if cfg.StateDir == "" {
					cfg.StateDir = filepath.Join(abs, ".vmroot-state")
				}
			default:
				return usageError{errors.New("give --config FILE or IMAGE --hosts-dir DIR")}
			}
			var h slog.Handler = slog.NewTextHandler(c.ErrOrStderr(), nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(c.ErrOrStderr(), nil)
			} else if logFormat != "text" {
				return usageError{fmt.Errorf("--log-format %q: want text or json", logFormat)}
			}
			return runServe(c, cfg, slog.New(h))
		},
	}
	f := c.Flags()
	f.StringVar(&cfgPath, "config", "", "TOML configuration file")
	f.StringVar(&hostsDir, "hosts-dir", "", "give each client address its own diff DIR/ADDRESS (zero-config form)")
	f.StringArrayVar(&layers, "layer", nil, "shared read-only layer (directory or image) above IMAGE; repeatable, top first")
	f.StringVar(&export, "export", config.DefaultExport, "path clients mount")
	f.StringVar(&stateDir, "state-dir", "", "where the file handle key lives (default DIR/.vmroot-state)")
	f.StringArrayVar(&listen, "listen", nil, "local address to serve on; repeatable (default: all)")
	f.IntVar(&port, "port", config.DefaultPort, "NFS and MOUNT port")
	f.IntVar(&pmPort, "portmap-port", 0, "portmap port (0: 111 when it can bind there; -1: no portmap)")
	f.BoolVar(&noUDP, "no-udp", false, "serve MOUNT and portmap over TCP only")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}

func serverHosts(cfg *config.Config) ([]server.Host, server.Unknown, error) {
	var hosts []server.Host
	for _, h := range cfg.Hosts {
		q, err := server.ParseSquash(h.Squash)
		if err != nil {
			return nil, server.Unknown{}, fmt.Errorf("host %s: %w", h.Name, err)
		}
		hosts = append(hosts, server.Host{Name: h.Name, Addrs: h.IPs, MAC: h.MAC, Diff: h.Diff, Squash: q, AnonUID: h.AnonUID, AnonGID: h.AnonGID})
	}
	var u server.Unknown
	if cfg.Unknown.Policy != "refuse" && cfg.Unknown.Policy != "" {
		q, err := server.ParseSquash(cfg.Unknown.Squash)
		if err != nil {
			return nil, u, err
		}
		u = server.Unknown{Dir: cfg.Unknown.Dir, Throwaway: cfg.Unknown.Policy == "throwaway", Squash: q, AnonUID: cfg.Unknown.AnonUID, AnonGID: cfg.Unknown.AnonGID}
	}
	return hosts, u, nil
}

func runServe(c *cobra.Command, cfg *config.Config, log *slog.Logger) error {
	// Boot service settings are checked before anything starts.
	var bc *bootsvc.Config
	if cfg.BootServices() {
		var err error
		if bc, err = bootConfig(cfg, log); err != nil {
			return err
		}
	}
	var ls []*layer
	defer func() {
		for _, l := range ls {
			l.close()
		}
	}()
	for _, p := range cfg.Layers {
		l, err := openLayer(c, p, image.Auto)
		if err != nil {
			return fmt.Errorf("layer %s: %w", p, err)
		}
		ls = append(ls, l)
	}
	base, err := openLayer(c, cfg.Image, cfg.Partition)
	if err != nil {
		return err
	}
	ls = append(ls, base)
	var lowers []fsys.FS
	for _, l := range ls {
		lowers = append(lowers, l.fs)
	}
	hosts, unknown, err := serverHosts(cfg)
	if err != nil {
		return err
	}
	if unknown.Dir != "" {
		if err := os.MkdirAll(unknown.Dir, 0o755); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Config{
		Export: cfg.Export, Lowers: lowers, Hosts: hosts, Unknown: unknown,
		KeyFile: filepath.Join(cfg.StateDir, "fh.key"), Logger: log,
	})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	bound, err := srv.Start(context.Background(), server.Listen{Addrs: cfg.Listen, Port: cfg.Port, PortmapPort: cfg.PortmapPort, UDP: cfg.UDP})
	if err != nil {
		return err
	}
	var boot *bootsvc.Services
	var diffs *hostDiffs
	if bc != nil {
		diffs = newHostDiffs(cfg)
		if boot, err = startBoot(bc, cfg, bound, lowers, diffs, log); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			return err
		}
	}
	cur := cfg // the host table in force
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if cfg.Path == "" {
				log.Info("SIGHUP: no configuration file to reload")
				continue
			}
			nc, err := config.Load(cfg.Path)
			if err == nil {
				var h []server.Host
				var u server.Unknown
				if h, u, err = serverHosts(nc); err == nil {
					if err = srv.SetHosts(h, u); err == nil {
						if err = reloadBoot(boot, diffs, nc); err != nil {
							// Both tables stay as they were.
							if oh, ou, e := serverHosts(cur); e == nil {
								srv.SetHosts(oh, ou)
							}
						} else {
							cur = nc
						}
					}
				}
			}
			if err != nil {
				log.Error("reload failed; keeping the old host table", "err", err)
			} else {
				log.Info("host table reloaded", "hosts", len(nc.Hosts))
				if servicesChanged(cfg, nc) {
					log.Warn("[nfs], [tftp], [http] or [dhcp] settings changed: they take effect after a restart")
				}
			}
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	if boot != nil {
		boot.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// hostDiffs maps host names to their diff directories for the boot
// services' views; SIGHUP replaces it.
type hostDiffs struct {
	mu sync.Mutex
	m  map[string]string
}

func newHostDiffs(cfg *config.Config) *hostDiffs {
	d := &hostDiffs{}
	d.set(cfg)
	return d
}

// set installs cfg's hosts and returns the previous map.
func (d *hostDiffs) set(cfg *config.Config) map[string]string {
	m := map[string]string{}
	for _, h := range cfg.Hosts {
		m[h.Name] = h.Diff
	}
	return d.restore(m)
}

func (d *hostDiffs) restore(m map[string]string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.m
	d.m = m
	return old
}

func (d *hostDiffs) of(h *netboot.Host) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[h.Name]
}

// nfsServer says how booted hosts mount the root: without a portmapper on
// 111 the kernel is given the MOUNT port too (vmroot serves MOUNT on the
// NFS port).
func nfsServer(cfg *config.Config, b server.Bound) netboot.NFSServer {
	n := netboot.NFSServer{Addr: cfg.Advertise, Port: b.Port}
	if b.PortmapPort != 111 {
		n.MountPort = b.Port
	}
	return n
}

// bootConfig is the boot services' configuration from cfg, all but the
// NFS server's ports and the views.
func bootConfig(cfg *config.Config, log *slog.Logger) (*bootsvc.Config, error) {
	tab, err := cfg.Table()
	if err != nil {
		return nil, err
	}
	bc := &bootsvc.Config{Table: tab, Logger: log}
	if t := cfg.TFTP; t != nil {
		static, err := tftp.FindStatic(t.BootDirs, []string{"pxelinux.0", "ldlinux.c32"})
		if err != nil {
			return nil, fmt.Errorf("%s: [tftp] boot_dirs: %w", cfg.Path, err)
		}
		bc.TFTP = &bootsvc.TFTP{Listen: t.Listen, Static: static, MaxBlockSize: t.MaxBlockSize}
	}
	if h := cfg.HTTP; h != nil {
		bc.HTTP = &bootsvc.HTTP{Listen: h.Listen, BaseURL: h.BaseURL}
	}
	if d := cfg.DHCP; d != nil {
		mode := dhcp.Proxy
		if d.Mode == "full" {
			mode = dhcp.Full
		}
		bc.DHCP = &dhcp.Config{Mode: mode, ServerIP: d.Server, Interface: d.Interface}
		if cfg.HTTP != nil {
			bc.DHCP.HTTPBase = cfg.HTTP.BaseURL
		}
	}
	return bc, nil
}

// startBoot starts the boot services beside the NFS server bound at b.
// Each host's kernel and initrd are read from its own view.
func startBoot(bc *bootsvc.Config, cfg *config.Config, b server.Bound, lowers []fsys.FS, diffs *hostDiffs, log *slog.Logger) (*bootsvc.Services, error) {
	bc.NFS, bc.View = nfsServer(cfg, b), bootsvc.DiffViews(lowers, diffs.of)
	s, err := bootsvc.Start(*bc)
	if err != nil {
		return nil, err
	}
	if s.TFTPAddr != "" {
		log.Info("tftp serving", "addr", s.TFTPAddr)
	}
	if s.HTTPAddr != "" {
		log.Info("http serving", "addr", s.HTTPAddr, "base_url", cfg.HTTP.BaseURL)
	}
	// DHCP logs its own line (interface, server address) when it starts.
	log.Info("boot services", "hosts", len(bc.Table.Hosts()), "nfsroot", bc.NFS.Addr.String())
	return s, nil
}

// reloadBoot gives the boot services nc's host table (nil services: no-op).
// Changes to the service sections need a restart.
func reloadBoot(s *bootsvc.Services, diffs *hostDiffs, nc *config.Config) error {
	if s == nil {
		return nil
	}
	tab, err := nc.Table()
	if err != nil {
		return err
	}
	// The views must know the new hosts' diffs before the table names them.
	old := diffs.set(nc)
	if err := s.SetTable(tab); err != nil {
		diffs.restore(old)
		return err
	}
	return nil
}

// servicesChanged reports whether a reload changed what only a restart
// applies: listeners, boot service sections, the advertised address.
func servicesChanged(a, b *config.Config) bool {
	return !reflect.DeepEqual(a.TFTP, b.TFTP) || !reflect.DeepEqual(a.HTTP, b.HTTP) || !reflect.DeepEqual(a.DHCP, b.DHCP) ||
		a.Advertise != b.Advertise || a.Port != b.Port || a.PortmapPort != b.PortmapPort || a.UDP != b.UDP ||
		!reflect.DeepEqual(a.Listen, b.Listen)
}
