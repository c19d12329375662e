// Package fs is vmroot's FUSE front end: it serves an overlay.FS through
// go-fuse. It only translates between FUSE requests and overlay calls;
// all union semantics live in package overlay.
//
// With DefaultPermissions the kernel checks permissions, POSIX ACLs
// included (ACLs are stored as system.posix_acl_* attributes in the diff,
// and a directory's default ACL is applied by the host when an object is
// created in the diff). One difference from ext4 remains: the kernel
// applies the caller's umask to a new object's mode before this server
// sees it, also in a directory with a default ACL, where ext4 ignores the
// umask.
//
// Inode numbers given to the kernel are the union's stable st_ino values,
// so hard links stay one inode. With Options.Passthrough, a file whose
// data is in the diff when it is opened is served by kernel passthrough
// (reads and writes bypass this process) unless the inode already has an
// open served through this process; the kernel cannot mix the two. The
// kernel caches lower data and directory listings across opens.
package fs

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/overlay"
	"golang.org/x/sys/unix"
)

// Options tune a mount.
type Options struct {
	// Timeouts for the kernel's entry and attribute caches. The mount is
	// the only writer of its diff, so caching is safe.
	EntryTimeout, AttrTimeout time.Duration
	// AllowOther and DefaultPermissions are the FUSE mount options.
	AllowOther, DefaultPermissions bool
	// Passthrough asks the kernel to do I/O on diff files directly.
	Passthrough bool
	// Debug logs every FUSE request.
	Debug bool
	// FsName is shown in /proc/mounts.
	FsName string
}

type root struct {
	o    *overlay.FS
	opts Options
}

type node struct {
	gofs.Inode
	r *root
	n *overlay.Node

	// The kernel refuses to mix passthrough and cached opens of one inode
	// (the second kind fails with EIO), so each node counts its open files
	// by kind and a new open takes the kind already in use.
	omu    sync.Mutex
	cached int // open files served through this process
	pt     int // open files served by kernel passthrough
}

// Mount mounts o at dir. The returned server is already serving; call
// Unmount (or unmount the directory) to stop it, and Wait to wait.
func Mount(dir string, o *overlay.FS, opts Options) (*fuse.Server, error) {
	r := &root{o: o, opts: opts}
	rn := &node{r: r, n: o.Root()}
	et, at := opts.EntryTimeout, opts.AttrTimeout
	mo := fuse.MountOptions{
		AllowOther:   opts.AllowOther,
		FsName:       opts.FsName,
		Name:         "vmroot",
		DirectMount:  true,
		Debug:        opts.Debug,
		MaxReadAhead: 1 << 20,
		MaxWrite:     1 << 20,
		// readdirplus stays on: one call fills the kernel's dentry and
		// attribute caches, so a stat walk sends no LOOKUP per entry.
		DisableReadDirPlus: false,
	}
	if mo.FsName == "" {
		mo.FsName = "vmroot"
	}
	if opts.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
		// The kernel then also enforces POSIX ACLs, which it reads and
		// writes as system.posix_acl_* attributes like any other.
		mo.EnableAcl = true
	}
	if o.ReadOnly() {
		mo.Options = append(mo.Options, "ro")
	}
	gopts := &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &et,
		AttrTimeout:     &at,
		NegativeTimeout: &et,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: o.Root().Ino(), Mode: fsys.S_IFDIR},
	}
	srv, err := fuse.NewServer(noOpendir{gofs.NewNodeFS(rn, gopts)}, dir, &gopts.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return srv, nil
}

// noOpendir saves two requests per directory open: OPENDIR answers
// ENOSYS, after which the kernel opens directories without asking (no
// OPENDIR, no RELEASEDIR) and caches their listings as with
// FOPEN_CACHE_DIR. Each READDIR then reads through a handle of its own,
// positioned by the request's offset, a name cookie that stays valid
// while the directory changes.
type noOpendir struct{ fuse.RawFileSystem }

func (w noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

func (w noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return w.readDir(cancel, in, out, w.RawFileSystem.ReadDir)
}

func (w noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return w.readDir(cancel, in, out, w.RawFileSystem.ReadDirPlus)
}

func (w noOpendir) readDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList,
	read func(<-chan struct{}, *fuse.ReadIn, *fuse.DirEntryList) fuse.Status) fuse.Status {
	if in.Fh != 0 {
		return read(cancel, in, out)
	}
	var oo fuse.OpenOut
	if st := w.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader, Flags: in.Flags}, &oo); !st.Ok() {
		return st
	}
	rin := *in
	rin.Fh = oo.Fh
	st := read(cancel, &rin, out)
	w.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: oo.Fh})
	return st
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

func fill(a *overlay.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.Uid, Gid: a.Gid}
	out.Rdev = uint32(a.Rdev)
	out.Blksize = 4096
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

func cred(ctx context.Context) *overlay.Cred {
	if c, ok := fuse.FromContext(ctx); ok {
		return &overlay.Cred{Uid: c.Uid, Gid: c.Gid}
	}
	return overlay.Root
}

