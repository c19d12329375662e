package vmdk

import "sync"

// Cache budgets shared by all extents of one Disk and its parents.
const (
	gtCacheBytes    = 4 << 20 // decoded grain tables
	grainCacheBytes = 8 << 20 // inflated compressed grains
	cacheShards     = 16
)

// lru is a sharded, size-bounded LRU cache of immutable values. Sharding
// keeps concurrent readers of different tables from contending on one
// lock; values are never mutated after add, so callers may use them
// without holding any lock.
type lru[V any] struct {
	shards  [cacheShards]lruShard[V]
	recycle int // evicted values kept per shard for reuse
}

type lruShard[V any] struct {
	mu    sync.Mutex
	m     map[uint64]*lruEntry[V]
	head  lruEntry[V] // sentinel: head.next is most recent
	size  int64
	limit int64
	free  []V // evicted values kept for reuse, when recycling
}

type lruEntry[V any] struct {
	key        uint64
	val        V
	size       int64
	prev, next *lruEntry[V]
}

func newLRU[V any](limit int64) *lru[V] {
	c := &lru[V]{}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[uint64]*lruEntry[V])
		s.head.next, s.head.prev = &s.head, &s.head
		s.limit = max(limit/cacheShards, 1)
	}
	return c
}

func (c *lru[V]) shard(key uint64) *lruShard[V] {
	return &c.shards[(key*0x9E3779B97F4A7C15)>>60]
}

func (c *lru[V]) get(key uint64) (V, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[key]
	if !ok {
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	if s.head.next != e {
		e.unlink()
		s.pushFront(e)
	}
	v := e.val
	s.mu.Unlock()
	return v, true
}

// add inserts val unless key is present; it returns the cached value.
func (c *lru[V]) add(key uint64, val V, size int64) V {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.addLocked(s, key, val, size)
}

func (c *lru[V]) addLocked(s *lruShard[V], key uint64, val V, size int64) V {
	if e, ok := s.m[key]; ok {
		return e.val
	}
	e := &lruEntry[V]{key: key, val: val, size: size}
	s.m[key] = e
	s.pushFront(e)
	s.size += size
	for s.size > s.limit && s.head.prev != e {
		old := s.head.prev
		old.unlink()
		delete(s.m, old.key)
		s.size -= old.size
		if len(s.free) < c.recycle {
			s.free = append(s.free, old.val)
		}
	}
	return val
}

func (s *lruShard[V]) pushFront(e *lruEntry[V]) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (e *lruEntry[V]) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// Inflated grains are copied out under the shard lock, so a buffer
// evicted from the cache is unreferenced and can be reused for the next
// grain without a reference count: a read that misses allocates nothing
// once the cache is warm.

// grainCopy copies the cached grain key from byte off into dst.
func grainCopy(c *lru[[]byte], key uint64, dst []byte, off int64) bool {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return false
	}
	if s.head.next != e {
		e.unlink()
		s.pushFront(e)
	}
	copy(dst, e.val[off:])
	return true
}

// grainBuffer returns a buffer of n bytes for inflating grain key into,
// reusing an evicted one when it can.
func grainBuffer(c *lru[[]byte], key uint64, n int64) []byte {
	s := c.shard(key)
	s.mu.Lock()
	for i := len(s.free) - 1; i >= 0; i-- {
		if b := s.free[i]; int64(len(b)) == n {
			s.free[i] = s.free[len(s.free)-1]
			s.free[len(s.free)-1] = nil
			s.free = s.free[:len(s.free)-1]
			s.mu.Unlock()
			return b
		}
	}
	s.mu.Unlock()
	return make([]byte, n)
}

// grainInsert caches buf as grain key and copies from byte off into dst.
func grainInsert(c *lru[[]byte], key uint64, buf, dst []byte, off int64) {
	s := c.shard(key)
	s.mu.Lock()
	got := c.addLocked(s, key, buf, int64(len(buf))+64)
	copy(dst, got[off:])
	if &got[0] != &buf[0] && len(s.free) < c.recycle {
		s.free = append(s.free, buf) // lost a race to insert: reuse ours
	}
	s.mu.Unlock()
}

// caches is shared by a Disk and its parent chain; ids keep extents'
// keys apart.
type caches struct {
	gt     *lru[[]uint32]
	grain  *lru[[]byte]
	mu     sync.Mutex
	nextID uint32
}

func newCaches() *caches {
	c := &caches{gt: newLRU[[]uint32](gtCacheBytes), grain: newLRU[[]byte](grainCacheBytes)}
	c.grain.recycle = 2
	return c
}

func (c *caches) newID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return c.nextID
}
