package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/overlay"
	"golang.org/x/sys/unix"
)

// Transfer sizes offered in FSINFO.
const (
	maxIO    = 1 << 20
	dirPref  = 64 << 10
	maxReply = 1 << 20 // cap on READDIR(PLUS) reply sizes asked by clients
)

// nfsHandler answers NFSv3.
type nfsHandler struct{ s *Server }

// req is one call from a known host.
type req struct {
	s    *Server
	st   *hostState
	h    *Host
	o    *overlay.FS
	cred overlay.Cred
	call *rpc.Call
}

func (x *nfsHandler) begin(c *rpc.Call) (*req, nfs3.Stat) {
	s := x.s
	addr := c.Peer.Addr().Unmap()
	st, h, err := s.host(addr, false)
	if err != nil {
		s.log.Error("host union unavailable", "host", addr.String(), "err", err)
		return nil, nfs3.ErrServerFault
	}
	if st == nil {
		s.log.Warn("call refused: unknown host", "host", addr.String(), "proc", procName(c.Proc))
		return nil, nfs3.ErrAcces
	}
	return &req{s: s, st: st, h: h, o: st.fs, cred: squash(h, &c.Cred), call: c}, nfs3.OK
}

func procName(p uint32) string {
	if p < nfs3.NumProcs {
		return nfs3.ProcNames[p]
	}
	return "?"
}

// node resolves a handle presented by this host.
func (r *req) node(fh nfs3.FH) (*overlay.Node, nfs3.Stat) {
	id, st := r.st.parseFH(fh)
	if st != nfs3.OK {
		r.st.log.Debug("bad handle", "proc", procName(r.call.Proc), "status", st.String())
		return nil, st
	}
	ref := r.st.nodes.get(id)
	if ref.n != nil {
		return ref.n, nfs3.OK
	}
	if ref.dir != nil {
		// Listed by READDIRPLUS: one lookup, if it is still that object.
		if n, err := r.o.Lookup(ref.dir, ref.name); err == nil {
			var buf [overlay.MaxIDLen]byte
			if nid, err := r.o.AppendID(buf[:0], n); err == nil && bytes.Equal(nid, id) {
				r.st.nodes.put(id, n)
				return n, nfs3.OK
			}
		}
	}
	n, err := r.o.Resolve(id)
	if err == nil {
		r.st.nodes.put(id, n)
	}
	if err != nil {
		if errors.Is(err, syscall.ESTALE) || errors.Is(err, syscall.ENOENT) {
			return nil, nfs3.ErrStale
		}
		return nil, r.fail(err)
	}
	return n, nfs3.OK
}

// fail maps err to a status, logging what is not the client's doing.
func (r *req) fail(err error) nfs3.Stat {
	st := stat(err)
	if st == nfs3.ErrIO || st == nfs3.ErrServerFault {
		r.st.log.Warn("operation failed", "proc", procName(r.call.Proc), "err", err)
	}
	return st
}

func (r *req) fh(n *overlay.Node) (nfs3.FH, error) {
	var buf [overlay.MaxIDLen]byte
	id, err := r.o.AppendID(buf[:0], n)
	if err != nil {
		return nil, err
	}
	r.st.nodes.put(id, n)
	return r.st.makeFH(id), nil
}

func (r *req) attr(n *overlay.Node) nfs3.PostOpAttr { return r.s.postOp(r.getattr(n)) }

// getattr is the engine's Getattr, except that a directory present in
// the diff is stat'ed there and given its remembered link count (see
// nlinkCache).
func (r *req) getattr(n *overlay.Node) (overlay.Attr, error) {
	if !n.IsDir() || r.st.diff == "" || !n.InDiff() {
		return r.o.Getattr(n)
	}
	if nl, ok := r.st.nlinks.get(n); ok {
		var st unix.Stat_t
		if err := unix.Lstat(r.st.diff+r.o.Path(n), &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			a := dirfs.AttrFromStat(&st)
			a.Nlink, a.Ino = nl, n.Ino()
			return a, nil
		}
	}
	a, err := r.o.Getattr(n)
	if err == nil {
		r.st.nlinks.put(n, a.Nlink)
	}
	return a, err
}

// drcKey identifies a call for the duplicate request cache.
func (r *req) key(parts ...[]byte) drcKey {
	return drcKey{addr: r.call.Peer, xid: r.call.XID, proc: r.call.Proc, uid: r.call.Cred.UID, sum: argSum(parts...)}
}

// changed records a namespace change (invalidates listings).
func (r *req) changed() { r.st.gen.Add(1) }

func (r *req) readOnly() bool { return r.o.ReadOnly() }

func (x *nfsHandler) Null(ctx context.Context, c *rpc.Call) {}

func (x *nfsHandler) Getattr(ctx context.Context, c *rpc.Call, a *nfs3.FHArgs) nfs3.GetattrRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.GetattrRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.GetattrRes{Status: st}
	}
	at, err := r.getattr(n)
	if err != nil {
		return nfs3.GetattrRes{Status: r.fail(err)}
	}
	return nfs3.GetattrRes{Attr: x.s.fattr(at)}
}

func ttime(t nfs3.Time) time.Time { return time.Unix(int64(t.Sec), int64(t.Nsec)) }

