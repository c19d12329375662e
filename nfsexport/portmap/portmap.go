// Package portmap implements the portmapper, program 100000 version 2
// (RFC 1833 section 3), answering from a Table that vmroot fills with its
// own services. Remote SET and UNSET are accepted only from loopback
// callers and can never replace or remove the server's own entries.
// CALLIT is not forwarded: over UDP it is dropped (as portmappers do for
// failed indirect calls), over TCP it is answered PROC_UNAVAIL.
package portmap

import (
	"context"
	"slices"
	"sync"

	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Program numbers and well-known port.
const (
	Prog = 100000
	Vers = 2
	Port = 111

	ProtoTCP = 6
	ProtoUDP = 17
)

// Procedures.
const (
	ProcNull    = 0
	ProcSet     = 1
	ProcUnset   = 2
	ProcGetPort = 3
	ProcDump    = 4
	ProcCallit  = 5
)

// MaxDump bounds the number of mappings decoded from a DUMP reply.
const MaxDump = 16384

// MaxCallitArgs bounds CALLIT argument and result bodies.
const MaxCallitArgs = 8800

// Mapping is struct mapping.
type Mapping struct {
	Prog, Vers, Prot, Port uint32
}

// EncodeXDR implements xdr.Encodable.
func (m *Mapping) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(m.Prog)
	e.Uint32(m.Vers)
	e.Uint32(m.Prot)
	e.Uint32(m.Port)
}

// DecodeXDR implements xdr.Decodable.
func (m *Mapping) DecodeXDR(d *xdr.Decoder) {
	m.Prog, m.Vers, m.Prot, m.Port = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
}

// List is pmaplist, the DUMP result.
type List []Mapping

// EncodeXDR implements xdr.Encodable.
func (l *List) EncodeXDR(e *xdr.Encoder) {
	for i := range *l {
		e.Bool(true)
		(*l)[i].EncodeXDR(e)
	}
	e.Bool(false)
}

// DecodeXDR implements xdr.Decodable.
func (l *List) DecodeXDR(d *xdr.Decoder) {
	*l = (*l)[:0]
	for d.Bool() {
		if len(*l) >= MaxDump {
			d.SetErr(xdr.ErrTooLong)
			return
		}
		var m Mapping
		m.DecodeXDR(d)
		if d.Err() != nil {
			return
		}
		*l = append(*l, m)
	}
}

// CallArgs is call_args for CALLIT.
type CallArgs struct {
	Prog, Vers, Proc uint32
	Args             []byte
}

// EncodeXDR implements xdr.Encodable.
func (a *CallArgs) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(a.Prog)
	e.Uint32(a.Vers)
	e.Uint32(a.Proc)
	e.Opaque(a.Args)
}

// DecodeXDR implements xdr.Decodable.
func (a *CallArgs) DecodeXDR(d *xdr.Decoder) {
	a.Prog, a.Vers, a.Proc = d.Uint32(), d.Uint32(), d.Uint32()
	a.Args = d.Opaque(MaxCallitArgs)
}

// CallResult is call_result for CALLIT.
type CallResult struct {
	Port uint32
	Res  []byte
}

// EncodeXDR implements xdr.Encodable.
func (r *CallResult) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(r.Port)
	e.Opaque(r.Res)
}

// DecodeXDR implements xdr.Decodable.
func (r *CallResult) DecodeXDR(d *xdr.Decoder) {
	r.Port = d.Uint32()
	r.Res = d.Opaque(MaxCallitArgs)
}

type key struct{ prog, vers, prot uint32 }

// Table is the portmapper's database: the server's own mappings plus
// those registered by local programs with SET.
type Table struct {
	mu    sync.Mutex
	own   map[key]uint32
	other map[key]uint32
}

// NewTable returns a table holding the portmapper's own mappings for
// TCP and UDP on port.
func NewTable(port uint32) *Table {
	t := &Table{own: map[key]uint32{}, other: map[key]uint32{}}
	t.Add(Mapping{Prog, Vers, ProtoTCP, port})
	t.Add(Mapping{Prog, Vers, ProtoUDP, port})
	return t
}

// Add records one of the server's own mappings, replacing any earlier one.
func (t *Table) Add(m Mapping) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{m.Prog, m.Vers, m.Prot}
	delete(t.other, k)
	t.own[k] = m.Port
}

// Remove deletes one of the server's own mappings.
func (t *Table) Remove(prog, vers, prot uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.own, key{prog, vers, prot})
}

