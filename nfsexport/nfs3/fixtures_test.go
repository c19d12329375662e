package nfs3_test

import (
	"bytes"

	. "github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

type codec interface {
	xdr.Encodable
	xdr.Decodable
}

// sample is one encodable value of a procedure's arguments or results,
// with a constructor for an empty value to decode into.
type sample struct {
	name  string
	proc  uint32
	args  bool // arguments (true) or results (false)
	value codec
	empty func() codec
}

var (
	fh    = FH("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11")
	fh2   = FH(bytes.Repeat([]byte{0xEE}, FHSize))
	attr  = Fattr{Type: TypeReg, Mode: 0o4755, Nlink: 2, UID: 1000, GID: 100, Size: 1<<40 + 3, Used: 8192, Rdev: SpecData{8, 1}, FSID: 0xdeadbeefcafe, FileID: 77, Atime: Time{1, 2}, Mtime: Time{3, 4}, Ctime: Time{5, 6}}
	dattr = Fattr{Type: TypeDir, Mode: 0o1777, Nlink: 5, FileID: 2, Size: 4096}
	post  = PostOpAttr{Present: true, Attr: attr}
	wcc   = WccData{Before: PreOpAttr{Present: true, Attr: WccAttr{Size: 10, Mtime: Time{1, 1}, Ctime: Time{2, 2}}}, After: PostOpAttr{Present: true, Attr: dattr}}
	sat   = Sattr{SetMode: true, Mode: 0o2750, SetUID: true, UID: 5, SetGID: true, GID: 6, SetSize: true, Size: 99, Atime: SetTime{How: SetToClientTime, Time: Time{7, 8}}, Mtime: SetTime{How: SetToServerTime}}
	sat0  = Sattr{Mtime: SetTime{How: SetToClientTime, Time: Time{9, 10}}}
	where = DirOpArgs{Dir: fh, Name: "new file.txt"}
	verf  = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	data  = bytes.Repeat([]byte("0123456789abcdef"), 4096+3) // 65584 bytes: referenced, not copied
)

func s[T any, PT interface {
	*T
	codec
}](name string, proc uint32, args bool, v T) sample {
	return sample{name: name, proc: proc, args: args, value: PT(&v), empty: func() codec { return PT(new(T)) }}
}

func samples() []sample {
	return []sample{
		s("GETATTR args", ProcGetattr, true, FHArgs{Object: fh}),
		s("GETATTR ok", ProcGetattr, false, GetattrRes{Status: OK, Attr: attr}),
		s("GETATTR fail", ProcGetattr, false, GetattrRes{Status: ErrStale}),
		s("SETATTR args guarded", ProcSetattr, true, SetattrArgs{Object: fh, Attr: sat, Guard: true, GuardCtime: Time{11, 12}}),
		s("SETATTR args unguarded", ProcSetattr, true, SetattrArgs{Object: fh2, Attr: sat0}),
		s("SETATTR ok", ProcSetattr, false, WccRes{Status: OK, Wcc: wcc}),
		s("SETATTR fail", ProcSetattr, false, WccRes{Status: ErrNotSync, Wcc: WccData{After: post}}),
		s("LOOKUP args", ProcLookup, true, LookupArgs{What: DirOpArgs{Dir: fh, Name: "etc"}}),
		s("LOOKUP ok", ProcLookup, false, LookupRes{Status: OK, Object: fh2, ObjAttr: post, DirAttr: PostOpAttr{Present: true, Attr: dattr}}),
		s("LOOKUP fail", ProcLookup, false, LookupRes{Status: ErrNoEnt, DirAttr: post}),
		s("ACCESS args", ProcAccess, true, AccessArgs{Object: fh, Access: AccessRead | AccessLookup | AccessExecute}),
		s("ACCESS ok", ProcAccess, false, AccessRes{Status: OK, ObjAttr: post, Access: AccessRead}),
		s("ACCESS fail", ProcAccess, false, AccessRes{Status: ErrBadHandle}),
		s("READLINK args", ProcReadlink, true, FHArgs{Object: fh}),
		s("READLINK ok", ProcReadlink, false, ReadlinkRes{Status: OK, Attr: post, Path: "../lib/x86_64-linux-gnu/libc.so.6"}),
		s("READLINK fail", ProcReadlink, false, ReadlinkRes{Status: ErrInval, Attr: post}),
		s("READ args", ProcRead, true, ReadArgs{File: fh, Offset: 1 << 33, Count: 131072}),
		s("READ ok", ProcRead, false, ReadRes{Status: OK, Attr: post, EOF: true, Data: data}),
		s("READ ok short", ProcRead, false, ReadRes{Status: OK, Data: []byte("abc")}),
		s("READ fail", ProcRead, false, ReadRes{Status: ErrIsDir, Attr: post}),
		s("WRITE args", ProcWrite, true, WriteArgs{File: fh, Offset: 4096, Count: uint32(len(data)), Stable: FileSync, Data: data}),
		s("WRITE args small", ProcWrite, true, WriteArgs{File: fh, Count: 5, Stable: Unstable, Data: []byte("hello")}),
		s("WRITE ok", ProcWrite, false, WriteRes{Status: OK, Wcc: wcc, Count: 5, Committed: DataSync, Verf: verf}),
		s("WRITE fail", ProcWrite, false, WriteRes{Status: ErrNoSpc, Wcc: wcc}),
		s("CREATE args unchecked", ProcCreate, true, CreateArgs{Where: where, Mode: Unchecked, Attr: sat}),
		s("CREATE args guarded", ProcCreate, true, CreateArgs{Where: where, Mode: Guarded, Attr: sat0}),
		s("CREATE args exclusive", ProcCreate, true, CreateArgs{Where: where, Mode: Exclusive, Verf: verf}),
		s("CREATE ok", ProcCreate, false, CreateRes{Status: OK, FH: PostOpFH{Present: true, FH: fh2}, Attr: post, DirWcc: wcc}),
		s("CREATE ok no handle", ProcCreate, false, CreateRes{Status: OK, DirWcc: wcc}),
		s("CREATE fail", ProcCreate, false, CreateRes{Status: ErrExist, DirWcc: wcc}),
		s("MKDIR args", ProcMkdir, true, MkdirArgs{Where: where, Attr: sat}),
		s("MKDIR ok", ProcMkdir, false, CreateRes{Status: OK, FH: PostOpFH{Present: true, FH: fh}, Attr: post, DirWcc: wcc}),
		s("SYMLINK args", ProcSymlink, true, SymlinkArgs{Where: where, Attr: sat0, Target: "/usr/share/zoneinfo/UTC"}),
		s("SYMLINK fail", ProcSymlink, false, CreateRes{Status: ErrNameTooLong}),
		s("MKNOD args chr", ProcMknod, true, MknodArgs{Where: where, Type: TypeChr, Attr: sat, Spec: SpecData{1, 3}}),
		s("MKNOD args blk", ProcMknod, true, MknodArgs{Where: where, Type: TypeBlk, Attr: sat0, Spec: SpecData{8, 0}}),
		s("MKNOD args fifo", ProcMknod, true, MknodArgs{Where: where, Type: TypeFIFO, Attr: sat}),
		s("MKNOD args sock", ProcMknod, true, MknodArgs{Where: where, Type: TypeSock, Attr: sat0}),
		s("MKNOD args reg", ProcMknod, true, MknodArgs{Where: where, Type: TypeReg}),
		s("MKNOD fail", ProcMknod, false, CreateRes{Status: ErrBadType, DirWcc: wcc}),
		s("REMOVE args", ProcRemove, true, DirOpArgs{Dir: fh, Name: "old"}),
		s("REMOVE ok", ProcRemove, false, WccRes{Status: OK, Wcc: wcc}),
		s("RMDIR args", ProcRmdir, true, DirOpArgs{Dir: fh2, Name: "d"}),
		s("RMDIR fail", ProcRmdir, false, WccRes{Status: ErrNotEmpty, Wcc: wcc}),
		s("RENAME args", ProcRename, true, RenameArgs{From: DirOpArgs{Dir: fh, Name: "a"}, To: DirOpArgs{Dir: fh2, Name: "bb"}}),
		s("RENAME ok", ProcRename, false, RenameRes{Status: OK, FromWcc: wcc, ToWcc: WccData{After: post}}),
		s("RENAME fail", ProcRename, false, RenameRes{Status: ErrXDev}),
		s("LINK args", ProcLink, true, LinkArgs{File: fh, Link: DirOpArgs{Dir: fh2, Name: "hard"}}),
		s("LINK ok", ProcLink, false, LinkRes{Status: OK, Attr: post, LinkWcc: wcc}),
		s("LINK fail", ProcLink, false, LinkRes{Status: ErrMLink, LinkWcc: wcc}),
		s("READDIR args", ProcReaddir, true, ReaddirArgs{Dir: fh, Cookie: 42, Verf: verf, Count: 8192}),
		s("READDIR ok", ProcReaddir, false, ReaddirRes{Status: OK, DirAttr: post, Verf: verf, EOF: true, Entries: []DirEntry{{FileID: 2, Name: ".", Cookie: 1}, {FileID: 1, Name: "..", Cookie: 2}, {FileID: 99, Name: "a name with spaces", Cookie: 3}}}),
		s("READDIR ok empty", ProcReaddir, false, ReaddirRes{Status: OK, Verf: verf}),
		s("READDIR fail", ProcReaddir, false, ReaddirRes{Status: ErrBadCookie, DirAttr: post}),
		s("READDIRPLUS args", ProcReaddirplus, true, ReaddirplusArgs{Dir: fh, Cookie: 7, Verf: verf, DirCount: 4096, MaxCount: 32768}),
		s("READDIRPLUS ok", ProcReaddirplus, false, ReaddirplusRes{Status: OK, DirAttr: post, Verf: verf, EOF: false, Entries: []DirEntryPlus{
			{FileID: 3, Name: "x", Cookie: 10, Attr: post, FH: PostOpFH{Present: true, FH: fh2}},
			{FileID: 4, Name: "no attrs", Cookie: 11},
		}}),
		s("READDIRPLUS fail", ProcReaddirplus, false, ReaddirplusRes{Status: ErrNotDir}),
		s("FSSTAT args", ProcFsstat, true, FHArgs{Object: fh}),
		s("FSSTAT ok", ProcFsstat, false, FsstatRes{Status: OK, Attr: post, TBytes: 1 << 40, FBytes: 1 << 39, ABytes: 1 << 38, TFiles: 1e6, FFiles: 5e5, AFiles: 4e5, Invarsec: 3}),
		s("FSSTAT fail", ProcFsstat, false, FsstatRes{Status: ErrIO}),
		s("FSINFO args", ProcFsinfo, true, FHArgs{Object: fh}),
		s("FSINFO ok", ProcFsinfo, false, FsinfoRes{Status: OK, Attr: post, RTMax: 1 << 20, RTPref: 1 << 20, RTMult: 4096, WTMax: 1 << 20, WTPref: 1 << 20, WTMult: 4096, DTPref: 65536, MaxFileSize: 1<<63 - 1, TimeDelta: Time{0, 1}, Properties: FSFLink | FSFSymlink | FSFHomogeneous | FSFCanSetTime}),
		s("FSINFO fail", ProcFsinfo, false, FsinfoRes{Status: ErrServerFault}),
		s("PATHCONF args", ProcPathconf, true, FHArgs{Object: fh}),
		s("PATHCONF ok", ProcPathconf, false, PathconfRes{Status: OK, Attr: post, LinkMax: 65000, NameMax: 255, NoTrunc: true, ChownRestricted: true, CaseInsensitive: false, CasePreserving: true}),
		s("PATHCONF fail", ProcPathconf, false, PathconfRes{Status: ErrStale}),
		s("COMMIT args", ProcCommit, true, CommitArgs{File: fh, Offset: 100, Count: 0}),
		s("COMMIT ok", ProcCommit, false, CommitRes{Status: OK, Wcc: wcc, Verf: verf}),
		s("COMMIT fail", ProcCommit, false, CommitRes{Status: ErrJukebox, Wcc: wcc}),
	}
}

func encode(v xdr.Encodable) []byte {
	e := xdr.NewEncoder(256)
	v.EncodeXDR(e)
	var out []byte
	for _, b := range e.Buffers(nil) {
		out = append(out, b...)
	}
	return out
}
