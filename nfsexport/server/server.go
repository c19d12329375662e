// Package server is vmroot's NFSv3 file server: one export path, many
// client hosts, and for each host its own copy-on-write view (the shared
// read-only layers plus that host's diff directory), all served by the
// overlay engine in-process.
//
// A client host is recognised by the source address of its calls. Hosts
// not in the table are refused (MNT3ERR_ACCES, NFS3ERR_ACCES) unless the
// configuration gives them a diff of their own under a directory.
//
// File handles are at most 64 bytes: a version byte, a 7-byte tag binding
// the handle to the host (a keyed MAC of the host name and the object's
// identity, with a key kept in a file so it survives restarts), and the
// overlay's identity of the object. No table of handles is kept, so a
// handle stays valid across restarts for as long as its object exists,
// and a handle issued to one host is refused (NFS3ERR_STALE) when
// another host presents it.
//
// Permissions follow the Linux kernel NFS server: AUTH_SYS credentials are
// squashed per host (root_squash by default, no_root_squash, all_squash)
// and checked against mode bits, owner and groups on every call.
package server

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/portmap"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/overlay"
)

// Squash selects how a host's credentials are mapped.
type Squash int

const (
	RootSquash   Squash = iota // uid/gid 0 become the anonymous ids (the default)
	NoRootSquash               // credentials are used as sent
	AllSquash                  // every caller becomes the anonymous ids
)

func (q Squash) String() string {
	switch q {
	case NoRootSquash:
		return "no_root_squash"
	case AllSquash:
		return "all_squash"
	}
	return "root_squash"
}

// ParseSquash parses "root_squash", "no_root_squash" or "all_squash".
func ParseSquash(s string) (Squash, error) {
	switch s {
	case "", "root_squash":
		return RootSquash, nil
	case "no_root_squash":
		return NoRootSquash, nil
	case "all_squash":
		return AllSquash, nil
	}
	return 0, fmt.Errorf("unknown squash mode %q (want root_squash, no_root_squash or all_squash)", s)
}

// DefaultAnon is the anonymous uid and gid (nobody/nogroup).
const DefaultAnon = 65534

// Host is one client host.
type Host struct {
	Name  string
	Addrs []netip.Addr
	// MAC recognises the host from an address not in Addrs (one another
	// DHCP server leased) by the peer's MAC on a directly attached link.
	MAC net.HardwareAddr
	// Diff is the host's writable directory (created if missing); ""
	// serves the layers read-only.
	Diff             string
	Squash           Squash
	AnonUID, AnonGID uint32
}

// Unknown says what hosts not in the table get.
type Unknown struct {
	// Dir, when set, gives each unknown client address its own diff
	// Dir/ADDRESS; empty refuses unknown hosts.
	Dir string
	// Throwaway removes those diffs when the server shuts down.
	Throwaway        bool
	Squash           Squash
	AnonUID, AnonGID uint32
}

// Config describes a server.
type Config struct {
	Export string    // path clients mount, such as "/vmroot"
	Lowers []fsys.FS // read-only layers top to bottom; the last is the base
	Hosts  []Host
	Unknown
	// KeyFile holds the secret binding handles to hosts; it is created
	// (mode 0600) when missing. Handles stay valid across restarts only
	// if it is kept.
	KeyFile string
	Logger  *slog.Logger
	// LookupMAC finds a peer's MAC for hosts with a MAC; nil: ARPTable.
	LookupMAC LookupMAC
}

// Listen says where to serve.
type Listen struct {
	Addrs []string // local IPs; empty: all
	// Port serves NFS and MOUNT (0: an ephemeral port, the same for all
	// addresses).
	Port int
	// PortmapPort: 0 tries 111 and goes without portmap when it cannot
	// bind there; > 0 must bind; < 0 disables portmap.
	PortmapPort int
	// UDP also serves MOUNT and portmap over UDP.
	UDP bool
}

// Bound reports the ports actually in use.
type Bound struct {
	Port        int
	PortmapPort int // 0 when portmap is not served
}