func (n *node) child(ctx context.Context, c *overlay.Node, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.r.o.Getattr(c)
	if err != nil {
		return nil, errno(err)
	}
	fill(&a, &out.Attr)
	out.SetEntryTimeout(n.r.opts.EntryTimeout)
	out.SetAttrTimeout(n.r.opts.AttrTimeout)
	return n.NewInode(ctx, &node{r: n.r, n: c}, gofs.StableAttr{Mode: c.Mode(), Ino: c.Ino()}), 0
}

var (
	_ gofs.NodeLookuper      = (*node)(nil)
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeReaddirer     = (*node)(nil)
	_ gofs.NodeOpener        = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeMknoder       = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeReadlinker    = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
	_ gofs.NodeFsyncer       = (*node)(nil)
)

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	c, err := n.r.o.Lookup(n.n, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out)
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var a overlay.Attr
	var err error
	if h := handleOf(f); h != nil {
		a, err = h.Getattr()
	} else {
		a, err = n.r.o.Getattr(n.n)
	}
	if err != nil {
		return errno(err)
	}
	fill(&a, &out.Attr)
	out.SetTimeout(n.r.opts.AttrTimeout)
	return 0
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var sa overlay.SetAttrIn
	if m, ok := in.GetMode(); ok {
		sa.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		sa.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		sa.Gid = &g
	}
	if s, ok := in.GetSize(); ok {
		sz := int64(s)
		sa.Size = &sz
	}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			sa.AtimeNow = true
		} else {
			t := time.Unix(int64(in.Atime), int64(in.Atimensec))
			sa.Atime = &t
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			sa.MtimeNow = true
		} else {
			t := time.Unix(int64(in.Mtime), int64(in.Mtimensec))
			sa.Mtime = &t
		}
	}
	a, err := n.r.o.Setattr(n.n, handleOf(f), sa)
	if err != nil {
		return errno(err)
	}
	fill(&a, &out.Attr)
	out.SetTimeout(n.r.opts.AttrTimeout)
	return 0
}

func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ents, err := n.r.o.ReadDir(n.n)
	if err != nil {
		return nil, errno(err)
	}
	list := make([]fuse.DirEntry, len(ents))
	for i, e := range ents {
		list[i] = fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode}
	}
	return gofs.NewListDirStream(list), 0
}

// OpendirHandle makes the handle that noOpendir reads one READDIR
// through. The kernel caches a directory's listing across opens: every
// change to a directory goes through the kernel, which then drops what it
// cached.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if !n.n.IsDir() {
		return nil, 0, syscall.ENOTDIR
	}
	return &dirHandle{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is a directory being read: a listing read at the first
// request.
type dirHandle struct {
	n      *node
	mu     sync.Mutex
	ents   []fuse.DirEntry
	oents  []overlay.DirEntry
	loaded bool
	pos    int
}

var (
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.FileReaddirenter   = (*dirHandle)(nil)
	_ gofs.FileSeekdirer      = (*dirHandle)(nil)
	_ gofs.FileLookuper       = (*dirHandle)(nil)
)

func (d *dirHandle) load() syscall.Errno {
	if d.loaded {
		return 0
	}
	ents, err := d.n.r.o.ReadDir(d.n.n)
	if err != nil {
		return errno(err)
	}
	d.ents = make([]fuse.DirEntry, len(ents))
	for i, e := range ents {
		d.ents[i] = fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode, Off: e.Cookie}
	}
	d.oents = ents
	d.loaded = true
	return 0
}

// Lookup is READDIRPLUS's lookup of the entry just listed: the overlay
// builds it from the listing entry without searching the layers again.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.mu.Lock()
	var e overlay.DirEntry
	ok := d.pos > 0 && d.pos <= len(d.oents) && d.oents[d.pos-1].Name == name
	if ok {
		e = d.oents[d.pos-1]
	}
	d.mu.Unlock()
	if !ok {
		return d.n.Lookup(ctx, name, out)
	}
	c, err := d.n.r.o.LookupEntry(d.n.n, &e)
	if err != nil {
		return nil, errno(err)
	}
	return d.n.child(ctx, c, out)
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.load(); e != 0 {
		return nil, e
	}
	if d.pos >= len(d.ents) {
		return nil, 0
	}
	e := d.ents[d.pos]
	d.pos++
	return &e, 0
}

// Seekdir goes to the entry after offset off. An entry's offset is its
// name's cookie, and the listing is in cookie order, so a position
// survives entries being added or removed before it.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		d.loaded = false // a rewind reads the directory again
	}
	if e := d.load(); e != 0 {
		return e
	}
	d.pos = sort.Search(len(d.ents), func(i int) bool { return d.ents[i].Off > off })
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h, err := n.r.o.Open(n.n, int(flags))
	if err != nil {
		return nil, 0, errno(err)
	}
	f, fl := n.file(h)
	return f, fl, 0
}

