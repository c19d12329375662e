package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"weak"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// Reserved names in the diff, aufs's.
const (
	whPrefix  = ".wh."
	opqName   = ".wh..wh..opq"
	whBase    = ".wh..wh.aufs"
	plnkDir   = ".wh..wh.plnk"
	workDir   = ".wh..wh.orph"
	maxName   = 255
	inoBits   = 48
	inoMask   = 1<<inoBits - 1
	upperTag  = 1 << 63
	layerMask = 0x7fff
)

// Config describes a union.
type Config struct {
	// Diff is the writable host directory; "" makes the union read-only.
	Diff string
	// Lowers are the read-only layers, top to bottom; the last is the base.
	Lowers []fsys.FS
}

// Cred is the caller's identity for permission checks and ownership of
// new objects.
type Cred struct {
	Uid, Gid uint32
	Groups   []uint32
}

// Root is the credential of the superuser.
var Root = &Cred{}

// FS is a union filesystem.
type FS struct {
	lowers  []fsys.FS
	diff    string
	ufd     int // diff root, -1 when read-only
	xattrNS string
	xOrigin string
	xMeta   string
	xPend   string

	ns    sync.RWMutex // tree lock: exclusive for namespace changes
	cgen  atomic.Uint64
	wseq  atomic.Uint64
	root  *Node
	tabMu sync.Mutex
	nodes map[uint64]weak.Pointer[Node] // nodes somebody still holds

	plnkMu sync.Mutex
	plnk   map[uint64]bool

	bg sync.WaitGroup // background removals of staged directories
}

type lref struct {
	layer int
	ino   uint64
}

// state is a node's namespace state; replaced whole, read lock-free.
type state struct {
	parent  *Node
	name    string
	lowers  []lref // directories: merged dirs top to bottom; others: the visible lower object
	upper   bool   // an upper inode exists
	indexed bool   // the upper inode is reachable at .wh..wh.plnk/<ino>
	meta    bool   // upper regular file whose data is still origin's
	origin  lref   // data source of a metacopy
	opaque  bool
	removed bool // no names left
	pending int32
	aliases []alias // other known names of a multiply linked non-directory
}

type alias struct {
	parent *Node
	name   string
}

// Node is one object (inode) of the union. Nodes are shared by all names
// of one inode.
type Node struct {
	o    *FS
	ino  uint64
	mode uint32 // S_IFMT bits
	mu   sync.Mutex
	st   atomic.Pointer[state]
	kids map[string]kid // positive lookup cache (directories)
	gen  atomic.Uint64  // bumped when the data source changes
	cpMu sync.Mutex     // serialises data copy-up
	dirN atomic.Int64   // cached directory link count, 0 = unknown
}

type kid struct {
	n   weak.Pointer[Node]
	gen uint64
}

// Ino is the node's stable inode number.
func (n *Node) Ino() uint64 { return n.ino }

// Mode is the node's file type (S_IFMT bits).
func (n *Node) Mode() uint32 { return n.mode }

// InDiff reports whether the node's object exists in the diff (was
// created or copied up there); otherwise it is read from the layers alone.
func (n *Node) InDiff() bool { return n.state().upper }

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.mode == fsys.S_IFDIR }

func (n *Node) state() *state { return n.st.Load() }

func (n *Node) update(f func(s *state)) {
	n.mu.Lock()
	s := *n.st.Load()
	f(&s)
	n.st.Store(&s)
	n.mu.Unlock()
}