// Server is an NFSv3 server. Create it with New, start it with Start,
// stop it with Shutdown.
type Server struct {
	export string
	lowers []fsys.FS
	log    *slog.Logger
	key    []byte
	verf   [nfs3.WriteVerfSize]byte
	fsid   uint64
	rpc    *rpc.Server
	drc    *drc

	table atomic.Pointer[hostTable]
	macs  macCache

	mu     sync.Mutex
	states map[string]*hostState
	mounts map[mountKey]time.Time
	closed bool

	wg   sync.WaitGroup
	stop context.CancelFunc
}

type hostTable struct {
	byAddr  map[netip.Addr]*Host
	byMAC   map[string]*Host
	hosts   []Host
	unknown Unknown
}

type mountKey struct {
	addr netip.Addr
	path string
}

// New checks cfg and prepares a server; it opens no diff yet (each host's
// union is opened at its first call).
func New(cfg Config) (*Server, error) {
	if len(cfg.Lowers) == 0 {
		return nil, errors.New("server: no layers")
	}
	exp := filepath.Clean("/" + cfg.Export)
	if cfg.Export == "" || len(exp) > mount.MaxPathLen {
		return nil, fmt.Errorf("server: bad export path %q", cfg.Export)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		export: exp,
		lowers: cfg.Lowers,
		log:    log,
		states: map[string]*hostState{},
		mounts: map[mountKey]time.Time{},
		drc:    newDRC(4096, 2*time.Minute),
		macs:   macCache{lookup: cfg.LookupMAC},
	}
	if s.macs.lookup == nil {
		s.macs.lookup = ARPTable
	}
	var err error
	if s.key, err = loadKey(cfg.KeyFile); err != nil {
		return nil, err
	}
	if _, err := rand.Read(s.verf[:]); err != nil {
		return nil, err
	}
	s.fsid = fnv64(s.export)
	if err := s.SetHosts(cfg.Hosts, cfg.Unknown); err != nil {
		return nil, err
	}
	s.rpc = &rpc.Server{Logger: log}
	if err := nfs3.Register(s.rpc, &nfsHandler{s}, nfs3.Options{AllowAuthNone: true}); err != nil {
		return nil, err
	}
	if err := mount.Register(s.rpc, &mountHandler{s}); err != nil {
		return nil, err
	}
	return s, nil
}

