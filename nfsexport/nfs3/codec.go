package nfs3

import (
	"fmt"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// maxNameDecode bounds names on the wire. It is above MaxNameLen so that
// an overlong name is answered NFS3ERR_NAMETOOLONG, as clients expect,
// rather than GARBAGE_ARGS.
const maxNameDecode = 1024

func badValue(d *xdr.Decoder, what string, v uint32) {
	d.SetErr(fmt.Errorf("%w: %s %d", xdr.ErrBadValue, what, v))
}

func encFH(e *xdr.Encoder, fh FH)   { e.Opaque(fh) }
func decFH(d *xdr.Decoder) FH       { return FH(d.Opaque(FHSize)) }
func decName(d *xdr.Decoder) string { return d.String(maxNameDecode) }

func (t *Time) enc(e *xdr.Encoder) { e.Uint32(t.Sec); e.Uint32(t.Nsec) }
func (t *Time) dec(d *xdr.Decoder) { t.Sec, t.Nsec = d.Uint32(), d.Uint32() }

// EncodeXDR implements xdr.Encodable.
func (a *Fattr) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(a.Type))
	e.Uint32(a.Mode)
	e.Uint32(a.Nlink)
	e.Uint32(a.UID)
	e.Uint32(a.GID)
	e.Uint64(a.Size)
	e.Uint64(a.Used)
	e.Uint32(a.Rdev.Major)
	e.Uint32(a.Rdev.Minor)
	e.Uint64(a.FSID)
	e.Uint64(a.FileID)
	a.Atime.enc(e)
	a.Mtime.enc(e)
	a.Ctime.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (a *Fattr) DecodeXDR(d *xdr.Decoder) {
	a.Type = FType(d.Uint32())
	a.Mode, a.Nlink, a.UID, a.GID = d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
	a.Size, a.Used = d.Uint64(), d.Uint64()
	a.Rdev.Major, a.Rdev.Minor = d.Uint32(), d.Uint32()
	a.FSID, a.FileID = d.Uint64(), d.Uint64()
	a.Atime.dec(d)
	a.Mtime.dec(d)
	a.Ctime.dec(d)
}

func (p *PostOpAttr) enc(e *xdr.Encoder) {
	e.Bool(p.Present)
	if p.Present {
		p.Attr.EncodeXDR(e)
	}
}

func (p *PostOpAttr) dec(d *xdr.Decoder) {
	if p.Present = d.Bool(); p.Present {
		p.Attr.DecodeXDR(d)
	}
}

func (p *PreOpAttr) enc(e *xdr.Encoder) {
	e.Bool(p.Present)
	if p.Present {
		e.Uint64(p.Attr.Size)
		p.Attr.Mtime.enc(e)
		p.Attr.Ctime.enc(e)
	}
}

func (p *PreOpAttr) dec(d *xdr.Decoder) {
	if p.Present = d.Bool(); p.Present {
		p.Attr.Size = d.Uint64()
		p.Attr.Mtime.dec(d)
		p.Attr.Ctime.dec(d)
	}
}

func (w *WccData) enc(e *xdr.Encoder) { w.Before.enc(e); w.After.enc(e) }
func (w *WccData) dec(d *xdr.Decoder) { w.Before.dec(d); w.After.dec(d) }

func (p *PostOpFH) enc(e *xdr.Encoder) {
	e.Bool(p.Present)
	if p.Present {
		encFH(e, p.FH)
	}
}

func (p *PostOpFH) dec(d *xdr.Decoder) {
	if p.Present = d.Bool(); p.Present {
		p.FH = decFH(d)
	}
}

func (t *SetTime) enc(e *xdr.Encoder) {
	e.Uint32(uint32(t.How))
	if t.How == SetToClientTime {
		t.Time.enc(e)
	}
}

func (t *SetTime) dec(d *xdr.Decoder) {
	t.How = TimeHow(d.Uint32())
	switch t.How {
	case DontChange, SetToServerTime:
	case SetToClientTime:
		t.Time.dec(d)
	default:
		badValue(d, "time_how", uint32(t.How))
	}
}

