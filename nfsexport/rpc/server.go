package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// ProcFunc handles one procedure. It decodes its arguments from args and
// appends its results to res. Slices decoded from args alias the request
// buffer and are valid only until the ProcFunc returns.
//
// Returning nil sends SUCCESS with res. Returning an *AcceptError (for
// example ErrGarbageArgs or Garbage(err)) or *RejectError (Denied) sends
// that status and discards res; ErrNoReply sends nothing; any other error
// is logged and answered with SYSTEM_ERR.
type ProcFunc func(ctx context.Context, call *Call, args *xdr.Decoder, res *xdr.Encoder) error

// Proc is one procedure of a program.
type Proc struct {
	Name string
	Fn   ProcFunc
}

// Program is a registered RPC program covering versions Low..High.
type Program struct {
	Name      string
	Prog      uint32
	Low, High uint32
	// Procs is indexed by procedure number; missing or nil entries
	// answer PROC_UNAVAIL.
	Procs []Proc
	// RequireAuthSys answers AUTH_TOOWEAK to calls of procedures other
	// than 0 (NULL) that do not carry AUTH_SYS.
	RequireAuthSys bool
	// TCPOnly answers PROG_UNAVAIL over UDP.
	TCPOnly bool
}

// Call describes one incoming call to a ProcFunc.
type Call struct {
	XID, Prog, Vers, Proc uint32
	Cred                  Credential
	Verf                  OpaqueAuth // aliases the request; valid during the call
	Network               string     // "tcp" or "udp"
	// Peer is the caller's address: vmroot identifies client hosts by it.
	Peer  netip.AddrPort
	Local netip.AddrPort

	done []func()
}

// AfterReply registers f to run once the reply has been written (or
// abandoned). Handlers use it to release buffers referenced with
// xdr.Encoder.OpaqueRef.
func (c *Call) AfterReply(f func()) { c.done = append(c.done, f) }

// Server defaults.
const (
	DefaultMaxInFlight  = 16
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxConns     = 4096
	maxUDPReply         = 65507
)

// ErrServerClosed is returned by Serve and ServePacket after Shutdown or
// Close.
var ErrServerClosed = errors.New("rpc: server closed")

// Server dispatches calls to registered programs. Configure the exported
// fields before the first Serve; zero values select the defaults.
//
// Per TCP connection at most MaxInFlight calls are processed at once
// (reading stops until a slot frees), so a connection holds at most
// MaxInFlight request records of MaxRecord bytes and their replies, plus
// a 64 KiB read buffer. A call arriving alone is handled on the reading
// goroutine, which writes its reply itself; otherwise calls run
// concurrently and one writer goroutine per connection sends their
// replies, several per writev when they queue up. On Linux a busy TCP
// connection's socket leaves the netpoller and is read and written with
// blocking system calls until its client pauses (see sock).
type Server struct {
	Logger       *slog.Logger
	MaxRecord    int           // largest TCP record accepted (DefaultMaxRecord)
	MaxInFlight  int           // concurrent calls per connection (DefaultMaxInFlight)
	IdleTimeout  time.Duration // close a connection silent this long with nothing in flight
	ReadTimeout  time.Duration // a started record must complete within this
	WriteTimeout time.Duration // a reply write must complete within this
	MaxConns     int           // further connections are closed at once

	mu       sync.Mutex
	progs    map[uint32][]*Program
	lns      map[io.Closer]struct{}
	conns    map[*conn]struct{}
	closing  bool
	hardCtx  context.Context // cancelled by Close or an expired Shutdown
	hardStop context.CancelFunc
	active   sync.WaitGroup // connections and packet loops
}

