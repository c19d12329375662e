package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

const testProg = 0x20000123

type rawArgs []byte

func (r rawArgs) EncodeXDR(e *xdr.Encoder) { e.Append(r) }

type opaqueRes struct{ b []byte }

func (o *opaqueRes) DecodeXDR(d *xdr.Decoder) { o.b = d.Opaque(1 << 20) }

type opaqueArg []byte

func (o opaqueArg) EncodeXDR(e *xdr.Encoder) { e.Opaque(o) }

type testEnv struct {
	srv      *Server
	addr     string
	udpAddr  string
	cur, top atomic.Int32
	released atomic.Int32
	done     chan error
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func startServer(t *testing.T, cfg func(*Server)) *testEnv {
	t.Helper()
	env := &testEnv{srv: &Server{Logger: quietLogger(t)}, done: make(chan error, 2)}
	if cfg != nil {
		cfg(env.srv)
	}
	echo := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		b := a.Opaque(1 << 20)
		if a.Err() != nil {
			return Garbage(a.Err())
		}
		r.Opaque(b)
		return nil
	}
	slow := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		ms := a.Uint32()
		tag := a.Uint32()
		if a.Err() != nil {
			return Garbage(a.Err())
		}
		n := env.cur.Add(1)
		for {
			t := env.top.Load()
			if n <= t || env.top.CompareAndSwap(t, n) {
				break
			}
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
		}
		env.cur.Add(-1)
		r.Uint32(tag)
		return nil
	}
	whoami := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		r.Uint32(uint32(c.Cred.Flavor))
		r.Uint32(c.Cred.UID)
		r.Uint32(c.Cred.GID)
		r.Uint32(uint32(len(c.Cred.GIDs)))
		for _, g := range c.Cred.GIDs {
			r.Uint32(g)
		}
		r.String(c.Cred.MachineName)
		r.String(c.Peer.Addr().String())
		r.String(c.Network)
		return nil
	}
	boom := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		var m map[string]int
		m["x"] = 1 // nil map write: a handler bug the server must survive
		return nil
	}
	ref := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		n := a.Uint32()
		if a.Err() != nil || n > 1<<20 {
			return ErrGarbageArgs
		}
		buf := bytes.Repeat([]byte{0xA5}, int(n))
		r.OpaqueRef(buf)
		c.AfterReply(func() { env.released.Add(1) })
		return nil
	}
	procs := []Proc{
		{Name: "NULL", Fn: func(context.Context, *Call, *xdr.Decoder, *xdr.Encoder) error { return nil }},
		{Name: "ECHO", Fn: echo},
		{Name: "SLOW", Fn: slow},
		{Name: "WHOAMI", Fn: whoami},
		{Name: "BOOM", Fn: boom},
		{Name: "REF", Fn: ref},
	}
	if err := env.srv.Register(Program{Name: "test", Prog: testProg, Low: 2, High: 3, Procs: procs}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Register(Program{Name: "strict", Prog: testProg + 1, Low: 1, High: 1, Procs: procs, RequireAuthSys: true, TCPOnly: true}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr, env.udpAddr = ln.Addr().String(), pc.LocalAddr().String()
	go func() { env.done <- env.srv.Serve(context.Background(), ln) }()
	go func() { env.done <- env.srv.ServePacket(context.Background(), pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 2 {
			if err := <-env.done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("serve returned %v", err)
			}
		}
	})
	return env
}