// file wraps a new overlay handle. Passthrough is used only for a file
// whose data is in the diff at open time and that has no cached open: a
// file opened from the lower layer is served through this process, and
// while such an open lasts, so are later opens of the same inode (even
// after a copy-up; the open lower handle switches to the diff copy on its
// next read). Page cache is kept across opens only for lower data, which
// never changes.
func (n *node) file(h *overlay.Handle) (gofs.FileHandle, uint32) {
	_, hasFd := h.Fd()
	n.omu.Lock()
	defer n.omu.Unlock()
	// No FLUSH on close: Flush has nothing to do (writes are not
	// buffered here, and locks are left to the kernel).
	fl := uint32(fuse.FOPEN_NOFLUSH)
	if n.r.opts.Passthrough && hasFd && n.cached == 0 {
		n.pt++
		return &ptFile{file{h: h, n: n, pt: true}}, fl
	}
	n.cached++
	if !hasFd {
		fl |= fuse.FOPEN_KEEP_CACHE
	}
	return &file{h: h, n: n}, fl
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	c, h, err := n.r.o.Create(n.n, name, int(flags), mode, cred(ctx))
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	in, e := n.child(ctx, c, out)
	if e != 0 {
		h.Release()
		return nil, nil, 0, e
	}
	f, fl := in.Operations().(*node).file(h)
	return in, f, fl, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	c, err := n.r.o.Mkdir(n.n, name, mode, cred(ctx))
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	c, err := n.r.o.Mknod(n.n, name, mode, uint64(dev), cred(ctx))
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	c, err := n.r.o.Symlink(n.n, name, target, cred(ctx))
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out)
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.r.o.Readlink(n.n)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	c, err := n.r.o.Link(t.n, n.n, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, c, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.r.o.Unlink(n.n, name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.r.o.Rmdir(n.n, name))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	return errno(n.r.o.Rename(n.n, name, np.n, newName, flags))
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.r.o.GetXattr(n.n, attr)
	if err != nil {
		return 0, errno(err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return errno(n.r.o.SetXattr(n.n, attr, data, int(flags)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return errno(n.r.o.RemoveXattr(n.n, attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.r.o.ListXattr(n.n)
	if err != nil {
		return 0, errno(err)
	}
	sz := 0
	for _, nm := range names {
		sz += len(nm) + 1
	}
	if len(dest) < sz {
		return uint32(sz), syscall.ERANGE
	}
	off := 0
	for _, nm := range names {
		off += copy(dest[off:], nm)
		dest[off] = 0
		off++
	}
	return uint32(sz), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.r.o.Statfs()
	if err != nil {
		return errno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.Bfree, st.Bavail
	out.Files, out.Ffree = st.Files, st.Ffree
	out.Bsize, out.Frsize, out.NameLen = uint32(st.Bsize), uint32(st.Frsize), uint32(st.Namelen)
	return 0
}

func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	if h := handleOf(f); h != nil {
		return errno(h.Fsync(flags&1 != 0))
	}
	return 0
}

func handleOf(f gofs.FileHandle) *overlay.Handle {
	switch f := f.(type) {
	case *file:
		return f.h
	case *ptFile:
		return f.h
	}
	return nil
}

// file is an open file.
type file struct {
	h  *overlay.Handle
	n  *node
	pt bool
}

// ptFile is an open diff file the kernel may serve by passthrough.
type ptFile struct{ file }

func (f *ptFile) PassthroughFd() (int, bool) { return f.h.Fd() }

var (
	_ gofs.FileReader          = (*file)(nil)
	_ gofs.FileWriter          = (*file)(nil)
	_ gofs.FileReleaser        = (*file)(nil)
	_ gofs.FileGetattrer       = (*file)(nil)
	_ gofs.FileFsyncer         = (*file)(nil)
	_ gofs.FileFlusher         = (*file)(nil)
	_ gofs.FileAllocater       = (*file)(nil)
	_ gofs.FileLseeker         = (*file)(nil)
	_ gofs.FilePassthroughFder = (*ptFile)(nil)
)

// spliceMin is the smallest read served by splicing from the image file:
// below it the pipe set-up costs more than the copy it saves.
const spliceMin = 128 << 10

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if len(dest) >= spliceMin {
		if fd, hoff, n, ok := f.h.HostRange(off, int64(len(dest))); ok {
			if n == 0 {
				return fuse.ReadResultData(nil), 0
			}
			return fuse.ReadResultFd(uintptr(fd), hoff, int(n)), 0
		}
	}
	k, err := f.h.ReadAt(dest, off)
	if err != nil && k == 0 {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	k, err := f.h.WriteAt(data, off)
	return uint32(k), errno(err)
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	f.n.omu.Lock()
	if f.pt {
		f.n.pt--
	} else {
		f.n.cached--
	}
	f.n.omu.Unlock()
	return errno(f.h.Release())
}
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	a, err := f.h.Getattr()
	if err != nil {
		return errno(err)
	}
	fill(&a, &out.Attr)
	return 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return errno(f.h.Fsync(flags&1 != 0))
}

func (f *file) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	return errno(f.h.Allocate(mode, int64(off), int64(size)))
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	r, err := f.h.Lseek(int64(off), int(whence))
	return uint64(r), errno(err)
}

// Unmount detaches a FUSE mount point (MNT_DETACH when busy is not used:
// a busy mount reports EBUSY).
func Unmount(dir string) error {
	return unix.Unmount(dir, 0)
}