// sattr turns a sattr3 into a SetAttrIn after knfsd's permission checks
// (setattr_prepare): ownership changes by root only (or a group the owner
// belongs to), mode and explicit times by the owner, "now" by anyone who
// may write, and a chown of a non-directory drops setuid/setgid.
func (r *req) sattr(before overlay.Attr, sa *nfs3.Sattr) (overlay.SetAttrIn, error) {
	var in overlay.SetAttrIn
	c := &r.cred
	root := c.Uid == 0
	owner := root || c.Uid == before.Uid
	gid := before.Gid
	if sa.SetUID && sa.UID != before.Uid {
		if !root {
			return in, syscall.EPERM
		}
		v := sa.UID
		in.Uid = &v
	}
	if sa.SetGID && sa.GID != before.Gid {
		if !root && (c.Uid != before.Uid || !inGroup(c, sa.GID)) {
			return in, syscall.EPERM
		}
		v := sa.GID
		in.Gid = &v
		gid = v
	}
	mode := before.Mode & 0o7777
	setMode := false
	if sa.SetMode {
		if !owner {
			return in, syscall.EPERM
		}
		mode, setMode = sa.Mode&0o7777, true
		if !root && !inGroup(c, gid) {
			mode &^= unix.S_ISGID
		}
	}
	if before.Mode&fsys.S_IFMT != fsys.S_IFDIR && (in.Uid != nil || in.Gid != nil) {
		m := mode &^ unix.S_ISUID
		if m&0o010 != 0 {
			m &^= unix.S_ISGID
		}
		if m != mode {
			mode, setMode = m, true
		}
	}
	if setMode {
		in.Mode = &mode
	}
	if sa.SetSize {
		switch before.Mode & fsys.S_IFMT {
		case fsys.S_IFDIR:
			return in, syscall.EISDIR
		case fsys.S_IFREG:
		default:
			return in, syscall.EINVAL
		}
		if sa.Size > math.MaxInt64 {
			return in, syscall.EFBIG
		}
		if !mayOpen(before, c, mayWrite) {
			return in, syscall.EACCES
		}
		v := int64(sa.Size)
		in.Size = &v
	}
	for i, t := range []nfs3.SetTime{sa.Atime, sa.Mtime} {
		switch t.How {
		case nfs3.SetToServerTime:
			if !owner && !permits(before, c, mayWrite) {
				return in, syscall.EACCES
			}
			if i == 0 {
				in.AtimeNow = true
			} else {
				in.MtimeNow = true
			}
		case nfs3.SetToClientTime:
			if !owner {
				return in, syscall.EPERM
			}
			v := ttime(t.Time)
			if i == 0 {
				in.Atime = &v
			} else {
				in.Mtime = &v
			}
		}
	}
	return in, nil
}

func emptyIn(in overlay.SetAttrIn) bool {
	return in.Mode == nil && in.Uid == nil && in.Gid == nil && in.Size == nil && in.Atime == nil && in.Mtime == nil && !in.AtimeNow && !in.MtimeNow
}

// setattr applies in, through the cached writable handle when there is
// one (so a truncation reaches the file being written).
func (r *req) setattr(n *overlay.Node, in overlay.SetAttrIn) (overlay.Attr, error) {
	var h *overlay.Handle
	if f := r.st.files.cached(n); f != nil {
		defer r.st.files.put(f)
		if f.rw {
			h = f.h
		}
	}
	return r.o.Setattr(n, h, in)
}

func (x *nfsHandler) Setattr(ctx context.Context, c *rpc.Call, a *nfs3.SetattrArgs) nfs3.WccRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.WccRes{Status: st}
	}
	return drcDo(x.s.drc, r.key(a.Object), func() nfs3.WccRes {
		n, st := r.node(a.Object)
		if st != nfs3.OK {
			return nfs3.WccRes{Status: st}
		}
		before, err := r.getattr(n)
		if err != nil {
			return nfs3.WccRes{Status: r.fail(err)}
		}
		res := nfs3.WccRes{Wcc: nfs3.WccData{Before: preOp(before, nil)}}
		if a.Guard && ntime(before.Ctime) != a.GuardCtime {
			res.Status = nfs3.ErrNotSync
			res.Wcc.After = x.s.postOp(before, nil)
			return res
		}
		in, err := r.sattr(before, &a.Attr)
		if err == nil && !emptyIn(in) {
			if r.readOnly() {
				err = syscall.EROFS
			} else {
				_, err = r.setattr(n, in)
			}
		}
		res.Wcc.After = r.attr(n)
		res.Status = r.fail(err)
		return res
	})
}

func (x *nfsHandler) Lookup(ctx context.Context, c *rpc.Call, a *nfs3.LookupArgs) nfs3.LookupRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.LookupRes{Status: st}
	}
	dir, st := r.node(a.What.Dir)
	if st != nfs3.OK {
		return nfs3.LookupRes{Status: st}
	}
	da, err := r.getattr(dir)
	if err != nil {
		return nfs3.LookupRes{Status: r.fail(err)}
	}
	res := nfs3.LookupRes{DirAttr: x.s.postOp(da, nil)}
	if !da.IsDir() {
		res.Status = nfs3.ErrNotDir
		return res
	}
	if !permits(da, &r.cred, mayExec) {
		res.Status = nfs3.ErrAcces
		return res
	}
	n, err := r.o.Lookup(dir, a.What.Name)
	if err != nil {
		res.Status = r.fail(err)
		return res
	}
	fh, err := r.fh(n)
	if err != nil {
		res.Status = r.fail(err)
		return res
	}
	res.Object = fh
	res.ObjAttr = r.attr(n)
	return res
}