func dial(t *testing.T, network, addr string, opts ClientOptions) *Client {
	t.Helper()
	c, err := Dial(context.Background(), network, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAcceptErrors(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, "tcp", env.addr, ClientOptions{})
	ctx := ctxT(t)
	var ae *AcceptError
	if err := c.Call(ctx, 99999, 1, 0, nil, nil); !errors.As(err, &ae) || ae.Stat != ProgUnavail {
		t.Errorf("unknown program: got %v, want PROG_UNAVAIL", err)
	}
	err := c.Call(ctx, testProg, 7, 0, nil, nil)
	if !errors.As(err, &ae) || ae.Stat != ProgMismatch || ae.Low != 2 || ae.High != 3 {
		t.Errorf("wrong version: got %v, want PROG_MISMATCH 2..3", err)
	}
	if err := c.Call(ctx, testProg, 2, 77, nil, nil); !errors.As(err, &ae) || ae.Stat != ProcUnavail {
		t.Errorf("unknown procedure: got %v, want PROC_UNAVAIL", err)
	}
	// ECHO whose opaque claims 100 bytes but carries 4: truncated args.
	if err := c.Call(ctx, testProg, 2, 1, rawArgs{0, 0, 0, 100, 1, 2, 3, 4}, nil); !errors.As(err, &ae) || ae.Stat != GarbageArgs {
		t.Errorf("truncated args: got %v, want GARBAGE_ARGS", err)
	}
	if err := c.Call(ctx, testProg, 2, 4, nil, nil); !errors.As(err, &ae) || ae.Stat != SystemErr {
		t.Errorf("panicking handler: got %v, want SYSTEM_ERR", err)
	}
	// The connection survives all of the above.
	var res opaqueRes
	if err := c.Call(ctx, testProg, 3, 1, opaqueArg("hello"), &res); err != nil || string(res.b) != "hello" {
		t.Errorf("echo after errors: %q, %v", res.b, err)
	}
}

// rawCall builds a call message without record mark.
func rawCall(xid, rpcvers, prog, vers, proc uint32, cred OpaqueAuth, args []byte) []byte {
	e := xdr.NewEncoder(128)
	e.Uint32(xid)
	e.Uint32(0)
	e.Uint32(rpcvers)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
	cred.EncodeXDR(e)
	e.Uint32(0)
	e.Uint32(0)
	e.Append(args)
	return e.Bytes()
}

func mark(b []byte, last bool) []byte {
	h := uint32(len(b))
	if last {
		h |= 1 << 31
	}
	return append(binary.BigEndian.AppendUint32(nil, h), b...)
}

func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

func readReply(t *testing.T, nc net.Conn) (uint32, []byte, error) {
	t.Helper()
	bp, err := ReadRecord(nc, 1<<20)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	d := xdr.NewDecoder(append([]byte(nil), *bp...))
	PutBuffer(bp)
	xid, err := DecodeReply(d)
	return xid, d.Rest(), err
}

func TestRPCMismatchAndBadCred(t *testing.T) {
	env := startServer(t, nil)
	nc := rawConn(t, env.addr)
	nc.Write(mark(rawCall(1, 3, testProg, 2, 0, OpaqueAuth{}, nil), true))
	xid, _, err := readReply(t, nc)
	var re *RejectError
	if xid != 1 || !errors.As(err, &re) || re.Stat != RPCMismatch || re.Low != 2 || re.High != 2 {
		t.Errorf("rpcvers 3: xid %d err %v, want RPC_MISMATCH 2..2", xid, err)
	}

	gids := make([]uint32, 17)
	cred := SysCred(AuthSysParams{MachineName: "h", UID: 1, GID: 1, GIDs: gids})
	nc.Write(mark(rawCall(2, 2, testProg, 2, 3, cred, nil), true))
	if xid, _, err := readReply(t, nc); xid != 2 || !errors.As(err, &re) || re.Stat != AuthError || re.Auth != AuthBadCred {
		t.Errorf("17 gids: xid %d err %v, want AUTH_ERROR AUTH_BADCRED", xid, err)
	}
	long := SysCred(AuthSysParams{MachineName: string(bytes.Repeat([]byte("m"), 256))})
	nc.Write(mark(rawCall(3, 2, testProg, 2, 3, long, nil), true))
	if _, _, err := readReply(t, nc); !errors.As(err, &re) || re.Auth != AuthBadCred {
		t.Errorf("256-byte machine name: %v, want AUTH_BADCRED", err)
	}
	nc.Write(mark(rawCall(4, 2, testProg, 2, 3, OpaqueAuth{Flavor: AuthDH, Body: []byte{1, 2, 3, 4}}, nil), true))
	if _, _, err := readReply(t, nc); !errors.As(err, &re) || re.Auth != AuthBadCred {
		t.Errorf("AUTH_DH: %v, want AUTH_BADCRED", err)
	}
	// Credential body longer than 400 bytes.
	big := rawCall(5, 2, testProg, 2, 0, OpaqueAuth{Flavor: AuthSys, Body: make([]byte, 404)}, nil)
	nc.Write(mark(big, true))
	if _, _, err := readReply(t, nc); !errors.As(err, &re) || re.Auth != AuthBadCred {
		t.Errorf("404-byte credential: %v, want AUTH_BADCRED", err)
	}
	// Sixteen gids is the maximum and is accepted and delivered.
	g16 := make([]uint32, 16)
	for i := range g16 {
		g16[i] = uint32(1000 + i)
	}
	c := dial(t, "tcp", env.addr, ClientOptions{Cred: SysCred(AuthSysParams{MachineName: "box", UID: 42, GID: 43, GIDs: g16})})
	w := whoami(t, c, testProg, 2)
	if w.flavor != AuthSys || w.uid != 42 || w.gid != 43 || len(w.gids) != 16 || w.gids[15] != 1015 || w.machine != "box" {
		t.Errorf("AUTH_SYS with 16 gids: got %+v", w)
	}
}

type who struct {
	flavor                 Flavor
	uid, gid               uint32
	gids                   []uint32
	machine, peer, network string
}

func (w *who) DecodeXDR(d *xdr.Decoder) {
	w.flavor = Flavor(d.Uint32())
	w.uid, w.gid = d.Uint32(), d.Uint32()
	n := d.Count(16, 4)
	for range n {
		w.gids = append(w.gids, d.Uint32())
	}
	w.machine, w.peer, w.network = d.String(255), d.String(64), d.String(8)
}

func whoami(t *testing.T, c *Client, prog, vers uint32) who {
	t.Helper()
	var w who
	if err := c.Call(ctxT(t), prog, vers, 3, nil, &w); err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return w
}

func TestAuthNoneAndTooWeak(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, "tcp", env.addr, ClientOptions{})
	if w := whoami(t, c, testProg, 2); w.flavor != AuthNone || w.uid != Nobody || w.gid != Nobody {
		t.Errorf("AUTH_NONE identity: %+v, want nobody", w)
	}
	if err := c.Call(ctxT(t), testProg+1, 1, 0, nil, nil); err != nil {
		t.Errorf("NULL with AUTH_NONE on strict program: %v", err)
	}
	var re *RejectError
	if err := c.Call(ctxT(t), testProg+1, 1, 3, nil, nil); !errors.As(err, &re) || re.Stat != AuthError || re.Auth != AuthTooWeak {
		t.Errorf("AUTH_NONE on strict program: %v, want AUTH_TOOWEAK", err)
	}
}