func loadKey(path string) ([]byte, error) {
	if path == "" {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		return k, err
	}
	k, err := os.ReadFile(path)
	if err == nil {
		if len(k) < 16 {
			return nil, fmt.Errorf("server: key file %s: too short (%d bytes)", path, len(k))
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("server: key file: %w", err)
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("server: key file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, k, 0o600); err != nil {
		return nil, fmt.Errorf("server: key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("server: key file: %w", err)
	}
	return k, nil
}

// SetHosts replaces the host table. Hosts keep their open unions and
// mounts; a removed host is refused from its next call on. A host whose
// diff directory changed keeps the old one until the server restarts.
func (s *Server) SetHosts(hosts []Host, unknown Unknown) error {
	t := &hostTable{byAddr: map[netip.Addr]*Host{}, byMAC: map[string]*Host{}, unknown: unknown}
	names := map[string]bool{}
	t.hosts = append([]Host(nil), hosts...)
	for i := range t.hosts {
		h := &t.hosts[i]
		if h.Name == "" {
			return fmt.Errorf("server: host %d has no name", i+1)
		}
		if names[h.Name] {
			return fmt.Errorf("server: host %q listed twice", h.Name)
		}
		names[h.Name] = true
		for _, a := range h.Addrs {
			a = a.Unmap()
			if o, ok := t.byAddr[a]; ok {
				return fmt.Errorf("server: address %s belongs to hosts %q and %q", a, o.Name, h.Name)
			}
			t.byAddr[a] = h
		}
		if h.MAC != nil {
			if o, ok := t.byMAC[macKey(h.MAC)]; ok {
				return fmt.Errorf("server: MAC %s belongs to hosts %q and %q", h.MAC, o.Name, h.Name)
			}
			t.byMAC[macKey(h.MAC)] = h
		}
	}
	s.table.Store(t)
	s.mu.Lock()
	for name, st := range s.states {
		if st.unknown {
			continue
		}
		h := findHost(t.hosts, name)
		if h == nil {
			continue
		}
		if h.Diff != st.diff {
			st.log.Warn("diff directory changed; the new one is used after a restart", "old", st.diff, "new", h.Diff)
		}
	}
	s.mu.Unlock()
	return nil
}

func findHost(hs []Host, name string) *Host {
	for i := range hs {
		if hs[i].Name == name {
			return &hs[i]
		}
	}
	return nil
}

// hostState is one host's union and its caches.
type hostState struct {
	name    string
	diff    string
	unknown bool
	fs      *overlay.FS
	log     *slog.Logger
	mac     cipher.Block // handle key of this host
	files   *fileCache
	dirs    *dirCache
	nodes   *nodeCache
	nlinks  nlinkCache
	gen     atomic.Uint64 // bumped by every namespace change
}

// host finds (opening on first use) the state of the host calling from
// addr, with its current squash settings; nil when the host is refused.
// An address no host lists is matched by its MAC (looked up again when
// atMount, else remembered from earlier calls).
func (s *Server) host(addr netip.Addr, atMount bool) (*hostState, *Host, error) {
	addr = addr.Unmap()
	t := s.table.Load()
	h, ok := t.byAddr[addr]
	if !ok && len(t.byMAC) > 0 {
		if mac := s.macs.get(addr, atMount); mac != nil {
			h, ok = t.byMAC[macKey(mac)]
		}
	}
	unknown := false
	if !ok {
		if t.unknown.Dir == "" {
			return nil, nil, nil
		}
		unknown = true
		h = &Host{
			Name:    "ip-" + addr.String(),
			Addrs:   []netip.Addr{addr},
			Diff:    filepath.Join(t.unknown.Dir, addr.String()),
			Squash:  t.unknown.Squash,
			AnonUID: t.unknown.AnonUID,
			AnonGID: t.unknown.AnonGID,
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, errors.New("server shutting down")
	}
	if st := s.states[h.Name]; st != nil {
		return st, h, nil
	}
	st, err := s.openHost(h, unknown)
	if err != nil {
		return nil, nil, err
	}
	s.states[h.Name] = st
	return st, h, nil
}

func (s *Server) openHost(h *Host, unknown bool) (*hostState, error) {
	log := s.log.With("host", h.Name)
	if h.Diff != "" {
		if err := os.MkdirAll(h.Diff, 0o755); err != nil {
			log.Error("cannot create diff directory", "diff", h.Diff, "err", err)
			return nil, err
		}
	}
	o, err := overlay.New(overlay.Config{Diff: h.Diff, Lowers: s.lowers})
	if err != nil {
		log.Error("cannot open union", "diff", h.Diff, "err", err)
		return nil, err
	}
	log.Info("host union opened", "diff", h.Diff)
	return &hostState{
		name: h.Name, diff: h.Diff, unknown: unknown, fs: o, log: log,
		mac:   hostKey(s.key, h.Name),
		files: newFileCache(o, 64),
		dirs:  newDirCache(8),
		nodes: newNodeCache(4096),
	}, nil
}

// Start listens as l says and serves until Shutdown.
func (s *Server) Start(ctx context.Context, l Listen) (Bound, error) {
	addrs := l.Addrs
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	var b Bound
	var lns []net.Listener
	var pcs []net.PacketConn
	fail := func(err error) (Bound, error) {
		for _, ln := range lns {
			ln.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
		return Bound{}, err
	}
	port := l.Port
	for _, a := range addrs {
		ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
		port = ln.Addr().(*net.TCPAddr).Port
		if l.UDP {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				return fail(err)
			}
			pcs = append(pcs, pc)
		}
	}
	b.Port = port
	var pm *portmap.Table
	if l.PortmapPort >= 0 {
		pport := l.PortmapPort
		if pport == 0 {
			pport = portmap.Port
		}
		var plns []net.Listener
		var ppcs []net.PacketConn
		var perr error
		for _, a := range addrs {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(pport)))
			if err != nil {
				perr = err
				break
			}
			plns = append(plns, ln)
			pport = ln.Addr().(*net.TCPAddr).Port
			if l.UDP {
				pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(pport)))
				if err != nil {
					perr = err
					break
				}
				ppcs = append(ppcs, pc)
			}
		}
		switch {
		case perr != nil && l.PortmapPort > 0:
			lns, pcs = append(lns, plns...), append(pcs, ppcs...)
			return fail(fmt.Errorf("portmap: %w", perr))
		case perr != nil:
			for _, ln := range plns {
				ln.Close()
			}
			for _, pc := range ppcs {
				pc.Close()
			}
			s.log.Warn("portmap not served: cannot bind port 111; clients need explicit port options", "err", perr)
		default:
			lns, pcs = append(lns, plns...), append(pcs, ppcs...)
			b.PortmapPort = pport
			pm = portmap.NewTable(uint32(pport))
			if !l.UDP {
				pm.Remove(portmap.Prog, portmap.Vers, portmap.ProtoUDP)
			}
		}
	}
	if pm != nil {
		pm.Add(portmap.Mapping{Prog: nfs3.Prog, Vers: nfs3.Vers, Prot: portmap.ProtoTCP, Port: uint32(b.Port)})
		pm.Add(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers, Prot: portmap.ProtoTCP, Port: uint32(b.Port)})
		if l.UDP {
			pm.Add(portmap.Mapping{Prog: mount.Prog, Vers: mount.Vers, Prot: portmap.ProtoUDP, Port: uint32(b.Port)})
		}
		if err := portmap.Register(s.rpc, pm); err != nil {
			return fail(err)
		}
	}
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, ln := range lns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.rpc.Serve(ctx, ln); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				s.log.Error("serve", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	for _, pc := range pcs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.rpc.ServePacket(ctx, pc); err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				s.log.Error("serve", "addr", pc.LocalAddr().String(), "err", err)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.janitor(ctx)
	}()
	s.log.Info("serving", "export", s.export, "port", b.Port, "portmap", b.PortmapPort)
	return b, nil
}

