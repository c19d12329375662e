package server

import (
	"errors"
	"sync"
	"time"

	"github.com/vmroot/vmroot/overlay"
	"golang.org/x/sys/unix"
)

// fileCache keeps a few overlay handles open per host, so that a stream
// of READ or WRITE calls does not open the file each time. Entries are
// reference counted; at most max stay open, least recently used first
// out, and the janitor closes idle ones.
type fileCache struct {
	o   *overlay.FS
	max int

	mu    sync.Mutex
	m     map[*overlay.Node]*openFile
	clock uint64
}

type openFile struct {
	h     *overlay.Handle
	rw    bool
	refs  int
	dead  bool // evicted while in use: close at last release
	dirty bool // unstable writes not yet committed
	used  uint64
	last  time.Time
}

func newFileCache(o *overlay.FS, max int) *fileCache {
	return &fileCache{o: o, max: max, m: map[*overlay.Node]*openFile{}}
}

// get returns an open handle of n (read-write when rw) and its release.
func (c *fileCache) get(n *overlay.Node, rw bool) (*openFile, error) {
	c.mu.Lock()
	if f := c.m[n]; f != nil && (f.rw || !rw) {
		f.refs++
		c.clock++
		f.used, f.last = c.clock, time.Now()
		c.mu.Unlock()
		return f, nil
	}
	c.mu.Unlock()
	flags := unix.O_RDONLY
	if rw {
		flags = unix.O_RDWR
	}
	h, err := c.o.Open(n, flags)
	if err != nil {
		return nil, err
	}
	f := &openFile{h: h, rw: rw, refs: 1, last: time.Now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[n]; old != nil {
		if old.rw || !rw {
			// Lost a race; use the winner.
			old.refs++
			h.Release()
			return old, nil
		}
		c.dropLocked(n, old)
	}
	c.clock++
	f.used = c.clock
	c.m[n] = f
	for len(c.m) > c.max {
		var vn *overlay.Node
		var v *openFile
		for k, x := range c.m {
			if x != f && (v == nil || x.used < v.used) {
				vn, v = k, x
			}
		}
		if v == nil {
			break
		}
		c.dropLocked(vn, v)
	}
	return f, nil
}

func (c *fileCache) put(f *openFile) {
	c.mu.Lock()
	f.refs--
	closeIt := f.dead && f.refs == 0
	c.mu.Unlock()
	if closeIt {
		f.h.Release()
	}
}

func (c *fileCache) dropLocked(n *overlay.Node, f *openFile) {
	delete(c.m, n)
	f.dead = true
	if f.refs == 0 {
		f.h.Release()
	}
}

// forget closes n's cached handle (after it was removed or replaced).
func (c *fileCache) forget(n *overlay.Node) {
	if n == nil {
		return
	}
	c.mu.Lock()
	if f := c.m[n]; f != nil {
		c.dropLocked(n, f)
	}
	c.mu.Unlock()
}

// cached returns n's open handle if there is one, referenced.
func (c *fileCache) cached(n *overlay.Node) *openFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[n]
	if f != nil {
		f.refs++
	}
	return f
}

func (c *fileCache) closeIdle(idle time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, f := range c.m {
		if f.refs == 0 && time.Since(f.last) > idle {
			if f.dirty {
				// Written but not committed: flush before closing so that
				// a later COMMIT has nothing left to lose.
				f.h.Fsync(false)
			}
			c.dropLocked(n, f)
		}
	}
}

// closeAll closes every handle, fsyncing written ones when sync is set.
func (c *fileCache) closeAll(sync bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for n, f := range c.m {
		if sync && f.rw {
			if e := f.h.Fsync(false); e != nil {
				err = errors.Join(err, e)
			}
		}
		c.dropLocked(n, f)
	}
	return err
}

// dirCache keeps the last few directory listings of a host while nothing
// in its namespace changes, so that a large directory read in many
// READDIR calls is listed once.
type dirCache struct {
	mu  sync.Mutex
	max int
	ent []dirListing
}

type dirListing struct {
	n    *overlay.Node
	gen  uint64
	at   time.Time
	list []overlay.DirEntry
}

func newDirCache(max int) *dirCache { return &dirCache{max: max} }

const dirCacheTTL = 2 * time.Second

func (c *dirCache) list(o *overlay.FS, n *overlay.Node, gen uint64) ([]overlay.DirEntry, error) {
	c.mu.Lock()
	for _, e := range c.ent {
		if e.n == n && e.gen == gen && time.Since(e.at) < dirCacheTTL {
			c.mu.Unlock()
			return e.list, nil
		}
	}
	c.mu.Unlock()
	l, err := o.ReadDir(n)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.ent {
		if e.n == n {
			c.ent = append(c.ent[:i], c.ent[i+1:]...)
			break
		}
	}
	if len(c.ent) >= c.max {
		c.ent = c.ent[1:]
	}
	c.ent = append(c.ent, dirListing{n: n, gen: gen, at: time.Now(), list: l})
	return l, nil
}

