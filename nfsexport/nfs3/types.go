// Package nfs3 holds the wire types of NFS version 3, program 100003
// (RFC 1813): Go structs for the arguments and results of all 22
// procedures, their XDR codecs in both directions (servers decode
// arguments and encode results; the test client does the reverse), and a
// dispatcher that turns calls into Handler method calls.
//
// Decoding is bounded: file handles at most FHSize bytes, names
// MaxNameLen, paths MaxPathLen, READ/WRITE data MaxData, directory
// listings MaxDirEntries. Decoded byte slices (file handles, write data)
// alias the request buffer and are valid only while the handler runs.
package nfs3

import "fmt"

// Program, version and protocol sizes.
const (
	Prog = 100003
	Vers = 3

	FHSize         = 64 // NFS3_FHSIZE
	CookieVerfSize = 8
	CreateVerfSize = 8
	WriteVerfSize  = 8

	MaxNameLen    = 255     // filename3 bound enforced by the decoder
	MaxPathLen    = 4096    // nfspath3 bound (symlink targets)
	MaxData       = 1 << 20 // READ/WRITE payload
	MaxDirEntries = 1 << 16 // entries decoded from one READDIR(PLUS) reply
)

// Procedure numbers.
const (
	ProcNull        = 0
	ProcGetattr     = 1
	ProcSetattr     = 2
	ProcLookup      = 3
	ProcAccess      = 4
	ProcReadlink    = 5
	ProcRead        = 6
	ProcWrite       = 7
	ProcCreate      = 8
	ProcMkdir       = 9
	ProcSymlink     = 10
	ProcMknod       = 11
	ProcRemove      = 12
	ProcRmdir       = 13
	ProcRename      = 14
	ProcLink        = 15
	ProcReaddir     = 16
	ProcReaddirplus = 17
	ProcFsstat      = 18
	ProcFsinfo      = 19
	ProcPathconf    = 20
	ProcCommit      = 21
	NumProcs        = 22
)

// ProcNames are the RFC names of the procedures, indexed by number.
var ProcNames = [NumProcs]string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHCONF", "COMMIT"}

// Stat is nfsstat3.
type Stat uint32

const (
	OK             Stat = 0
	ErrPerm        Stat = 1
	ErrNoEnt       Stat = 2
	ErrIO          Stat = 5
	ErrNXIO        Stat = 6
	ErrAcces       Stat = 13
	ErrExist       Stat = 17
	ErrXDev        Stat = 18
	ErrNoDev       Stat = 19
	ErrNotDir      Stat = 20
	ErrIsDir       Stat = 21
	ErrInval       Stat = 22
	ErrFBig        Stat = 27
	ErrNoSpc       Stat = 28
	ErrROFS        Stat = 30
	ErrMLink       Stat = 31
	ErrNameTooLong Stat = 63
	ErrNotEmpty    Stat = 66
	ErrDQuot       Stat = 69
	ErrStale       Stat = 70
	ErrRemote      Stat = 71
	ErrBadHandle   Stat = 10001
	ErrNotSync     Stat = 10002
	ErrBadCookie   Stat = 10003
	ErrNotSupp     Stat = 10004
	ErrTooSmall    Stat = 10005
	ErrServerFault Stat = 10006
	ErrBadType     Stat = 10007
	ErrJukebox     Stat = 10008
)