// Advertise adds every (program, version) registered on s, except the
// portmapper itself, as served on prot/port.
func (t *Table) Advertise(s *rpc.Server, prot, port uint32) {
	for _, pv := range s.Registered() {
		if pv[0] != Prog {
			t.Add(Mapping{pv[0], pv[1], prot, port})
		}
	}
}

// GetPort returns the port for prog/vers/prot. Like rpcbind, when that
// version is not registered it returns the port of the lowest registered
// version of prog on prot, so that the client learns the supported range
// from the server's PROG_MISMATCH; it returns 0 when prog is unknown on
// prot.
func (t *Table) GetPort(prog, vers, prot uint32) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{prog, vers, prot}
	if p, ok := t.own[k]; ok {
		return p
	}
	if p, ok := t.other[k]; ok {
		return p
	}
	port, best := uint32(0), uint64(1<<32)
	for _, m := range []map[key]uint32{t.own, t.other} {
		for k, p := range m {
			if k.prog == prog && k.prot == prot && uint64(k.vers) < best {
				port, best = p, uint64(k.vers)
			}
		}
	}
	return port
}

// Dump returns all mappings sorted by program, version, protocol.
func (t *Table) Dump() List {
	t.mu.Lock()
	l := make(List, 0, len(t.own)+len(t.other))
	for k, p := range t.own {
		l = append(l, Mapping{k.prog, k.vers, k.prot, p})
	}
	for k, p := range t.other {
		l = append(l, Mapping{k.prog, k.vers, k.prot, p})
	}
	t.mu.Unlock()
	slices.SortFunc(l, func(a, b Mapping) int {
		switch {
		case a.Prog != b.Prog:
			return cmp(a.Prog, b.Prog)
		case a.Vers != b.Vers:
			return cmp(a.Vers, b.Vers)
		}
		return cmp(a.Prot, b.Prot)
	})
	return l
}

func cmp(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// set implements remote SET: refused if any mapping exists for the key.
func (t *Table) set(m Mapping) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{m.Prog, m.Vers, m.Prot}
	if _, ok := t.own[k]; ok {
		return false
	}
	if _, ok := t.other[k]; ok {
		return false
	}
	if len(t.other) >= MaxDump {
		return false
	}
	t.other[k] = m.Port
	return true
}

// unset implements remote UNSET: prot and port are ignored.
func (t *Table) unset(prog, vers uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	found := false
	for k := range t.other {
		if k.prog == prog && k.vers == vers {
			delete(t.other, k)
			found = true
		}
	}
	return found
}

// Register adds the portmap program to s, answering from t.
func Register(s *rpc.Server, t *Table) error {
	return s.Register(rpc.Program{Name: "portmap", Prog: Prog, Low: Vers, High: Vers, Procs: t.procs()})
}

func (t *Table) procs() []rpc.Proc {
	mapping := func(f func(*rpc.Call, *Mapping, *xdr.Encoder)) rpc.ProcFunc {
		return func(_ context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			var m Mapping
			m.DecodeXDR(d)
			if d.Err() != nil {
				return rpc.Garbage(d.Err())
			}
			f(c, &m, e)
			return nil
		}
	}
	return []rpc.Proc{
		ProcNull: {Name: "NULL", Fn: func(context.Context, *rpc.Call, *xdr.Decoder, *xdr.Encoder) error { return nil }},
		ProcSet: {Name: "SET", Fn: mapping(func(c *rpc.Call, m *Mapping, e *xdr.Encoder) {
			e.Bool(c.Peer.Addr().IsLoopback() && t.set(*m))
		})},
		ProcUnset: {Name: "UNSET", Fn: mapping(func(c *rpc.Call, m *Mapping, e *xdr.Encoder) {
			e.Bool(c.Peer.Addr().IsLoopback() && t.unset(m.Prog, m.Vers))
		})},
		ProcGetPort: {Name: "GETPORT", Fn: mapping(func(c *rpc.Call, m *Mapping, e *xdr.Encoder) {
			e.Uint32(t.GetPort(m.Prog, m.Vers, m.Prot))
		})},
		ProcDump: {Name: "DUMP", Fn: func(_ context.Context, _ *rpc.Call, _ *xdr.Decoder, e *xdr.Encoder) error {
			l := t.Dump()
			l.EncodeXDR(e)
			return nil
		}},
		ProcCallit: {Name: "CALLIT", Fn: func(_ context.Context, c *rpc.Call, d *xdr.Decoder, _ *xdr.Encoder) error {
			var a CallArgs
			a.DecodeXDR(d)
			if d.Err() != nil {
				return rpc.Garbage(d.Err())
			}
			if c.Network == "udp" {
				return rpc.ErrNoReply
			}
			return rpc.ErrProcUnavail
		}},
	}
}