func (x *nfsHandler) Access(ctx context.Context, c *rpc.Call, a *nfs3.AccessArgs) nfs3.AccessRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.AccessRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.AccessRes{Status: st}
	}
	at, err := r.getattr(n)
	if err != nil {
		return nfs3.AccessRes{Status: r.fail(err)}
	}
	return nfs3.AccessRes{ObjAttr: x.s.postOp(at, nil), Access: r.access(at, a.Access)}
}

// access computes ACCESS bits as knfsd's nfsd_access tables do.
func (r *req) access(at overlay.Attr, want uint32) uint32 {
	c := &r.cred
	dir := at.IsDir()
	typ := at.Mode & fsys.S_IFMT
	rofs := r.readOnly() && (typ == fsys.S_IFREG || typ == fsys.S_IFDIR || typ == fsys.S_IFLNK)
	var got uint32
	check := func(bit, mask uint32, write bool) {
		if want&bit == 0 || (write && rofs) {
			return
		}
		if permits(at, c, mask) {
			got |= bit
		}
	}
	check(nfs3.AccessRead, mayRead, false)
	if dir {
		check(nfs3.AccessLookup, mayExec, false)
		check(nfs3.AccessModify, mayWrite|mayExec, true)
		check(nfs3.AccessExtend, mayWrite|mayExec, true)
		check(nfs3.AccessDelete, mayWrite|mayExec, true)
	} else {
		check(nfs3.AccessExecute, mayExec, false)
		check(nfs3.AccessModify, mayWrite, true)
		check(nfs3.AccessExtend, mayWrite, true)
	}
	return got
}

func (x *nfsHandler) Readlink(ctx context.Context, c *rpc.Call, a *nfs3.FHArgs) nfs3.ReadlinkRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.ReadlinkRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.ReadlinkRes{Status: st}
	}
	res := nfs3.ReadlinkRes{Attr: r.attr(n)}
	if n.Mode() != fsys.S_IFLNK {
		res.Status = nfs3.ErrInval
		return res
	}
	p, err := r.o.Readlink(n)
	if err != nil {
		res.Status = r.fail(err)
		return res
	}
	res.Path = p
	return res
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxIO); return &b }}

// checkIO checks that n may be read or written by the caller.
func (r *req) checkIO(n *overlay.Node, at overlay.Attr, mask uint32) nfs3.Stat {
	switch at.Mode & fsys.S_IFMT {
	case fsys.S_IFREG:
	case fsys.S_IFDIR:
		return nfs3.ErrIsDir
	default:
		return nfs3.ErrInval
	}
	if mask == mayWrite && r.readOnly() {
		return nfs3.ErrROFS
	}
	if !mayOpen(at, &r.cred, mask) {
		return nfs3.ErrAcces
	}
	return nfs3.OK
}

func (x *nfsHandler) Read(ctx context.Context, c *rpc.Call, a *nfs3.ReadArgs) nfs3.ReadRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.ReadRes{Status: st}
	}
	n, st := r.node(a.File)
	if st != nfs3.OK {
		return nfs3.ReadRes{Status: st}
	}
	at, err := r.getattr(n)
	if err != nil {
		return nfs3.ReadRes{Status: r.fail(err)}
	}
	if st := r.checkIO(n, at, mayRead); st != nfs3.OK {
		return nfs3.ReadRes{Status: st, Attr: x.s.postOp(at, nil)}
	}
	count := int(min(a.Count, maxIO))
	if a.Offset >= uint64(at.Size) || count == 0 {
		return nfs3.ReadRes{Attr: x.s.postOp(at, nil), EOF: a.Offset >= uint64(at.Size)}
	}
	f, err := r.st.files.get(n, false)
	if err != nil {
		return nfs3.ReadRes{Status: r.fail(err), Attr: x.s.postOp(at, nil)}
	}
	defer r.st.files.put(f)
	bp := bufPool.Get().(*[]byte)
	got, err := f.h.ReadAt((*bp)[:count], int64(a.Offset))
	if err != nil && err != io.EOF {
		bufPool.Put(bp)
		return nfs3.ReadRes{Status: r.fail(err), Attr: x.s.postOp(at, nil)}
	}
	c.AfterReply(func() { bufPool.Put(bp) })
	// A file only in the layers cannot have changed during the read.
	if n.InDiff() {
		if after, err := f.h.Getattr(); err == nil {
			at = after
		}
	}
	return nfs3.ReadRes{
		Attr: x.s.postOp(at, nil),
		EOF:  a.Offset+uint64(got) >= uint64(at.Size),
		Data: (*bp)[:got],
	}
}