// EncodeXDR implements xdr.Encodable.
func (s *Sattr) EncodeXDR(e *xdr.Encoder) {
	e.Bool(s.SetMode)
	if s.SetMode {
		e.Uint32(s.Mode)
	}
	e.Bool(s.SetUID)
	if s.SetUID {
		e.Uint32(s.UID)
	}
	e.Bool(s.SetGID)
	if s.SetGID {
		e.Uint32(s.GID)
	}
	e.Bool(s.SetSize)
	if s.SetSize {
		e.Uint64(s.Size)
	}
	s.Atime.enc(e)
	s.Mtime.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (s *Sattr) DecodeXDR(d *xdr.Decoder) {
	if s.SetMode = d.Bool(); s.SetMode {
		s.Mode = d.Uint32()
	}
	if s.SetUID = d.Bool(); s.SetUID {
		s.UID = d.Uint32()
	}
	if s.SetGID = d.Bool(); s.SetGID {
		s.GID = d.Uint32()
	}
	if s.SetSize = d.Bool(); s.SetSize {
		s.Size = d.Uint64()
	}
	s.Atime.dec(d)
	s.Mtime.dec(d)
}

func (a *DirOpArgs) enc(e *xdr.Encoder) { encFH(e, a.Dir); e.String(a.Name) }
func (a *DirOpArgs) dec(d *xdr.Decoder) { a.Dir = decFH(d); a.Name = decName(d) }

// EncodeXDR implements xdr.Encodable.
func (a *DirOpArgs) EncodeXDR(e *xdr.Encoder) { a.enc(e) }

// DecodeXDR implements xdr.Decodable.
func (a *DirOpArgs) DecodeXDR(d *xdr.Decoder) { a.dec(d) }

// ---- arguments ----

// EncodeXDR implements xdr.Encodable.
func (a *FHArgs) EncodeXDR(e *xdr.Encoder) { encFH(e, a.Object) }

// DecodeXDR implements xdr.Decodable.
func (a *FHArgs) DecodeXDR(d *xdr.Decoder) { a.Object = decFH(d) }

// EncodeXDR implements xdr.Encodable.
func (a *SetattrArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.Object)
	a.Attr.EncodeXDR(e)
	e.Bool(a.Guard)
	if a.Guard {
		a.GuardCtime.enc(e)
	}
}

// DecodeXDR implements xdr.Decodable.
func (a *SetattrArgs) DecodeXDR(d *xdr.Decoder) {
	a.Object = decFH(d)
	a.Attr.DecodeXDR(d)
	if a.Guard = d.Bool(); a.Guard {
		a.GuardCtime.dec(d)
	}
}

// EncodeXDR implements xdr.Encodable.
func (a *LookupArgs) EncodeXDR(e *xdr.Encoder) { a.What.enc(e) }

// DecodeXDR implements xdr.Decodable.
func (a *LookupArgs) DecodeXDR(d *xdr.Decoder) { a.What.dec(d) }

// EncodeXDR implements xdr.Encodable.
func (a *AccessArgs) EncodeXDR(e *xdr.Encoder) { encFH(e, a.Object); e.Uint32(a.Access) }

// DecodeXDR implements xdr.Decodable.
func (a *AccessArgs) DecodeXDR(d *xdr.Decoder) { a.Object = decFH(d); a.Access = d.Uint32() }

// EncodeXDR implements xdr.Encodable.
func (a *ReadArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.File)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
}

// DecodeXDR implements xdr.Decodable.
func (a *ReadArgs) DecodeXDR(d *xdr.Decoder) {
	a.File = decFH(d)
	a.Offset, a.Count = d.Uint64(), d.Uint32()
}

// EncodeXDR implements xdr.Encodable. Data is referenced, not copied.
func (a *WriteArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.File)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
	e.Uint32(uint32(a.Stable))
	e.OpaqueRef(a.Data)
}

// DecodeXDR implements xdr.Decodable.
func (a *WriteArgs) DecodeXDR(d *xdr.Decoder) {
	a.File = decFH(d)
	a.Offset, a.Count = d.Uint64(), d.Uint32()
	a.Stable = StableHow(d.Uint32())
	if a.Stable > FileSync {
		badValue(d, "stable_how", uint32(a.Stable))
	}
	a.Data = d.Opaque(MaxData)
}

// EncodeXDR implements xdr.Encodable.
func (a *CreateArgs) EncodeXDR(e *xdr.Encoder) {
	a.Where.enc(e)
	e.Uint32(uint32(a.Mode))
	if a.Mode == Exclusive {
		e.FixedOpaque(a.Verf[:])
	} else {
		a.Attr.EncodeXDR(e)
	}
}

