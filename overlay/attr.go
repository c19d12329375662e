package overlay

import (
	"encoding/binary"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// Attr is fsys.Attr: the attributes the union reports.
type Attr = fsys.Attr

// Getattr returns the node's attributes.
func (o *FS) Getattr(n *Node) (Attr, error) {
	o.ns.RLock()
	defer o.ns.RUnlock()
	return o.getattrLocked(n)
}

func (o *FS) getattrLocked(n *Node) (Attr, error) {
	s := n.state()
	var a Attr
	if s.upper {
		st, err := o.ustat(n.dataPath())
		if err != nil {
			if s.removed {
				return a, syscall.ENOENT
			}
			return a, err
		}
		a = dirfs.AttrFromStat(&st)
		if s.indexed {
			a.Nlink = uint32(int32(st.Nlink) - 1 + s.pending)
		}
		if s.meta {
			if la, err := o.lowers[s.origin.layer].Stat(s.origin.ino); err == nil {
				a.Blocks = la.Blocks
			}
		}
	} else {
		if len(s.lowers) == 0 {
			return a, syscall.ENOENT
		}
		l := s.lowers[0]
		la, err := o.lowers[l.layer].Stat(l.ino)
		if err != nil {
			return a, lowerErr(err)
		}
		a = la
	}
	if n.mode == fsys.S_IFDIR && s.upper && len(s.lowers) > 0 {
		a.Nlink = o.dirNlink(n)
	}
	if s.removed {
		a.Nlink = 0
	}
	a.Ino = n.ino
	return a, nil
}

// dirNlink counts 2 + subdirectories of a merged directory.
func (o *FS) dirNlink(n *Node) uint32 {
	if v := n.dirN.Load(); v > 0 {
		return uint32(v)
	}
	ents, err := o.readDirLocked(n)
	if err != nil {
		return 2
	}
	c := int64(2)
	for _, e := range ents {
		if e.Mode == fsys.S_IFDIR {
			c++
		}
	}
	n.dirN.Store(c)
	return uint32(c)
}

// DirEntry is one entry of a union directory. Cookie is a hash of the
// name: entries come sorted by it, so a reader can resume after any
// cookie even when the directory changed in between (NFS).
type DirEntry struct {
	Name   string
	Ino    uint64
	Mode   uint32
	Cookie uint64
	lower  bool // listed from a lower layer, absent from the diff
}

// ReadDir lists a directory (without "." and "..").
func (o *FS) ReadDir(dir *Node) ([]DirEntry, error) {
	if dir.mode != fsys.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	return o.readDirLocked(dir)
}

// EntryAttr returns the attributes and the ID (appended to id) of entry e
// of dir's listing, read straight from its lower layer without building a
// node, as READDIRPLUS wants for every entry. ok is false when the entry
// is not a plain lower object (it is in the diff, is a pseudo-linked hard
// link, or the listing is out of date): Lookup it instead.
func (o *FS) EntryAttr(dir *Node, e *DirEntry, id []byte) (a Attr, out []byte, ok bool) {
	if !e.lower || dir.mode != fsys.S_IFDIR {
		return a, id, false
	}
	l, good := o.dec(e.Ino)
	if !good {
		return a, id, false
	}
	isDir := e.Mode == fsys.S_IFDIR
	if !isDir && o.ufd >= 0 && o.isIndexed(e.Ino) {
		return a, id, false
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	if dir.state().removed {
		return a, id, false
	}
	la, err := o.lowers[l.layer].Stat(l.ino)
	if err != nil || la.Mode&fsys.S_IFMT != e.Mode {
		return a, id, false
	}
	la.Ino = e.Ino
	if isDir {
		id = append(id, idLowerDir)
		id = binary.BigEndian.AppendUint64(id, e.Ino)
	} else {
		id = append(id, idLowerFile)
		id = binary.BigEndian.AppendUint64(id, e.Ino)
		id = binary.BigEndian.AppendUint64(id, dir.ino)
	}
	return la, id, true
}

// Cookie is the readdir cookie of a name.
func Cookie(name string) uint64 {
	// FNV-1a, inline: hash/fnv's hasher would be allocated per name.
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	c := h >> 1
	if c < 3 {
		c += 3 // 0 is "start"; leave room for "." and ".."
	}
	return c
}

func (o *FS) readDirLocked(dir *Node) ([]DirEntry, error) {
	s := dir.state()
	if s.removed {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []DirEntry
	var upLowers []lref
	if s.upper && o.ufd >= 0 {
		dp := dir.upath()
		ents, err := readDirents(o.ufd, dp)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name, whPrefix) {
				if !strings.HasPrefix(e.Name, whPrefix+whPrefix) {
					seen[e.Name[len(whPrefix):]] = true
				}
				continue
			}
			seen[e.Name] = true
			ino := e.Ino | upperTag
			if v, ok := o.getOrigin(join(dp, e.Name)); ok {
				ino = v
			} else if e.Type == fsys.S_IFDIR {
				upLowers = append(upLowers[:0], s.lowers...)
				ino = o.mergedDirIno(upLowers, e.Name, ino)
			}
			out = append(out, DirEntry{Name: e.Name, Ino: ino, Mode: e.Type})
		}
	}
	if !s.opaque {
		for _, l := range s.lowers {
			lfs := o.lowers[l.layer]
			ents, err := lfs.ReadDir(l.ino)
			if err != nil {
				return nil, lowerErr(err)
			}
			base := o.isBase(l.layer)
			var hide []string
			for _, e := range ents {
				if strings.HasPrefix(e.Name, whPrefix) {
					if !base && !strings.HasPrefix(e.Name, whPrefix+whPrefix) {
						hide = append(hide, e.Name[len(whPrefix):])
					}
					continue
				}
				if seen[e.Name] {
					continue
				}
				typ := e.Type
				if typ == 0 || (!base && typ == fsys.S_IFCHR) {
					a, err := lfs.Stat(e.Ino)
					if err != nil {
						continue
					}
					typ = a.Mode & fsys.S_IFMT
					if !base && typ == fsys.S_IFCHR && a.Rdev == 0 {
						hide = append(hide, e.Name)
						continue
					}
				}
				seen[e.Name] = true
				out = append(out, DirEntry{Name: e.Name, Ino: o.enc(lref{l.layer, e.Ino}), Mode: typ, lower: true})
			}
			for _, h := range hide {
				seen[h] = true
			}
			if !base && o.lowerOpaque(l.layer, l.ino) {
				break
			}
		}
	}
	for i := range out {
		out[i].Cookie = Cookie(out[i].Name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cookie < out[j].Cookie })
	return out, nil
}

func (o *FS) mergedDirIno(lowers []lref, name string, def uint64) uint64 {
	for _, l := range lowers {
		if ino, err := o.lowers[l.layer].Lookup(l.ino, name); err == nil {
			if a, err := o.lowers[l.layer].Stat(ino); err == nil && a.IsDir() {
				return o.enc(lref{l.layer, ino})
			}
			return def
		}
	}
	return def
}

// isEmpty reports whether a union directory has no visible entries.
func (o *FS) isEmpty(dir *Node) (bool, error) {
	ents, err := o.readDirLocked(dir)
	return len(ents) == 0, err
}

func readDirents(dirfd int, p string) ([]fsys.DirEntry, error) {
	return dirfs.ReadDirents(dirfd, p)
}

func readNames(dirfd int, p string) ([]string, error) {
	ents, err := readDirents(dirfd, p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name
	}
	return names, nil
}

// removeAllAt removes everything below p (and p itself when self).
func removeAllAt(dirfd int, p string, self bool) error {
	ents, err := readDirents(dirfd, p)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	for _, e := range ents {
		cp := p + "/" + e.Name
		if e.Type == fsys.S_IFDIR {
			if err := removeAllAt(dirfd, cp, true); err != nil {
				return err
			}
			continue
		}
		if err := unix.Unlinkat(dirfd, cp, 0); err != nil && err != unix.ENOENT {
			if err == unix.EISDIR {
				if err := removeAllAt(dirfd, cp, true); err != nil {
					return err
				}
				continue
			}
			return err
		}
	}
	if self {
		if err := unix.Unlinkat(dirfd, p, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

// Statfs describes the union: the diff's filesystem when there is one.
func (o *FS) Statfs() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	if o.ufd >= 0 {
		err := unix.Fstatfs(o.ufd, &st)
		st.Namelen = maxName
		return st, err
	}
	in := o.lowers[len(o.lowers)-1].Info()
	st.Bsize = in.BlockSize
	st.Frsize = in.BlockSize
	st.Blocks = in.Blocks
	st.Bfree = in.FreeBlocks
	st.Bavail = in.FreeBlocks
	st.Files = in.Inodes
	st.Ffree = in.FreeInodes
	st.Namelen = maxName
	return st, nil
}

func tspec(t time.Time) unix.Timespec { return unix.NsecToTimespec(t.UnixNano()) }

// Access checks mask (R_OK|W_OK|X_OK bits) for cred as the kernel's
// generic_permission does: by the POSIX access ACL
// (system.posix_acl_access) when the object has one, else by the
// owner/group/other bits. NFS uses it.
func (o *FS) Access(n *Node, cred *Cred, mask uint32) error {
	a, err := o.Getattr(n)
	if err != nil {
		return err
	}
	if mask&unix.W_OK != 0 && o.ReadOnly() && (n.mode == fsys.S_IFREG || n.mode == fsys.S_IFDIR || n.mode == fsys.S_IFLNK) {
		return syscall.EROFS
	}
	var acl []byte
	if cred != nil && cred.Uid != 0 && n.mode != fsys.S_IFLNK {
		acl, _ = o.GetXattr(n, aclAccess)
	}
	return permits(a, acl, cred, mask)
}

// MayDelete checks that cred may remove or rename away name in dir:
// write and search permission on dir and, in a sticky directory,
// ownership of dir or of the entry (EPERM otherwise, as ext4 says).
// Unlink, Rmdir and Rename do not check permissions themselves; a front
// end that does not leave checks to the kernel calls this first.
func (o *FS) MayDelete(dir *Node, name string, cred *Cred) error {
	if err := o.Access(dir, cred, unix.W_OK|unix.X_OK); err != nil {
		return err
	}
	if cred == nil || cred.Uid == 0 {
		return nil
	}
	da, err := o.Getattr(dir)
	if err != nil {
		return err
	}
	if da.Mode&unix.S_ISVTX == 0 || da.Uid == cred.Uid {
		return nil
	}
	c, err := o.Lookup(dir, name)
	if err != nil {
		return err
	}
	ca, err := o.Getattr(c)
	if err != nil {
		return err
	}
	if ca.Uid != cred.Uid {
		return syscall.EPERM
	}
	return nil
}

const aclAccess = "system.posix_acl_access"

// ACL entry tags (linux/posix_acl_xattr.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

func permits(a Attr, acl []byte, cred *Cred, mask uint32) error {
	if cred == nil || cred.Uid == 0 {
		if mask&unix.X_OK != 0 && a.Mode&fsys.S_IFMT != fsys.S_IFDIR && a.Mode&0o111 == 0 {
			return syscall.EACCES
		}
		return nil
	}
	want := mask & 7
	if len(acl) >= 4+8 && (len(acl)-4)%8 == 0 && le32(acl) == 2 {
		if aclPermits(a, acl[4:], cred, want) {
			return nil
		}
		return syscall.EACCES
	}
	var bits uint32
	switch {
	case cred.Uid == a.Uid:
		bits = a.Mode >> 6 & 7
	case cred.inGroup(a.Gid):
		bits = a.Mode >> 3 & 7
	default:
		bits = a.Mode & 7
	}
	if want&^bits != 0 {
		return syscall.EACCES
	}
	return nil
}

// aclPermits is the kernel's posix_acl_permission over the xattr form
// of an access ACL (entries of tag u16, perm u16, id u32, little-endian).
func aclPermits(a Attr, ents []byte, cred *Cred, want uint32) bool {
	maskPerm := uint32(7)
	for e := ents; len(e) >= 8; e = e[8:] {
		if le16(e) == aclMask {
			maskPerm = uint32(le16(e[2:]))
		}
	}
	groupFound := false
	for e := ents; len(e) >= 8; e = e[8:] {
		tag, perm, id := le16(e), uint32(le16(e[2:])), le32(e[4:])
		switch tag {
		case aclUserObj:
			if cred.Uid == a.Uid {
				return want&^perm == 0
			}
		case aclUser:
			if cred.Uid == id {
				return want&^(perm&maskPerm) == 0
			}
		case aclGroupObj, aclGroup:
			g := a.Gid
			if tag == aclGroup {
				g = id
			}
			if cred.inGroup(g) {
				groupFound = true
				if want&^(perm&maskPerm) == 0 {
					return true
				}
			}
		case aclOther:
			if groupFound {
				return false
			}
			return want&^perm == 0
		}
	}
	return false
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (c *Cred) inGroup(g uint32) bool {
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