func (x *nfsHandler) Write(ctx context.Context, c *rpc.Call, a *nfs3.WriteArgs) nfs3.WriteRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.WriteRes{Status: st}
	}
	n, st := r.node(a.File)
	if st != nfs3.OK {
		return nfs3.WriteRes{Status: st}
	}
	before, err := r.getattr(n)
	if err != nil {
		return nfs3.WriteRes{Status: r.fail(err)}
	}
	res := nfs3.WriteRes{Wcc: nfs3.WccData{Before: preOp(before, nil)}}
	fail := func(st nfs3.Stat) nfs3.WriteRes {
		res.Status = st
		res.Wcc.After = r.attr(n)
		return res
	}
	if st := r.checkIO(n, before, mayWrite); st != nfs3.OK {
		return fail(st)
	}
	if a.Offset > math.MaxInt64-uint64(len(a.Data)) {
		return fail(nfs3.ErrFBig)
	}
	f, err := r.st.files.get(n, true)
	if err != nil {
		return fail(r.fail(err))
	}
	defer r.st.files.put(f)
	// A write by anyone but root drops setuid, and setgid when the group
	// may execute (the kernel's file_remove_privs).
	if r.cred.Uid != 0 && (before.Mode&unix.S_ISUID != 0 || before.Mode&(unix.S_ISGID|0o010) == unix.S_ISGID|0o010) {
		m := before.Mode & 0o7777 &^ unix.S_ISUID
		if m&0o010 != 0 {
			m &^= unix.S_ISGID
		}
		if _, err := r.o.Setattr(n, f.h, overlay.SetAttrIn{Mode: &m}); err != nil {
			return fail(r.fail(err))
		}
	}
	got, err := f.h.WriteAt(a.Data, int64(a.Offset))
	if err != nil {
		return fail(r.fail(err))
	}
	res.Committed = nfs3.FileSync
	switch a.Stable {
	case nfs3.Unstable:
		res.Committed = nfs3.Unstable
		r.st.files.mu.Lock()
		f.dirty = true
		r.st.files.mu.Unlock()
	case nfs3.DataSync:
		err = f.h.Fsync(true)
		res.Committed = nfs3.DataSync
	default:
		err = f.h.Fsync(false)
	}
	if err != nil {
		return fail(r.fail(err))
	}
	after, err := f.h.Getattr()
	res.Wcc.After = x.s.postOp(after, err)
	res.Count = uint32(got)
	res.Verf = x.s.verf
	return res
}

// dirOp is the common part of calls that change a directory: the
// directory, its attributes before, and the write+search check.
func (r *req) dirOp(fh nfs3.FH) (*overlay.Node, overlay.Attr, nfs3.WccData, nfs3.Stat) {
	dir, st := r.node(fh)
	if st != nfs3.OK {
		return nil, overlay.Attr{}, nfs3.WccData{}, st
	}
	da, err := r.getattr(dir)
	if err != nil {
		return nil, overlay.Attr{}, nfs3.WccData{}, r.fail(err)
	}
	wcc := nfs3.WccData{Before: preOp(da, nil)}
	switch {
	case !da.IsDir():
		st = nfs3.ErrNotDir
	case r.readOnly():
		st = nfs3.ErrROFS
	case !permits(da, &r.cred, mayWrite|mayExec):
		st = nfs3.ErrAcces
	}
	if st != nfs3.OK {
		wcc.After = r.s.postOp(da, nil)
	}
	return dir, da, wcc, st
}

// created fills a CREATE/MKDIR/SYMLINK/MKNOD result for new node n,
// applying the attributes the create call could not (owner, size, times).
func (r *req) created(dir, n *overlay.Node, wcc nfs3.WccData, sa *nfs3.Sattr) nfs3.CreateRes {
	r.changed()
	res := nfs3.CreateRes{DirWcc: wcc}
	if sa != nil {
		// knfsd lets only root choose the owner of what it creates.
		s := *sa
		s.SetMode = false
		if r.cred.Uid != 0 {
			s.SetUID, s.SetGID = false, false
		}
		if s.SetUID || s.SetGID || s.SetSize || s.Atime.How != nfs3.DontChange || s.Mtime.How != nfs3.DontChange {
			r.applyNew(n, &s)
		}
	}
	if fh, err := r.fh(n); err == nil {
		res.FH = nfs3.PostOpFH{Present: true, FH: fh}
	}
	res.Attr = r.attr(n)
	res.DirWcc.After = r.attr(dir)
	return res
}

// applyNew sets what a create call could not (owner, size, times).
func (r *req) applyNew(n *overlay.Node, s *nfs3.Sattr) {
	at, err := r.getattr(n)
	if err != nil {
		return
	}
	if s.SetSize && s.Size == uint64(at.Size) {
		s.SetSize = false
	}
	if in, err := r.sattr(at, s); err == nil && !emptyIn(in) {
		if _, err := r.setattr(n, in); err != nil {
			r.st.log.Debug("attributes of new object not set", "err", err)
		}
	}
}

func (r *req) createFail(dir *overlay.Node, wcc nfs3.WccData, st nfs3.Stat) nfs3.CreateRes {
	if dir != nil && !wcc.After.Present {
		wcc.After = r.attr(dir)
	}
	return nfs3.CreateRes{Status: st, DirWcc: wcc}
}

// exclusive create verifiers live in mtime and atime seconds, as knfsd
// keeps them (high bits cleared).
func verfTimes(v [nfs3.CreateVerfSize]byte) (mt, at uint32) {
	mt = (uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])) & 0x7fffffff
	at = (uint32(v[4])<<24 | uint32(v[5])<<16 | uint32(v[6])<<8 | uint32(v[7])) & 0x7fffffff
	return
}

// createIn is the frame CREATE, MKDIR, SYMLINK and MKNOD share: the
// caller's credentials, the duplicate request cache, the directory's pre-op
// attributes and the refusal of "." and "..". check, when set, runs first
// inside the cache (MKNOD's type check, answered without wcc data).
func (x *nfsHandler) createIn(c *rpc.Call, where nfs3.DirOpArgs, check func() nfs3.Stat,
	do func(r *req, dir *overlay.Node, wcc nfs3.WccData) nfs3.CreateRes) nfs3.CreateRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.CreateRes{Status: st}
	}
	return drcDo(x.s.drc, r.key(where.Dir, []byte(where.Name)), func() nfs3.CreateRes {
		if check != nil {
			if st := check(); st != nfs3.OK {
				return nfs3.CreateRes{Status: st}
			}
		}
		dir, _, wcc, st := r.dirOp(where.Dir)
		if st != nfs3.OK {
			return r.createFail(dir, wcc, st)
		}
		if where.Name == "." || where.Name == ".." {
			return r.createFail(dir, wcc, nfs3.ErrExist)
		}
		return do(r, dir, wcc)
	})
}