// DecodeXDR implements xdr.Decodable.
func (a *CreateArgs) DecodeXDR(d *xdr.Decoder) {
	a.Where.dec(d)
	a.Mode = CreateMode(d.Uint32())
	switch a.Mode {
	case Unchecked, Guarded:
		a.Attr.DecodeXDR(d)
	case Exclusive:
		copy(a.Verf[:], d.FixedOpaque(CreateVerfSize))
	default:
		badValue(d, "createmode3", uint32(a.Mode))
	}
}

// EncodeXDR implements xdr.Encodable.
func (a *MkdirArgs) EncodeXDR(e *xdr.Encoder) { a.Where.enc(e); a.Attr.EncodeXDR(e) }

// DecodeXDR implements xdr.Decodable.
func (a *MkdirArgs) DecodeXDR(d *xdr.Decoder) { a.Where.dec(d); a.Attr.DecodeXDR(d) }

// EncodeXDR implements xdr.Encodable.
func (a *SymlinkArgs) EncodeXDR(e *xdr.Encoder) {
	a.Where.enc(e)
	a.Attr.EncodeXDR(e)
	e.String(a.Target)
}

// DecodeXDR implements xdr.Decodable.
func (a *SymlinkArgs) DecodeXDR(d *xdr.Decoder) {
	a.Where.dec(d)
	a.Attr.DecodeXDR(d)
	a.Target = d.String(MaxPathLen)
}

// EncodeXDR implements xdr.Encodable.
func (a *MknodArgs) EncodeXDR(e *xdr.Encoder) {
	a.Where.enc(e)
	e.Uint32(uint32(a.Type))
	switch a.Type {
	case TypeChr, TypeBlk:
		a.Attr.EncodeXDR(e)
		e.Uint32(a.Spec.Major)
		e.Uint32(a.Spec.Minor)
	case TypeSock, TypeFIFO:
		a.Attr.EncodeXDR(e)
	}
}

// DecodeXDR implements xdr.Decodable.
func (a *MknodArgs) DecodeXDR(d *xdr.Decoder) {
	a.Where.dec(d)
	a.Type = FType(d.Uint32())
	switch a.Type {
	case TypeChr, TypeBlk:
		a.Attr.DecodeXDR(d)
		a.Spec.Major, a.Spec.Minor = d.Uint32(), d.Uint32()
	case TypeSock, TypeFIFO:
		a.Attr.DecodeXDR(d)
	}
}

// EncodeXDR implements xdr.Encodable.
func (a *RenameArgs) EncodeXDR(e *xdr.Encoder) { a.From.enc(e); a.To.enc(e) }

// DecodeXDR implements xdr.Decodable.
func (a *RenameArgs) DecodeXDR(d *xdr.Decoder) { a.From.dec(d); a.To.dec(d) }

// EncodeXDR implements xdr.Encodable.
func (a *LinkArgs) EncodeXDR(e *xdr.Encoder) { encFH(e, a.File); a.Link.enc(e) }

// DecodeXDR implements xdr.Decodable.
func (a *LinkArgs) DecodeXDR(d *xdr.Decoder) { a.File = decFH(d); a.Link.dec(d) }

// EncodeXDR implements xdr.Encodable.
func (a *ReaddirArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.Dir)
	e.Uint64(a.Cookie)
	e.FixedOpaque(a.Verf[:])
	e.Uint32(a.Count)
}

// DecodeXDR implements xdr.Decodable.
func (a *ReaddirArgs) DecodeXDR(d *xdr.Decoder) {
	a.Dir = decFH(d)
	a.Cookie = d.Uint64()
	copy(a.Verf[:], d.FixedOpaque(CookieVerfSize))
	a.Count = d.Uint32()
}

// EncodeXDR implements xdr.Encodable.
func (a *ReaddirplusArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.Dir)
	e.Uint64(a.Cookie)
	e.FixedOpaque(a.Verf[:])
	e.Uint32(a.DirCount)
	e.Uint32(a.MaxCount)
}

// DecodeXDR implements xdr.Decodable.
func (a *ReaddirplusArgs) DecodeXDR(d *xdr.Decoder) {
	a.Dir = decFH(d)
	a.Cookie = d.Uint64()
	copy(a.Verf[:], d.FixedOpaque(CookieVerfSize))
	a.DirCount, a.MaxCount = d.Uint32(), d.Uint32()
}

// EncodeXDR implements xdr.Encodable.
func (a *CommitArgs) EncodeXDR(e *xdr.Encoder) {
	encFH(e, a.File)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
}