// adopt caches a handle the server opened itself (CREATE's).
func (c *fileCache) adopt(n *overlay.Node, h *overlay.Handle) {
	c.mu.Lock()
	if old := c.m[n]; old != nil {
		c.dropLocked(n, old)
	}
	c.clock++
	c.m[n] = &openFile{h: h, rw: true, used: c.clock, last: time.Now()}
	for len(c.m) > c.max {
		var vn *overlay.Node
		var v *openFile
		for k, x := range c.m {
			if v == nil || x.used < v.used {
				vn, v = k, x
			}
		}
		c.dropLocked(vn, v)
	}
	c.mu.Unlock()
}

// syncDir flushes the filesystem holding dir (syncfs).
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// nodeCache maps handle IDs to nodes: resolving an ID from scratch can
// mean listing the object's parent directory. READDIRPLUS enters a hint
// instead (the directory and name it listed the ID under), so that no
// node is built per entry until a handle is used. Entries are dropped when
// the server removes their object; when full, an arbitrary half goes.
type nodeCache struct {
	mu  sync.Mutex
	max int
	m   map[idKey]nodeRef
}

// idKey is an ID as a map key without a string allocation per entry.
type idKey struct {
	n uint8
	b [overlay.MaxIDLen]byte
}

func keyOf(id []byte) (k idKey) {
	k.n = uint8(copy(k.b[:], id))
	return k
}

// nodeRef is a node, or a hint: where a listing showed the ID.
type nodeRef struct {
	n    *overlay.Node
	dir  *overlay.Node
	name string
}

func newNodeCache(max int) *nodeCache {
	return &nodeCache{max: max, m: map[idKey]nodeRef{}}
}

func (c *nodeCache) get(id []byte) nodeRef {
	if len(id) > overlay.MaxIDLen {
		return nodeRef{}
	}
	k := keyOf(id)
	c.mu.Lock()
	r := c.m[k]
	c.mu.Unlock()
	return r
}

func (c *nodeCache) put(id []byte, n *overlay.Node) {
	c.set(id, nodeRef{n: n})
}

// hint records that id was listed as name in dir.
func (c *nodeCache) hint(id []byte, dir *overlay.Node, name string) {
	c.set(id, nodeRef{dir: dir, name: name})
}

func (c *nodeCache) set(id []byte, r nodeRef) {
	if len(id) > overlay.MaxIDLen {
		return
	}
	k := keyOf(id)
	c.mu.Lock()
	if old, ok := c.m[k]; ok && old.n != nil && (r.n == nil || old.n == r.n) {
		c.mu.Unlock()
		return // a node beats a hint
	}
	if len(c.m) >= c.max {
		i := 0
		for k := range c.m {
			if i%2 == 0 {
				delete(c.m, k)
			}
			i++
		}
	}
	c.m[k] = r
	c.mu.Unlock()
}

// drop forgets every ID of n.
func (c *nodeCache) drop(n *overlay.Node) {
	if n == nil {
		return
	}
	c.mu.Lock()
	for k, v := range c.m {
		if v.n == n {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// nlinkCache remembers the link counts of directories. The overlay
// engine recounts a merged directory's subdirectories (a full listing)
// for its link count after every change in it, which made each CREATE in
// a large directory cost a listing; only this server changes the diff, so
// the count it saw stays right until a directory is made, removed or
// moved in that directory, and those calls drop the entry.
type nlinkCache struct {
	mu sync.Mutex
	m  map[*overlay.Node]uint32
}

func (c *nlinkCache) get(n *overlay.Node) (uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[n]
	return v, ok
}

func (c *nlinkCache) put(n *overlay.Node, v uint32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 4096 {
		c.m = map[*overlay.Node]uint32{}
	}
	c.m[n] = v
	c.mu.Unlock()
}

func (c *nlinkCache) drop(ns ...*overlay.Node) {
	c.mu.Lock()
	for _, n := range ns {
		delete(c.m, n)
	}
	c.mu.Unlock()
}

// expire drops listings past their time, so an idle host holds none.
func (c *dirCache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.ent[:0]
	for _, e := range c.ent {
		if time.Since(e.at) < dirCacheTTL {
			keep = append(keep, e)
		}
	}
	for i := len(keep); i < len(c.ent); i++ {
		c.ent[i] = dirListing{}
	}
	c.ent = keep
}
