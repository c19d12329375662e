package overlay

import (
	"strings"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// prepNew checks that name can be created in dir and readies dir's upper.
// It reports whether a whiteout of name is in the way. Caller holds ns
// exclusively.
func (o *FS) prepNew(dir *Node, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	if err := o.writable(); err != nil {
		return false, err
	}
	if dir.mode != fsys.S_IFDIR {
		return false, syscall.ENOTDIR
	}
	if dir.state().removed {
		return false, syscall.ENOENT
	}
	if strings.HasPrefix(name, whPrefix) {
		return false, syscall.EPERM // reserved by the aufs format
	}
	f, err := o.find(dir, name)
	if err == nil {
		return false, syscall.EEXIST
	} else if err != syscall.ENOENT {
		return false, err
	}
	return f.wh, o.ensureDir(dir)
}

// newObj is what a new object should be: its owner and mode.
type newObj struct {
	uid, gid int
	mode     uint32
	inherit  bool // dir has a default ACL: the host's mode is the right one
}

// owner works out a new object's uid, gid and mode (setgid directories
// pass their group on, and setgid on to subdirectories). dir has an upper
// directory. Caller holds ns.
func (o *FS) owner(dir *Node, cred *Cred, mode uint32) newObj {
	if cred == nil {
		cred = Root
	}
	gid := cred.Gid
	if st, err := o.ustat(dir.upath()); err == nil && st.Mode&unix.S_ISGID != 0 {
		gid = st.Gid
		if mode&fsys.S_IFMT == fsys.S_IFDIR {
			mode |= unix.S_ISGID
		}
	}
	_, err := unix.Lgetxattr(o.uabs(dir.upath()), "system.posix_acl_default", nil)
	return newObj{uid: int(cred.Uid), gid: int(gid), mode: mode, inherit: err == nil}
}

// fix gives a just-made object (whose attributes st the host reports)
// the owner and mode it should have, with as few calls as the host's own
// choices allow: none when they match. st is updated.
func (o *FS) fix(fd int, p string, no newObj, st *unix.Stat_t) error {
	stat := func() error {
		if fd >= 0 {
			return unix.Fstat(fd, st)
		}
		return unix.Fstatat(o.ufd, p, st, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err := stat(); err != nil {
		return err
	}
	changed := false
	if int(st.Uid) != no.uid || int(st.Gid) != no.gid {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, no.uid, no.gid)
		} else {
			err = unix.Fchownat(o.ufd, p, no.uid, no.gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return err
		}
		changed = true
	}
	want := no.mode & 0o7777
	if no.inherit {
		// The default ACL has shaped the permission bits, as on ext4.
		want = want&0o7000 | st.Mode&0o777
	}
	if no.mode&fsys.S_IFMT != fsys.S_IFLNK && (changed && want&0o6000 != 0 || st.Mode&0o7777 != want) {
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, want)
		} else {
			err = unix.Fchmodat(o.ufd, p, want, 0)
		}
		if err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return stat()
	}
	return nil
}

// hasBelow reports whether a lower layer holds name under dir (whether a
// new upper object there needs to hide something).
func (o *FS) hasBelow(dir *Node, name string) bool {
	s := dir.state()
	if s.opaque {
		return false
	}
	for _, l := range s.lowers {
		if _, err := o.lowers[l.layer].Lookup(l.ino, name); err == nil {
			return true
		}
	}
	return false
}

// created looks up a non-directory just linked into dir.
func (o *FS) created(dir *Node, name string) (*Node, error) {
	o.forgetName(dir, name)
	return o.lookupLocked(dir, name)
}