func (s *Server) init() {
	if s.progs == nil {
		s.progs = make(map[uint32][]*Program)
		s.lns = make(map[io.Closer]struct{})
		s.conns = make(map[*conn]struct{})
		s.hardCtx, s.hardStop = context.WithCancel(context.Background())
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Register adds a program. Version ranges of one program must not overlap.
func (s *Server) Register(p Program) error {
	if p.Low > p.High {
		return fmt.Errorf("rpc: program %d: bad version range %d..%d", p.Prog, p.Low, p.High)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	for _, q := range s.progs[p.Prog] {
		if p.Low <= q.High && q.Low <= p.High {
			return fmt.Errorf("rpc: program %d versions %d..%d overlap %d..%d", p.Prog, p.Low, p.High, q.Low, q.High)
		}
	}
	s.progs[p.Prog] = append(s.progs[p.Prog], &p)
	return nil
}

// Registered returns the registered (program, version) pairs, sorted.
func (s *Server) Registered() [][2]uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][2]uint32
	for prog, ps := range s.progs {
		for _, p := range ps {
			for v := p.Low; ; v++ {
				out = append(out, [2]uint32{prog, v})
				if v == p.High {
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// lookup finds the program for prog/vers; when only the version is
// missing it returns the supported range.
func (s *Server) lookup(prog, vers uint32) (p *Program, found bool, low, high uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.progs[prog]
	if len(ps) == 0 {
		return nil, false, 0, 0
	}
	low, high = ps[0].Low, ps[0].High
	for _, q := range ps {
		if vers >= q.Low && vers <= q.High {
			return q, true, 0, 0
		}
		low, high = min(low, q.Low), max(high, q.High)
	}
	return nil, true, low, high
}

// request carries one call from the reader through the handler to the
// writer; requests are pooled.
type request struct {
	rec  *[]byte
	enc  xdr.Encoder
	call Call
}

var requestPool = sync.Pool{New: func() any {
	r := &request{}
	r.enc = *xdr.NewEncoder(8 << 10)
	return r
}}

func getRequest() *request { return requestPool.Get().(*request) }

func (r *request) release() {
	for _, f := range r.call.done {
		f()
	}
	clear(r.call.done)
	done := r.call.done[:0]
	r.call = Call{done: done}
	if r.rec != nil {
		PutBuffer(r.rec)
		r.rec = nil
	}
	r.enc.Reset()
	if cap(r.enc.Bytes()) > 1<<20 {
		r.enc = *xdr.NewEncoder(8 << 10)
	}
	requestPool.Put(r)
}

func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handle decodes the call in r.rec and encodes the reply into r.enc
// (after a 4-byte record-mark placeholder when marked). It reports
// whether a reply should be sent.
func (s *Server) handle(ctx context.Context, r *request, marked bool) bool {
	var d xdr.Decoder
	d.Reset(*r.rec)
	e := &r.enc
	e.Reset()
	if marked {
		e.Uint32(0)
	}
	c := &r.call
	c.XID = d.Uint32()
	mtype := d.Uint32()
	if d.Err() != nil {
		s.logger().Warn("rpc: dropping short message", "host", c.Peer.Addr().String(), "peer", c.Peer, "len", len(*r.rec))
		return false
	}
	if mtype != msgCall {
		s.logger().Warn("rpc: dropping non-call message", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "type", mtype)
		return false
	}
	e.Uint32(c.XID)
	e.Uint32(msgReply)
	base := e.Mark()

	if v := d.Uint32(); v != Version {
		s.logger().Warn("rpc: RPC version mismatch", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "rpcvers", v)
		encodeDenied(e, &RejectError{Stat: RPCMismatch, Low: Version, High: Version})
		return true
	}
	c.Prog, c.Vers, c.Proc = d.Uint32(), d.Uint32(), d.Uint32()
	var cred OpaqueAuth
	cred.DecodeXDR(&d)
	if d.Err() != nil {
		s.logger().Warn("rpc: bad credential", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "err", d.Err())
		encodeDenied(e, &RejectError{Stat: AuthError, Auth: AuthBadCred})
		return true
	}
	c.Verf.DecodeXDR(&d)
	if d.Err() != nil {
		s.logger().Warn("rpc: bad verifier", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "err", d.Err())
		encodeDenied(e, &RejectError{Stat: AuthError, Auth: AuthBadVerf})
		return true
	}
	c.Cred.Flavor = cred.Flavor
	switch cred.Flavor {
	case AuthSys:
		if err := decodeAuthSys(cred.Body, &c.Cred); err != nil {
			s.logger().Warn("rpc: bad AUTH_SYS credential", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "err", err)
			encodeDenied(e, &RejectError{Stat: AuthError, Auth: AuthBadCred})
			return true
		}
	case AuthNone:
		c.Cred.UID, c.Cred.GID = Nobody, Nobody
	default:
		s.logger().Warn("rpc: unsupported auth flavor", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "flavor", cred.Flavor)
		encodeDenied(e, &RejectError{Stat: AuthError, Auth: AuthBadCred})
		return true
	}

	p, found, low, high := s.lookup(c.Prog, c.Vers)
	var fn ProcFunc
	var name string
	var err error
	switch {
	case !found || (p != nil && p.TCPOnly && c.Network == "udp"):
		err = &AcceptError{Stat: ProgUnavail}
	case p == nil:
		err = &AcceptError{Stat: ProgMismatch, Low: low, High: high}
	case int64(c.Proc) >= int64(len(p.Procs)) || p.Procs[c.Proc].Fn == nil:
		err = ErrProcUnavail
	case p.RequireAuthSys && c.Proc != 0 && c.Cred.Flavor != AuthSys:
		err = Denied(AuthTooWeak)
	default:
		fn, name = p.Procs[c.Proc].Fn, p.Procs[c.Proc].Name
	}
	if fn != nil {
		e.Uint32(msgAccepted)
		e.Uint32(uint32(AuthNone))
		e.Uint32(0)
		e.Uint32(uint32(Success))
		err = s.invoke(ctx, fn, c, &d, e)
	}
	if err == nil {
		return true
	}
	if errors.Is(err, ErrNoReply) {
		return false
	}
	e.Truncate(base)
	var ae *AcceptError
	var re *RejectError
	switch {
	case errors.As(err, &ae):
		if ae.Stat != ProgUnavail && ae.Stat != ProgMismatch && ae.Stat != ProcUnavail || ae.Err != nil {
			s.logger().Warn("rpc: call failed", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "prog", c.Prog, "vers", c.Vers, "proc", c.Proc, "name", name, "err", err)
		} else {
			s.logger().Debug("rpc: call refused", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "prog", c.Prog, "vers", c.Vers, "proc", c.Proc, "err", err)
		}
		encodeAccepted(e, ae)
	case errors.As(err, &re):
		s.logger().Warn("rpc: call denied", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "prog", c.Prog, "proc", c.Proc, "name", name, "err", err)
		encodeDenied(e, re)
	default:
		s.logger().Error("rpc: handler error", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "prog", c.Prog, "proc", c.Proc, "name", name, "err", err)
		encodeAccepted(e, ErrSystem)
	}
	return true
}

func (s *Server) invoke(ctx context.Context, fn ProcFunc, c *Call, d *xdr.Decoder, e *xdr.Encoder) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("rpc: handler panic", "host", c.Peer.Addr().String(), "peer", c.Peer, "xid", c.XID, "prog", c.Prog, "proc", c.Proc, "panic", v, "stack", string(debug.Stack()))
			err = ErrSystem
		}
	}()
	return fn(ctx, c, d, e)
}

func encodeAccepted(e *xdr.Encoder, ae *AcceptError) {
	e.Uint32(msgAccepted)
	e.Uint32(uint32(AuthNone))
	e.Uint32(0)
	e.Uint32(uint32(ae.Stat))
	if ae.Stat == ProgMismatch {
		e.Uint32(ae.Low)
		e.Uint32(ae.High)
	}
}

func encodeDenied(e *xdr.Encoder, re *RejectError) {
	e.Uint32(msgDenied)
	e.Uint32(uint32(re.Stat))
	if re.Stat == RPCMismatch {
		e.Uint32(re.Low)
		e.Uint32(re.High)
	} else {
		e.Uint32(uint32(re.Auth))
	}
}

// track registers a listener or packet conn; it fails once closing.
func (s *Server) track(l io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closing {
		return false
	}
	s.lns[l] = struct{}{}
	s.active.Add(1)
	return true
}

func (s *Server) untrack(l io.Closer) {
	s.mu.Lock()
	delete(s.lns, l)
	s.mu.Unlock()
	s.active.Done()
}

// Serve accepts TCP connections on ln until ln fails, Shutdown or Close
// is called, or ctx is cancelled. Cancelling ctx stops accepting, lets
// calls in flight on ln's connections finish and their replies be
// written, closes those connections and returns ErrServerClosed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.track(ln) {
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var mine sync.WaitGroup
	var mineMu sync.Mutex
	mineConns := map[*conn]struct{}{}
	stopWatch := context.AfterFunc(ctx, func() {
		ln.Close()
		mineMu.Lock()
		for c := range mineConns {
			c.stop()
		}
		mineMu.Unlock()
	})
	defer stopWatch()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				mine.Wait()
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("rpc: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			mine.Wait()
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			continue
		}
		mineMu.Lock()
		mineConns[c] = struct{}{}
		mineMu.Unlock()
		if ctx.Err() != nil {
			c.stop()
		}
		mine.Add(1)
		go func() {
			defer mine.Done()
			c.serve()
			mineMu.Lock()
			delete(mineConns, c)
			mineMu.Unlock()
		}()
	}
}

func isTemporary(err error) bool {
	// EMFILE, ENFILE, ECONNABORTED and friends: keep serving.
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops all listeners, lets calls in flight finish and their
// replies be written, then closes every connection. If ctx ends first,
// remaining connections are closed at once and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.closing = true
	for l := range s.lns {
		l.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes all listeners and connections immediately, cancelling the
// contexts of calls in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	s.closing = true
	s.hardStop()
	for l := range s.lns {
		l.Close()
	}
	for c := range s.conns {
		c.closeNow()
	}
	s.mu.Unlock()
	return nil
}

// conn is one TCP connection.
type conn struct {
	s        *Server
	nc       net.Conn
	peer     netip.AddrPort
	local    netip.AddrPort
	ctx      context.Context
	cancel   context.CancelFunc
	slots    chan struct{}
	out      chan *request
	inflight sync.WaitGroup
	busy     atomic.Int32
	stopping atomic.Bool
	broken   atomic.Bool // a write failed: later replies are dropped
	bufs     [][]byte    // writeBatch's iovecs, reused
	one      [1]*request // runInline's batch
	stopCh   chan struct{}
	stopOnce sync.Once
	sk       *sock // nc, or its socket off the netpoller: all I/O goes here
}

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	peer := addrPort(nc.RemoteAddr())
	if s.closing {
		nc.Close()
		return nil
	}
	if len(s.conns) >= orDefault(s.MaxConns, DefaultMaxConns) {
		s.logger().Warn("rpc: too many connections; closing", "host", hostOf(peer), "peer", peer)
		nc.Close()
		return nil
	}
	n := orDefault(s.MaxInFlight, DefaultMaxInFlight)
	c := &conn{
		s: s, nc: nc, peer: peer, local: addrPort(nc.LocalAddr()),
		slots: make(chan struct{}, n), out: make(chan *request, n),
		stopCh: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	c.sk = newSock(nc, orDefault(s.WriteTimeout, DefaultWriteTimeout))
	s.conns[c] = struct{}{}
	s.active.Add(1)
	return c
}

// stop asks the connection to read no further calls.
func (c *conn) stop() {
	c.stopOnce.Do(func() {
		c.stopping.Store(true)
		close(c.stopCh)
		c.sk.stop()
	})
}

// closeNow closes the connection from any goroutine.
func (c *conn) closeNow() { c.sk.closeNow() }

func (c *conn) serve() {
	s := c.s
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.active.Done()
	}()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	writerDone := make(chan struct{})
	go c.writer(writerDone)
	err := c.readLoop()
	if err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, syscall.ECONNRESET) {
			lvl = slog.LevelDebug // clients commonly reset instead of closing
		}
		s.logger().Log(context.Background(), lvl, "rpc: closing connection", "host", hostOf(c.peer), "peer", c.peer, "err", err)
	}
	c.inflight.Wait()
	close(c.out)
	<-writerDone
	c.cancel()
	c.sk.closeAll()
}

