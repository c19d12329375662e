package overlay

import (
	"io"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

func (o *FS) stageName() string {
	return workDir + "/" + strconv.FormatUint(o.wseq.Add(1), 10)
}

func (o *FS) writable() error {
	if o.ufd < 0 {
		return syscall.EROFS
	}
	return nil
}

// placeAt renames a staged object to dst, keeping the parent's times (a
// copy-up is not a change the union's user made).
func (o *FS) placeAt(stage, dst string, keepTimes bool) error {
	step()
	pd := path.Dir(dst)
	var pst unix.Stat_t
	saved := keepTimes && unix.Fstatat(o.ufd, pd, &pst, 0) == nil
	if err := unix.Renameat(o.ufd, stage, o.ufd, dst); err != nil {
		return err
	}
	step()
	if saved {
		unix.UtimesNanoAt(o.ufd, pd, []unix.Timespec{pst.Atim, pst.Mtim}, 0)
	}
	return nil
}

func (o *FS) keptTimes(p string) func() {
	var st unix.Stat_t
	if unix.Fstatat(o.ufd, p, &st, 0) != nil {
		return func() {}
	}
	return func() { unix.UtimesNanoAt(o.ufd, p, []unix.Timespec{st.Atim, st.Mtim}, 0) }
}

func skipXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "trusted.vmroot.") || strings.HasPrefix(name, "user.vmroot.")
}

func (o *FS) copyXattrs(l lref, dst string) error {
	lfs := o.lowers[l.layer]
	names, err := lfs.ListXattr(l.ino)
	if err != nil {
		return nil
	}
	for _, nm := range names {
		if skipXattr(nm) {
			continue
		}
		v, err := lfs.GetXattr(l.ino, nm)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(o.uabs(dst), nm, v, 0); err != nil && err != unix.EOPNOTSUPP {
			return err
		}
	}
	return nil
}

