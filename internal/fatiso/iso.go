package fatiso

import (
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/vmroot/vmroot/internal/fsys"
)

// ProbeISO reports whether r holds an ISO9660 volume ("CD001" at 32769).
func ProbeISO(r io.ReaderAt) bool {
	b := make([]byte, 5)
	n, _ := r.ReadAt(b, isoVDStart*isoBlock+1)
	return n == len(b) && string(b) == "CD001"
}

// OpenISO opens an ISO9660 volume of the given size.
//
// Names follow what Linux's isofs shows by default: Rock Ridge names when
// the volume has Rock Ridge, else Joliet names (";1" and trailing dots
// dropped), else ISO9660 names translated as with map=normal (lower case,
// ";1" dropped). Modes, owners, link counts and symlink targets come from
// Rock Ridge; without it every object is 0555, uid/gid 0, as on Linux.
// Mtime is the directory record's recording time (1 s resolution), which
// mkisofs and xorriso set to the file's mtime. Device numbers (RR PN) are
// not exposed by go-diskfs: device nodes have Rdev 0. Files of more than
// one extent (over 4 GiB) and relocated deep directories are not supported.
//
// With Rock Ridge, go-diskfs walks the tree and decodes modes, owners
// and symlinks (PX, SL); vmroot checks descriptors, path tables and every
// directory extent before go-diskfs reads them (it allocates whatever size
// the image claims) and decodes names itself (go-diskfs drops leading and
// trailing dots of file names: ".profile" would become "profile").
// Without Rock Ridge the directory records are all there is to show and
// vmroot reads them itself: go-diskfs v1.9.4 then navigates by path
// table, and its path-table lookup finds no directory below the second
// level (it takes the 0-based record index for the 1-based parent number).
func OpenISO(r io.ReaderAt, size int64) (fsys.FS, error) {
	f := &isoFS{st: newStorage(r, size), t: &tree{r: r, size: size}}
	if err := f.readDescriptors(); err != nil {
		return nil, fmt.Errorf("iso9660: %w", err)
	}
	err := f.st.guard("iso9660: opening with go-diskfs", func() error {
		var err error
		f.gd, err = iso9660.Read(f.st, size, 0, isoBlock)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := f.index(); err != nil {
		return nil, fmt.Errorf("iso9660: %w", err)
	}
	f.t.info = f.fsInfo()
	return f.t, nil
}

type isoFS struct {
	st       *storage
	gd       *iso9660.FileSystem
	t        *tree
	pvd      volumeDescriptor
	joliet   *volumeDescriptor
	rr       bool // Rock Ridge: names and attributes from the PVD tree's SUSP
	rootAttr fsys.Attr
	skip     int // SUSP bytes to skip in each record (SP len_skp)
}

func (f *isoFS) readAt(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > f.t.size {
		return fmt.Errorf("%d bytes at offset %d are outside the %d-byte image", len(p), off, f.t.size)
	}
	if n, err := f.t.r.ReadAt(p, off); n < len(p) {
		return fmt.Errorf("reading image at %d: %v", off, err)
	}
	return nil
}

// readDescriptors reads the volume descriptors and checks every size
// go-diskfs will allocate from: path tables, and the "." record of each
// directory a path table lists.
func (f *isoFS) readDescriptors() error {
	var havePVD bool
	b := make([]byte, isoBlock)
	for i := int64(0); ; i++ {
		if i == isoMaxVDs {
			return fmt.Errorf("no volume descriptor set terminator in %d descriptors", isoMaxVDs)
		}
		if err := f.readAt(b, (isoVDStart+i)*isoBlock); err != nil {
			return fmt.Errorf("volume descriptor %d: %w", i, err)
		}
		vd, ok, err := decodeVD(b)
		if !ok {
			return fmt.Errorf("volume descriptor %d has no CD001 identifier", i)
		}
		if err != nil {
			return fmt.Errorf("volume descriptor %d: %w", i, err)
		}
		if vd.typ == vdTypeTerminal {
			break
		}
		switch {
		case vd.typ == vdTypePrimary && !havePVD:
			f.pvd, havePVD = vd, true
		case vd.typ == vdTypeSupp && vd.joliet:
			v := vd
			f.joliet = &v // go-diskfs uses the last Joliet SVD
		}
	}
	if !havePVD {
		return fmt.Errorf("no primary volume descriptor")
	}
	vds := []*volumeDescriptor{&f.pvd}
	if f.joliet != nil {
		vds = append(vds, f.joliet)
	}
	for _, vd := range vds {
		if vd.blockSize != isoBlock {
			return fmt.Errorf("logical block size %d (only %d is supported)", vd.blockSize, isoBlock)
		}
		if err := f.checkDir(vd.root.location, vd.root.size); err != nil {
			return fmt.Errorf("root directory: %w", err)
		}
		if vd.pathTableSize > isoMaxPathTbl {
			return fmt.Errorf("path table of %d bytes (limit %d)", vd.pathTableSize, isoMaxPathTbl)
		}
		pt := make([]byte, vd.pathTableSize)
		if err := f.readAt(pt, int64(vd.pathTableL)*isoBlock); err != nil {
			return fmt.Errorf("path table: %w", err)
		}
		locs, err := pathTableLocations(pt)
		if err != nil {
			return err
		}
		for _, loc := range locs {
			if err := f.checkDir(loc, 0); err != nil {
				return fmt.Errorf("directory at block %d in the path table: %w", loc, err)
			}
		}
	}
	// Rock Ridge is on when the root's "." record starts with SUSP "SP".
	root := make([]byte, 255)
	if err := f.readAt(root[:1], int64(f.pvd.root.location)*isoBlock); err != nil {
		return err
	}
	if err := f.readAt(root[:root[0]], int64(f.pvd.root.location)*isoBlock); err != nil {
		return err
	}
	dot, err := decodeDirRecord(root[:root[0]])
	if err != nil {
		return fmt.Errorf("root \".\" record: %w", err)
	}
	f.rootAttr = fsys.Attr{Mode: fsys.S_IFDIR | 0o555, Nlink: 2, Size: int64(dot.size)}
	f.rootAttr.Mtime = dot.recordTime()
	f.rootAttr.Atime, f.rootAttr.Ctime = f.rootAttr.Mtime, f.rootAttr.Mtime
	if dot.hasSUSP() {
		f.rr = true
		f.skip = int(dot.system[6])
		suspEntries(dot.system, 0, func(sig string, d []byte) {
			if sig == "PX" && len(d) >= 32 {
				le := binary.LittleEndian
				f.rootAttr.Mode = fsys.S_IFDIR | le.Uint32(d[0:])&0o7777
				f.rootAttr.Uid, f.rootAttr.Gid = le.Uint32(d[16:]), le.Uint32(d[24:])
			}
		})
	}
	return nil
}

// checkDir checks that a directory extent and its own "." record's size
// (which go-diskfs trusts) are within the image and maxDirBytes. size 0
// means the caller does not know the extent's size.
func (f *isoFS) checkDir(loc, size uint32) error {
	if int64(size) > maxDirBytes {
		return fmt.Errorf("directory of %d bytes (limit %d)", size, maxDirBytes)
	}
	if loc == 0 || int64(loc)*isoBlock+int64(size) > f.t.size {
		return fmt.Errorf("directory extent at block %d (%d bytes) outside the image", loc, size)
	}
	dot := make([]byte, 34)
	if err := f.readAt(dot, int64(loc)*isoBlock); err != nil {
		return err
	}
	if dot[0] < 34 {
		return fmt.Errorf("\".\" record at block %d has length %d", loc, dot[0])
	}
	dsize := binary.LittleEndian.Uint32(dot[10:])
	if int64(dsize) > maxDirBytes || int64(loc)*isoBlock+int64(dsize) > f.t.size {
		return fmt.Errorf("\".\" record claims %d bytes at block %d", dsize, loc)
	}
	return nil
}

type isoDir struct {
	ino       uint64
	gdPath    string // path as go-diskfs names it
	depth     int
	loc, size uint32
}

func (f *isoFS) index() error {
	rootVD := f.pvd
	if !f.rr && f.joliet != nil {
		rootVD = *f.joliet // go-diskfs reads the Joliet tree then
	}
	root := &node{attr: f.rootAttr}
	f.t.add(root)
	queue := []isoDir{{ino: 1, gdPath: ".", loc: rootVD.root.location, size: rootVD.root.size}}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		sub, err := f.indexDir(d)
		if err != nil {
			return fmt.Errorf("directory %q: %w", "/"+d.gdPath, err)
		}
		queue = append(queue, sub...)
	}
	return nil
}

func (f *isoFS) indexDir(d isoDir) ([]isoDir, error) {
	if err := f.checkDir(d.loc, d.size); err != nil {
		return nil, err
	}
	raw := make([]byte, d.size)
	if err := f.readAt(raw, int64(d.loc)*isoBlock); err != nil {
		return nil, err
	}
	all, err := decodeDirRecords(raw)
	if err != nil {
		return nil, err
	}
	var recs []dirRecord
	for _, r := range all {
		if _, _, relocated := r.rockRidge(f.skip); f.rr && relocated {
			continue
		}
		if !f.rr && r.flags&0x04 != 0 {
			continue // associated file: Linux hides them by default
		}
		recs = append(recs, r)
	}
	// Without Rock Ridge the records say everything vmroot shows; go-diskfs
	// is only asked with Rock Ridge (its path-table lookup, used without
	// Rock Ridge, finds no directory below the second level).
	var entries []iofs.DirEntry
	if f.rr {
		err = f.st.guard("go-diskfs ReadDir", func() error {
			var err error
			entries, err = f.gd.ReadDir(d.gdPath)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(entries) != len(recs) {
			return nil, fmt.Errorf("go-diskfs lists %d entries, the directory holds %d", len(entries), len(recs))
		}
	}
	dir := f.t.nodes[d.ino-1]
	var subdirs []isoDir
	for i, rec := range recs {
		name := f.recordName(rec)
		if err := validName(name); err != nil {
			return nil, err
		}
		n := &node{}
		mt := rec.recordTime()
		n.attr = fsys.Attr{Nlink: 1, Mtime: mt, Ctime: mt, Atime: mt, Size: int64(rec.size)}
		n.attr.Mode = fsys.S_IFREG | 0o555
		if rec.flags&0x02 != 0 {
			n.attr.Mode = fsys.S_IFDIR | 0o555
		}
		gdName := name
		if f.rr {
			fi, err := entries[i].Info()
			if err != nil {
				return nil, err
			}
			st, ok := fi.Sys().(*iso9660.StatT)
			if !ok || st.Location != rec.location {
				return nil, fmt.Errorf("go-diskfs entry %d %q does not match the on-disk record", i, entries[i].Name())
			}
			gdName = entries[i].Name()
			if st.RockRidge {
				n.attr.Mode = unixMode(fi.Mode(), fi.IsDir())
				n.attr.Uid, n.attr.Gid = st.UID, st.GID
				if st.NLink > 0 && !fi.IsDir() {
					n.attr.Nlink = st.NLink
				}
			}
			if st.LinkTarget != "" {
				n.link = st.LinkTarget
			}
		}
		isDir := n.attr.IsDir()
		switch {
		case isDir:
			if d.depth+1 >= MaxDepth {
				return nil, fmt.Errorf("more than %d directory levels", MaxDepth)
			}
			n.attr.Nlink = 2
		case n.attr.IsSymlink():
			if n.link == "" {
				return nil, fmt.Errorf("symlink %q: target not available (continued SL records are not supported)", name)
			}
			n.attr.Size = int64(len(n.link))
		case n.attr.IsRegular():
			if rec.size > 0 {
				n.extents = []extent{{fileOff: 0, diskOff: int64(rec.location) * isoBlock, n: int64(rec.size)}}
			}
		default:
			n.attr.Size = 0
		}
		n.attr.Blocks = (n.attr.Size + isoBlock - 1) / isoBlock * (isoBlock / 512)
		ino, err := f.t.add(n)
		if err != nil {
			return nil, err
		}
		if !f.t.addChild(dir, name, ino) {
			continue
		}
		if isDir {
			subdirs = append(subdirs, isoDir{ino: ino, gdPath: path.Join(d.gdPath, gdName), depth: d.depth + 1,
				loc: rec.location, size: rec.size})
		}
	}
	return subdirs, nil
}

// recordName is the name Linux shows for a record (see OpenISO).
func (f *isoFS) recordName(r dirRecord) string {
	if f.rr {
		if nm, ok, _ := r.rockRidge(f.skip); ok {
			return nm
		}
		return isoMapNormal(r.name)
	}
	if f.joliet != nil {
		return jolietName(r.name)
	}
	return isoMapNormal(r.name)
}

// unixMode converts an io/fs mode (as go-diskfs builds it from RR PX)
// to st_mode bits.
func unixMode(m os.FileMode, isDir bool) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	switch {
	case m&os.ModeDir != 0 || isDir:
		u |= fsys.S_IFDIR
	case m&os.ModeSymlink != 0:
		u |= fsys.S_IFLNK
	case m&os.ModeNamedPipe != 0:
		u |= fsys.S_IFIFO
	case m&os.ModeSocket != 0:
		u |= fsys.S_IFSOCK
	case m&os.ModeCharDevice != 0:
		u |= fsys.S_IFCHR
	case m&os.ModeDevice != 0:
		u |= fsys.S_IFBLK
	default:
		u |= fsys.S_IFREG
	}
	return u
}

func (f *isoFS) fsInfo() fsys.Info {
	info := fsys.Info{
		Type:      "iso9660",
		Label:     f.pvd.volumeID,
		BlockSize: isoBlock,
		Blocks:    uint64(f.pvd.spaceBlocks),
		Inodes:    uint64(len(f.t.nodes)),
	}
	// blkid's UUID: the modification date, else the creation date.
	if s, ok := isoDate(f.pvd.modified); ok {
		info.UUID = s
	} else if s, ok := isoDate(f.pvd.created); ok {
		info.UUID = s
	}
	if f.rr {
		info.Features = append(info.Features, "rockridge")
	}
	if f.joliet != nil {
		info.Features = append(info.Features, "joliet")
	}
	return info
}
