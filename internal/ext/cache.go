package ext

import (
	"hash/maphash"
	"sync"
)

// cache is a bounded, concurrency-safe map. When a shard is full an
// arbitrary entry is dropped: Go's randomised map iteration makes that a
// random eviction, which costs O(1), needs no per-entry list links and,
// unlike LRU, does not collapse to a zero hit rate on a scan larger than
// the cache.
type cache[K comparable, V any] struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard[K, V]
}

const cacheShards = 16

type cacheShard[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	max int
}

func newCache[K comparable, V any](entries int) *cache[K, V] {
	c := &cache[K, V]{seed: maphash.MakeSeed()}
	per := max(entries/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
		c.shards[i].max = per
	}
	return c
}

func (c *cache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, k)%cacheShards]
}

func (c *cache[K, V]) get(k K) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	return v, ok
}

func (c *cache[K, V]) put(k K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = v
	s.mu.Unlock()
}
