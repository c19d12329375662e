package server

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// rawDial connects from 127.0.0.1 for sendWithXID.
func rawDial(t *testing.T, f *fixture) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", f.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// sendWithXID sends one NFS call with a chosen XID on nc as uid/gid 1000
// and returns the result body.
func sendWithXID(t *testing.T, nc net.Conn, xid, proc uint32, args xdr.Encodable) []byte {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	e := xdr.NewEncoder(512)
	e.Uint32(0)
	rpc.EncodeCall(e, xid, nfs3.Prog, nfs3.Vers, proc, rpc.SysCred(rpc.AuthSysParams{MachineName: "t", UID: 1000, GID: 1000}), args)
	b := e.Bytes()
	binary.BigEndian.PutUint32(b, uint32(len(b)-4)|1<<31)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	dec := xdr.NewDecoder(body)
	got, err := rpc.DecodeReply(dec)
	if err != nil || got != xid {
		t.Fatalf("reply xid %d: %v", got, err)
	}
	return dec.Rest()
}

func clientDialUDP(f *fixture) (net.Conn, error) {
	return net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", f.port))
}

// mountClient sends MNT over a UDP socket.
type mountClient struct{ c net.Conn }

func (m mountClient) Mnt(path string) (*mount.MntRes, error) {
	e := xdr.NewEncoder(256)
	rpc.EncodeCall(e, 4242, mount.Prog, mount.Vers, mount.ProcMnt, rpc.SysCred(rpc.AuthSysParams{MachineName: "t"}), &mount.DirPath{Path: path})
	m.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.c.Write(e.Bytes()); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	n, err := m.c.Read(buf)
	if err != nil {
		return nil, err
	}
	d := xdr.NewDecoder(buf[:n])
	if _, err := rpc.DecodeReply(d); err != nil {
		return nil, err
	}
	var r mount.MntRes
	r.DecodeXDR(d)
	return &r, d.Err()
}