func (x *nfsHandler) Create(ctx context.Context, c *rpc.Call, a *nfs3.CreateArgs) nfs3.CreateRes {
	return x.createIn(c, a.Where, nil, func(r *req, dir *overlay.Node, wcc nfs3.WccData) nfs3.CreateRes {
		name := a.Where.Name
		mt, atm := verfTimes(a.Verf)
		if old, err := r.o.Lookup(dir, name); err == nil {
			oa, err := r.getattr(old)
			if err != nil {
				return r.createFail(dir, wcc, r.fail(err))
			}
			switch a.Mode {
			case nfs3.Exclusive:
				if oa.IsRegular() && uint32(oa.Mtime.Unix()) == mt && uint32(oa.Atime.Unix()) == atm {
					return r.created(dir, old, wcc, nil) // a retransmission
				}
				return r.createFail(dir, wcc, nfs3.ErrExist)
			case nfs3.Guarded:
				return r.createFail(dir, wcc, nfs3.ErrExist)
			}
			if !oa.IsRegular() {
				return r.createFail(dir, wcc, nfs3.ErrExist)
			}
			if a.Attr.SetSize {
				s := nfs3.Sattr{SetSize: true, Size: a.Attr.Size}
				in, err := r.sattr(oa, &s)
				if err == nil {
					_, err = r.setattr(old, in)
				}
				if err != nil {
					return r.createFail(dir, wcc, r.fail(err))
				}
			}
			return r.created(dir, old, wcc, nil)
		} else if !errors.Is(err, syscall.ENOENT) {
			return r.createFail(dir, wcc, r.fail(err))
		}
		var mode uint32
		if a.Mode != nfs3.Exclusive && a.Attr.SetMode {
			mode = a.Attr.Mode & 0o7777
		}
		n, h, err := r.o.Create(dir, name, unix.O_RDWR, fsys.S_IFREG|mode, &r.cred)
		if err != nil {
			return r.createFail(dir, wcc, r.fail(err))
		}
		r.st.files.adopt(n, h)
		if a.Mode == nfs3.Exclusive {
			m, at := time.Unix(int64(mt), 0), time.Unix(int64(atm), 0)
			if _, err := r.o.Setattr(n, nil, overlay.SetAttrIn{Mtime: &m, Atime: &at}); err != nil {
				return r.createFail(dir, wcc, r.fail(err))
			}
			return r.created(dir, n, wcc, nil)
		}
		return r.created(dir, n, wcc, &a.Attr)
	})
}

func (x *nfsHandler) Mkdir(ctx context.Context, c *rpc.Call, a *nfs3.MkdirArgs) nfs3.CreateRes {
	return x.createIn(c, a.Where, nil, func(r *req, dir *overlay.Node, wcc nfs3.WccData) nfs3.CreateRes {
		var mode uint32
		if a.Attr.SetMode {
			mode = a.Attr.Mode & 0o7777
		}
		n, err := r.o.Mkdir(dir, a.Where.Name, fsys.S_IFDIR|mode, &r.cred)
		r.st.nlinks.drop(dir)
		if err != nil {
			return r.createFail(dir, wcc, r.fail(err))
		}
		return r.created(dir, n, wcc, &a.Attr)
	})
}

func (x *nfsHandler) Symlink(ctx context.Context, c *rpc.Call, a *nfs3.SymlinkArgs) nfs3.CreateRes {
	return x.createIn(c, a.Where, nil, func(r *req, dir *overlay.Node, wcc nfs3.WccData) nfs3.CreateRes {
		if a.Target == "" {
			return r.createFail(dir, wcc, nfs3.ErrInval)
		}
		n, err := r.o.Symlink(dir, a.Where.Name, a.Target, &r.cred)
		if err != nil {
			return r.createFail(dir, wcc, r.fail(err))
		}
		sa := a.Attr
		sa.SetSize = false
		return r.created(dir, n, wcc, &sa)
	})
}

func (x *nfsHandler) Mknod(ctx context.Context, c *rpc.Call, a *nfs3.MknodArgs) nfs3.CreateRes {
	var typ uint32
	badType := func() nfs3.Stat {
		switch a.Type {
		case nfs3.TypeChr:
			typ = fsys.S_IFCHR
		case nfs3.TypeBlk:
			typ = fsys.S_IFBLK
		case nfs3.TypeSock:
			typ = fsys.S_IFSOCK
		case nfs3.TypeFIFO:
			typ = fsys.S_IFIFO
		default:
			return nfs3.ErrBadType
		}
		return nfs3.OK
	}
	return x.createIn(c, a.Where, badType, func(r *req, dir *overlay.Node, wcc nfs3.WccData) nfs3.CreateRes {
		var rdev uint64
		if typ == fsys.S_IFCHR || typ == fsys.S_IFBLK {
			if r.cred.Uid != 0 {
				return r.createFail(dir, wcc, nfs3.ErrPerm) // CAP_MKNOD
			}
			rdev = fsys.Mkdev(a.Spec.Major, a.Spec.Minor)
		}
		var mode uint32
		if a.Attr.SetMode {
			mode = a.Attr.Mode & 0o7777
		}
		n, err := r.o.Mknod(dir, a.Where.Name, typ|mode, rdev, &r.cred)
		if err != nil {
			return r.createFail(dir, wcc, r.fail(err))
		}
		sa := a.Attr
		sa.SetSize = false
		return r.created(dir, n, wcc, &sa)
	})
}

