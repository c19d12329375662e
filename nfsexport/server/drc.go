package server

import (
	"net/netip"
	"sync"
	"time"
)

// drc is the duplicate request cache for non-idempotent procedures: a
// client that retransmits a CREATE, REMOVE, RENAME... (same address, XID
// and procedure, typically after reconnecting) gets the first answer
// again instead of a second execution (which would say EXIST or NOENT).
type drc struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	m    map[drcKey]*drcEntry
	fifo []drcKey
}

// drcKey identifies a call: like knfsd, by address and port, XID and a
// checksum of the arguments, so that two client processes on one host
// that happen to use the same XID are not confused.
type drcKey struct {
	addr netip.AddrPort // with the port, as knfsd: clients reconnect from the same one
	xid  uint32
	proc uint32
	uid  uint32
	sum  uint64
}

// argSum hashes the parts of a call's arguments that identify it.
func argSum(parts ...[]byte) uint64 {
	h := uint64(14695981039346656037)
	for _, p := range parts {
		for _, b := range p {
			h ^= uint64(b)
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return h
}

type drcEntry struct {
	done chan struct{}
	res  any
	at   time.Time
}

func newDRC(max int, ttl time.Duration) *drc {
	return &drc{max: max, ttl: ttl, m: map[drcKey]*drcEntry{}}
}

// do runs f once per key within the cache's lifetime and returns its
// result; a duplicate arriving while f runs waits for it.
func drcDo[R any](c *drc, k drcKey, f func() R) R {
	c.mu.Lock()
	if e := c.m[k]; e != nil && time.Since(e.at) < c.ttl {
		c.mu.Unlock()
		<-e.done
		return e.res.(R)
	}
	e := &drcEntry{done: make(chan struct{}), at: time.Now()}
	if _, ok := c.m[k]; !ok {
		c.fifo = append(c.fifo, k)
	}
	c.m[k] = e
	for len(c.fifo) > c.max {
		old := c.fifo[0]
		c.fifo = c.fifo[1:]
		if x := c.m[old]; x != nil && x != e {
			select {
			case <-x.done:
				delete(c.m, old)
			default:
				// Still running: keep it (rare; bounded by calls in flight).
			}
		}
	}
	c.mu.Unlock()
	r := f()
	e.res = r
	close(e.done)
	return r
}