func (o *FS) setMeta(p string, a fsys.Attr, lnk bool) error {
	if err := unix.Fchownat(o.ufd, p, int(a.Uid), int(a.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if !lnk {
		if err := unix.Fchmodat(o.ufd, p, a.Mode&0o7777, 0); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(o.ufd, p, []unix.Timespec{tspec(a.Atime), tspec(a.Mtime)}, unix.AT_SYMLINK_NOFOLLOW)
}

// ensureDir gives directory d (and its ancestors) an upper directory.
// Caller holds ns exclusively.
func (o *FS) ensureDir(d *Node) error {
	if err := o.writable(); err != nil {
		return err
	}
	s := d.state()
	if s.upper {
		return nil
	}
	if s.removed || s.parent == nil {
		return syscall.ENOENT
	}
	if err := o.ensureDir(s.parent); err != nil {
		return err
	}
	l := s.lowers[0]
	a, err := o.lowers[l.layer].Stat(l.ino)
	if err != nil {
		return lowerErr(err)
	}
	st := o.stageName()
	if err := unix.Mkdirat(o.ufd, st, 0o700); err != nil {
		return err
	}
	err = o.copyXattrs(l, st)
	if err == nil {
		err = unix.Lsetxattr(o.uabs(st), o.xOrigin, []byte(strconv.FormatUint(d.ino, 10)), 0)
	}
	if err == nil {
		err = o.setMeta(st, a, false)
	}
	if err == nil {
		err = o.placeAt(st, d.upath(), true)
	}
	if err != nil {
		unix.Unlinkat(o.ufd, st, unix.AT_REMOVEDIR)
		return err
	}
	d.update(func(s *state) { s.upper = true })
	return nil
}

// nameInUpper reports whether the node's primary name has an upper entry.
func (o *FS) nameInUpper(n *Node) bool {
	s := n.state()
	if !s.upper || s.parent == nil {
		return s.upper
	}
	return o.uexists(n.upath())
}

// copyUpMeta gives a node an upper inode at its primary name without
// copying file data: regular files become sparse "meta" copies whose
// data is still read from the lower layer. Caller holds ns exclusively.
func (o *FS) copyUpMeta(n *Node) error {
	if n.mode == fsys.S_IFDIR {
		return o.ensureDir(n)
	}
	if err := o.writable(); err != nil {
		return err
	}
	s := n.state()
	if s.removed {
		return syscall.ENOENT
	}
	if err := o.ensureDir(s.parent); err != nil {
		return err
	}
	dst := n.upath()
	if s.upper {
		if !s.indexed || o.uexists(dst) {
			return nil
		}
		// Another name of this inode was copied up: link this one to it.
		if err := o.linkAt(plnkPath(n.ino), dst); err != nil {
			return err
		}
		if s.pending > 0 {
			o.setPending(n, s.pending-1)
		}
		return nil
	}
	l := s.lowers[0]
	lfs := o.lowers[l.layer]
	a, err := lfs.Stat(l.ino)
	if err != nil {
		return lowerErr(err)
	}
	st := o.stageName()
	meta := false
	switch n.mode {
	case fsys.S_IFREG:
		fd, err := unix.Openat(o.ufd, st, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		// No fsync: the copy holds no data, and a journaling host
		// filesystem commits its size and attributes before the rename
		// that makes it visible.
		if a.Size > 0 {
			meta = true
			err = unix.Ftruncate(fd, a.Size)
		}
		unix.Close(fd)
		if err != nil {
			unix.Unlinkat(o.ufd, st, 0)
			return err
		}
	case fsys.S_IFLNK:
		t, err := lfs.Readlink(l.ino)
		if err != nil {
			return lowerErr(err)
		}
		if err := unix.Symlinkat(t, o.ufd, st); err != nil {
			return err
		}
	default:
		if err := unix.Mknodat(o.ufd, st, n.mode|0o600, int(a.Rdev)); err != nil {
			return err
		}
	}
	err = o.copyXattrs(l, st)
	if err == nil {
		err = unix.Lsetxattr(o.uabs(st), o.xOrigin, []byte(strconv.FormatUint(n.ino, 10)), 0)
	}
	if err == nil && meta {
		err = unix.Lsetxattr(o.uabs(st), o.xMeta, nil, 0)
	}
	if err == nil {
		err = o.setMeta(st, a, n.mode == fsys.S_IFLNK)
	}
	indexed := false
	var pending int32
	if err == nil && a.Nlink > 1 && n.mode != fsys.S_IFDIR {
		// Pseudo-link first: a crash before the rename leaves a complete
		// copy that the next lookup of any name finds.
		pending = int32(a.Nlink) - 1
		if err = unix.Lsetxattr(o.uabs(st), o.xPend, []byte(strconv.Itoa(int(pending))), 0); err == nil {
			if err = o.linkAt(st, plnkPath(n.ino)); err == nil {
				indexed = true
				o.setIndexed(n.ino, true)
			}
		}
	}
	if err == nil {
		err = o.placeAt(st, dst, true)
	}
	if err != nil {
		unix.Unlinkat(o.ufd, st, 0)
		if indexed {
			unix.Unlinkat(o.ufd, plnkPath(n.ino), 0)
			o.setIndexed(n.ino, false)
		}
		return err
	}
	n.update(func(s *state) {
		s.upper, s.meta, s.origin, s.indexed, s.pending = true, meta, l, indexed, pending
	})
	n.gen.Add(1)
	return nil
}

func (o *FS) linkAt(src, dst string) error {
	return unix.Linkat(o.ufd, src, o.ufd, dst, 0)
}

func (o *FS) setPending(n *Node, v int32) {
	unix.Lsetxattr(o.uabs(plnkPath(n.ino)), o.xPend, []byte(strconv.Itoa(int(v))), 0)
	n.update(func(s *state) { s.pending = v })
}

// copyUpData makes sure a regular file's data is in the diff. It takes
// the tree lock only briefly; the data copy runs without it.
func (o *FS) copyUpData(n *Node) error {
	n.cpMu.Lock()
	defer n.cpMu.Unlock()
	o.ns.Lock()
	err := o.copyUpMeta(n)
	s := n.state()
	var p string
	if err == nil {
		p = n.dataPath()
	}
	o.ns.Unlock()
	if err != nil || !s.meta {
		return err
	}
	return o.fillData(n, p, s.origin)
}

// fillData copies a meta copy's data from its origin into the diff file
// in place; the meta attribute goes only after fsync, so a crash leaves
// a file that still reads its (old) lower data.
func (o *FS) fillData(n *Node, p string, l lref) error {
	fd, err := unix.Openat(o.ufd, p, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	lfs := o.lowers[l.layer]
	exts := []fsys.Extent{{Off: 0, Len: st.Size}}
	if em, ok := lfs.(fsys.ExtentMapper); ok {
		if e, err := em.DataExtents(l.ino); err == nil {
			exts = e
		}
	}
	if err := copyExtents(lfs, l.ino, fd, exts, st.Size); err != nil {
		// Still a meta copy that reads the lower data; give the space
		// back (on ENOSPC especially).
		unix.Ftruncate(fd, 0)
		unix.Ftruncate(fd, st.Size)
		return err
	}
	step()
	if err := unix.Fsync(fd); err != nil {
		return err
	}
	step()
	unix.UtimesNanoAt(o.ufd, p, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	if err := unix.Lremovexattr(o.uabs(p), o.xMeta); err != nil && err != unix.ENODATA {
		return err
	}
	n.update(func(s *state) { s.meta = false })
	n.gen.Add(1)
	return nil
}

// copyUpTree makes directory d a complete, opaque upper directory: every
// entry visible in it gets an upper copy (files as meta copies), so it can
// be renamed within the diff. Caller holds ns exclusively.
func (o *FS) copyUpTree(d *Node) error {
	if err := o.ensureDir(d); err != nil {
		return err
	}
	s := d.state()
	if s.opaque || len(s.lowers) == 0 {
		if !s.opaque {
			if err := o.mkWhiteoutFile(join(d.upath(), opqName)); err != nil {
				return err
			}
			d.update(func(s *state) { s.opaque = true })
		}
		return nil
	}
	ents, err := o.readDirLocked(d)
	if err != nil {
		return err
	}
	for _, e := range ents {
		c, err := o.lookupLocked(d, e.Name)
		if err != nil {
			return err
		}
		if c.mode == fsys.S_IFDIR {
			err = o.copyUpTree(c)
		} else {
			err = o.copyUpMeta(c)
		}
		if err != nil {
			return err
		}
	}
	dp := d.upath()
	restore := o.keptTimes(dp)
	if err := o.mkWhiteoutFile(join(dp, opqName)); err != nil {
		return err
	}
	// Whiteouts are redundant under an opaque marker.
	names, err := readNames(o.ufd, dp)
	if err != nil {
		return err
	}
	for _, nm := range names {
		if strings.HasPrefix(nm, whPrefix) && !strings.HasPrefix(nm, whPrefix+whPrefix) {
			unix.Unlinkat(o.ufd, join(dp, nm), 0)
		}
	}
	restore()
	d.update(func(s *state) { s.opaque, s.lowers = true, nil })
	o.cgen.Add(1)
	return nil
}

// mkWhiteoutFile makes p a whiteout-type entry (a hard link to the
// branch's whiteout base, as aufs does, or an empty file).
func (o *FS) mkWhiteoutFile(p string) error {
	defer step()
	err := unix.Linkat(o.ufd, whBase, o.ufd, p, 0)
	if err == unix.EEXIST {
		return nil
	}
	if err == nil {
		return nil
	}
	fd, err := unix.Openat(o.ufd, p, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func (o *FS) whiteout(dir *Node, name string) error {
	return o.mkWhiteoutFile(join(dir.upath(), whPrefix+name))
}

func (o *FS) dropWhiteout(dirPath, name string) {
	unix.Unlinkat(o.ufd, join(dirPath, whPrefix+name), 0)
	step()
}

// testStep, when set (by tests only), is called between the steps of
// every multi-step change to the diff, so a test can crash the process
// at each one in turn.
var testStep func()

func step() {
	if testStep != nil {
		testStep()
	}
}

// RangeCopier is implemented by layers whose files are host files: they
// copy a range into a host descriptor inside the kernel
// (copy_file_range, which may share blocks), so copy-up moves no data
// through this process.
type RangeCopier interface {
	CopyRange(ino uint64, dst int, off, length int64) (int64, error)
}

const (
	copyBuf   = 4 << 20  // read size for a data copy-up
	flushStep = 64 << 20 // start writeback this often during a copy-up
)

// copyExtents copies the data extents of lower file ino into fd at the
// same offsets. Reading the lower and writing the diff overlap: a reader
// goroutine fills one buffer while the other is written, and writeback
// starts as the copy goes so the final fsync has little left to do.
func copyExtents(lfs fsys.FS, ino uint64, fd int, exts []fsys.Extent, size int64) error {
	rc, _ := lfs.(RangeCopier)
	type chunk struct {
		buf []byte
		off int64
		err error
	}
	for _, e := range exts {
		end := min(e.Off+e.Len, size)
		off := e.Off
		if rc != nil {
			// In steps, each handed to a goroutine that starts its
			// writeback (which can block on the disk queue), so that the
			// disk writes while the next step copies and the final fsync
			// has little left.
			flush := make(chan [2]int64, 64)
			done := make(chan struct{})
			go func() {
				for r := range flush {
					unix.SyncFileRange(fd, r[0], r[1], unix.SYNC_FILE_RANGE_WRITE)
				}
				close(done)
			}()
			for off < end {
				k, err := rc.CopyRange(ino, fd, off, min(end-off, flushStep))
				if err != nil || k == 0 {
					break // the rest the slow way
				}
				flush <- [2]int64{off, k}
				off += k
			}
			close(flush)
			<-done
		}
		if off >= end {
			continue
		}
		full := make(chan chunk, 1)
		free := make(chan []byte, 2)
		free <- make([]byte, copyBuf)
		free <- make([]byte, copyBuf)
		stop := make(chan struct{})
		go func(off int64) {
			defer close(full)
			for off < end {
				var b []byte
				select {
				case b = <-free:
				case <-stop:
					return
				}
				m := min(int64(len(b)), end-off)
				k, err := lfs.ReadAt(ino, b[:m], off)
				if err == io.EOF {
					err = nil
					if k == 0 {
						return
					}
				}
				full <- chunk{b[:k], off, err}
				if err != nil || k == 0 {
					return
				}
				off += int64(k)
			}
		}(off)
		var werr error
		flushed := off
		for c := range full {
			if werr == nil && c.err != nil {
				werr = lowerErr(c.err)
			}
			if werr == nil && len(c.buf) > 0 {
				if _, err := pwriteAll(fd, c.buf, c.off); err != nil {
					werr = err
				} else if top := c.off + int64(len(c.buf)); top-flushed >= flushStep {
					unix.SyncFileRange(fd, flushed, top-flushed, unix.SYNC_FILE_RANGE_WRITE)
					flushed = top
				}
			}
			if werr != nil {
				close(stop)
				for range full {
				}
				break
			}
			free <- c.buf[:cap(c.buf)]
		}
		if werr != nil {
			return werr
		}
	}
	return nil
}

func pwriteAll(fd int, b []byte, off int64) (int, error) {
	total := 0
	for total < len(b) {
		k, err := unix.Pwrite(fd, b[total:], off+int64(total))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		total += k
	}
	return total, nil
}