// victim looks up name in dir for removal and applies the sticky check.
func (r *req) victim(dir *overlay.Node, da overlay.Attr, name string) (*overlay.Node, overlay.Attr, error) {
	n, err := r.o.Lookup(dir, name)
	if err != nil {
		return nil, overlay.Attr{}, err
	}
	va, err := r.getattr(n)
	if err != nil {
		return nil, overlay.Attr{}, err
	}
	if !stickyOK(da, va, &r.cred) {
		return nil, overlay.Attr{}, syscall.EPERM
	}
	return n, va, nil
}

func (x *nfsHandler) Remove(ctx context.Context, c *rpc.Call, a *nfs3.DirOpArgs) nfs3.WccRes {
	return x.remove(c, a, false)
}

func (x *nfsHandler) Rmdir(ctx context.Context, c *rpc.Call, a *nfs3.DirOpArgs) nfs3.WccRes {
	return x.remove(c, a, true)
}

func (x *nfsHandler) remove(c *rpc.Call, a *nfs3.DirOpArgs, isDir bool) nfs3.WccRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.WccRes{Status: st}
	}
	return drcDo(x.s.drc, r.key(a.Dir, []byte(a.Name)), func() nfs3.WccRes {
		dir, da, wcc, st := r.dirOp(a.Dir)
		res := nfs3.WccRes{Wcc: wcc}
		if st == nfs3.OK {
			switch {
			case a.Name == "." && isDir:
				st = nfs3.ErrInval
			case a.Name == ".." && isDir:
				st = nfs3.ErrNotEmpty
			case a.Name == "." || a.Name == "..":
				st = nfs3.ErrIsDir
			}
		}
		if st == nfs3.OK {
			n, va, err := r.victim(dir, da, a.Name)
			switch {
			case err != nil:
			case isDir && !va.IsDir():
				err = syscall.ENOTDIR
			case !isDir && va.IsDir():
				err = syscall.EISDIR
			case isDir:
				err = r.o.Rmdir(dir, a.Name)
				r.st.nodes.drop(n)
				r.st.nlinks.drop(dir, n)
			default:
				err = r.o.Unlink(dir, a.Name)
				r.st.files.forget(n)
				r.st.nodes.drop(n)
			}
			r.changed()
			st = r.fail(err)
		}
		res.Status = st
		if dir != nil {
			res.Wcc.After = r.attr(dir)
		}
		return res
	})
}

func (x *nfsHandler) Rename(ctx context.Context, c *rpc.Call, a *nfs3.RenameArgs) nfs3.RenameRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.RenameRes{Status: st}
	}
	return drcDo(x.s.drc, r.key(a.From.Dir, []byte(a.From.Name), a.To.Dir, []byte(a.To.Name)), func() nfs3.RenameRes {
		var res nfs3.RenameRes
		odir, oda, owcc, st := r.dirOp(a.From.Dir)
		res.FromWcc = owcc
		if st != nfs3.OK {
			res.Status = st
			return res
		}
		ndir, nda, nwcc, st := r.dirOp(a.To.Dir)
		res.ToWcc = nwcc
		finish := func(err error) nfs3.RenameRes {
			res.Status = r.fail(err)
			res.FromWcc.After = r.attr(odir)
			if ndir != nil {
				res.ToWcc.After = r.attr(ndir)
			}
			return res
		}
		if st != nfs3.OK {
			res.Status = st
			res.FromWcc.After = r.attr(odir)
			return res
		}
		for _, nm := range []string{a.From.Name, a.To.Name} {
			if nm == "." || nm == ".." {
				return finish(syscall.EINVAL)
			}
		}
		src, sa, err := r.victim(odir, oda, a.From.Name)
		if err != nil {
			return finish(err)
		}
		var dst *overlay.Node
		if t, err := r.o.Lookup(ndir, a.To.Name); err == nil {
			if t == src {
				return finish(nil) // same object: nothing to do
			}
			ta, err := r.getattr(t)
			if err != nil {
				return finish(err)
			}
			if !stickyOK(nda, ta, &r.cred) {
				return finish(syscall.EPERM)
			}
			dst = t
		}
		// Moving a directory to a new parent rewrites its "..".
		if sa.IsDir() && odir != ndir && !permits(sa, &r.cred, mayWrite) {
			return finish(syscall.EACCES)
		}
		err = r.o.Rename(odir, a.From.Name, ndir, a.To.Name, 0)
		r.changed()
		r.st.nlinks.drop(odir, ndir, src, dst)
		if err == nil {
			r.st.files.forget(dst)
			r.st.nodes.drop(dst)
		}
		return finish(err)
	})
}

func (x *nfsHandler) Link(ctx context.Context, c *rpc.Call, a *nfs3.LinkArgs) nfs3.LinkRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.LinkRes{Status: st}
	}
	return drcDo(x.s.drc, r.key(a.File, a.Link.Dir, []byte(a.Link.Name)), func() nfs3.LinkRes {
		n, st := r.node(a.File)
		if st != nfs3.OK {
			return nfs3.LinkRes{Status: st}
		}
		dir, _, wcc, st := r.dirOp(a.Link.Dir)
		res := nfs3.LinkRes{LinkWcc: wcc}
		if st == nfs3.OK {
			switch {
			case n.IsDir():
				st = nfs3.ErrIsDir
			case a.Link.Name == "." || a.Link.Name == "..":
				st = nfs3.ErrExist
			default:
				_, err := r.o.Link(n, dir, a.Link.Name)
				r.changed()
				st = r.fail(err)
			}
		}
		res.Status = st
		res.Attr = r.attr(n)
		if dir != nil {
			res.LinkWcc.After = r.attr(dir)
		}
		return res
	})
}