func (c *conn) readLoop() error {
	s := c.s
	br := bufio.NewReaderSize(c.sk, 64<<10)
	maxRec := orDefault(s.MaxRecord, DefaultMaxRecord)
	idle := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	readTO := orDefault(s.ReadTimeout, DefaultReadTimeout)
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.stopCh:
			return nil
		}
		if c.stopping.Load() {
			<-c.slots
			return nil
		}
		// Wait for the next record; idle only counts with nothing in
		// flight. Deadlines are only touched when the socket will be
		// read: pipelined records are often already buffered.
		for br.Buffered() == 0 {
			c.sk.setReadDeadline(time.Now().Add(idle))
			if c.stopping.Load() {
				<-c.slots
				return nil
			}
			_, err := br.Peek(1)
			if err == nil {
				break
			}
			<-c.slots
			if c.stopping.Load() || err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if c.busy.Load() > 0 {
					c.slots <- struct{}{}
					continue
				}
				return fmt.Errorf("idle for %v", idle)
			}
			return err
		}
		if !recordBuffered(br) {
			c.sk.setReadDeadline(time.Now().Add(readTO))
		}
		rec, err := ReadRecord(br, maxRec)
		if err != nil {
			<-c.slots
			if c.stopping.Load() {
				return nil
			}
			return err
		}
		r := getRequest()
		r.rec = rec
		r.call.Network = "tcp"
		r.call.Peer, r.call.Local = c.peer, c.local
		// A lone call (nothing in flight, nothing pipelined behind it) is
		// handled here and its reply written directly: the two goroutine
		// handoffs cost more than most calls. With nothing in flight the
		// writer is idle, and it stays so until this loop reads again.
		inline := c.busy.Load() == 0 && br.Buffered() == 0
		c.busy.Add(1)
		c.inflight.Add(1)
		if inline {
			c.runInline(r)
		} else {
			go c.run(r)
		}
	}
}