func TestPeerAddress(t *testing.T) {
	env := startServer(t, nil)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		c := dial(t, "tcp", env.addr, ClientOptions{LocalAddr: ip})
		if w := whoami(t, c, testProg, 2); w.peer != ip || w.network != "tcp" {
			t.Errorf("bound to %s: handler saw %q over %q", ip, w.peer, w.network)
		}
	}
}

func TestUDP(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, "udp", env.udpAddr, ClientOptions{LocalAddr: "127.0.0.4"})
	if w := whoami(t, c, testProg, 2); w.peer != "127.0.0.4" || w.network != "udp" {
		t.Errorf("udp whoami: %+v", w)
	}
	var ae *AcceptError
	if err := c.Call(ctxT(t), testProg+1, 1, 0, nil, nil); !errors.As(err, &ae) || ae.Stat != ProgUnavail {
		t.Errorf("TCP-only program over UDP: %v, want PROG_UNAVAIL", err)
	}
	var ref opaqueRes
	if err := c.Call(ctxT(t), testProg, 2, 5, rawArgs{0, 0, 4, 0}, &ref); err != nil || len(ref.b) != 1024 || ref.b[1023] != 0xA5 {
		t.Errorf("referenced payload over UDP: len %d err %v", len(ref.b), err)
	}
}