// listing returns dir's entries with "." and ".." first (cookies 1 and
// 2; every other cookie is a hash of the name, so it stays valid whatever
// changes in the directory).
func (r *req) listing(dir *overlay.Node) ([]overlay.DirEntry, error) {
	return r.st.dirs.list(r.o, dir, r.st.gen.Load())
}

// readdirStart checks a READDIR(PLUS) call and returns the directory,
// its attributes and its entries.
func (r *req) readdirStart(fh nfs3.FH) (*overlay.Node, overlay.Attr, []overlay.DirEntry, nfs3.Stat) {
	dir, st := r.node(fh)
	if st != nfs3.OK {
		return nil, overlay.Attr{}, nil, st
	}
	da, err := r.getattr(dir)
	if err != nil {
		return nil, overlay.Attr{}, nil, r.fail(err)
	}
	if !da.IsDir() {
		return dir, da, nil, nfs3.ErrNotDir
	}
	if !permits(da, &r.cred, mayRead) {
		return dir, da, nil, nfs3.ErrAcces
	}
	ents, err := r.listing(dir)
	if err != nil {
		return dir, da, nil, r.fail(err)
	}
	return dir, da, ents, nfs3.OK
}

// dirEntries yields "." and ".." and then the entries after cookie.
func dirEntries(dir *overlay.Node, da overlay.Attr, parent uint64, ents []overlay.DirEntry, cookie uint64, f func(e overlay.DirEntry) bool) bool {
	dots := []overlay.DirEntry{{Name: ".", Ino: da.Ino, Cookie: 1, Mode: fsys.S_IFDIR}, {Name: "..", Ino: parent, Cookie: 2, Mode: fsys.S_IFDIR}}
	for _, e := range dots {
		if e.Cookie > cookie && !f(e) {
			return false
		}
	}
	// Entries are sorted by cookie: skip to the first after it.
	lo, hi := 0, len(ents)
	for lo < hi {
		m := (lo + hi) / 2
		if ents[m].Cookie <= cookie {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for _, e := range ents[lo:] {
		if !f(e) {
			return false
		}
	}
	return true
}

func (r *req) parentIno(dir *overlay.Node) uint64 {
	if p, err := r.o.Lookup(dir, ".."); err == nil {
		return p.Ino()
	}
	return dir.Ino()
}

func (x *nfsHandler) Readdir(ctx context.Context, c *rpc.Call, a *nfs3.ReaddirArgs) nfs3.ReaddirRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.ReaddirRes{Status: st}
	}
	dir, da, ents, st := r.readdirStart(a.Dir)
	res := nfs3.ReaddirRes{Status: st}
	if dir != nil {
		res.DirAttr = x.s.postOp(da, nil)
	}
	if st != nfs3.OK {
		return res
	}
	budget := int(min(a.Count, maxReply)) - nfs3.ReaddirResOverhead
	res.EOF = dirEntries(dir, da, r.parentIno(dir), ents, a.Cookie, func(e overlay.DirEntry) bool {
		sz := nfs3.DirEntrySize(e.Name)
		if sz > budget {
			return false
		}
		budget -= sz
		res.Entries = append(res.Entries, nfs3.DirEntry{FileID: e.Ino, Name: e.Name, Cookie: e.Cookie})
		return true
	})
	if !res.EOF && len(res.Entries) == 0 {
		return nfs3.ReaddirRes{Status: nfs3.ErrTooSmall, DirAttr: res.DirAttr}
	}
	return res
}

func (x *nfsHandler) Readdirplus(ctx context.Context, c *rpc.Call, a *nfs3.ReaddirplusArgs) nfs3.ReaddirplusRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.ReaddirplusRes{Status: st}
	}
	dir, da, ents, st := r.readdirStart(a.Dir)
	res := nfs3.ReaddirplusRes{Status: st}
	if dir != nil {
		res.DirAttr = x.s.postOp(da, nil)
	}
	if st != nfs3.OK {
		return res
	}
	budget := int(min(a.MaxCount, maxReply)) - nfs3.ReaddirResOverhead
	dbudget := int(min(a.DirCount, maxReply))
	// The entries and their handles live until the reply is encoded:
	// reuse them across calls rather than allocate per entry.
	sc := getPlusScratch()
	c.AfterReply(sc.release)
	res.Entries = sc.ents[:0]
	res.EOF = dirEntries(dir, da, r.parentIno(dir), ents, a.Cookie, func(e overlay.DirEntry) bool {
		if dbudget < nfs3.DirEntrySize(e.Name) && len(res.Entries) > 0 {
			return false
		}
		ent := nfs3.DirEntryPlus{FileID: e.Ino, Name: e.Name, Cookie: e.Cookie}
		at, id, ok := r.o.EntryAttr(dir, &e, sc.id[:0])
		sc.id = id
		if ok {
			// A plain lower object: attributes and ID from the listing,
			// with no node made until its handle is used.
			ent.Attr = x.s.postOp(at, nil)
			var fh nfs3.FH
			sc.fhs, fh = r.st.appendFH(sc.fhs, id)
			r.st.nodes.hint(fh[fhHeader:], dir, e.Name)
			ent.FH = nfs3.PostOpFH{Present: true, FH: fh}
		} else if n, err := r.o.Lookup(dir, e.Name); err == nil {
			if at, err := r.getattr(n); err == nil {
				ent.Attr = x.s.postOp(at, nil)
				ent.FileID = at.Ino
			}
			if id, err := r.o.AppendID(sc.id[:0], n); err == nil {
				sc.id = id
				r.st.nodes.put(id, n)
				var fh nfs3.FH
				sc.fhs, fh = r.st.appendFH(sc.fhs, id)
				ent.FH = nfs3.PostOpFH{Present: true, FH: fh}
			}
		}
		fhLen := -1
		if ent.FH.Present {
			fhLen = len(ent.FH.FH)
		}
		sz := nfs3.DirEntryPlusSize(e.Name, ent.Attr.Present, fhLen)
		if sz > budget {
			return false
		}
		budget -= sz
		dbudget -= nfs3.DirEntrySize(e.Name)
		res.Entries = append(res.Entries, ent)
		return true
	})
	sc.ents = res.Entries
	if !res.EOF && len(res.Entries) == 0 {
		return nfs3.ReaddirplusRes{Status: nfs3.ErrTooSmall, DirAttr: res.DirAttr}
	}
	return res
}