// New opens a union. The lower filesystems stay owned by the caller.
func New(cfg Config) (*FS, error) {
	if len(cfg.Lowers) == 0 {
		return nil, errors.New("overlay: no base layer")
	}
	if len(cfg.Lowers) > layerMask {
		return nil, errors.New("overlay: too many layers")
	}
	o := &FS{lowers: cfg.Lowers, diff: cfg.Diff, ufd: -1, nodes: map[uint64]weak.Pointer[Node]{}, plnk: map[uint64]bool{}}
	if cfg.Diff != "" {
		if err := o.openDiff(cfg.Diff); err != nil {
			return nil, err
		}
	}
	base := len(o.lowers) - 1
	var lowers []lref
	for i, l := range o.lowers {
		lowers = append(lowers, lref{i, l.Root()})
		if i < base && o.lowerOpaque(i, l.Root()) {
			break
		}
	}
	root := &Node{o: o, mode: fsys.S_IFDIR, kids: map[string]kid{}}
	root.ino = o.enc(lowers[0])
	st := &state{lowers: lowers, upper: o.ufd >= 0}
	if o.ufd >= 0 {
		if v, ok := o.getOrigin("."); ok {
			root.ino = v
		}
		st.opaque = o.uexists(opqName)
		if st.opaque {
			st.lowers = nil
		}
	}
	root.st.Store(st)
	o.root = root
	o.nodes[root.ino] = weak.Make(root)
	return o, nil
}

