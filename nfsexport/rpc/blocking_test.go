package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// waitFor polls cond until it holds; it fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("still not %s after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// rawConns counts the connections whose socket is off the netpoller.
func (s *Server) rawConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.sk.fdMu.Lock()
		if c.sk.fd >= 0 {
			n++
		}
		c.sk.fdMu.Unlock()
	}
	return n
}

func setRawWait(t *testing.T, d time.Duration) {
	old := rawWait
	rawWait = d
	t.Cleanup(func() { rawWait = old })
}

// A connection that is busy alone leaves the netpoller (raw socket);
// once more than rawCrowd connections are open, busy ones stay with it.
func TestRawSocketWhileBusy(t *testing.T) {
	if !rawSockets {
		t.Skip("raw sockets are Linux only")
	}
	setRawWait(t, time.Hour) // before startServer: restored after its shutdown
	env := startServer(t, nil)
	var clients []*Client
	for i := range 4 {
		c := dial(t, "tcp", env.addr, ClientOptions{})
		clients = append(clients, c)
		for range 2 {
			echo(t, c)
		}
		if i == 0 {
			if n := env.srv.rawConns(); n != 1 {
				t.Errorf("a lone busy connection: %d off the netpoller, want 1", n)
			}
		}
	}
	if n := env.srv.rawConns(); n != 1 {
		t.Errorf("%d of 4 busy connections off the netpoller, want only the first", n)
	}
	for _, c := range clients {
		c.Close()
	}
	waitFor(t, "closed", func() bool { return env.srv.connCount() == 0 })
	waitFor(t, "uncounted", func() bool { return tcpConns.Load() == 0 })
}

// A raw connection whose client pauses goes back to the netpoller, and
// its calls are answered throughout, raw or not.
func TestRawSocketPause(t *testing.T) {
	if !rawSockets {
		t.Skip("raw sockets are Linux only")
	}
	setRawWait(t, time.Millisecond)
	env := startServer(t, nil)
	c := dial(t, "tcp", env.addr, ClientOptions{})
	for range 3 {
		for range 5 {
			echo(t, c)
		}
		waitFor(t, "back with the netpoller", func() bool { return env.srv.rawConns() == 0 })
	}
}

func echo(t *testing.T, c *Client) {
	t.Helper()
	var res opaqueRes
	if err := c.Call(ctxT(t), testProg, 2, 1, opaqueArg("ping"), &res); err != nil || string(res.b) != "ping" {
		t.Fatalf("echo: %q, %v", res.b, err)
	}
}

// A client that stops reading while its replies fill the socket buffers
// is cut off after WriteTimeout, even though the writes wait in the
// kernel (raw socket) rather than in the netpoller.
func TestBlockingWriteTimeout(t *testing.T) {
	env := startServer(t, func(s *Server) { s.WriteTimeout = 300 * time.Millisecond })
	nc := rawConn(t, env.addr)
	call := func(xid uint32, n uint32) []byte {
		return mark(rawCall(xid, 2, testProg, 2, 5, OpaqueAuth{}, binary.BigEndian.AppendUint32(nil, n)), true)
	}
	// One lone call first, so that the connection leaves the netpoller.
	if _, err := nc.Write(call(1, 16)); err != nil {
		t.Fatal(err)
	}
	if xid, _, err := readReply(t, nc); xid != 1 || err != nil {
		t.Fatalf("reply %d: %v", xid, err)
	}
	// 64 MiB of replies, never read.
	go func() {
		for i := range uint32(64) {
			if _, err := nc.Write(call(2+i, 1<<20)); err != nil {
				return
			}
		}
	}()
	waitFor(t, "closed", func() bool { return env.srv.connCount() == 0 })
}

// Shutdown and Close reach a reader waiting in the kernel for the next
// call on a raw socket.
func TestBlockingStopAndClose(t *testing.T) {
	for _, hard := range []bool{false, true} {
		srv := &Server{Logger: quietLogger(t)}
		srv.Register(Program{Prog: testProg, Low: 1, High: 1, Procs: []Proc{{Name: "NULL", Fn: func(context.Context, *Call, *xdr.Decoder, *xdr.Encoder) error { return nil }}}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background(), ln) }()
		nc := rawConn(t, ln.Addr().String())
		for xid := range uint32(3) {
			if _, err := nc.Write(mark(rawCall(xid, 2, testProg, 1, 0, OpaqueAuth{}, nil), true)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readReply(t, nc); err != nil {
				t.Fatal(err)
			}
		}
		// The reader now waits for a fourth call, in the kernel on Linux.
		if hard {
			srv.Close()
		} else if err := srv.Shutdown(ctxT(t)); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("hard=%v: connection still open after the server stopped: %v", hard, err)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.Logf("hard=%v: read after stop: %v", hard, err)
		}
		waitFor(t, "closed", func() bool { return srv.connCount() == 0 })
	}
}