// plusScratch is one READDIRPLUS reply's entries and handle bytes.
type plusScratch struct {
	ents []nfs3.DirEntryPlus
	fhs  []byte
	id   []byte // one entry's overlay ID
	// release returns the scratch to plusPool; made once per scratch so
	// that registering it allocates nothing.
	release func()
}

var plusPool sync.Pool

func getPlusScratch() *plusScratch {
	if sc, ok := plusPool.Get().(*plusScratch); ok {
		return sc
	}
	sc := &plusScratch{}
	sc.release = func() {
		if cap(sc.ents) > 8192 || cap(sc.fhs) > 1<<20 {
			return // a huge reply: let it go
		}
		clear(sc.ents)
		sc.ents = sc.ents[:0]
		sc.fhs = sc.fhs[:0]
		plusPool.Put(sc)
	}
	return sc
}

func (x *nfsHandler) Fsstat(ctx context.Context, c *rpc.Call, a *nfs3.FHArgs) nfs3.FsstatRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.FsstatRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.FsstatRes{Status: st}
	}
	res := nfs3.FsstatRes{Attr: r.attr(n)}
	sf, err := r.o.Statfs()
	if err != nil {
		res.Status = r.fail(err)
		return res
	}
	bs := uint64(sf.Frsize)
	if bs == 0 {
		bs = uint64(sf.Bsize)
	}
	res.TBytes, res.FBytes, res.ABytes = sf.Blocks*bs, sf.Bfree*bs, sf.Bavail*bs
	res.TFiles, res.FFiles, res.AFiles = sf.Files, sf.Ffree, sf.Ffree
	return res
}

func (x *nfsHandler) Fsinfo(ctx context.Context, c *rpc.Call, a *nfs3.FHArgs) nfs3.FsinfoRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.FsinfoRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.FsinfoRes{Status: st}
	}
	return nfs3.FsinfoRes{
		Attr:  r.attr(n),
		RTMax: maxIO, RTPref: maxIO, RTMult: 4096,
		WTMax: maxIO, WTPref: maxIO, WTMult: 4096,
		DTPref:      dirPref,
		MaxFileSize: math.MaxInt64,
		TimeDelta:   nfs3.Time{Nsec: 1},
		Properties:  nfs3.FSFLink | nfs3.FSFSymlink | nfs3.FSFHomogeneous | nfs3.FSFCanSetTime,
	}
}

func (x *nfsHandler) Pathconf(ctx context.Context, c *rpc.Call, a *nfs3.FHArgs) nfs3.PathconfRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.PathconfRes{Status: st}
	}
	n, st := r.node(a.Object)
	if st != nfs3.OK {
		return nfs3.PathconfRes{Status: st}
	}
	return nfs3.PathconfRes{
		Attr: r.attr(n), LinkMax: 65000, NameMax: nfs3.MaxNameLen,
		NoTrunc: true, ChownRestricted: true, CasePreserving: true,
	}
}

func (x *nfsHandler) Commit(ctx context.Context, c *rpc.Call, a *nfs3.CommitArgs) nfs3.CommitRes {
	r, st := x.begin(c)
	if st != nfs3.OK {
		return nfs3.CommitRes{Status: st}
	}
	n, st := r.node(a.File)
	if st != nfs3.OK {
		return nfs3.CommitRes{Status: st}
	}
	before, err := r.getattr(n)
	if err != nil {
		return nfs3.CommitRes{Status: r.fail(err)}
	}
	res := nfs3.CommitRes{Wcc: nfs3.WccData{Before: preOp(before, nil)}}
	switch {
	case before.IsDir():
		res.Status = nfs3.ErrIsDir
	case !before.IsRegular():
		res.Status = nfs3.ErrInval
	default:
		// An fsync on any descriptor of the inode flushes its dirty pages,
		// so a fresh read-only open serves when the writer was closed.
		f, err := r.st.files.get(n, false)
		if err == nil {
			err = f.h.Fsync(false)
			if err == nil {
				r.st.files.mu.Lock()
				f.dirty = false
				r.st.files.mu.Unlock()
			}
			r.st.files.put(f)
		}
		res.Status = r.fail(err)
	}
	res.Wcc.After = r.attr(n)
	if res.Status == nfs3.OK {
		res.Verf = x.s.verf
	}
	return res
}