// runInline handles r on the reader goroutine and writes its reply
// itself; see readLoop for why no other writer can be active.
func (c *conn) runInline(r *request) {
	defer c.inflight.Done()
	reply := c.s.handle(c.ctx, r, true)
	PutBuffer(r.rec)
	r.rec = nil
	if reply && !c.broken.Load() {
		c.one[0] = r
		c.writeBatch(c.one[:])
		c.one[0] = nil
	}
	r.release()
	c.busy.Add(-1)
	<-c.slots
}

// recordBuffered reports whether a complete single-fragment record is
// already in br.
func recordBuffered(br *bufio.Reader) bool {
	if br.Buffered() < 4 {
		return false // Peek would read the socket
	}
	h, err := br.Peek(4)
	if err != nil || h[0]&0x80 == 0 {
		return false
	}
	n := int(binary.BigEndian.Uint32(h) &^ lastFragment)
	return br.Buffered() >= 4+n
}

func (c *conn) run(r *request) {
	defer c.inflight.Done()
	reply := c.s.handle(c.ctx, r, true)
	PutBuffer(r.rec)
	r.rec = nil
	if !reply {
		r.release()
		c.busy.Add(-1)
		<-c.slots
		return
	}
	c.out <- r // never blocks: capacity equals the slot count
}