func TestOversizeRecordClosesConnection(t *testing.T) {
	env := startServer(t, func(s *Server) { s.MaxRecord = 4096 })
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"one huge header", binary.BigEndian.AppendUint32(nil, 1<<31|1<<30)},
		{"fragments adding up", append(mark(make([]byte, 3000), false), mark(make([]byte, 3000), true)...)},
	} {
		nc := rawConn(t, env.addr)
		nc.Write(tc.data)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(nc, make([]byte, 4))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: read %d bytes, err %v; want connection closed", tc.name, n, err)
		}
	}
	// A record at the limit is fine.
	c := dial(t, "tcp", env.addr, ClientOptions{})
	var res opaqueRes
	if err := c.Call(ctxT(t), testProg, 2, 1, opaqueArg(make([]byte, 3000)), &res); err != nil || len(res.b) != 3000 {
		t.Errorf("3000-byte echo under a 4096 limit: %v", err)
	}
}

func TestFragmentedRecord(t *testing.T) {
	env := startServer(t, nil)
	nc := rawConn(t, env.addr)
	msg := rawCall(77, 2, testProg, 2, 1, OpaqueAuth{}, binary.BigEndian.AppendUint32(nil, 5))
	msg = append(msg, 'a', 'b', 'c', 'd', 'e', 0, 0, 0)
	var stream []byte
	stream = append(stream, mark(msg[:5], false)...)
	stream = append(stream, mark(nil, false)...)
	stream = append(stream, mark(msg[5:33], false)...)
	stream = append(stream, mark(msg[33:], true)...)
	// Dribble the bytes so fragments also straddle TCP segments.
	for i := 0; i < len(stream); i += 7 {
		nc.Write(stream[i:min(i+7, len(stream))])
		time.Sleep(time.Millisecond)
	}
	xid, rest, err := readReply(t, nc)
	if err != nil || xid != 77 {
		t.Fatalf("fragmented call: xid %d err %v", xid, err)
	}
	d := xdr.NewDecoder(rest)
	if got := d.Opaque(100); string(got) != "abcde" {
		t.Errorf("fragmented echo: got %q", got)
	}
}

func TestConcurrentCallsOneConnection(t *testing.T) {
	env := startServer(t, nil)
	nc := rawConn(t, env.addr)
	const n = 64
	var stream []byte
	for i := range n {
		args := binary.BigEndian.AppendUint32(nil, uint32(5+(n-i)%16*4)) // later calls in a window finish first
		args = binary.BigEndian.AppendUint32(args, uint32(i*1000))
		stream = append(stream, mark(rawCall(uint32(100+i), 2, testProg, 2, 2, OpaqueAuth{}, args), true)...)
	}
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	var order []uint32
	for range n {
		xid, rest, err := readReply(t, nc)
		if err != nil {
			t.Fatalf("reply %d: %v", xid, err)
		}
		tag := xdr.NewDecoder(rest).Uint32()
		if tag != (xid-100)*1000 {
			t.Errorf("xid %d carried result %d, want %d", xid, tag, (xid-100)*1000)
		}
		if seen[xid] {
			t.Errorf("xid %d answered twice", xid)
		}
		seen[xid] = true
		order = append(order, xid)
	}
	if len(seen) != n {
		t.Errorf("got %d distinct replies, want %d", len(seen), n)
	}
	inOrder := true
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			inOrder = false
		}
	}
	if inOrder {
		t.Errorf("replies came back in call order %v: calls were not run concurrently", order)
	}
	if top := env.top.Load(); top != DefaultMaxInFlight {
		t.Errorf("peak concurrency on one connection %d, want exactly %d", top, DefaultMaxInFlight)
	}
}