var statNames = map[Stat]string{
	OK: "NFS3_OK", ErrPerm: "NFS3ERR_PERM", ErrNoEnt: "NFS3ERR_NOENT", ErrIO: "NFS3ERR_IO",
	ErrNXIO: "NFS3ERR_NXIO", ErrAcces: "NFS3ERR_ACCES", ErrExist: "NFS3ERR_EXIST",
	ErrXDev: "NFS3ERR_XDEV", ErrNoDev: "NFS3ERR_NODEV", ErrNotDir: "NFS3ERR_NOTDIR",
	ErrIsDir: "NFS3ERR_ISDIR", ErrInval: "NFS3ERR_INVAL", ErrFBig: "NFS3ERR_FBIG",
	ErrNoSpc: "NFS3ERR_NOSPC", ErrROFS: "NFS3ERR_ROFS", ErrMLink: "NFS3ERR_MLINK",
	ErrNameTooLong: "NFS3ERR_NAMETOOLONG", ErrNotEmpty: "NFS3ERR_NOTEMPTY",
	ErrDQuot: "NFS3ERR_DQUOT", ErrStale: "NFS3ERR_STALE", ErrRemote: "NFS3ERR_REMOTE",
	ErrBadHandle: "NFS3ERR_BADHANDLE", ErrNotSync: "NFS3ERR_NOT_SYNC",
	ErrBadCookie: "NFS3ERR_BAD_COOKIE", ErrNotSupp: "NFS3ERR_NOTSUPP",
	ErrTooSmall: "NFS3ERR_TOOSMALL", ErrServerFault: "NFS3ERR_SERVERFAULT",
	ErrBadType: "NFS3ERR_BADTYPE", ErrJukebox: "NFS3ERR_JUKEBOX",
}

func (s Stat) String() string {
	if n, ok := statNames[s]; ok {
		return n
	}
	return fmt.Sprintf("nfsstat3(%d)", uint32(s))
}

// Error makes a non-OK Stat usable as a Go error.
func (s Stat) Error() string { return s.String() }

// FType is ftype3.
type FType uint32

const (
	TypeReg  FType = 1
	TypeDir  FType = 2
	TypeBlk  FType = 3
	TypeChr  FType = 4
	TypeLnk  FType = 5
	TypeSock FType = 6
	TypeFIFO FType = 7
)

// ACCESS bits.
const (
	AccessRead    = 0x01
	AccessLookup  = 0x02
	AccessModify  = 0x04
	AccessExtend  = 0x08
	AccessDelete  = 0x10
	AccessExecute = 0x20
)

// FSINFO properties.
const (
	FSFLink        = 0x01
	FSFSymlink     = 0x02
	FSFHomogeneous = 0x08
	FSFCanSetTime  = 0x10
)

// StableHow is stable_how.
type StableHow uint32

const (
	Unstable StableHow = 0
	DataSync StableHow = 1
	FileSync StableHow = 2
)

// CreateMode is createmode3.
type CreateMode uint32

const (
	Unchecked CreateMode = 0
	Guarded   CreateMode = 1
	Exclusive CreateMode = 2
)

// TimeHow is time_how, the discriminant of set_atime and set_mtime.
type TimeHow uint32

const (
	DontChange      TimeHow = 0
	SetToServerTime TimeHow = 1
	SetToClientTime TimeHow = 2
)

// FH is nfs_fh3: an opaque handle of at most FHSize bytes.
type FH []byte

// Time is nfstime3.
type Time struct{ Sec, Nsec uint32 }

// SpecData is specdata3: device major and minor numbers.
type SpecData struct{ Major, Minor uint32 }

// Fattr is fattr3.
type Fattr struct {
	Type   FType
	Mode   uint32 // permission bits including setuid/setgid/sticky
	Nlink  uint32
	UID    uint32
	GID    uint32
	Size   uint64
	Used   uint64
	Rdev   SpecData
	FSID   uint64
	FileID uint64
	Atime  Time
	Mtime  Time
	Ctime  Time
}

// PostOpAttr is post_op_attr.
type PostOpAttr struct {
	Present bool
	Attr    Fattr
}

// WccAttr is wcc_attr.
type WccAttr struct {
	Size  uint64
	Mtime Time
	Ctime Time
}

// PreOpAttr is pre_op_attr.
type PreOpAttr struct {
	Present bool
	Attr    WccAttr
}

// WccData is wcc_data.
type WccData struct {
	Before PreOpAttr
	After  PostOpAttr
}

// PostOpFH is post_op_fh3.
type PostOpFH struct {
	Present bool
	FH      FH
}

// SetTime is set_atime / set_mtime; Time is used with SetToClientTime.
type SetTime struct {
	How  TimeHow
	Time Time
}

