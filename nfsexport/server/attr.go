package server

import (
	"errors"
	"io/fs"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/overlay"
	"golang.org/x/sys/unix"
)

// stat maps an error from the overlay engine to the status knfsd gives.
func stat(err error) nfs3.Stat {
	if err == nil {
		return nfs3.OK
	}
	var e syscall.Errno
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nfs3.ErrNoEnt
		case errors.Is(err, fsys.ErrNotDir):
			return nfs3.ErrNotDir
		case errors.Is(err, fsys.ErrIsDir):
			return nfs3.ErrIsDir
		case errors.Is(err, fs.ErrPermission):
			return nfs3.ErrAcces
		}
		return nfs3.ErrIO
	}
	switch e {
	case syscall.EPERM:
		return nfs3.ErrPerm
	case syscall.ENOENT:
		return nfs3.ErrNoEnt
	case syscall.ENXIO, syscall.ENODEV:
		return nfs3.ErrNXIO
	case syscall.EACCES:
		return nfs3.ErrAcces
	case syscall.EEXIST:
		return nfs3.ErrExist
	case syscall.EXDEV:
		return nfs3.ErrXDev
	case syscall.ENOTDIR:
		return nfs3.ErrNotDir
	case syscall.EISDIR:
		return nfs3.ErrIsDir
	case syscall.EINVAL, syscall.ELOOP:
		return nfs3.ErrInval
	case syscall.EFBIG:
		return nfs3.ErrFBig
	case syscall.ENOSPC:
		return nfs3.ErrNoSpc
	case syscall.EROFS:
		return nfs3.ErrROFS
	case syscall.EMLINK:
		return nfs3.ErrMLink
	case syscall.ENAMETOOLONG:
		return nfs3.ErrNameTooLong
	case syscall.ENOTEMPTY:
		return nfs3.ErrNotEmpty
	case syscall.EDQUOT:
		return nfs3.ErrDQuot
	case syscall.ESTALE:
		return nfs3.ErrStale
	case syscall.EOPNOTSUPP:
		return nfs3.ErrNotSupp
	case syscall.EAGAIN:
		return nfs3.ErrJukebox
	case syscall.EBADF:
		return nfs3.ErrBadHandle
	}
	return nfs3.ErrIO
}

func ntime(t time.Time) nfs3.Time {
	if t.IsZero() {
		return nfs3.Time{}
	}
	return nfs3.Time{Sec: uint32(t.Unix()), Nsec: uint32(t.Nanosecond())}
}

func ftype(mode uint32) nfs3.FType {
	switch mode & fsys.S_IFMT {
	case fsys.S_IFDIR:
		return nfs3.TypeDir
	case fsys.S_IFLNK:
		return nfs3.TypeLnk
	case fsys.S_IFBLK:
		return nfs3.TypeBlk
	case fsys.S_IFCHR:
		return nfs3.TypeChr
	case fsys.S_IFSOCK:
		return nfs3.TypeSock
	case fsys.S_IFIFO:
		return nfs3.TypeFIFO
	}
	return nfs3.TypeReg
}

func (s *Server) fattr(a overlay.Attr) nfs3.Fattr {
	return nfs3.Fattr{
		Type:   ftype(a.Mode),
		Mode:   a.Mode & 0o7777,
		Nlink:  a.Nlink,
		UID:    a.Uid,
		GID:    a.Gid,
		Size:   uint64(a.Size),
		Used:   uint64(a.Blocks) * 512,
		Rdev:   nfs3.SpecData{Major: fsys.Major(a.Rdev), Minor: fsys.Minor(a.Rdev)},
		FSID:   s.fsid,
		FileID: a.Ino,
		Atime:  ntime(a.Atime),
		Mtime:  ntime(a.Mtime),
		Ctime:  ntime(a.Ctime),
	}
}

func (s *Server) postOp(a overlay.Attr, err error) nfs3.PostOpAttr {
	if err != nil {
		return nfs3.PostOpAttr{}
	}
	return nfs3.PostOpAttr{Present: true, Attr: s.fattr(a)}
}

func preOp(a overlay.Attr, err error) nfs3.PreOpAttr {
	if err != nil {
		return nfs3.PreOpAttr{}
	}
	return nfs3.PreOpAttr{Present: true, Attr: nfs3.WccAttr{Size: uint64(a.Size), Mtime: ntime(a.Mtime), Ctime: ntime(a.Ctime)}}
}

// cred applies the host's squash mode to the call's credential.
func squash(h *Host, c *rpc.Credential) overlay.Cred {
	anonU, anonG := h.AnonUID, h.AnonGID
	if c.Flavor != rpc.AuthSys || h.Squash == AllSquash {
		return overlay.Cred{Uid: anonU, Gid: anonG}
	}
	cr := overlay.Cred{Uid: c.UID, Gid: c.GID}
	if len(c.GIDs) > 0 {
		cr.Groups = make([]uint32, len(c.GIDs))
		copy(cr.Groups, c.GIDs)
	}
	if h.Squash == RootSquash {
		if cr.Uid == 0 {
			cr.Uid = anonU
		}
		if cr.Gid == 0 {
			cr.Gid = anonG
		}
		for i, g := range cr.Groups {
			if g == 0 {
				cr.Groups[i] = anonG
			}
		}
	}
	return cr
}

func inGroup(c *overlay.Cred, g uint32) bool {
	if c.Gid == g {
		return true
	}
	for _, x := range c.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Permission bits, as in access(2).
const (
	mayRead  = 4
	mayWrite = 2
	mayExec  = 1
)

// permits is generic_permission for mode bits: root may do anything but
// execute a non-directory that has no execute bit at all.
func permits(a overlay.Attr, c *overlay.Cred, mask uint32) bool {
	if c.Uid == 0 {
		return mask&mayExec == 0 || a.Mode&fsys.S_IFMT == fsys.S_IFDIR || a.Mode&0o111 != 0
	}
	var bits uint32
	switch {
	case c.Uid == a.Uid:
		bits = a.Mode >> 6 & 7
	case inGroup(c, a.Gid):
		bits = a.Mode >> 3 & 7
	default:
		bits = a.Mode & 7
	}
	return mask&^bits == 0
}

// mayOpen is knfsd's check for READ and WRITE: the owner may always
// (the client checked at open time, before a chmod), and reading is
// allowed with execute permission (a client must read to execute).
func mayOpen(a overlay.Attr, c *overlay.Cred, mask uint32) bool {
	if c.Uid == a.Uid {
		return true
	}
	if permits(a, c, mask) {
		return true
	}
	return mask == mayRead && permits(a, c, mayExec)
}

// stickyOK is the kernel's check_sticky: in a sticky directory only the
// owner of the entry or of the directory (or root) may remove or rename
// it.
func stickyOK(dir, victim overlay.Attr, c *overlay.Cred) bool {
	return dir.Mode&unix.S_ISVTX == 0 || c.Uid == 0 || c.Uid == victim.Uid || c.Uid == dir.Uid
}