func TestClientPipelining(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, "tcp", env.addr, ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := bytes.Repeat([]byte{byte(i)}, 100+i*37)
			var res opaqueRes
			if err := c.Call(ctxT(t), testProg, 2, 1, opaqueArg(payload), &res); err != nil {
				errs <- err
			} else if !bytes.Equal(res.b, payload) {
				errs <- errors.New("echo mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReferencedPayloadReleased(t *testing.T) {
	env := startServer(t, nil)
	c := dial(t, "tcp", env.addr, ClientOptions{})
	var res opaqueRes
	if err := c.Call(ctxT(t), testProg, 2, 5, rawArgs{0, 1, 0, 1}, &res); err != nil || len(res.b) != 65537 || res.b[65536] != 0xA5 {
		t.Fatalf("ref payload: len %d err %v", len(res.b), err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for env.released.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if env.released.Load() != 1 {
		t.Errorf("AfterReply ran %d times, want 1", env.released.Load())
	}
}

func TestTimeouts(t *testing.T) {
	env := startServer(t, func(s *Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.ReadTimeout = 300 * time.Millisecond
	})
	start := time.Now()
	idle := rawConn(t, env.addr)
	if _, err := io.ReadFull(idle, make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle connection: %v, want closed by server", err)
	}
	partial := rawConn(t, env.addr)
	partial.Write(binary.BigEndian.AppendUint32(nil, 1<<31|100))
	if _, err := io.ReadFull(partial, make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stalled record: %v, want closed by server", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("timeouts took %v", el)
	}
	// A call running longer than the idle timeout keeps its connection.
	c := dial(t, "tcp", env.addr, ClientOptions{})
	if err := c.Call(ctxT(t), testProg, 2, 2, rawArgs{0, 0, 3, 0xE8, 0, 0, 0, 9}, nil); err != nil {
		t.Errorf("1 s call with a 300 ms idle timeout: %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	srv := &Server{Logger: quietLogger(t)}
	var started = make(chan struct{})
	srv.Register(Program{Prog: testProg, Low: 1, High: 1, Procs: []Proc{{}, {Name: "SLOW", Fn: func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Uint32(7)
		return nil
	}}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	c := dial(t, "tcp", ln.Addr().String(), ClientOptions{})
	got := make(chan error, 1)
	var res struct{ v uint32 }
	go func() {
		got <- c.Call(ctxT(t), testProg, 1, 1, nil, decodeFunc(func(d *xdr.Decoder) { res.v = d.Uint32() }))
	}()
	<-started
	if err := srv.Shutdown(ctxT(t)); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-got; err != nil || res.v != 7 {
		t.Errorf("in-flight call during shutdown: %v (result %d), want completed", err, res.v)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("listener still accepting after Shutdown")
	}
	if err := c.Call(ctxT(t), testProg, 1, 0, nil, nil); err == nil {
		t.Errorf("call on a shut-down connection succeeded")
	}
}

func TestServeContextCancel(t *testing.T) {
	srv := &Server{Logger: quietLogger(t)}
	srv.Register(Program{Prog: testProg, Low: 1, High: 1, Procs: []Proc{{Fn: func(context.Context, *Call, *xdr.Decoder, *xdr.Encoder) error { return nil }}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	c := dial(t, "tcp", ln.Addr().String(), ClientOptions{})
	if err := c.Call(ctxT(t), testProg, 1, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if err := c.Call(ctxT(t), testProg, 1, 0, nil, nil); err == nil {
		t.Errorf("connection still served after cancel")
	}
}

type decodeFunc func(d *xdr.Decoder)

func (f decodeFunc) DecodeXDR(d *xdr.Decoder) { f(d) }

// A lone call is run on the reader; calls arriving meanwhile must still
// be answered, each once and intact, and run concurrently once read.
func TestLoneCallThenPipelined(t *testing.T) {
	env := startServer(t, nil)
	nc := rawConn(t, env.addr)
	call := func(xid, ms uint32) []byte {
		args := binary.BigEndian.AppendUint32(nil, ms)
		args = binary.BigEndian.AppendUint32(args, xid*10)
		return mark(rawCall(xid, 2, testProg, 2, 2, OpaqueAuth{}, args), true)
	}
	if _, err := nc.Write(call(1, 100)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the lone call is now running
	var burst []byte
	for i := range uint32(8) {
		burst = append(burst, call(2+i, 50)...)
	}
	if _, err := nc.Write(burst); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for range 9 {
		xid, rest, err := readReply(t, nc)
		if err != nil {
			t.Fatalf("reply %d: %v", xid, err)
		}
		if got := xdr.NewDecoder(rest).Uint32(); got != xid*10 || seen[xid] {
			t.Errorf("xid %d: result %d (seen before: %v)", xid, got, seen[xid])
		}
		seen[xid] = true
	}
	if top := env.top.Load(); top < 2 {
		t.Errorf("peak concurrency %d: the pipelined calls ran one at a time", top)
	}
}
