// Package mount implements the wire protocol of MOUNT version 3, program
// 100005 (RFC 1813 appendix I): types, their XDR codecs in both
// directions, and a dispatcher that decodes calls, hands them to a Handler
// and encodes its answers. Which paths may be mounted, by whom, and what
// root file handle they map to is the Handler's business.
package mount

import (
	"context"
	"fmt"

	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Program, version and protocol bounds.
const (
	Prog = 100005
	Vers = 3

	MaxPathLen = 1024 // MNTPATHLEN
	MaxNameLen = 255  // MNTNAMLEN
	FHSize     = 64   // FHSIZE3

	// Decoding bounds for lists in replies (the client side).
	MaxFlavors = 16
	MaxEntries = 65536
	MaxGroups  = 4096
)

// Procedures.
const (
	ProcNull    = 0
	ProcMnt     = 1
	ProcDump    = 2
	ProcUmnt    = 3
	ProcUmntAll = 4
	ProcExport  = 5
)

// Stat is mountstat3.
type Stat uint32

const (
	OK             Stat = 0
	ErrPerm        Stat = 1
	ErrNoEnt       Stat = 2
	ErrIO          Stat = 5
	ErrAcces       Stat = 13
	ErrNotDir      Stat = 20
	ErrInval       Stat = 22
	ErrNameTooLong Stat = 63
	ErrNotSupp     Stat = 10004
	ErrServerFault Stat = 10006
)

func (s Stat) String() string {
	switch s {
	case OK:
		return "MNT3_OK"
	case ErrPerm:
		return "MNT3ERR_PERM"
	case ErrNoEnt:
		return "MNT3ERR_NOENT"
	case ErrIO:
		return "MNT3ERR_IO"
	case ErrAcces:
		return "MNT3ERR_ACCES"
	case ErrNotDir:
		return "MNT3ERR_NOTDIR"
	case ErrInval:
		return "MNT3ERR_INVAL"
	case ErrNameTooLong:
		return "MNT3ERR_NAMETOOLONG"
	case ErrNotSupp:
		return "MNT3ERR_NOTSUPP"
	case ErrServerFault:
		return "MNT3ERR_SERVERFAULT"
	}
	return fmt.Sprintf("mountstat3(%d)", uint32(s))
}

// DirPath is the argument of MNT and UMNT.
type DirPath struct{ Path string }

// EncodeXDR implements xdr.Encodable.
func (p *DirPath) EncodeXDR(e *xdr.Encoder) { e.String(p.Path) }

// DecodeXDR implements xdr.Decodable.
func (p *DirPath) DecodeXDR(d *xdr.Decoder) { p.Path = d.String(MaxPathLen) }

// MntRes is mountres3.
type MntRes struct {
	Status      Stat
	FH          []byte // when OK; at most FHSize bytes
	AuthFlavors []rpc.Flavor
}

// EncodeXDR implements xdr.Encodable.
func (r *MntRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status != OK {
		return
	}
	e.Opaque(r.FH)
	e.Uint32(uint32(len(r.AuthFlavors)))
	for _, f := range r.AuthFlavors {
		e.Uint32(uint32(f))
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *MntRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = Stat(d.Uint32())
	if r.Status != OK {
		return
	}
	r.FH = d.Opaque(FHSize)
	n := d.Count(MaxFlavors, 4)
	r.AuthFlavors = make([]rpc.Flavor, n)
	for i := range r.AuthFlavors {
		r.AuthFlavors[i] = rpc.Flavor(d.Uint32())
	}
}

// MountEntry is one element of mountlist.
type MountEntry struct {
	Hostname  string
	Directory string
}

// MountList is the DUMP result.
type MountList []MountEntry

// EncodeXDR implements xdr.Encodable.
func (l *MountList) EncodeXDR(e *xdr.Encoder) {
	for _, m := range *l {
		e.Bool(true)
		e.String(m.Hostname)
		e.String(m.Directory)
	}
	e.Bool(false)
}

// DecodeXDR implements xdr.Decodable.
func (l *MountList) DecodeXDR(d *xdr.Decoder) {
	*l = (*l)[:0]
	for d.Bool() {
		if len(*l) >= MaxEntries {
			d.SetErr(xdr.ErrTooLong)
			return
		}
		m := MountEntry{Hostname: d.String(MaxNameLen), Directory: d.String(MaxPathLen)}
		if d.Err() != nil {
			return
		}
		*l = append(*l, m)
	}
}

// ExportEntry is one element of exports: a directory and the groups
// (host names, netgroups or address ranges) allowed to mount it.
type ExportEntry struct {
	Dir    string
	Groups []string
}

// ExportList is the EXPORT result.
type ExportList []ExportEntry

// EncodeXDR implements xdr.Encodable.
func (l *ExportList) EncodeXDR(e *xdr.Encoder) {
	for _, x := range *l {
		e.Bool(true)
		e.String(x.Dir)
		for _, g := range x.Groups {
			e.Bool(true)
			e.String(g)
		}
		e.Bool(false)
	}
	e.Bool(false)
}

// DecodeXDR implements xdr.Decodable.
func (l *ExportList) DecodeXDR(d *xdr.Decoder) {
	*l = (*l)[:0]
	for d.Bool() {
		if len(*l) >= MaxEntries {
			d.SetErr(xdr.ErrTooLong)
			return
		}
		x := ExportEntry{Dir: d.String(MaxPathLen)}
		for d.Bool() {
			if len(x.Groups) >= MaxGroups {
				d.SetErr(xdr.ErrTooLong)
				return
			}
			x.Groups = append(x.Groups, d.String(MaxNameLen))
		}
		if d.Err() != nil {
			return
		}
		*l = append(*l, x)
	}
}

// Handler answers MOUNT calls. The call carries the caller's credential
// and address. Paths are at most MaxPathLen bytes.
type Handler interface {
	// Mnt maps a path to the root file handle of an export and the
	// authentication flavors the client may use with it.
	Mnt(ctx context.Context, call *rpc.Call, path string) MntRes
	// Dump lists the mounts the server believes are active.
	Dump(ctx context.Context, call *rpc.Call) MountList
	// Umnt records that the caller unmounted path.
	Umnt(ctx context.Context, call *rpc.Call, path string)
	// UmntAll records that the caller unmounted everything.
	UmntAll(ctx context.Context, call *rpc.Call)
	// Export lists the exports and the groups allowed to mount them.
	Export(ctx context.Context, call *rpc.Call) ExportList
}

// Register adds MOUNT v3 to s, dispatching to h. MOUNT is served over
// UDP as well as TCP.
func Register(s *rpc.Server, h Handler) error {
	path := func(d *xdr.Decoder) (string, error) {
		var p DirPath
		p.DecodeXDR(d)
		if d.Err() != nil {
			return "", rpc.Garbage(d.Err())
		}
		return p.Path, nil
	}
	procs := []rpc.Proc{
		ProcNull: {Name: "NULL", Fn: func(context.Context, *rpc.Call, *xdr.Decoder, *xdr.Encoder) error { return nil }},
		ProcMnt: {Name: "MNT", Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			p, err := path(d)
			if err != nil {
				return err
			}
			r := h.Mnt(ctx, c, p)
			if r.Status == OK && len(r.FH) > FHSize {
				return fmt.Errorf("mount: handler returned a %d-byte file handle", len(r.FH))
			}
			r.EncodeXDR(e)
			return nil
		}},
		ProcDump: {Name: "DUMP", Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			l := h.Dump(ctx, c)
			l.EncodeXDR(e)
			return nil
		}},
		ProcUmnt: {Name: "UMNT", Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			p, err := path(d)
			if err != nil {
				return err
			}
			h.Umnt(ctx, c, p)
			return nil
		}},
		ProcUmntAll: {Name: "UMNTALL", Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			h.UmntAll(ctx, c)
			return nil
		}},
		ProcExport: {Name: "EXPORT", Fn: func(ctx context.Context, c *rpc.Call, d *xdr.Decoder, e *xdr.Encoder) error {
			l := h.Export(ctx, c)
			l.EncodeXDR(e)
			return nil
		}},
	}
	return s.Register(rpc.Program{Name: "mount", Prog: Prog, Low: Vers, High: Vers, Procs: procs})
}