// Sattr is sattr3: each field is applied only when its Set flag is true.
type Sattr struct {
	SetMode bool
	Mode    uint32
	SetUID  bool
	UID     uint32
	SetGID  bool
	GID     uint32
	SetSize bool
	Size    uint64
	Atime   SetTime
	Mtime   SetTime
}

// DirOpArgs is diropargs3.
type DirOpArgs struct {
	Dir  FH
	Name string
}

// FHArgs is the argument of GETATTR, READLINK, FSSTAT, FSINFO and
// PATHCONF: a single file handle.
type FHArgs struct{ Object FH }

// GetattrRes is GETATTR3res.
type GetattrRes struct {
	Status Stat
	Attr   Fattr // when OK
}

// SetattrArgs is SETATTR3args; the guard is checked when Guard is true.
type SetattrArgs struct {
	Object     FH
	Attr       Sattr
	Guard      bool
	GuardCtime Time
}

// WccRes is the result of SETATTR, REMOVE and RMDIR: a status and the
// weak cache consistency data of the object or directory, in both cases.
type WccRes struct {
	Status Stat
	Wcc    WccData
}

// LookupArgs is LOOKUP3args.
type LookupArgs struct{ What DirOpArgs }

// LookupRes is LOOKUP3res; Object and ObjAttr only when OK.
type LookupRes struct {
	Status  Stat
	Object  FH
	ObjAttr PostOpAttr
	DirAttr PostOpAttr
}

// AccessArgs is ACCESS3args.
type AccessArgs struct {
	Object FH
	Access uint32
}

// AccessRes is ACCESS3res; Access only when OK.
type AccessRes struct {
	Status  Stat
	ObjAttr PostOpAttr
	Access  uint32
}

// ReadlinkRes is READLINK3res; Path only when OK.
type ReadlinkRes struct {
	Status Stat
	Attr   PostOpAttr
	Path   string
}

// ReadArgs is READ3args.
type ReadArgs struct {
	File   FH
	Offset uint64
	Count  uint32
}

// ReadRes is READ3res. The count field on the wire is len(Data). Data is
// spliced into the reply without copying: it must stay unchanged until
// the reply is written; a handler that recycles it registers the release
// with rpc.Call.AfterReply.
type ReadRes struct {
	Status Stat
	Attr   PostOpAttr
	EOF    bool
	Data   []byte
}

// WriteArgs is WRITE3args; Data aliases the request buffer.
type WriteArgs struct {
	File   FH
	Offset uint64
	Count  uint32
	Stable StableHow
	Data   []byte
}

// WriteRes is WRITE3res; Count, Committed and Verf only when OK.
type WriteRes struct {
	Status    Stat
	Wcc       WccData
	Count     uint32
	Committed StableHow
	Verf      [WriteVerfSize]byte
}

// CreateArgs is CREATE3args: Attr is used for Unchecked and Guarded,
// Verf for Exclusive.
type CreateArgs struct {
	Where DirOpArgs
	Mode  CreateMode
	Attr  Sattr
	Verf  [CreateVerfSize]byte
}

// CreateRes is the result of CREATE, MKDIR, SYMLINK and MKNOD, which
// share one layout; FH and Attr only when OK.
type CreateRes struct {
	Status Stat
	FH     PostOpFH
	Attr   PostOpAttr
	DirWcc WccData
}

// MkdirArgs is MKDIR3args.
type MkdirArgs struct {
	Where DirOpArgs
	Attr  Sattr
}

// SymlinkArgs is SYMLINK3args.
type SymlinkArgs struct {
	Where  DirOpArgs
	Attr   Sattr
	Target string
}

// MknodArgs is MKNOD3args: Attr applies to TypeChr, TypeBlk, TypeSock and
// TypeFIFO, Spec to TypeChr and TypeBlk; other types carry nothing (the
// server answers NFS3ERR_BADTYPE).
type MknodArgs struct {
	Where DirOpArgs
	Type  FType
	Attr  Sattr
	Spec  SpecData
}

// RenameArgs is RENAME3args.
type RenameArgs struct{ From, To DirOpArgs }

