package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

func fuzzServer() *Server {
	s := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	echo := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		b := a.Opaque(1 << 16)
		if a.Err() != nil {
			return Garbage(a.Err())
		}
		r.OpaqueRef(b)
		return nil
	}
	ident := func(ctx context.Context, c *Call, a *xdr.Decoder, r *xdr.Encoder) error {
		if len(c.Cred.GIDs) > MaxGIDs || len(c.Cred.MachineName) > MaxMachineName {
			panic("credential bounds not enforced")
		}
		r.Uint32(c.Cred.UID)
		r.Uint32(uint32(len(c.Cred.GIDs)))
		return nil
	}
	procs := []Proc{{Name: "NULL", Fn: func(context.Context, *Call, *xdr.Decoder, *xdr.Encoder) error { return nil }}, {Name: "ECHO", Fn: echo}, {Name: "IDENT", Fn: ident}}
	s.Register(Program{Prog: 100003, Low: 3, High: 3, Procs: procs, RequireAuthSys: true})
	s.Register(Program{Prog: 100005, Low: 1, High: 3, Procs: procs})
	return s
}

func fuzzSeeds() [][]byte {
	sys := SysCred(AuthSysParams{Stamp: 7, MachineName: "vm1", UID: 1000, GID: 1000, GIDs: []uint32{4, 27}})
	call := func(xid, rpcvers, prog, vers, proc uint32, cred OpaqueAuth, args []byte) []byte {
		e := xdr.NewEncoder(64)
		e.Uint32(xid)
		e.Uint32(msgCall)
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
	rec := func(frags ...[]byte) []byte {
		var out []byte
		for i, f := range frags {
			h := uint32(len(f))
			if i == len(frags)-1 {
				h |= lastFragment
			}
			out = binary.BigEndian.AppendUint32(out, h)
			out = append(out, f...)
		}
		return out
	}
	echoArgs := []byte{0, 0, 0, 3, 'a', 'b', 'c', 0}
	c1 := call(1, 2, 100003, 3, 1, sys, echoArgs)
	return [][]byte{
		rec(call(1, 2, 100003, 3, 0, OpaqueAuth{}, nil)),
		rec(c1),
		rec(c1[:9], c1[9:20], nil, c1[20:]),
		append(rec(call(2, 2, 100005, 3, 2, sys, nil)), rec(call(3, 2, 100005, 3, 1, OpaqueAuth{}, echoArgs))...),
		rec(call(4, 3, 100003, 3, 0, sys, nil)),
		rec(call(5, 2, 100003, 4, 0, sys, nil)),
		rec(call(6, 2, 99, 1, 0, sys, nil)),
		rec(call(7, 2, 100003, 3, 9, sys, nil)),
		rec(call(8, 2, 100003, 3, 2, SysCred(AuthSysParams{GIDs: make([]uint32, 17)}), nil)),
		rec(call(9, 2, 100003, 3, 1, sys, echoArgs[:6])),
		rec([]byte{0, 0, 0, 1, 0, 0, 0, 1}),
	}
}

// FuzzRPCRecord feeds a fuzzed byte stream through record reassembly and
// the server's call handling. Nothing may panic, and every reply must be
// a well-formed reply to the call's XID.
func FuzzRPCRecord(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	s := fuzzServer()
	peer := netip.MustParseAddrPort("192.0.2.1:700")
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for n := 0; n < 64; n++ {
			rec, err := ReadRecord(r, 1<<16)
			if err != nil {
				if errors.Is(err, ErrRecordTooLarge) || err == io.EOF || err == io.ErrUnexpectedEOF {
					return
				}
				t.Fatalf("unexpected record error %v", err)
			}
			if len(*rec) > 1<<16 {
				t.Fatalf("record of %d bytes exceeds the bound", len(*rec))
			}
			req := getRequest()
			req.rec = rec
			req.call.Network, req.call.Peer = "tcp", peer
			body := append([]byte(nil), *rec...)
			if !s.handle(context.Background(), req, true) {
				req.release()
				continue
			}
			var out []byte
			for _, b := range req.enc.Buffers(nil) {
				out = append(out, b...)
			}
			req.release()
			d := xdr.NewDecoder(out[4:])
			xid, err := DecodeReply(d)
			var ae *AcceptError
			var re *RejectError
			if err != nil && !errors.As(err, &ae) && !errors.As(err, &re) {
				t.Fatalf("server produced a malformed reply: %v\n%x", err, out)
			}
			if xid != binary.BigEndian.Uint32(body) {
				t.Fatalf("reply xid %d for call xid %d", xid, binary.BigEndian.Uint32(body))
			}
		}
	})
}
