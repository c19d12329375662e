// Package client is an in-process NFSv3, MOUNT v3 and portmap v2 client
// for tests and tools. It speaks over one rpc.Client connection, which
// can be bound to a chosen local address (127.0.0.2, ...) so that one
// test process can act as several client hosts. Calls from concurrent
// goroutines are pipelined on the connection.
//
// Methods return an error only for transport and RPC failures; NFS and
// MOUNT failures are in the result's Status. Byte slices in results are
// owned by the caller.
package client

import (
	"context"
	"os"

	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/portmap"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Options selects the identity the client presents.
type Options struct {
	LocalAddr   string   // local IP to bind; empty for any
	AuthNone    bool     // send AUTH_NONE instead of AUTH_SYS
	UID, GID    uint32   // AUTH_SYS identity
	GIDs        []uint32 // supplementary groups, at most rpc.MaxGIDs
	MachineName string   // defaults to the host name
}

// Dial connects over "tcp" or "udp" to addr with the given identity.
func Dial(ctx context.Context, network, addr string, o Options) (*rpc.Client, error) {
	co := rpc.ClientOptions{LocalAddr: o.LocalAddr}
	if !o.AuthNone {
		name := o.MachineName
		if name == "" {
			name, _ = os.Hostname()
		}
		co.Cred = rpc.SysCred(rpc.AuthSysParams{MachineName: name, UID: o.UID, GID: o.GID, GIDs: o.GIDs})
	}
	return rpc.Dial(ctx, network, addr, co)
}

// call decodes into a fresh R.
func call[R any, PR interface {
	*R
	xdr.Decodable
}](ctx context.Context, c *rpc.Client, prog, vers, proc uint32, args xdr.Encodable) (*R, error) {
	r := new(R)
	if err := c.Call(ctx, prog, vers, proc, args, PR(r)); err != nil {
		return nil, err
	}
	return r, nil
}

// NFS issues NFSv3 calls.
type NFS struct{ C *rpc.Client }

func (n NFS) Null(ctx context.Context) error {
	return n.C.Call(ctx, nfs3.Prog, nfs3.Vers, nfs3.ProcNull, nil, nil)
}
func (n NFS) Getattr(ctx context.Context, fh nfs3.FH) (*nfs3.GetattrRes, error) {
	return call[nfs3.GetattrRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcGetattr, &nfs3.FHArgs{Object: fh})
}
func (n NFS) Setattr(ctx context.Context, a *nfs3.SetattrArgs) (*nfs3.WccRes, error) {
	return call[nfs3.WccRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcSetattr, a)
}
func (n NFS) Lookup(ctx context.Context, dir nfs3.FH, name string) (*nfs3.LookupRes, error) {
	return call[nfs3.LookupRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcLookup, &nfs3.LookupArgs{What: nfs3.DirOpArgs{Dir: dir, Name: name}})
}
func (n NFS) Access(ctx context.Context, fh nfs3.FH, access uint32) (*nfs3.AccessRes, error) {
	return call[nfs3.AccessRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcAccess, &nfs3.AccessArgs{Object: fh, Access: access})
}
func (n NFS) Readlink(ctx context.Context, fh nfs3.FH) (*nfs3.ReadlinkRes, error) {
	return call[nfs3.ReadlinkRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcReadlink, &nfs3.FHArgs{Object: fh})
}
func (n NFS) Read(ctx context.Context, fh nfs3.FH, off uint64, count uint32) (*nfs3.ReadRes, error) {
	return call[nfs3.ReadRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcRead, &nfs3.ReadArgs{File: fh, Offset: off, Count: count})
}

// Write sends a.Data without copying it; a.Count is set to len(a.Data)
// when zero.
func (n NFS) Write(ctx context.Context, a *nfs3.WriteArgs) (*nfs3.WriteRes, error) {
	if a.Count == 0 {
		a.Count = uint32(len(a.Data))
	}
	return call[nfs3.WriteRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcWrite, a)
}
func (n NFS) Create(ctx context.Context, a *nfs3.CreateArgs) (*nfs3.CreateRes, error) {
	return call[nfs3.CreateRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcCreate, a)
}
func (n NFS) Mkdir(ctx context.Context, a *nfs3.MkdirArgs) (*nfs3.CreateRes, error) {
	return call[nfs3.CreateRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcMkdir, a)
}
func (n NFS) Symlink(ctx context.Context, a *nfs3.SymlinkArgs) (*nfs3.CreateRes, error) {
	return call[nfs3.CreateRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcSymlink, a)
}
func (n NFS) Mknod(ctx context.Context, a *nfs3.MknodArgs) (*nfs3.CreateRes, error) {
	return call[nfs3.CreateRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcMknod, a)
}
func (n NFS) Remove(ctx context.Context, dir nfs3.FH, name string) (*nfs3.WccRes, error) {
	return call[nfs3.WccRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcRemove, &nfs3.DirOpArgs{Dir: dir, Name: name})
}
func (n NFS) Rmdir(ctx context.Context, dir nfs3.FH, name string) (*nfs3.WccRes, error) {
	return call[nfs3.WccRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcRmdir, &nfs3.DirOpArgs{Dir: dir, Name: name})
}
func (n NFS) Rename(ctx context.Context, a *nfs3.RenameArgs) (*nfs3.RenameRes, error) {
	return call[nfs3.RenameRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcRename, a)
}
func (n NFS) Link(ctx context.Context, a *nfs3.LinkArgs) (*nfs3.LinkRes, error) {
	return call[nfs3.LinkRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcLink, a)
}
func (n NFS) Readdir(ctx context.Context, a *nfs3.ReaddirArgs) (*nfs3.ReaddirRes, error) {
	return call[nfs3.ReaddirRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcReaddir, a)
}
func (n NFS) Readdirplus(ctx context.Context, a *nfs3.ReaddirplusArgs) (*nfs3.ReaddirplusRes, error) {
	return call[nfs3.ReaddirplusRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcReaddirplus, a)
}
func (n NFS) Fsstat(ctx context.Context, fh nfs3.FH) (*nfs3.FsstatRes, error) {
	return call[nfs3.FsstatRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcFsstat, &nfs3.FHArgs{Object: fh})
}
func (n NFS) Fsinfo(ctx context.Context, fh nfs3.FH) (*nfs3.FsinfoRes, error) {
	return call[nfs3.FsinfoRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcFsinfo, &nfs3.FHArgs{Object: fh})
}
func (n NFS) Pathconf(ctx context.Context, fh nfs3.FH) (*nfs3.PathconfRes, error) {
	return call[nfs3.PathconfRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcPathconf, &nfs3.FHArgs{Object: fh})
}
func (n NFS) Commit(ctx context.Context, fh nfs3.FH, off uint64, count uint32) (*nfs3.CommitRes, error) {
	return call[nfs3.CommitRes](ctx, n.C, nfs3.Prog, nfs3.Vers, nfs3.ProcCommit, &nfs3.CommitArgs{File: fh, Offset: off, Count: count})
}

// Mount issues MOUNT v3 calls.
type Mount struct{ C *rpc.Client }

func (m Mount) Null(ctx context.Context) error {
	return m.C.Call(ctx, mount.Prog, mount.Vers, mount.ProcNull, nil, nil)
}
func (m Mount) Mnt(ctx context.Context, path string) (*mount.MntRes, error) {
	return call[mount.MntRes](ctx, m.C, mount.Prog, mount.Vers, mount.ProcMnt, &mount.DirPath{Path: path})
}
func (m Mount) Dump(ctx context.Context) (mount.MountList, error) {
	r, err := call[mount.MountList](ctx, m.C, mount.Prog, mount.Vers, mount.ProcDump, nil)
	if err != nil {
		return nil, err
	}
	return *r, nil
}
func (m Mount) Umnt(ctx context.Context, path string) error {
	return m.C.Call(ctx, mount.Prog, mount.Vers, mount.ProcUmnt, &mount.DirPath{Path: path}, nil)
}
func (m Mount) UmntAll(ctx context.Context) error {
	return m.C.Call(ctx, mount.Prog, mount.Vers, mount.ProcUmntAll, nil, nil)
}
func (m Mount) Export(ctx context.Context) (mount.ExportList, error) {
	r, err := call[mount.ExportList](ctx, m.C, mount.Prog, mount.Vers, mount.ProcExport, nil)
	if err != nil {
		return nil, err
	}
	return *r, nil
}

// Portmap issues portmap v2 calls.
type Portmap struct{ C *rpc.Client }

func (p Portmap) Null(ctx context.Context) error {
	return p.C.Call(ctx, portmap.Prog, portmap.Vers, portmap.ProcNull, nil, nil)
}
func (p Portmap) Set(ctx context.Context, m portmap.Mapping) (bool, error) {
	return p.boolCall(ctx, portmap.ProcSet, m)
}
func (p Portmap) Unset(ctx context.Context, m portmap.Mapping) (bool, error) {
	return p.boolCall(ctx, portmap.ProcUnset, m)
}
func (p Portmap) boolCall(ctx context.Context, proc uint32, m portmap.Mapping) (bool, error) {
	var ok boolRes
	err := p.C.Call(ctx, portmap.Prog, portmap.Vers, proc, &m, &ok)
	return bool(ok), err
}
func (p Portmap) GetPort(ctx context.Context, prog, vers, prot uint32) (uint32, error) {
	var port u32Res
	err := p.C.Call(ctx, portmap.Prog, portmap.Vers, portmap.ProcGetPort, &portmap.Mapping{Prog: prog, Vers: vers, Prot: prot}, &port)
	return uint32(port), err
}
func (p Portmap) Dump(ctx context.Context) (portmap.List, error) {
	var l portmap.List
	err := p.C.Call(ctx, portmap.Prog, portmap.Vers, portmap.ProcDump, nil, &l)
	return l, err
}
func (p Portmap) Callit(ctx context.Context, a *portmap.CallArgs) (*portmap.CallResult, error) {
	return call[portmap.CallResult](ctx, p.C, portmap.Prog, portmap.Vers, portmap.ProcCallit, a)
}

type boolRes bool

func (b *boolRes) DecodeXDR(d *xdr.Decoder) { *b = boolRes(d.Bool()) }

type u32Res uint32

func (u *u32Res) DecodeXDR(d *xdr.Decoder) { *u = u32Res(d.Uint32()) }
