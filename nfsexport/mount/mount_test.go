package mount_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/client"
	. "github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/rpc"
)

// table is a Handler with one export, remembering mounts per client host.
type table struct {
	mu     sync.Mutex
	mounts map[[2]string]bool // host, path
	paths  []string
}

func (t *table) Mnt(ctx context.Context, c *rpc.Call, path string) MntRes {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.paths = append(t.paths, path)
	switch path {
	case "/export":
		t.mounts[[2]string{c.Peer.Addr().String(), path}] = true
		return MntRes{Status: OK, FH: []byte("root-handle-of-/export"), AuthFlavors: []rpc.Flavor{rpc.AuthSys}}
	case "/huge":
		return MntRes{Status: OK, FH: make([]byte, FHSize+1)}
	case "/secret":
		return MntRes{Status: ErrAcces}
	}
	return MntRes{Status: ErrNoEnt}
}

func (t *table) Dump(ctx context.Context, c *rpc.Call) MountList {
	t.mu.Lock()
	defer t.mu.Unlock()
	var l MountList
	for k := range t.mounts {
		l = append(l, MountEntry{Hostname: k[0], Directory: k[1]})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Hostname < l[j].Hostname })
	return l
}

func (t *table) Umnt(ctx context.Context, c *rpc.Call, path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mounts, [2]string{c.Peer.Addr().String(), path})
}

func (t *table) UmntAll(ctx context.Context, c *rpc.Call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.mounts {
		if k[0] == c.Peer.Addr().String() {
			delete(t.mounts, k)
		}
	}
}

func (t *table) Export(ctx context.Context, c *rpc.Call) ExportList {
	return ExportList{{Dir: "/export", Groups: []string{"127.0.0.0/8", "vms"}}, {Dir: "/empty"}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func TestMountProtocol(t *testing.T) {
	h := &table{mounts: map[[2]string]bool{}}
	srv := &rpc.Server{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := Register(srv, h); err != nil {
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
	done := make(chan error, 2)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	go func() { done <- srv.ServePacket(context.Background(), pc) }()
	defer func() {
		srv.Shutdown(context.Background())
		for range 2 {
			if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	hostA, err := client.Dial(ctx, "tcp", ln.Addr().String(), client.Options{LocalAddr: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer hostA.Close()
	hostB, err := client.Dial(ctx, "udp", pc.LocalAddr().String(), client.Options{LocalAddr: "127.0.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer hostB.Close()
	a, b := client.Mount{C: hostA}, client.Mount{C: hostB}

	for _, m := range []client.Mount{a, b} {
		if err := m.Null(ctx); err != nil {
			t.Errorf("NULL: %v", err)
		}
		r, err := m.Mnt(ctx, "/export")
		want := &MntRes{Status: OK, FH: []byte("root-handle-of-/export"), AuthFlavors: []rpc.Flavor{rpc.AuthSys}}
		if err != nil || !reflect.DeepEqual(r, want) {
			t.Errorf("MNT /export = %+v, %v", r, err)
		}
	}
	if r, err := a.Mnt(ctx, "/secret"); err != nil || r.Status != ErrAcces || r.FH != nil {
		t.Errorf("MNT /secret = %+v, %v; want MNT3ERR_ACCES", r, err)
	}
	if r, err := a.Mnt(ctx, strings.Repeat("p", MaxPathLen)); err != nil || r.Status != ErrNoEnt {
		t.Errorf("MNT of a %d-byte path = %+v, %v; want MNT3ERR_NOENT", MaxPathLen, r, err)
	}
	var ae *rpc.AcceptError
	if _, err := a.Mnt(ctx, strings.Repeat("p", MaxPathLen+1)); !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
		t.Errorf("MNT of a %d-byte path: %v, want GARBAGE_ARGS", MaxPathLen+1, err)
	}
	if _, err := a.Mnt(ctx, "/huge"); !errors.As(err, &ae) || ae.Stat != rpc.SystemErr {
		t.Errorf("MNT with a 65-byte handle from the handler: %v, want SYSTEM_ERR", err)
	}

	dump, err := a.Dump(ctx)
	if want := (MountList{{"127.0.0.2", "/export"}, {"127.0.0.3", "/export"}}); err != nil || !reflect.DeepEqual(dump, want) {
		t.Errorf("DUMP = %v, %v; want %v", dump, err, want)
	}
	if err := a.Umnt(ctx, "/export"); err != nil {
		t.Errorf("UMNT: %v", err)
	}
	if err := b.UmntAll(ctx); err != nil {
		t.Errorf("UMNTALL: %v", err)
	}
	if dump, err := b.Dump(ctx); err != nil || len(dump) != 0 {
		t.Errorf("DUMP after unmounts = %v, %v; want empty", dump, err)
	}
	ex, err := b.Export(ctx)
	if want := (ExportList{{Dir: "/export", Groups: []string{"127.0.0.0/8", "vms"}}, {Dir: "/empty"}}); err != nil || !reflect.DeepEqual(ex, want) {
		t.Errorf("EXPORT = %+v, %v; want %+v", ex, err, want)
	}
	if err := hostA.Call(ctx, Prog, 1, 0, nil, nil); !errors.As(err, &ae) || ae.Stat != rpc.ProgMismatch || ae.Low != 3 || ae.High != 3 {
		t.Errorf("MOUNT v1: %v, want PROG_MISMATCH 3..3", err)
	}
}