// Create makes and opens a regular file (open(2) with O_CREAT; O_EXCL
// is implied: an existing name gives EEXIST).
func (o *FS) Create(dir *Node, name string, flags int, mode uint32, cred *Cred) (*Node, *Handle, error) {
	o.ns.Lock()
	defer o.ns.Unlock()
	wh, err := o.prepNew(dir, name)
	if err != nil {
		return nil, nil, err
	}
	dp := dir.upath()
	p := join(dp, name)
	no := o.owner(dir, cred, mode|fsys.S_IFREG)
	acc := flags & unix.O_ACCMODE
	fd, err := unix.Openat(o.ufd, p, unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW|acc|flags&unix.O_APPEND, no.mode&0o777)
	if err != nil {
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := o.fix(fd, "", no, &st); err != nil {
		unix.Close(fd)
		unix.Unlinkat(o.ufd, p, 0)
		return nil, nil, err
	}
	if wh {
		o.dropWhiteout(dp, name)
	}
	n := o.adopt(dir, name, st.Ino|upperTag, fsys.S_IFREG, false)
	h := o.newHandle(n, flags)
	h.setFd(fd)
	return n, h, nil
}

// Mkdir makes a directory. One that hides something below is built in
// the staging directory, made opaque and renamed into place.
func (o *FS) Mkdir(dir *Node, name string, mode uint32, cred *Cred) (*Node, error) {
	o.ns.Lock()
	defer o.ns.Unlock()
	wh, err := o.prepNew(dir, name)
	if err != nil {
		return nil, err
	}
	dp := dir.upath()
	p := join(dp, name)
	no := o.owner(dir, cred, mode&0o7777|fsys.S_IFDIR)
	opaque := o.hasBelow(dir, name)
	if !opaque {
		if err := unix.Mkdirat(o.ufd, p, no.mode&0o777); err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := o.fix(-1, p, no, &st); err != nil {
			unix.Unlinkat(o.ufd, p, unix.AT_REMOVEDIR)
			return nil, err
		}
	} else {
		st := o.stageName()
		if err := unix.Mkdirat(o.ufd, st, 0o700); err != nil {
			return nil, err
		}
		err := o.mkWhiteoutFile(st + "/" + opqName)
		if err == nil {
			var sst unix.Stat_t
			err = o.fix(-1, st, no, &sst)
		}
		if err == nil {
			err = unix.Renameat(o.ufd, st, o.ufd, p)
		}
		if err != nil {
			removeAllAt(o.ufd, st, true)
			return nil, err
		}
	}
	if wh {
		o.dropWhiteout(dp, name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(o.ufd, p, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return o.adopt(dir, name, st.Ino|upperTag, fsys.S_IFDIR, opaque), nil
}

// Mknod makes a device node, FIFO, socket or (S_IFREG) empty file.
func (o *FS) Mknod(dir *Node, name string, mode uint32, rdev uint64, cred *Cred) (*Node, error) {
	o.ns.Lock()
	defer o.ns.Unlock()
	wh, err := o.prepNew(dir, name)
	if err != nil {
		return nil, err
	}
	dp := dir.upath()
	p := join(dp, name)
	if mode&fsys.S_IFMT == 0 {
		mode |= fsys.S_IFREG
	}
	no := o.owner(dir, cred, mode)
	if err := unix.Mknodat(o.ufd, p, no.mode&fsys.S_IFMT|no.mode&0o777, int(rdev)); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := o.fix(-1, p, no, &st); err != nil {
		unix.Unlinkat(o.ufd, p, 0)
		return nil, err
	}
	if wh {
		o.dropWhiteout(dp, name)
	}
	return o.adopt(dir, name, st.Ino|upperTag, no.mode&fsys.S_IFMT, false), nil
}

// Symlink makes a symbolic link.
func (o *FS) Symlink(dir *Node, name, target string, cred *Cred) (*Node, error) {
	o.ns.Lock()
	defer o.ns.Unlock()
	wh, err := o.prepNew(dir, name)
	if err != nil {
		return nil, err
	}
	dp := dir.upath()
	p := join(dp, name)
	no := o.owner(dir, cred, fsys.S_IFLNK|0o777)
	if err := unix.Symlinkat(target, o.ufd, p); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := o.fix(-1, p, no, &st); err != nil {
		unix.Unlinkat(o.ufd, p, 0)
		return nil, err
	}
	if wh {
		o.dropWhiteout(dp, name)
	}
	return o.adopt(dir, name, st.Ino|upperTag, fsys.S_IFLNK, false), nil
}

// Readlink returns a symbolic link's target.
func (o *FS) Readlink(n *Node) (string, error) {
	if n.mode != fsys.S_IFLNK {
		return "", syscall.EINVAL
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	s := n.state()
	if s.upper {
		buf := make([]byte, 4096)
		k, err := unix.Readlinkat(o.ufd, n.dataPath(), buf)
		if err != nil {
			return "", err
		}
		return string(buf[:k]), nil
	}
	if len(s.lowers) == 0 {
		return "", syscall.ENOENT
	}
	t, err := o.lowers[s.lowers[0].layer].Readlink(s.lowers[0].ino)
	return t, lowerErr(err)
}

// Link makes newname in newdir another name of n.
func (o *FS) Link(n, newdir *Node, newname string) (*Node, error) {
	o.ns.Lock()
	defer o.ns.Unlock()
	if n.mode == fsys.S_IFDIR {
		return nil, syscall.EPERM
	}
	if _, err := o.prepNew(newdir, newname); err != nil {
		return nil, err
	}
	if n.state().removed {
		return nil, syscall.ENOENT
	}
	if err := o.copyUpMeta(n); err != nil {
		return nil, err
	}
	dp := newdir.upath()
	if err := o.linkAt(n.dataPath(), join(dp, newname)); err != nil {
		return nil, err
	}
	o.dropWhiteout(dp, newname)
	return o.created(newdir, newname)
}

// dropName accounts for name no longer naming n, given n's host link
// count before the change (0 when n has no upper inode).
func (o *FS) dropName(n *Node, dir *Node, name string, hostNlink uint32, lowerNlink uint32) {
	s := n.state()
	var left int32
	switch {
	case s.indexed:
		left = int32(hostNlink) - 2 + s.pending
	case s.upper:
		left = int32(hostNlink) - 1
	default:
		left = int32(lowerNlink) - 1
	}
	if s.indexed && left <= 0 {
		unix.Unlinkat(o.ufd, plnkPath(n.ino), 0)
		o.setIndexed(n.ino, false)
	}
	me := alias{dir, name}
	n.update(func(s *state) {
		s.aliases = dropAlias(s.aliases, me)
		if left <= 0 {
			s.removed = true
			if s.indexed {
				s.indexed = false
			}
			return
		}
		if s.parent == dir && s.name == name && len(s.aliases) > 0 {
			s.parent, s.name = s.aliases[0].parent, s.aliases[0].name
			s.aliases = s.aliases[1:]
		}
	})
}

func (o *FS) nlinks(n *Node) (host, lower uint32) {
	s := n.state()
	if s.upper {
		if st, err := o.ustat(n.dataPath()); err == nil {
			host = uint32(st.Nlink)
		}
	} else if len(s.lowers) > 0 {
		if a, err := o.lowers[s.lowers[0].layer].Stat(s.lowers[0].ino); err == nil {
			lower = a.Nlink
		}
	}
	return
}

// Unlink removes a non-directory name.
func (o *FS) Unlink(dir *Node, name string) error {
	o.ns.Lock()
	defer o.ns.Unlock()
	if err := o.writable(); err != nil {
		return err
	}
	if len(name) > maxName {
		return syscall.ENAMETOOLONG
	}
	n, err := o.lookupLocked(dir, name)
	if err != nil {
		return err
	}
	if n.mode == fsys.S_IFDIR {
		return syscall.EISDIR
	}
	return o.removeName(dir, name, n)
}

// lowerFound is what find would return for a name that lookupLocked has
// just resolved to n, when n is a non-directory that lives only in one
// lower layer: nothing in the diff shadows that name (the lookup would
// have found it), so the layers need no second search (rm -rf unlinks
// every lower file of a tree). Caller holds ns.
func (o *FS) lowerFound(n *Node) (found, bool) {
	s := n.state()
	if n.mode == fsys.S_IFDIR || s.upper || s.removed || s.indexed || s.meta || len(s.lowers) != 1 {
		return found{}, false
	}
	l := s.lowers[0]
	a, err := o.lowers[l.layer].Stat(l.ino)
	if err != nil || a.Mode&fsys.S_IFMT != n.mode {
		return found{}, false
	}
	return found{mode: n.mode, lattr: a, lowers: s.lowers}, true
}

// focus makes (dir, name) the node's primary name, so that a copy-up
// happens under that name.
func (o *FS) focus(n *Node, dir *Node, name string) {
	n.update(func(s *state) {
		if s.parent == dir && s.name == name || s.parent == nil {
			return
		}
		s.aliases = addAlias(dropAlias(s.aliases, alias{dir, name}), alias{s.parent, s.name})
		s.parent, s.name = dir, name
	})
}

func (o *FS) removeName(dir *Node, name string, n *Node) error {
	o.focus(n, dir, name)
	f, ok := o.lowerFound(n)
	if !ok {
		var err error
		if f, err = o.find(dir, name); err != nil {
			return err
		}
	}
	if !f.upper && f.lattr.Nlink > 1 {
		// Keep the other lower names of this inode counted.
		if err := o.copyUpMeta(n); err != nil {
			return err
		}
		f.upper = true
	}
	if err := o.ensureDir(dir); err != nil {
		return err
	}
	host, lower := o.nlinks(n)
	dp := dir.upath()
	// find already looked below for a name with no upper object.
	if len(f.lowers) > 0 || o.hasBelow(dir, name) {
		if err := o.whiteout(dir, name); err != nil {
			return err
		}
	}
	if f.upper {
		if err := unix.Unlinkat(o.ufd, join(dp, name), 0); err != nil {
			return err
		}
	}
	o.dropName(n, dir, name, host, lower)
	o.forgetName(dir, name)
	return nil
}

// Rmdir removes an empty directory.
func (o *FS) Rmdir(dir *Node, name string) error {
	o.ns.Lock()
	defer o.ns.Unlock()
	if err := o.writable(); err != nil {
		return err
	}
	if len(name) > maxName {
		return syscall.ENAMETOOLONG
	}
	if name == "." {
		return syscall.EINVAL
	}
	if name == ".." {
		return syscall.ENOTEMPTY
	}
	n, err := o.lookupLocked(dir, name)
	if err != nil {
		return err
	}
	if n.mode != fsys.S_IFDIR {
		return syscall.ENOTDIR
	}
	if empty, err := o.isEmpty(n); err != nil {
		return err
	} else if !empty {
		return syscall.ENOTEMPTY
	}
	return o.removeDir(dir, name, n)
}

func (o *FS) removeDir(dir *Node, name string, n *Node) error {
	f, err := o.find(dir, name)
	if err != nil {
		return err
	}
	if err := o.ensureDir(dir); err != nil {
		return err
	}
	dp := dir.upath()
	if len(f.lowers) > 0 || o.hasBelow(dir, name) {
		if err := o.whiteout(dir, name); err != nil {
			return err
		}
	}
	if f.upper {
		p := join(dp, name)
		if err := unix.Unlinkat(o.ufd, p, unix.AT_REMOVEDIR); err != nil {
			if err != unix.ENOTEMPTY && err != unix.EEXIST {
				return err
			}
			// Holds whiteouts: hide it in one step, then clean up.
			st := o.stageName()
			if err := unix.Renameat(o.ufd, p, o.ufd, st); err != nil {
				return err
			}
			o.discard(st)
		}
	}
	n.update(func(s *state) { s.removed = true })
	o.forget(dir, name)
	o.cgen.Add(1)
	return nil
}

// Rename flags (renameat2).
const (
	RenameNoReplace = unix.RENAME_NOREPLACE
	RenameExchange  = unix.RENAME_EXCHANGE
)

// Rename moves oname in odir to nname in ndir.
func (o *FS) Rename(odir *Node, oname string, ndir *Node, nname string, flags uint32) error {
	o.ns.Lock()
	defer o.ns.Unlock()
	if err := o.writable(); err != nil {
		return err
	}
	if len(oname) > maxName || len(nname) > maxName {
		return syscall.ENAMETOOLONG
	}
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return syscall.EINVAL
	}
	if strings.HasPrefix(nname, whPrefix) {
		return syscall.EPERM
	}
	if err := checkName(nname); err != nil {
		return err
	}
	src, err := o.lookupLocked(odir, oname)
	if err != nil {
		return err
	}
	dst, derr := o.lookupLocked(ndir, nname)
	if derr != nil && derr != syscall.ENOENT {
		return derr
	}
	if derr == nil && flags&RenameNoReplace != 0 {
		return syscall.EEXIST
	}
	if derr != nil && flags&RenameExchange != 0 {
		return syscall.ENOENT
	}
	if src.mode == fsys.S_IFDIR && o.isAncestor(src, ndir) {
		return syscall.EINVAL
	}
	if dst != nil && dst.mode == fsys.S_IFDIR && flags&RenameExchange != 0 && o.isAncestor(dst, odir) {
		return syscall.EINVAL
	}
	if dst == src {
		return nil
	}
	if dst != nil && flags&RenameExchange == 0 {
		switch {
		case src.mode == fsys.S_IFDIR && dst.mode != fsys.S_IFDIR:
			return syscall.ENOTDIR
		case src.mode != fsys.S_IFDIR && dst.mode == fsys.S_IFDIR:
			return syscall.EISDIR
		case dst.mode == fsys.S_IFDIR:
			if empty, err := o.isEmpty(dst); err != nil {
				return err
			} else if !empty {
				return syscall.ENOTEMPTY
			}
		}
	}
	// Ready the source (and for exchange the target) as upper objects.
	ready := func(n *Node) error {
		if n.mode == fsys.S_IFDIR {
			return o.copyUpTree(n)
		}
		return o.copyUpMeta(n)
	}
	o.focus(src, odir, oname)
	if dst != nil {
		o.focus(dst, ndir, nname)
	}
	if err := ready(src); err != nil {
		return err
	}
	if err := o.ensureDir(ndir); err != nil {
		return err
	}
	srcBelow := o.hasBelow(odir, oname)
	odp, ndp := odir.upath(), ndir.upath()
	op, np := join(odp, oname), join(ndp, nname)
	if flags&RenameExchange != 0 {
		if err := ready(dst); err != nil {
			return err
		}
		if err := unix.Renameat2(o.ufd, op, o.ufd, np, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		src.update(func(s *state) { s.parent, s.name = ndir, nname })
		dst.update(func(s *state) { s.parent, s.name = odir, oname })
		o.recordMove(src)
		o.recordMove(dst)
		o.renamed(odir, oname, ndir, nname)
		return nil
	}
	var dhost, dlower uint32
	if dst != nil {
		dhost, dlower = o.nlinks(dst)
	}
	if dst != nil && dst.mode == fsys.S_IFDIR && o.uexists(np) {
		// The target's upper may hold whiteouts, so a plain rename would
		// fail: exchange, then dispose of the old target at the old name.
		if err := ready(dst); err != nil {
			return err
		}
		if srcBelow {
			if err := o.whiteout(odir, oname); err != nil {
				return err
			}
		}
		if err := unix.Renameat2(o.ufd, op, o.ufd, np, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		step()
		st := o.stageName()
		if err := unix.Renameat(o.ufd, op, o.ufd, st); err != nil {
			return err
		}
		o.discard(st)
	} else {
		// The whiteout goes first: while the upper copy is still at the
		// old name it shadows the whiteout, so the one rename below is
		// the moment the object changes names.
		if srcBelow {
			if err := o.whiteout(odir, oname); err != nil {
				return err
			}
		}
		if flags&RenameNoReplace != 0 {
			err = unix.Renameat2(o.ufd, op, o.ufd, np, unix.RENAME_NOREPLACE)
		} else {
			err = unix.Renameat(o.ufd, op, o.ufd, np)
		}
		if err != nil {
			return err
		}
		step()
		o.dropWhiteout(ndp, nname)
	}
	if dst != nil {
		if dst.mode == fsys.S_IFDIR {
			dst.update(func(s *state) { s.removed = true })
		} else {
			o.dropName(dst, ndir, nname, dhost, dlower)
		}
	}
	src.update(func(s *state) {
		if s.parent == odir && s.name == oname {
			s.parent, s.name = ndir, nname
		} else {
			s.aliases = addAlias(dropAlias(s.aliases, alias{odir, oname}), alias{ndir, nname})
		}
	})
	o.recordMove(src)
	o.renamed(odir, oname, ndir, nname)
	return nil
}

func (o *FS) renamed(odir *Node, oname string, ndir *Node, nname string) {
	o.forget(odir, oname)
	o.forget(ndir, nname)
	o.cgen.Add(1)
}

func (o *FS) isAncestor(a, n *Node) bool {
	for m := n; m != nil; m = m.state().parent {
		if m == a {
			return true
		}
	}
	return false
}

// SetAttrIn selects the attributes Setattr changes; nil fields stay.
type SetAttrIn struct {
	Mode         *uint32 // permission bits (incl. setuid/setgid/sticky)
	Uid, Gid     *uint32
	Size         *int64
	Atime, Mtime *time.Time
	AtimeNow     bool
	MtimeNow     bool
}

// Setattr changes attributes. Mode, owner and times copy up metadata
// only; a size change copies the data (except truncation to zero).
func (o *FS) Setattr(n *Node, h *Handle, in SetAttrIn) (Attr, error) {
	if err := o.writable(); err != nil {
		return Attr{}, err
	}
	if in.Size != nil {
		if n.mode == fsys.S_IFDIR {
			return Attr{}, syscall.EISDIR
		}
		if n.mode != fsys.S_IFREG {
			return Attr{}, syscall.EINVAL
		}
		if *in.Size < 0 {
			return Attr{}, syscall.EINVAL
		}
		if err := o.truncate(n, h, *in.Size); err != nil {
			return Attr{}, err
		}
	}
	o.ns.Lock()
	defer o.ns.Unlock()
	if in.Mode != nil || in.Uid != nil || in.Gid != nil || in.Atime != nil || in.Mtime != nil || in.AtimeNow || in.MtimeNow {
		if err := o.copyUpMeta(n); err != nil {
			return Attr{}, err
		}
		p := n.dataPath()
		if in.Uid != nil || in.Gid != nil {
			uid, gid := -1, -1
			if in.Uid != nil {
				uid = int(*in.Uid)
			}
			if in.Gid != nil {
				gid = int(*in.Gid)
			}
			if err := unix.Fchownat(o.ufd, p, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return Attr{}, err
			}
		}
		if in.Mode != nil {
			if n.mode == fsys.S_IFLNK {
				return Attr{}, syscall.EOPNOTSUPP
			}
			if err := unix.Fchmodat(o.ufd, p, *in.Mode&0o7777, 0); err != nil {
				return Attr{}, err
			}
		}
		if in.Atime != nil || in.Mtime != nil || in.AtimeNow || in.MtimeNow {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
			if in.AtimeNow {
				ts[0].Nsec = unix.UTIME_NOW
			} else if in.Atime != nil {
				ts[0] = tspec(*in.Atime)
			}
			if in.MtimeNow {
				ts[1].Nsec = unix.UTIME_NOW
			} else if in.Mtime != nil {
				ts[1] = tspec(*in.Mtime)
			}
			if err := unix.UtimesNanoAt(o.ufd, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return Attr{}, err
			}
		}
	}
	if h != nil && h.fd() >= 0 {
		return h.getattr()
	}
	return o.getattrLocked(n)
}

func (o *FS) truncate(n *Node, h *Handle, size int64) error {
	if h != nil && h.writable() {
		return unix.Ftruncate(h.fd(), size)
	}
	s := n.state()
	if size == 0 && (!s.upper || s.meta) {
		n.cpMu.Lock()
		defer n.cpMu.Unlock()
		o.ns.Lock()
		defer o.ns.Unlock()
		if err := o.copyUpMeta(n); err != nil {
			return err
		}
		p := n.dataPath()
		if err := unix.Truncate(o.uabs(p), 0); err != nil {
			return err
		}
		if n.state().meta {
			unix.Lremovexattr(o.uabs(p), o.xMeta)
			n.update(func(s *state) { s.meta = false })
			n.gen.Add(1)
		}
		return nil
	}
	if err := o.copyUpData(n); err != nil {
		return err
	}
	o.ns.RLock()
	p := n.dataPath()
	o.ns.RUnlock()
	return unix.Truncate(o.uabs(p), size)
}
