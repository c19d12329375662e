package nfs3

import (
	"context"
	"fmt"

	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Handler implements the NFSv3 procedures. Each method receives the
// decoded arguments and the call, which carries the caller's credential
// (call.Cred) and address (call.Peer), and returns the result to encode.
// NFS-level failures are reported in the result's Status.
//
// Byte slices in the arguments alias the request buffer and must not be
// kept after the method returns. Names longer than MaxNameLen never reach
// the Handler: the dispatcher answers NFS3ERR_NAMETOOLONG itself. Handles
// returned must be at most FHSize bytes.
type Handler interface {
	Null(ctx context.Context, call *rpc.Call)
	Getattr(ctx context.Context, call *rpc.Call, args *FHArgs) GetattrRes
	Setattr(ctx context.Context, call *rpc.Call, args *SetattrArgs) WccRes
	Lookup(ctx context.Context, call *rpc.Call, args *LookupArgs) LookupRes
	Access(ctx context.Context, call *rpc.Call, args *AccessArgs) AccessRes
	Readlink(ctx context.Context, call *rpc.Call, args *FHArgs) ReadlinkRes
	Read(ctx context.Context, call *rpc.Call, args *ReadArgs) ReadRes
	Write(ctx context.Context, call *rpc.Call, args *WriteArgs) WriteRes
	Create(ctx context.Context, call *rpc.Call, args *CreateArgs) CreateRes
	Mkdir(ctx context.Context, call *rpc.Call, args *MkdirArgs) CreateRes
	Symlink(ctx context.Context, call *rpc.Call, args *SymlinkArgs) CreateRes
	Mknod(ctx context.Context, call *rpc.Call, args *MknodArgs) CreateRes
	Remove(ctx context.Context, call *rpc.Call, args *DirOpArgs) WccRes
	Rmdir(ctx context.Context, call *rpc.Call, args *DirOpArgs) WccRes
	Rename(ctx context.Context, call *rpc.Call, args *RenameArgs) RenameRes
	Link(ctx context.Context, call *rpc.Call, args *LinkArgs) LinkRes
	Readdir(ctx context.Context, call *rpc.Call, args *ReaddirArgs) ReaddirRes
	Readdirplus(ctx context.Context, call *rpc.Call, args *ReaddirplusArgs) ReaddirplusRes
	Fsstat(ctx context.Context, call *rpc.Call, args *FHArgs) FsstatRes
	Fsinfo(ctx context.Context, call *rpc.Call, args *FHArgs) FsinfoRes
	Pathconf(ctx context.Context, call *rpc.Call, args *FHArgs) PathconfRes
	Commit(ctx context.Context, call *rpc.Call, args *CommitArgs) CommitRes
}

// Options tunes Register.
type Options struct {
	// AllowAuthNone lets AUTH_NONE callers reach the Handler (as uid and
	// gid rpc.Nobody). By default every procedure but NULL requires
	// AUTH_SYS and others get AUTH_ERROR/AUTH_TOOWEAK.
	AllowAuthNone bool
}

// Register adds NFS version 3 to s (TCP only), dispatching to h.
// Arguments that fail to decode are answered GARBAGE_ARGS.
func Register(s *rpc.Server, h Handler, opts Options) error {
	return s.Register(rpc.Program{
		Name: "nfs", Prog: Prog, Low: Vers, High: Vers,
		Procs:          Procs(h),
		RequireAuthSys: !opts.AllowAuthNone,
		TCPOnly:        true,
	})
}

// Procs returns the dispatch table for h, indexed by procedure number.
func Procs(h Handler) []rpc.Proc {
	return []rpc.Proc{
		ProcNull: {Name: "NULL", Fn: func(ctx context.Context, c *rpc.Call, _ *xdr.Decoder, _ *xdr.Encoder) error {
			h.Null(ctx, c)
			return nil
		}},
		ProcGetattr:     proc(ProcGetattr, h.Getattr),
		ProcSetattr:     proc(ProcSetattr, h.Setattr),
		ProcLookup:      proc(ProcLookup, h.Lookup),
		ProcAccess:      proc(ProcAccess, h.Access),
		ProcReadlink:    proc(ProcReadlink, h.Readlink),
		ProcRead:        proc(ProcRead, h.Read),
		ProcWrite:       proc(ProcWrite, h.Write),
		ProcCreate:      proc(ProcCreate, h.Create),
		ProcMkdir:       proc(ProcMkdir, h.Mkdir),
		ProcSymlink:     proc(ProcSymlink, h.Symlink),
		ProcMknod:       proc(ProcMknod, h.Mknod),
		ProcRemove:      proc(ProcRemove, h.Remove),
		ProcRmdir:       proc(ProcRmdir, h.Rmdir),
		ProcRename:      proc(ProcRename, h.Rename),
		ProcLink:        proc(ProcLink, h.Link),
		ProcReaddir:     proc(ProcReaddir, h.Readdir),
		ProcReaddirplus: proc(ProcReaddirplus, h.Readdirplus),
		ProcFsstat:      proc(ProcFsstat, h.Fsstat),
		ProcFsinfo:      proc(ProcFsinfo, h.Fsinfo),
		ProcPathconf:    proc(ProcPathconf, h.Pathconf),
		ProcCommit:      proc(ProcCommit, h.Commit),
	}
}

type argsPtr[A any] interface {
	*A
	xdr.Decodable
}

type resPtr[R any] interface {
	*R
	xdr.Encodable
	setStatus(Stat)
}

type namedArgs interface{ nameTooLong() bool }

// checkedArgs are arguments with a consistency rule beyond decoding; a
// violation is answered GARBAGE_ARGS, as knfsd does.
type checkedArgs interface{ check() error }

// check rejects a WRITE whose count disagrees with its data length.
func (a *WriteArgs) check() error {
	if int(a.Count) != len(a.Data) {
		return fmt.Errorf("nfs3: WRITE count %d but %d bytes of data", a.Count, len(a.Data))
	}
	return nil
}

func proc[A, R any, PA argsPtr[A], PR resPtr[R]](num int, f func(context.Context, *rpc.Call, *A) R) rpc.Proc {
	return rpc.Proc{Name: ProcNames[num], Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
		var a A
		PA(&a).DecodeXDR(d)
		if err := d.Err(); err != nil {
			return rpc.Garbage(err)
		}
		if v, ok := any(&a).(checkedArgs); ok {
			if err := v.check(); err != nil {
				return rpc.Garbage(err)
			}
		}
		var r R
		if n, ok := any(&a).(namedArgs); ok && n.nameTooLong() {
			PR(&r).setStatus(ErrNameTooLong)
		} else {
			r = f(ctx, c, &a)
		}
		PR(&r).EncodeXDR(e)
		return nil
	}}
}