// RenameRes is RENAME3res.
type RenameRes struct {
	Status  Stat
	FromWcc WccData
	ToWcc   WccData
}

// LinkArgs is LINK3args.
type LinkArgs struct {
	File FH
	Link DirOpArgs
}

// LinkRes is LINK3res.
type LinkRes struct {
	Status  Stat
	Attr    PostOpAttr
	LinkWcc WccData
}

// ReaddirArgs is READDIR3args.
type ReaddirArgs struct {
	Dir    FH
	Cookie uint64
	Verf   [CookieVerfSize]byte
	Count  uint32
}

// DirEntry is entry3.
type DirEntry struct {
	FileID uint64
	Name   string
	Cookie uint64
}

// ReaddirRes is READDIR3res; Verf, Entries and EOF only when OK.
type ReaddirRes struct {
	Status  Stat
	DirAttr PostOpAttr
	Verf    [CookieVerfSize]byte
	Entries []DirEntry
	EOF     bool
}

// ReaddirplusArgs is READDIRPLUS3args.
type ReaddirplusArgs struct {
	Dir      FH
	Cookie   uint64
	Verf     [CookieVerfSize]byte
	DirCount uint32
	MaxCount uint32
}

// DirEntryPlus is entryplus3.
type DirEntryPlus struct {
	FileID uint64
	Name   string
	Cookie uint64
	Attr   PostOpAttr
	FH     PostOpFH
}

// ReaddirplusRes is READDIRPLUS3res; Verf, Entries and EOF only when OK.
type ReaddirplusRes struct {
	Status  Stat
	DirAttr PostOpAttr
	Verf    [CookieVerfSize]byte
	Entries []DirEntryPlus
	EOF     bool
}

// FsstatRes is FSSTAT3res.
type FsstatRes struct {
	Status                 Stat
	Attr                   PostOpAttr
	TBytes, FBytes, ABytes uint64
	TFiles, FFiles, AFiles uint64
	Invarsec               uint32
}

// FsinfoRes is FSINFO3res.
type FsinfoRes struct {
	Status                Stat
	Attr                  PostOpAttr
	RTMax, RTPref, RTMult uint32
	WTMax, WTPref, WTMult uint32
	DTPref                uint32
	MaxFileSize           uint64
	TimeDelta             Time
	Properties            uint32
}

// PathconfRes is PATHCONF3res.
type PathconfRes struct {
	Status          Stat
	Attr            PostOpAttr
	LinkMax         uint32
	NameMax         uint32
	NoTrunc         bool
	ChownRestricted bool
	CaseInsensitive bool
	CasePreserving  bool
}

// CommitArgs is COMMIT3args.
type CommitArgs struct {
	File   FH
	Offset uint64
	Count  uint32
}

// CommitRes is COMMIT3res; Verf only when OK.
type CommitRes struct {
	Status Stat
	Wcc    WccData
	Verf   [WriteVerfSize]byte
}

// Sizes of encoded items, for handlers packing READDIR replies into the
// client's byte budget.
const (
	fattrSize = 84
	// ReaddirResOverhead is the size of a READDIR3resok without entries
	// but with directory attributes, the end-of-list marker and eof.
	ReaddirResOverhead = 4 + 4 + fattrSize + CookieVerfSize + 4 + 4
)

func xdrStringSize(s string) int { return 4 + (len(s)+3)&^3 }

// DirEntrySize is the encoded size of an entry3 with this name,
// including its list marker.
func DirEntrySize(name string) int { return 4 + 8 + xdrStringSize(name) + 8 }

// DirEntryPlusSize is the encoded size of an entryplus3 with this name,
// attributes and a file handle of fhLen bytes (fhLen < 0: no handle),
// including its list marker.
func DirEntryPlusSize(name string, attr bool, fhLen int) int {
	n := DirEntrySize(name) + 4 + 4
	if attr {
		n += fattrSize
	}
	if fhLen >= 0 {
		n += 4 + (fhLen+3)&^3
	}
	return n
}