func (o *FS) openDiff(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff %s: %w", dir, err)
	}
	o.ufd = fd
	fail := func(format string, a ...any) error {
		unix.Close(fd)
		o.ufd = -1
		return fmt.Errorf("diff %s: "+format, append([]any{dir}, a...)...)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail("in use by another vmroot mount")
	}
	if err := unix.Faccessat(fd, ".", unix.W_OK, 0); err != nil {
		return fail("not writable: %v", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil && sfs.Flags&unix.ST_RDONLY != 0 {
		return fail("on a read-only filesystem")
	}
	for _, d := range []string{workDir, plnkDir} {
		if err := unix.Mkdirat(fd, d, 0o700); err != nil && err != unix.EEXIST {
			return fail("create %s: %v", d, err)
		}
	}
	// Feature probes, each on a scratch file in the work dir. A full diff
	// still opens (so it can be read, and emptied): then the probes that
	// need a new inode are skipped.
	probe := workDir + "/probe"
	unix.Unlinkat(fd, probe, 0)
	pfd, err := unix.Openat(fd, probe, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	full := err == unix.ENOSPC || err == unix.EDQUOT
	if err != nil && !full {
		return fail("create a file: %v", err)
	}
	xprobe := dir + "/" + probe
	if full {
		xprobe = dir
	} else {
		unix.Close(pfd)
		defer unix.Unlinkat(fd, probe, 0)
	}
	o.xattrNS = "trusted.vmroot."
	if err := unix.Lsetxattr(xprobe, "trusted.vmroot.probe", []byte("1"), 0); err == nil {
		unix.Lremovexattr(xprobe, "trusted.vmroot.probe")
	} else if full && (err == unix.ENOSPC || err == unix.EDQUOT) {
		if os.Geteuid() != 0 {
			o.xattrNS = "user.vmroot."
		}
	} else if err2 := unix.Lsetxattr(xprobe, "user.vmroot.probe", []byte("1"), 0); err2 != nil {
		return fail("filesystem lacks extended attributes (trusted.: %v, user.: %v)", err, err2)
	} else {
		unix.Lremovexattr(xprobe, "user.vmroot.probe")
		o.xattrNS = "user.vmroot."
	}
	o.xOrigin, o.xMeta, o.xPend = o.xattrNS+"origin", o.xattrNS+"meta", o.xattrNS+"pending"
	if !full {
		if err := unix.Linkat(fd, probe, fd, probe+".l", 0); err != nil {
			return fail("filesystem lacks hard links: %v", err)
		}
		unix.Unlinkat(fd, probe+".l", 0)
	}
	if _, _, err := unix.NameToHandleAt(fd, ".", 0); err != nil {
		return fail("filesystem lacks file handles (name_to_handle_at: %v)", err)
	}
	// whiteout base
	if _, err := o.ustat(whBase); err != nil {
		wfd, err := unix.Openat(fd, whBase, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o444)
		if err != nil {
			return fail("create %s: %v", whBase, err)
		}
		unix.Close(wfd)
	}
	// Leftovers of an interrupted copy-up or rmdir.
	if err := removeAllAt(fd, workDir, false); err != nil {
		return fail("clean %s: %v", workDir, err)
	}
	names, err := readNames(fd, plnkDir)
	if err != nil {
		return fail("read %s: %v", plnkDir, err)
	}
	for _, nm := range names {
		if v, err := strconv.ParseUint(nm, 10, 64); err == nil {
			o.plnk[v] = true
		}
	}
	return nil
}

// Close releases the diff directory; lower layers stay open.
func (o *FS) Close() error {
	o.bg.Wait()
	if o.ufd >= 0 {
		err := unix.Close(o.ufd)
		o.ufd = -1
		return err
	}
	return nil
}

// ReadOnly reports whether the union has no diff.
func (o *FS) ReadOnly() bool { return o.ufd < 0 }

// Root returns the root directory.
func (o *FS) Root() *Node { return o.root }

func (o *FS) enc(l lref) uint64 {
	return l.ino&inoMask | uint64(len(o.lowers)-1-l.layer)<<inoBits
}

func (o *FS) dec(v uint64) (lref, bool) {
	if v&upperTag != 0 {
		return lref{}, false
	}
	d := int(v >> inoBits & layerMask)
	i := len(o.lowers) - 1 - d
	if i < 0 {
		return lref{}, false
	}
	return lref{i, v & inoMask}, true
}

// --- upper helpers ---

func (o *FS) ustat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(o.ufd, p, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func (o *FS) uexists(p string) bool {
	var st unix.Stat_t
	return unix.Fstatat(o.ufd, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

func (o *FS) uabs(p string) string { return o.diff + "/" + p }

func (o *FS) getOrigin(p string) (uint64, bool) {
	var buf [24]byte
	n, err := unix.Lgetxattr(o.uabs(p), o.xOrigin, buf[:])
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(string(buf[:n]), 10, 64)
	return v, err == nil
}

func (o *FS) getInt(p, name string) int32 {
	var buf [24]byte
	n, err := unix.Lgetxattr(o.uabs(p), name, buf[:])
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(string(buf[:n]))
	return int32(v)
}

func (o *FS) hasX(p, name string) bool {
	_, err := unix.Lgetxattr(o.uabs(p), name, nil)
	return err == nil
}

func plnkPath(ino uint64) string { return plnkDir + "/" + strconv.FormatUint(ino, 10) }

func (o *FS) isIndexed(ino uint64) bool {
	o.plnkMu.Lock()
	defer o.plnkMu.Unlock()
	return o.plnk[ino]
}

func (o *FS) setIndexed(ino uint64, v bool) {
	o.plnkMu.Lock()
	if v {
		o.plnk[ino] = true
	} else {
		delete(o.plnk, ino)
	}
	o.plnkMu.Unlock()
}

// upath is the node's path in the diff ("." for the root). Caller holds ns.
func (n *Node) upath() string {
	s := n.state()
	if s.parent == nil {
		return "."
	}
	var parts []string
	for m := n; ; {
		ms := m.state()
		if ms.parent == nil {
			break
		}
		parts = append(parts, ms.name)
		m = ms.parent
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// dataPath is where the node's upper inode can be opened. Caller holds ns.
func (n *Node) dataPath() string {
	if n.state().indexed {
		return plnkPath(n.ino)
	}
	return n.upath()
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// Path returns the node's current path in the union ("/" for the root),
// for messages and tools.
func (o *FS) Path(n *Node) string {
	o.ns.RLock()
	defer o.ns.RUnlock()
	if n == o.root {
		return "/"
	}
	return "/" + n.upath()
}

// --- lower helpers ---

func (o *FS) isBase(layer int) bool { return layer == len(o.lowers)-1 }

func (o *FS) lowerOpaque(layer int, ino uint64) bool {
	if o.isBase(layer) {
		return false
	}
	l := o.lowers[layer]
	if _, err := l.Lookup(ino, opqName); err == nil {
		return true
	}
	v, err := l.GetXattr(ino, "trusted.overlay.opaque")
	return err == nil && string(v) == "y"
}

func lowerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fsys.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, fsys.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, fsys.ErrNoAttr):
		return syscall.ENODATA
	case errors.Is(err, fsys.ErrLoop):
		return syscall.ELOOP
	case errors.Is(err, fsys.ErrNotLink):
		return syscall.EINVAL
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

func errno(err error) error {
	if err == nil {
		return nil
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return errno(pe.Err)
	}
	return lowerErr(err)
}

func checkName(name string) error {
	if len(name) > maxName {
		return syscall.ENAMETOOLONG
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return syscall.EINVAL
	}
	return nil
}

// --- lookup ---

type found struct {
	upper  bool
	ust    unix.Stat_t
	mode   uint32
	lowers []lref
	opaque bool
	lattr  fsys.Attr
	wh     bool // ENOENT because of a whiteout in the diff
}

// find resolves name in dir across the layers. Caller holds ns.
func (o *FS) find(dir *Node, name string) (found, error) {
	var f found
	ds := dir.state()
	checkLower := true
	if ds.upper && o.ufd >= 0 {
		dp := dir.upath()
		cp := join(dp, name)
		st, err := o.ustat(cp)
		switch err {
		case nil:
			f.upper, f.ust, f.mode = true, st, st.Mode&fsys.S_IFMT
			if f.mode == fsys.S_IFDIR {
				f.opaque = o.uexists(cp + "/" + opqName)
				checkLower = !f.opaque
			} else {
				checkLower = false
			}
		case unix.ENOENT:
			if o.uexists(join(dp, whPrefix+name)) {
				f.wh = true
				return f, syscall.ENOENT
			}
		case unix.ENOTDIR:
			return f, syscall.ENOENT
		default:
			return f, err
		}
	}
	if checkLower && !ds.opaque {
		for _, l := range ds.lowers {
			lfs := o.lowers[l.layer]
			base := o.isBase(l.layer)
			if !base {
				if _, err := lfs.Lookup(l.ino, whPrefix+name); err == nil {
					break
				}
			}
			ino, err := lfs.Lookup(l.ino, name)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return f, lowerErr(err)
			}
			a, err := lfs.Stat(ino)
			if err != nil {
				return f, lowerErr(err)
			}
			if !base && a.Mode&fsys.S_IFMT == fsys.S_IFCHR && a.Rdev == 0 {
				break // overlayfs whiteout
			}
			isDir := a.Mode&fsys.S_IFMT == fsys.S_IFDIR
			if f.upper || len(f.lowers) > 0 {
				if !isDir {
					break
				}
			} else {
				f.mode = a.Mode & fsys.S_IFMT
				f.lattr = a
			}
			f.lowers = append(f.lowers, lref{l.layer, ino})
			if !isDir || o.lowerOpaque(l.layer, ino) {
				break
			}
		}
	}
	if !f.upper && len(f.lowers) == 0 {
		return f, syscall.ENOENT
	}
	return f, nil
}

// Lookup finds name in dir.
func (o *FS) Lookup(dir *Node, name string) (*Node, error) {
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	if dir.mode != fsys.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	if strings.HasPrefix(name, whPrefix) || name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, syscall.ENOENT
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	return o.lookupLocked(dir, name)
}

func (o *FS) lookupLocked(dir *Node, name string) (*Node, error) {
	if name == "." {
		return dir, nil
	}
	if name == ".." {
		if p := dir.state().parent; p != nil {
			return p, nil
		}
		return dir, nil
	}
	g := o.cgen.Load()
	if n := dir.kid(name, g); n != nil {
		return n, nil
	}
	f, err := o.find(dir, name)
	if err != nil {
		return nil, err
	}
	n := o.nodeFor(dir, name, f)
	o.remember(dir, name, n, g)
	return n, nil
}

// LookupEntry is Lookup of entry e of a listing of dir. READDIRPLUS
// looks up every entry it lists; an entry listed from a lower layer of a
// directory that has nothing in the diff is still exactly what the
// listing saw (lower layers never change), so it becomes a node without
// searching the layers again. Any other entry takes the Lookup path.
func (o *FS) LookupEntry(dir *Node, e *DirEntry) (*Node, error) {
	l, ok := o.dec(e.Ino)
	if !e.lower || !ok || dir.mode != fsys.S_IFDIR {
		return o.Lookup(dir, e.Name)
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	ds := dir.state()
	// A lower directory listed over further lower layers is merged
	// with them: find collects those.
	if ds.upper || ds.removed || ds.opaque || len(ds.lowers) == 0 ||
		(e.Mode == fsys.S_IFDIR && len(ds.lowers) > 1) {
		return o.lookupLocked(dir, e.Name)
	}
	g := o.cgen.Load()
	if n := dir.kid(e.Name, g); n != nil {
		return n, nil
	}
	a, err := o.lowers[l.layer].Stat(l.ino)
	if err != nil || a.Mode&fsys.S_IFMT != e.Mode {
		return o.lookupLocked(dir, e.Name)
	}
	n := o.nodeFor(dir, e.Name, found{mode: e.Mode, lattr: a, lowers: []lref{l}})
	o.remember(dir, e.Name, n, g)
	return n, nil
}

// kid is dir's cached node for name, if it was cached in generation g
// and is still alive.
func (dir *Node) kid(name string, g uint64) *Node {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if k, ok := dir.kids[name]; ok && k.gen == g {
		return k.n.Value()
	}
	return nil
}

func (o *FS) remember(dir *Node, name string, n *Node, g uint64) {
	dir.mu.Lock()
	if dir.kids == nil {
		dir.kids = map[string]kid{}
	}
	dir.kids[name] = kid{weak.Make(n), g}
	dir.mu.Unlock()
}

func (o *FS) forget(dir *Node, name string) {
	o.forgetName(dir, name)
	dir.dirN.Store(0)
}

// forgetName drops a cached name that is not a directory on either side
// of the change, so dir's link count (2 + subdirectories) stays valid:
// recounting it costs a listing of the merged directory, which would
// otherwise follow every create or unlink (the kernel asks for the
// parent's attributes after each).
func (o *FS) forgetName(dir *Node, name string) {
	dir.mu.Lock()
	delete(dir.kids, name)
	dir.mu.Unlock()
}

// nodeFor builds or refreshes the node for a found entry.
func (o *FS) nodeFor(dir *Node, name string, f found) *Node {
	s := state{parent: dir, name: name}
	var ino uint64
	if f.upper {
		p := join(dir.upath(), name)
		s.upper = true
		s.opaque = f.opaque
		if v, ok := o.getOrigin(p); ok {
			ino = v
			if f.mode == fsys.S_IFREG && o.hasX(p, o.xMeta) {
				if r, ok := o.dec(v); ok {
					s.meta, s.origin = true, r
				}
			}
			if f.mode != fsys.S_IFDIR && o.isIndexed(v) {
				s.indexed = true
				s.pending = o.getInt(plnkPath(v), o.xPend)
			}
		} else if f.mode == fsys.S_IFDIR && !f.opaque && len(f.lowers) > 0 {
			ino = o.enc(f.lowers[0])
		} else {
			ino = f.ust.Ino | upperTag
		}
		if f.mode == fsys.S_IFDIR && !f.opaque {
			s.lowers = f.lowers
		}
	} else {
		ino = o.enc(f.lowers[0])
		s.lowers = f.lowers
		if f.mode != fsys.S_IFDIR && o.ufd >= 0 && o.isIndexed(ino) {
			pp := plnkPath(ino)
			s.upper, s.indexed = true, true
			s.pending = o.getInt(pp, o.xPend)
			if f.mode == fsys.S_IFREG && o.hasX(pp, o.xMeta) {
				s.meta, s.origin = true, f.lowers[0]
			}
		}
	}
	o.tabMu.Lock()
	n := o.nodes[ino].Value()
	if n == nil || n.mode != f.mode {
		n = &Node{o: o, ino: ino, mode: f.mode}
		n.st.Store(&s)
		o.track(n)
		o.tabMu.Unlock()
		return n
	}
	o.tabMu.Unlock()
	n.mu.Lock()
	if old := n.st.Load(); f.mode != fsys.S_IFDIR && old != nil && !old.removed && (old.parent != dir || old.name != name) {
		s.aliases = addAlias(old.aliases, alias{old.parent, old.name})
	}
	n.st.Store(&s)
	n.mu.Unlock()
	n.dirN.Store(0)
	return n
}

func addAlias(as []alias, a alias) []alias {
	for _, x := range as {
		if x == a {
			return as
		}
	}
	return append(append([]alias(nil), as...), a)
}

func dropAlias(as []alias, a alias) []alias {
	var out []alias
	for _, x := range as {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// track enters a new node in the node table. Nodes are held weakly: one
// that neither a front end, an open handle nor a child's parent link
// holds is dropped by the garbage collector, and its entry with it. All
// of a node's state can be read back from the layers, so a later lookup
// rebuilds it with the same ino and ID. Caller holds tabMu.
func (o *FS) track(n *Node) {
	o.nodes[n.ino] = weak.Make(n)
	var parent *Node
	var name string
	if s := n.state(); s != nil {
		parent, name = s.parent, s.name
	}
	runtime.AddCleanup(n, o.dropped, dropKey{n.ino, parent, name})
}

type dropKey struct {
	ino    uint64
	parent *Node
	name   string
}

func (o *FS) dropped(k dropKey) {
	o.tabMu.Lock()
	if w, ok := o.nodes[k.ino]; ok && w.Value() == nil {
		delete(o.nodes, k.ino)
	}
	o.tabMu.Unlock()
	if k.parent != nil {
		k.parent.mu.Lock()
		if c, ok := k.parent.kids[k.name]; ok && c.n.Value() == nil {
			delete(k.parent.kids, k.name)
		}
		k.parent.mu.Unlock()
	}
}

// LiveNodes is the number of nodes the engine holds now (objects looked
// up and still referenced), for memory monitoring.
func (o *FS) LiveNodes() int {
	o.tabMu.Lock()
	defer o.tabMu.Unlock()
	return len(o.nodes)
}

// adopt makes the node of an object just created in the diff under
// (dir, name), without looking it up again. Caller holds ns exclusively.
func (o *FS) adopt(dir *Node, name string, ino uint64, mode uint32, opaque bool) *Node {
	s := &state{parent: dir, name: name, upper: true, opaque: opaque}
	o.tabMu.Lock()
	n := o.nodes[ino].Value()
	if n != nil && n.mode == mode {
		// The host reused the inode number of a deleted object whose
		// node is still held: that node now stands for the new object,
		// as a lookup would make it.
		o.tabMu.Unlock()
		n.mu.Lock()
		n.st.Store(s)
		if mode == fsys.S_IFDIR {
			n.kids = map[string]kid{}
		}
		n.mu.Unlock()
		n.gen.Add(1)
		n.dirN.Store(0)
	} else {
		n = &Node{o: o, ino: ino, mode: mode}
		if mode == fsys.S_IFDIR {
			n.kids = map[string]kid{}
		}
		n.st.Store(s)
		o.track(n)
		o.tabMu.Unlock()
	}
	if mode == fsys.S_IFDIR {
		dir.dirN.Store(0)
	}
	o.remember(dir, name, n, o.cgen.Load())
	return n
}

// discard removes a directory already moved into the staging area, in the
// background: it is out of the union's sight, and whatever a crash leaves
// of it is removed at the next mount.
func (o *FS) discard(staged string) {
	o.bg.Add(1)
	go func() {
		defer o.bg.Done()
		removeAllAt(o.ufd, staged, true)
	}()
}
