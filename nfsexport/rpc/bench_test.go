package rpc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// benchServer serves a NULL procedure and a READ-like procedure that
// returns a referenced 128 KiB payload.
func benchServer(b *testing.B) string {
	s := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	payload := make([]byte, 128<<10)
	s.Register(Program{Prog: testProg, Low: 1, High: 1, Procs: []Proc{
		{Fn: func(context.Context, *Call, *xdr.Decoder, *xdr.Encoder) error { return nil }},
		{Fn: func(_ context.Context, _ *Call, _ *xdr.Decoder, e *xdr.Encoder) error {
			e.OpaqueRef(payload)
			return nil
		}},
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(context.Background(), ln)
	b.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func benchCalls(b *testing.B, proc uint32, bytesPerCall int64) {
	addr := benchServer(b)
	c, err := Dial(context.Background(), "tcp", addr, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(bytesPerCall)
	b.SetParallelism(16) // keep the connection's 16 slots busy
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.CallRaw(context.Background(), testProg, 1, proc, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkNullPipelined(b *testing.B)     { benchCalls(b, 0, 0) }
func BenchmarkRead128KPipelined(b *testing.B) { benchCalls(b, 1, 128<<10) }