// DecodeArgs decodes the arguments of procedure proc from d, returning
// the args struct (nil for NULL) or the decoding error.
func DecodeArgs(proc uint32, d *xdr.Decoder) (any, error) {
	var a xdr.Decodable
	switch proc {
	case ProcNull:
		return nil, nil
	case ProcGetattr, ProcReadlink, ProcFsstat, ProcFsinfo, ProcPathconf:
		a = new(FHArgs)
	case ProcSetattr:
		a = new(SetattrArgs)
	case ProcLookup:
		a = new(LookupArgs)
	case ProcAccess:
		a = new(AccessArgs)
	case ProcRead:
		a = new(ReadArgs)
	case ProcWrite:
		a = new(WriteArgs)
	case ProcCreate:
		a = new(CreateArgs)
	case ProcMkdir:
		a = new(MkdirArgs)
	case ProcSymlink:
		a = new(SymlinkArgs)
	case ProcMknod:
		a = new(MknodArgs)
	case ProcRemove, ProcRmdir:
		a = new(DirOpArgs)
	case ProcRename:
		a = new(RenameArgs)
	case ProcLink:
		a = new(LinkArgs)
	case ProcReaddir:
		a = new(ReaddirArgs)
	case ProcReaddirplus:
		a = new(ReaddirplusArgs)
	case ProcCommit:
		a = new(CommitArgs)
	default:
		return nil, rpc.ErrProcUnavail
	}
	a.DecodeXDR(d)
	return a, d.Err()
}

func long(s string) bool { return len(s) > MaxNameLen }

func (a *DirOpArgs) nameTooLong() bool   { return long(a.Name) }
func (a *LookupArgs) nameTooLong() bool  { return long(a.What.Name) }
func (a *CreateArgs) nameTooLong() bool  { return long(a.Where.Name) }
func (a *MkdirArgs) nameTooLong() bool   { return long(a.Where.Name) }
func (a *SymlinkArgs) nameTooLong() bool { return long(a.Where.Name) }
func (a *MknodArgs) nameTooLong() bool   { return long(a.Where.Name) }
func (a *RenameArgs) nameTooLong() bool  { return long(a.From.Name) || long(a.To.Name) }
func (a *LinkArgs) nameTooLong() bool    { return long(a.Link.Name) }

func (r *GetattrRes) setStatus(s Stat)     { r.Status = s }
func (r *WccRes) setStatus(s Stat)         { r.Status = s }
func (r *LookupRes) setStatus(s Stat)      { r.Status = s }
func (r *AccessRes) setStatus(s Stat)      { r.Status = s }
func (r *ReadlinkRes) setStatus(s Stat)    { r.Status = s }
func (r *ReadRes) setStatus(s Stat)        { r.Status = s }
func (r *WriteRes) setStatus(s Stat)       { r.Status = s }
func (r *CreateRes) setStatus(s Stat)      { r.Status = s }
func (r *RenameRes) setStatus(s Stat)      { r.Status = s }
func (r *LinkRes) setStatus(s Stat)        { r.Status = s }
func (r *ReaddirRes) setStatus(s Stat)     { r.Status = s }
func (r *ReaddirplusRes) setStatus(s Stat) { r.Status = s }
func (r *FsstatRes) setStatus(s Stat)      { r.Status = s }
func (r *FsinfoRes) setStatus(s Stat)      { r.Status = s }
func (r *PathconfRes) setStatus(s Stat)    { r.Status = s }
func (r *CommitRes) setStatus(s Stat)      { r.Status = s }