// writer sends replies, batching those already queued into one writev.
func (c *conn) writer(done chan struct{}) {
	defer close(done)
	var batch []*request
	for r := range c.out {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < cap(c.out) {
			select {
			case r, ok := <-c.out:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if !c.broken.Load() {
			c.writeBatch(batch)
		}
		for _, r := range batch {
			r.release()
			c.busy.Add(-1)
			<-c.slots
		}
		clear(batch)
	}
}

// writeBatch sends the replies of batch in one writev. Only one
// goroutine writes at a time: the writer, or the reader when idle.
func (c *conn) writeBatch(batch []*request) {
	s := c.s
	bufs := c.bufs[:0]
	for _, r := range batch {
		hdr := r.enc.Bytes()[:4]
		putRecordMark(hdr, r.enc.Len()-4)
		bufs = r.enc.Buffers(bufs)
	}
	if err := c.sk.writeBuffers(bufs); err != nil {
		c.broken.Store(true)
		if !errors.Is(err, net.ErrClosed) {
			s.logger().Warn("rpc: write failed; closing connection", "host", hostOf(c.peer), "peer", c.peer, "err", err)
		}
		c.cancel()
		c.closeNow()
	}
	clear(bufs)
	c.bufs = bufs[:0]
}

// ServePacket answers calls arriving as UDP datagrams on pc until pc
// fails, Shutdown or Close is called, or ctx is cancelled. Calls are
// handled one at a time per ServePacket; it is meant for small programs
// such as portmap and MOUNT.
func (s *Server) ServePacket(ctx context.Context, pc net.PacketConn) error {
	if !s.track(pc) {
		return ErrServerClosed
	}
	defer s.untrack(pc)
	stopWatch := context.AfterFunc(ctx, func() { pc.Close() })
	defer stopWatch()
	local := addrPort(pc.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				continue
			}
			return err
		}
		r := getRequest()
		rec := GetBuffer(n)
		*rec = append(*rec, buf[:n]...)
		r.rec = rec
		r.call.Network = "udp"
		r.call.Peer, r.call.Local = addrPort(from), local
		if s.handle(s.hardCtx, r, false) {
			if r.enc.Len() > maxUDPReply {
				s.logger().Warn("rpc: UDP reply too large", "host", r.call.Peer.Addr().String(), "peer", r.call.Peer, "xid", r.call.XID, "len", r.enc.Len())
				r.enc.Truncate(8)
				encodeAccepted(&r.enc, ErrSystem)
			}
			var out []byte
			if r.enc.HasRefs() {
				for _, b := range r.enc.Buffers(nil) {
					out = append(out, b...)
				}
			} else {
				out = r.enc.Bytes()
			}
			if _, err := pc.WriteTo(out, from); err != nil {
				s.logger().Warn("rpc: UDP write failed", "host", r.call.Peer.Addr().String(), "peer", r.call.Peer, "err", err)
			}
		}
		r.release()
	}
}

// hostOf is the address part of a peer, logged as "host" on every line.
func hostOf(a any) string {
	switch v := a.(type) {
	case netip.AddrPort:
		return v.Addr().String()
	case net.Addr:
		return addrPort(v).Addr().String()
	}
	return fmt.Sprint(a)
}
