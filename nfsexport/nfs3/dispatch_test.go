package nfs3_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/client"
	. "github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// recorder is a Handler that records the arguments it receives
// (re-encoded, since they alias the request buffer) and answers with a
// result chosen by the test.
type recorder struct {
	mu       sync.Mutex
	result   any
	lastArgs []byte
	lastProc uint32
	lastCred rpc.Credential
	lastPeer string
	calls    atomic.Int32
	released atomic.Int32
}

func (r *recorder) record(c *rpc.Call, proc uint32, args xdr.Encodable) any {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastProc, r.lastArgs = proc, encode(args)
	r.lastCred = c.Cred
	r.lastCred.GIDs = append([]uint32(nil), c.Cred.GIDs...)
	r.lastPeer = c.Peer.Addr().String()
	return r.result
}

func (r *recorder) set(res any) {
	r.mu.Lock()
	r.result = res
	r.mu.Unlock()
}

func (r *recorder) args() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastArgs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *recorder) Null(ctx context.Context, c *rpc.Call) { r.calls.Add(1) }
func (r *recorder) Getattr(ctx context.Context, c *rpc.Call, a *FHArgs) GetattrRes {
	return *r.record(c, ProcGetattr, a).(*GetattrRes)
}
func (r *recorder) Setattr(ctx context.Context, c *rpc.Call, a *SetattrArgs) WccRes {
	return *r.record(c, ProcSetattr, a).(*WccRes)
}
func (r *recorder) Lookup(ctx context.Context, c *rpc.Call, a *LookupArgs) LookupRes {
	return *r.record(c, ProcLookup, a).(*LookupRes)
}
func (r *recorder) Access(ctx context.Context, c *rpc.Call, a *AccessArgs) AccessRes {
	return *r.record(c, ProcAccess, a).(*AccessRes)
}
func (r *recorder) Readlink(ctx context.Context, c *rpc.Call, a *FHArgs) ReadlinkRes {
	return *r.record(c, ProcReadlink, a).(*ReadlinkRes)
}
func (r *recorder) Read(ctx context.Context, c *rpc.Call, a *ReadArgs) ReadRes {
	res := *r.record(c, ProcRead, a).(*ReadRes)
	if len(res.Data) > 0 {
		// Hand out a private buffer and check that it is released
		// only after the reply has been sent.
		buf := append([]byte(nil), res.Data...)
		res.Data = buf
		c.AfterReply(func() { r.released.Add(1); clear(buf) })
	}
	return res
}
func (r *recorder) Write(ctx context.Context, c *rpc.Call, a *WriteArgs) WriteRes {
	return *r.record(c, ProcWrite, a).(*WriteRes)
}
func (r *recorder) Create(ctx context.Context, c *rpc.Call, a *CreateArgs) CreateRes {
	return *r.record(c, ProcCreate, a).(*CreateRes)
}
func (r *recorder) Mkdir(ctx context.Context, c *rpc.Call, a *MkdirArgs) CreateRes {
	return *r.record(c, ProcMkdir, a).(*CreateRes)
}
func (r *recorder) Symlink(ctx context.Context, c *rpc.Call, a *SymlinkArgs) CreateRes {
	return *r.record(c, ProcSymlink, a).(*CreateRes)
}
func (r *recorder) Mknod(ctx context.Context, c *rpc.Call, a *MknodArgs) CreateRes {
	return *r.record(c, ProcMknod, a).(*CreateRes)
}
func (r *recorder) Remove(ctx context.Context, c *rpc.Call, a *DirOpArgs) WccRes {
	return *r.record(c, ProcRemove, a).(*WccRes)
}
func (r *recorder) Rmdir(ctx context.Context, c *rpc.Call, a *DirOpArgs) WccRes {
	return *r.record(c, ProcRmdir, a).(*WccRes)
}
func (r *recorder) Rename(ctx context.Context, c *rpc.Call, a *RenameArgs) RenameRes {
	return *r.record(c, ProcRename, a).(*RenameRes)
}
func (r *recorder) Link(ctx context.Context, c *rpc.Call, a *LinkArgs) LinkRes {
	return *r.record(c, ProcLink, a).(*LinkRes)
}
func (r *recorder) Readdir(ctx context.Context, c *rpc.Call, a *ReaddirArgs) ReaddirRes {
	return *r.record(c, ProcReaddir, a).(*ReaddirRes)
}
func (r *recorder) Readdirplus(ctx context.Context, c *rpc.Call, a *ReaddirplusArgs) ReaddirplusRes {
	return *r.record(c, ProcReaddirplus, a).(*ReaddirplusRes)
}
func (r *recorder) Fsstat(ctx context.Context, c *rpc.Call, a *FHArgs) FsstatRes {
	return *r.record(c, ProcFsstat, a).(*FsstatRes)
}
func (r *recorder) Fsinfo(ctx context.Context, c *rpc.Call, a *FHArgs) FsinfoRes {
	return *r.record(c, ProcFsinfo, a).(*FsinfoRes)
}
func (r *recorder) Pathconf(ctx context.Context, c *rpc.Call, a *FHArgs) PathconfRes {
	return *r.record(c, ProcPathconf, a).(*PathconfRes)
}
func (r *recorder) Commit(ctx context.Context, c *rpc.Call, a *CommitArgs) CommitRes {
	return *r.record(c, ProcCommit, a).(*CommitRes)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func startNFS(t *testing.T, h Handler) string {
	t.Helper()
	srv := &rpc.Server{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := Register(srv, h, Options{}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// call issues proc with args through the typed client and returns the
// decoded result.
func call(ctx context.Context, n client.NFS, proc uint32, args any) (any, error) {
	switch a := args.(type) {
	case *FHArgs:
		switch proc {
		case ProcGetattr:
			return n.Getattr(ctx, a.Object)
		case ProcReadlink:
			return n.Readlink(ctx, a.Object)
		case ProcFsstat:
			return n.Fsstat(ctx, a.Object)
		case ProcFsinfo:
			return n.Fsinfo(ctx, a.Object)
		case ProcPathconf:
			return n.Pathconf(ctx, a.Object)
		}
	case *SetattrArgs:
		return n.Setattr(ctx, a)
	case *LookupArgs:
		return n.Lookup(ctx, a.What.Dir, a.What.Name)
	case *AccessArgs:
		return n.Access(ctx, a.Object, a.Access)
	case *ReadArgs:
		return n.Read(ctx, a.File, a.Offset, a.Count)
	case *WriteArgs:
		return n.Write(ctx, a)
	case *CreateArgs:
		return n.Create(ctx, a)
	case *MkdirArgs:
		return n.Mkdir(ctx, a)
	case *SymlinkArgs:
		return n.Symlink(ctx, a)
	case *MknodArgs:
		return n.Mknod(ctx, a)
	case *DirOpArgs:
		if proc == ProcRemove {
			return n.Remove(ctx, a.Dir, a.Name)
		}
		return n.Rmdir(ctx, a.Dir, a.Name)
	case *RenameArgs:
		return n.Rename(ctx, a)
	case *LinkArgs:
		return n.Link(ctx, a)
	case *ReaddirArgs:
		return n.Readdir(ctx, a)
	case *ReaddirplusArgs:
		return n.Readdirplus(ctx, a)
	case *CommitArgs:
		return n.Commit(ctx, a.File, a.Offset, a.Count)
	}
	panic("no client method for " + ProcNames[proc])
}

// TestEveryProcedureOverTCP sends every sample argument of every
// procedure through the client to a real server, and every sample result
// back, and checks both arrive intact along with credential and peer.
func TestEveryProcedureOverTCP(t *testing.T) {
	rec := &recorder{}
	addr := startNFS(t, rec)
	rc, err := client.Dial(ctxT(t), "tcp", addr, client.Options{LocalAddr: "127.0.0.5", UID: 1001, GID: 1002, GIDs: []uint32{4, 24, 27}, MachineName: "vm7"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n := client.NFS{C: rc}
	if err := n.Null(ctxT(t)); err != nil {
		t.Fatalf("NULL: %v", err)
	}
	var argSamples, resSamples = map[uint32][]sample{}, map[uint32][]sample{}
	for _, s := range samples() {
		if s.args {
			argSamples[s.proc] = append(argSamples[s.proc], s)
		} else {
			resSamples[s.proc] = append(resSamples[s.proc], s)
		}
	}
	for proc := uint32(1); proc < NumProcs; proc++ {
		for _, as := range argSamples[proc] {
			for _, rs := range resSamples[proc] {
				rec.set(rs.value)
				got, err := call(ctxT(t), n, proc, as.value)
				if err != nil {
					t.Errorf("%s -> %s: %v", as.name, rs.name, err)
					continue
				}
				if !reflect.DeepEqual(got, rs.value) {
					t.Errorf("%s -> %s: result\n got %+v\nwant %+v", as.name, rs.name, got, rs.value)
				}
				rec.mu.Lock()
				if rec.lastProc != proc || !bytes.Equal(rec.lastArgs, encode(as.value)) {
					t.Errorf("%s: handler %s got different arguments", as.name, ProcNames[rec.lastProc])
				}
				cr := rec.lastCred
				if cr.Flavor != rpc.AuthSys || cr.UID != 1001 || cr.GID != 1002 || !reflect.DeepEqual(cr.GIDs, []uint32{4, 24, 27}) || cr.MachineName != "vm7" || rec.lastPeer != "127.0.0.5" {
					t.Errorf("%s: handler saw credential %+v from %s", as.name, cr, rec.lastPeer)
				}
				rec.mu.Unlock()
			}
		}
	}
	if got := rec.released.Load(); got == 0 {
		t.Errorf("READ data buffers released %d times", got)
	}
}

func TestDispatcherErrors(t *testing.T) {
	rec := &recorder{result: &LookupRes{Status: OK, Object: fh}}
	addr := startNFS(t, rec)
	rc, err := client.Dial(ctxT(t), "tcp", addr, client.Options{UID: 0, GID: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := ctxT(t)
	var ae *rpc.AcceptError

	// Truncated arguments of every procedure: GARBAGE_ARGS, handler not called.
	before := rec.calls.Load()
	for _, s := range samples() {
		if !s.args {
			continue
		}
		b := encode(s.value)
		_, err := rc.CallRaw(ctx, Prog, Vers, s.proc, rawArgs(b[:len(b)-4]))
		if !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
			t.Errorf("%s truncated: %v, want GARBAGE_ARGS", s.name, err)
		}
	}
	if rec.calls.Load() != before {
		t.Errorf("handler called %d times for undecodable arguments", rec.calls.Load()-before)
	}
	// A WRITE carrying 1 MiB + 4 bytes of data.
	_, err = rc.CallRaw(ctx, Prog, Vers, ProcWrite, &WriteArgs{File: fh, Data: make([]byte, MaxData+4)})
	if !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
		t.Errorf("oversize WRITE: %v, want GARBAGE_ARGS", err)
	}
	n := client.NFS{C: rc}
	// Names longer than 255 bytes: NAMETOOLONG without reaching the handler.
	long := strings.Repeat("n", 256)
	before = rec.calls.Load()
	if r, err := n.Lookup(ctx, fh, long); err != nil || r.Status != ErrNameTooLong {
		t.Errorf("LOOKUP 256-byte name: %+v %v", r, err)
	}
	if r, err := n.Rename(ctx, &RenameArgs{From: DirOpArgs{Dir: fh, Name: "a"}, To: DirOpArgs{Dir: fh, Name: long}}); err != nil || r.Status != ErrNameTooLong {
		t.Errorf("RENAME to 256-byte name: %+v %v", r, err)
	}
	if rec.calls.Load() != before {
		t.Errorf("handler reached with an overlong name")
	}
	if r, err := n.Lookup(ctx, fh, long[:255]); err != nil || r.Status != OK {
		t.Errorf("LOOKUP 255-byte name: %+v %v", r, err)
	}
	// Version and procedure errors.
	if err := rc.Call(ctx, Prog, 4, 0, nil, nil); !errors.As(err, &ae) || ae.Stat != rpc.ProgMismatch || ae.Low != 3 || ae.High != 3 {
		t.Errorf("NFSv4 NULL: %v, want PROG_MISMATCH 3..3", err)
	}
	if err := rc.Call(ctx, Prog, Vers, NumProcs, nil, nil); !errors.As(err, &ae) || ae.Stat != rpc.ProcUnavail {
		t.Errorf("procedure 22: %v, want PROC_UNAVAIL", err)
	}
	// AUTH_NONE may ping but not operate.
	anon, err := client.Dial(ctx, "tcp", addr, client.Options{AuthNone: true})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := (client.NFS{C: anon}).Null(ctx); err != nil {
		t.Errorf("NULL with AUTH_NONE: %v", err)
	}
	var re *rpc.RejectError
	if _, err := (client.NFS{C: anon}).Getattr(ctx, fh); !errors.As(err, &re) || re.Auth != rpc.AuthTooWeak {
		t.Errorf("GETATTR with AUTH_NONE: %v, want AUTH_TOOWEAK", err)
	}
}

type rawArgs []byte

func (r rawArgs) EncodeXDR(e *xdr.Encoder) { e.Append(r) }

// TestLargeReadWrite moves 1 MiB each way and pipelines 32 READs on one
// connection.
func TestLargeReadWrite(t *testing.T) {
	payload := make([]byte, MaxData)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	rec := &recorder{}
	addr := startNFS(t, rec)
	rc, err := client.Dial(ctxT(t), "tcp", addr, client.Options{UID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n := client.NFS{C: rc}
	rec.set(&WriteRes{Status: OK, Count: MaxData, Committed: FileSync})
	if r, err := n.Write(ctxT(t), &WriteArgs{File: fh, Stable: FileSync, Data: payload}); err != nil || r.Count != MaxData {
		t.Fatalf("1 MiB WRITE: %+v %v", r, err)
	}
	var w WriteArgs
	d := xdr.NewDecoder(rec.args())
	w.DecodeXDR(d)
	if !bytes.Equal(w.Data, payload) {
		t.Errorf("WRITE data corrupted in transit")
	}
	rec.set(&ReadRes{Status: OK, EOF: true, Data: payload})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := n.Read(ctxT(t), fh, 0, MaxData)
			if err != nil {
				t.Errorf("1 MiB READ: %v", err)
			} else if !bytes.Equal(r.Data, payload) || !r.EOF {
				t.Errorf("1 MiB READ: %d bytes, eof %v", len(r.Data), r.EOF)
			}
		}()
	}
	wg.Wait()
	// The writer releases each buffer once its reply has been written.
	waitFor(t, "32 READ buffer releases", func() bool { return rec.released.Load() == 32 })
}