// janitor closes files left open by clients that went quiet.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		sts := make([]*hostState, 0, len(s.states))
		for _, st := range s.states {
			sts = append(sts, st)
		}
		s.mu.Unlock()
		for _, st := range sts {
			st.files.closeIdle(30 * time.Second)
			st.dirs.expire()
		}
	}
}

// Shutdown stops accepting calls, lets calls in flight finish, flushes
// every host's written files to disk and closes the unions.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.rpc.Shutdown(ctx)
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.mu.Lock()
	s.closed = true
	sts := s.states
	s.states = map[string]*hostState{}
	s.mu.Unlock()
	unknown := s.table.Load().unknown
	names := make([]string, 0, len(sts))
	for n := range sts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := sts[n]
		if e := st.files.closeAll(true); e != nil {
			st.log.Error("flushing files", "err", e)
			err = errors.Join(err, e)
		}
		if st.diff != "" {
			if e := syncDir(st.diff); e != nil {
				st.log.Error("sync", "err", e)
				err = errors.Join(err, e)
			}
		}
		if e := st.fs.Close(); e != nil {
			err = errors.Join(err, e)
		}
		if st.unknown && unknown.Throwaway && st.diff != "" {
			if e := os.RemoveAll(st.diff); e != nil {
				err = errors.Join(err, e)
			}
		}
		st.log.Info("host union closed")
	}
	return err
}

// Close stops at once, without waiting for calls in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.rpc.Close()
	return s.Shutdown(ctx)
}

// Export is the exported path.
func (s *Server) Export() string { return s.export }

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