// DecodeXDR implements xdr.Decodable.
func (a *CommitArgs) DecodeXDR(d *xdr.Decoder) {
	a.File = decFH(d)
	a.Offset, a.Count = d.Uint64(), d.Uint32()
}

// ---- results ----

func decStat(d *xdr.Decoder) Stat { return Stat(d.Uint32()) }

// EncodeXDR implements xdr.Encodable.
func (r *GetattrRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		r.Attr.EncodeXDR(e)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *GetattrRes) DecodeXDR(d *xdr.Decoder) {
	if r.Status = decStat(d); r.Status == OK {
		r.Attr.DecodeXDR(d)
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *WccRes) EncodeXDR(e *xdr.Encoder) { e.Uint32(uint32(r.Status)); r.Wcc.enc(e) }

// DecodeXDR implements xdr.Decodable.
func (r *WccRes) DecodeXDR(d *xdr.Decoder) { r.Status = decStat(d); r.Wcc.dec(d) }

// EncodeXDR implements xdr.Encodable.
func (r *LookupRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		encFH(e, r.Object)
		r.ObjAttr.enc(e)
	}
	r.DirAttr.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (r *LookupRes) DecodeXDR(d *xdr.Decoder) {
	if r.Status = decStat(d); r.Status == OK {
		r.Object = decFH(d)
		r.ObjAttr.dec(d)
	}
	r.DirAttr.dec(d)
}

// EncodeXDR implements xdr.Encodable.
func (r *AccessRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.ObjAttr.enc(e)
	if r.Status == OK {
		e.Uint32(r.Access)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *AccessRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.ObjAttr.dec(d)
	if r.Status == OK {
		r.Access = d.Uint32()
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *ReadlinkRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	if r.Status == OK {
		e.String(r.Path)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *ReadlinkRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	if r.Status == OK {
		r.Path = d.String(MaxPathLen)
	}
}

// EncodeXDR implements xdr.Encodable. Data is referenced, not copied.
func (r *ReadRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	if r.Status == OK {
		e.Uint32(uint32(len(r.Data)))
		e.Bool(r.EOF)
		e.OpaqueRef(r.Data)
	}
}

// DecodeXDR implements xdr.Decodable; a count differing from the data
// length is an error.
func (r *ReadRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	if r.Status == OK {
		n := d.Uint32()
		r.EOF = d.Bool()
		r.Data = d.Opaque(MaxData)
		if d.Err() == nil && int(n) != len(r.Data) {
			d.SetErr(fmt.Errorf("nfs3: READ count %d but %d bytes of data", n, len(r.Data)))
		}
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *WriteRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Wcc.enc(e)
	if r.Status == OK {
		e.Uint32(r.Count)
		e.Uint32(uint32(r.Committed))
		e.FixedOpaque(r.Verf[:])
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *WriteRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Wcc.dec(d)
	if r.Status == OK {
		r.Count = d.Uint32()
		r.Committed = StableHow(d.Uint32())
		copy(r.Verf[:], d.FixedOpaque(WriteVerfSize))
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *CreateRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == OK {
		r.FH.enc(e)
		r.Attr.enc(e)
	}
	r.DirWcc.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (r *CreateRes) DecodeXDR(d *xdr.Decoder) {
	if r.Status = decStat(d); r.Status == OK {
		r.FH.dec(d)
		r.Attr.dec(d)
	}
	r.DirWcc.dec(d)
}

// EncodeXDR implements xdr.Encodable.
func (r *RenameRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.FromWcc.enc(e)
	r.ToWcc.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (r *RenameRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.FromWcc.dec(d)
	r.ToWcc.dec(d)
}

// EncodeXDR implements xdr.Encodable.
func (r *LinkRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	r.LinkWcc.enc(e)
}

// DecodeXDR implements xdr.Decodable.
func (r *LinkRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	r.LinkWcc.dec(d)
}

// EncodeXDR implements xdr.Encodable.
func (r *ReaddirRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.DirAttr.enc(e)
	if r.Status != OK {
		return
	}
	e.FixedOpaque(r.Verf[:])
	for i := range r.Entries {
		x := &r.Entries[i]
		e.Bool(true)
		e.Uint64(x.FileID)
		e.String(x.Name)
		e.Uint64(x.Cookie)
	}
	e.Bool(false)
	e.Bool(r.EOF)
}

// DecodeXDR implements xdr.Decodable.
func (r *ReaddirRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.DirAttr.dec(d)
	if r.Status != OK {
		return
	}
	copy(r.Verf[:], d.FixedOpaque(CookieVerfSize))
	r.Entries = r.Entries[:0]
	for d.Bool() {
		if len(r.Entries) >= MaxDirEntries {
			d.SetErr(fmt.Errorf("%w: more than %d directory entries", xdr.ErrTooLong, MaxDirEntries))
			return
		}
		x := DirEntry{FileID: d.Uint64(), Name: decName(d), Cookie: d.Uint64()}
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, x)
	}
	r.EOF = d.Bool()
}

// EncodeXDR implements xdr.Encodable.
func (r *ReaddirplusRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.DirAttr.enc(e)
	if r.Status != OK {
		return
	}
	e.FixedOpaque(r.Verf[:])
	for i := range r.Entries {
		x := &r.Entries[i]
		e.Bool(true)
		e.Uint64(x.FileID)
		e.String(x.Name)
		e.Uint64(x.Cookie)
		x.Attr.enc(e)
		x.FH.enc(e)
	}
	e.Bool(false)
	e.Bool(r.EOF)
}

// DecodeXDR implements xdr.Decodable.
func (r *ReaddirplusRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.DirAttr.dec(d)
	if r.Status != OK {
		return
	}
	copy(r.Verf[:], d.FixedOpaque(CookieVerfSize))
	r.Entries = r.Entries[:0]
	for d.Bool() {
		if len(r.Entries) >= MaxDirEntries {
			d.SetErr(fmt.Errorf("%w: more than %d directory entries", xdr.ErrTooLong, MaxDirEntries))
			return
		}
		var x DirEntryPlus
		x.FileID = d.Uint64()
		x.Name = decName(d)
		x.Cookie = d.Uint64()
		x.Attr.dec(d)
		x.FH.dec(d)
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, x)
	}
	r.EOF = d.Bool()
}

// EncodeXDR implements xdr.Encodable.
func (r *FsstatRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	if r.Status == OK {
		for _, v := range [...]uint64{r.TBytes, r.FBytes, r.ABytes, r.TFiles, r.FFiles, r.AFiles} {
			e.Uint64(v)
		}
		e.Uint32(r.Invarsec)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *FsstatRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	if r.Status == OK {
		r.TBytes, r.FBytes, r.ABytes = d.Uint64(), d.Uint64(), d.Uint64()
		r.TFiles, r.FFiles, r.AFiles = d.Uint64(), d.Uint64(), d.Uint64()
		r.Invarsec = d.Uint32()
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *FsinfoRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	if r.Status == OK {
		for _, v := range [...]uint32{r.RTMax, r.RTPref, r.RTMult, r.WTMax, r.WTPref, r.WTMult, r.DTPref} {
			e.Uint32(v)
		}
		e.Uint64(r.MaxFileSize)
		r.TimeDelta.enc(e)
		e.Uint32(r.Properties)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *FsinfoRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	if r.Status == OK {
		r.RTMax, r.RTPref, r.RTMult = d.Uint32(), d.Uint32(), d.Uint32()
		r.WTMax, r.WTPref, r.WTMult = d.Uint32(), d.Uint32(), d.Uint32()
		r.DTPref = d.Uint32()
		r.MaxFileSize = d.Uint64()
		r.TimeDelta.dec(d)
		r.Properties = d.Uint32()
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *PathconfRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Attr.enc(e)
	if r.Status == OK {
		e.Uint32(r.LinkMax)
		e.Uint32(r.NameMax)
		e.Bool(r.NoTrunc)
		e.Bool(r.ChownRestricted)
		e.Bool(r.CaseInsensitive)
		e.Bool(r.CasePreserving)
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *PathconfRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Attr.dec(d)
	if r.Status == OK {
		r.LinkMax, r.NameMax = d.Uint32(), d.Uint32()
		r.NoTrunc, r.ChownRestricted = d.Bool(), d.Bool()
		r.CaseInsensitive, r.CasePreserving = d.Bool(), d.Bool()
	}
}

// EncodeXDR implements xdr.Encodable.
func (r *CommitRes) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Wcc.enc(e)
	if r.Status == OK {
		e.FixedOpaque(r.Verf[:])
	}
}

// DecodeXDR implements xdr.Decodable.
func (r *CommitRes) DecodeXDR(d *xdr.Decoder) {
	r.Status = decStat(d)
	r.Wcc.dec(d)
	if r.Status == OK {
		copy(r.Verf[:], d.FixedOpaque(WriteVerfSize))
	}
}
