package portmap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/client"
	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	. "github.com/vmroot/vmroot/nfsexport/portmap"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// noMount and noNFS exist only so the server has MOUNT and NFS programs
// to advertise; they are never called here.
type noMount struct{ mount.Handler }
type noNFS struct{ nfs3.Handler }

func (noNFS) Null(context.Context, *rpc.Call) {}

type env struct {
	table        *Table
	pmTCP, pmUDP string
	nfsPort      uint32
	pmPort       uint32
}

// start serves portmap on pmAddr (TCP and UDP) and MOUNT+NFS on a
// separate ephemeral TCP port, advertised in the table.
func start(t *testing.T, pmAddr string) *env {
	t.Helper()
	srv := &rpc.Server{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	ln, err := net.Listen("tcp", pmAddr)
	if err != nil {
		t.Fatal(err)
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	nfsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{table: NewTable(port), pmTCP: ln.Addr().String(), pmUDP: pc.LocalAddr().String(), pmPort: port, nfsPort: uint32(nfsLn.Addr().(*net.TCPAddr).Port)}
	if err := Register(srv, e.table); err != nil {
		t.Fatal(err)
	}
	if err := mount.Register(srv, noMount{}); err != nil {
		t.Fatal(err)
	}
	if err := nfs3.Register(srv, noNFS{}, nfs3.Options{}); err != nil {
		t.Fatal(err)
	}
	e.table.Advertise(srv, ProtoTCP, e.nfsPort)
	e.table.Add(Mapping{mount.Prog, mount.Vers, ProtoUDP, port})
	done := make(chan error, 3)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	go func() { done <- srv.ServePacket(context.Background(), pc) }()
	go func() { done <- srv.Serve(context.Background(), nfsLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		for range 3 {
			if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}
	})
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) want() List {
	return List{
		{Prog, Vers, ProtoTCP, e.pmPort},
		{Prog, Vers, ProtoUDP, e.pmPort},
		{nfs3.Prog, nfs3.Vers, ProtoTCP, e.nfsPort},
		{mount.Prog, mount.Vers, ProtoTCP, e.nfsPort},
		{mount.Prog, mount.Vers, ProtoUDP, e.pmPort},
	}
}

func TestPortmapProcedures(t *testing.T) {
	e := start(t, "127.0.0.1:0")
	for _, network := range []string{"tcp", "udp"} {
		addr := e.pmTCP
		if network == "udp" {
			addr = e.pmUDP
		}
		rc, err := client.Dial(ctxT(t), network, addr, client.Options{AuthNone: true})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		pm := client.Portmap{C: rc}
		ctx := ctxT(t)
		if err := pm.Null(ctx); err != nil {
			t.Errorf("%s NULL: %v", network, err)
		}
		for _, m := range e.want() {
			if p, err := pm.GetPort(ctx, m.Prog, m.Vers, m.Prot); err != nil || p != m.Port {
				t.Errorf("%s GETPORT %d/%d/%d = %d, %v; want %d", network, m.Prog, m.Vers, m.Prot, p, err, m.Port)
			}
		}
		// An unregistered version maps to the program's port (rpcbind
		// does the same; the server then answers PROG_MISMATCH).
		if p, err := pm.GetPort(ctx, nfs3.Prog, 2, ProtoTCP); err != nil || p != e.nfsPort {
			t.Errorf("%s GETPORT of NFSv2 = %d, %v; want %d", network, p, err, e.nfsPort)
		}
		if p, err := pm.GetPort(ctx, nfs3.Prog, 3, ProtoUDP); err != nil || p != 0 {
			t.Errorf("%s GETPORT of NFS over UDP = %d, %v; want 0", network, p, err)
		}
		if p, err := pm.GetPort(ctx, 100099, 1, ProtoTCP); err != nil || p != 0 {
			t.Errorf("%s GETPORT of an unknown program = %d, %v; want 0", network, p, err)
		}
		l, err := pm.Dump(ctx)
		if err != nil || !sameSet(l, e.want()) {
			t.Errorf("%s DUMP = %v, %v\nwant %v", network, l, err, e.want())
		}
	}

	rc, err := client.Dial(ctxT(t), "tcp", e.pmTCP, client.Options{LocalAddr: "127.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	pm, ctx := client.Portmap{C: rc}, ctxT(t)
	// SET from a loopback caller: refused over an existing key, accepted
	// for a new one; UNSET removes it but never the server's own.
	if ok, err := pm.Set(ctx, Mapping{nfs3.Prog, nfs3.Vers, ProtoTCP, 2049}); err != nil || ok {
		t.Errorf("SET over the server's NFS mapping = %v, %v; want false", ok, err)
	}
	if ok, err := pm.Set(ctx, Mapping{100021, 4, ProtoTCP, 4045}); err != nil || !ok {
		t.Errorf("SET nlockmgr = %v, %v; want true", ok, err)
	}
	if ok, err := pm.Set(ctx, Mapping{100021, 4, ProtoTCP, 4046}); err != nil || ok {
		t.Errorf("second SET nlockmgr = %v, %v; want false", ok, err)
	}
	if p, _ := pm.GetPort(ctx, 100021, 4, ProtoTCP); p != 4045 {
		t.Errorf("GETPORT nlockmgr = %d, want 4045", p)
	}
	if ok, err := pm.Unset(ctx, Mapping{Prog: 100021, Vers: 4}); err != nil || !ok {
		t.Errorf("UNSET nlockmgr = %v, %v", ok, err)
	}
	if ok, _ := pm.Unset(ctx, Mapping{Prog: nfs3.Prog, Vers: nfs3.Vers}); ok {
		t.Errorf("UNSET removed the server's own NFS mapping")
	}
	if p, _ := pm.GetPort(ctx, nfs3.Prog, nfs3.Vers, ProtoTCP); p != e.nfsPort {
		t.Errorf("NFS mapping after UNSET attempt = %d", p)
	}
	// CALLIT over TCP is refused with PROC_UNAVAIL; over UDP it is dropped.
	var ae *rpc.AcceptError
	if _, err := pm.Callit(ctx, &CallArgs{Prog: mount.Prog, Vers: mount.Vers, Proc: 0}); !errors.As(err, &ae) || ae.Stat != rpc.ProcUnavail {
		t.Errorf("CALLIT over TCP: %v, want PROC_UNAVAIL", err)
	}
	urc, err := client.Dial(ctxT(t), "udp", e.pmUDP, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer urc.Close()
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := (client.Portmap{C: urc}).Callit(short, &CallArgs{Prog: mount.Prog, Vers: mount.Vers}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CALLIT over UDP: %v, want no reply", err)
	}
	// Truncated mapping: GARBAGE_ARGS. Version 3/4 (rpcbind): PROG_MISMATCH 2..2.
	if _, err := rc.CallRaw(ctx, Prog, Vers, ProcGetPort, raw{0, 0, 0, 1}); !errors.As(err, &ae) || ae.Stat != rpc.GarbageArgs {
		t.Errorf("truncated GETPORT: %v, want GARBAGE_ARGS", err)
	}
	if err := rc.Call(ctx, Prog, 4, 0, nil, nil); !errors.As(err, &ae) || ae.Stat != rpc.ProgMismatch || ae.Low != 2 || ae.High != 2 {
		t.Errorf("rpcbind v4 NULL: %v, want PROG_MISMATCH 2..2", err)
	}
}

type raw []byte

func (r raw) EncodeXDR(e *xdr.Encoder) { e.Append(r) }

func sameSet(a, b List) bool {
	key := func(l List) map[Mapping]int {
		m := map[Mapping]int{}
		for _, x := range l {
			m[x]++
		}
		return m
	}
	return reflect.DeepEqual(key(a), key(b))
}

// TestRPCInfo checks the portmapper against Debian's rpcinfo, a real
// ONC RPC client from libtirpc. rpcinfo -p always talks to port 111.
func TestRPCInfo(t *testing.T) {
	rpcinfo, err := exec.LookPath("rpcinfo")
	if err != nil {
		t.Skip("rpcinfo not installed (Debian package rpcbind)")
	}
	if os.Geteuid() != 0 {
		t.Skip("binding port 111 needs root")
	}
	probe, err := net.Listen("tcp", "127.0.0.1:111")
	if err != nil {
		t.Skipf("port 111 is taken (%v); rpcinfo -p can only query port 111", err)
	}
	probe.Close()
	e := start(t, "127.0.0.1:111")

	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, rpcinfo, args...).CombinedOutput()
		if err != nil {
			t.Errorf("rpcinfo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("-p", "127.0.0.1")
	t.Logf("rpcinfo -p:\n%s", out)
	row := regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s+(tcp|udp)\s+(\d+)`)
	var got List
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		n := func(s string) uint32 { v, _ := strconv.Atoi(s); return uint32(v) }
		prot := uint32(ProtoTCP)
		if m[3] == "udp" {
			prot = ProtoUDP
		}
		got = append(got, Mapping{n(m[1]), n(m[2]), prot, n(m[4])})
	}
	if !sameSet(got, e.want()) {
		t.Errorf("rpcinfo -p listed %v\nwant %v", got, e.want())
	}
	// NULL calls through libtirpc, straight to the ports.
	nfsPort := strconv.Itoa(int(e.nfsPort))
	for _, args := range [][]string{
		{"-n", "111", "-t", "127.0.0.1", "100000", "2"},
		{"-n", "111", "-u", "127.0.0.1", "100000", "2"},
		{"-n", nfsPort, "-t", "127.0.0.1", "100003", "3"},
		{"-n", nfsPort, "-t", "127.0.0.1", "100005", "3"},
		{"-n", "111", "-u", "127.0.0.1", "100005", "3"},
	} {
		if out := run(args...); !strings.Contains(out, "ready and waiting") {
			t.Errorf("rpcinfo %s: %s", strings.Join(args, " "), out)
		}
	}
	// Without -n, rpcinfo -t looks the port up through the portmapper
	// (after rpcbind v3/v4 get PROG_MISMATCH) and probes all versions.
	out = run("-t", "127.0.0.1", "100003")
	if !strings.Contains(out, "program 100003 version 3 ready and waiting") {
		t.Errorf("rpcinfo -t 127.0.0.1 100003:\n%s", out)
	}
}
