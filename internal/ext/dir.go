package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

var ftypeMode = [...]uint32{
	disklayout.FtRegFile: fsys.S_IFREG,
	disklayout.FtDir:     fsys.S_IFDIR,
	disklayout.FtChrdev:  fsys.S_IFCHR,
	disklayout.FtBlkdev:  fsys.S_IFBLK,
	disklayout.FtFifo:    fsys.S_IFIFO,
	disklayout.FtSock:    fsys.S_IFSOCK,
	disklayout.FtSymlink: fsys.S_IFLNK,
}

// errStop ends a directory walk early without an error.
var errStop = errors.New("stop")

// dirEntryFunc receives one live entry; name aliases a shared buffer.
type dirEntryFunc func(name []byte, ino uint32, ftype uint8) error

// parseDirBlock calls fn for each live entry in one directory block (or
// inline area), checking every record against the block's bounds.
func (f *FS) parseDirBlock(dir *inode, b []byte, fn dirEntryFunc) error {
	for off := 0; off < len(b); {
		if len(b)-off < disklayout.DirEntryHeaderSize {
			return corrupt("directory %d: entry header at offset %d runs past the block", dir.ino, off)
		}
		d := disklayout.DecodeDirEntry(b[off:], f.fileType, uint32(f.bs))
		rl := int(d.RecLen)
		switch {
		case rl < 12 || rl%4 != 0:
			return corrupt("directory %d: entry at offset %d has invalid rec_len %d", dir.ino, off, rl)
		case rl > len(b)-off:
			return corrupt("directory %d: entry at offset %d has rec_len %d past the end of the block", dir.ino, off, rl)
		case disklayout.DirEntryHeaderSize+int(d.NameLen) > rl:
			return corrupt("directory %d: entry at offset %d: name of %d bytes exceeds rec_len %d", dir.ino, off, d.NameLen, rl)
		}
		if d.Inode != 0 {
			if d.NameLen == 0 || d.NameLen > disklayout.MaxNameLen {
				return corrupt("directory %d: entry at offset %d has name length %d", dir.ino, off, d.NameLen)
			}
			if uint64(d.Inode) > f.inodes {
				return corrupt("directory %d: entry at offset %d names inode %d, beyond %d", dir.ino, off, d.Inode, f.inodes)
			}
			name := b[off+8 : off+8+int(d.NameLen)]
			if err := fn(name, d.Inode, d.FileType); err != nil {
				return err
			}
		}
		off += rl
	}
	return nil
}

// walkDir calls fn for every live entry of directory dir, "." and ".."
// included, in on-disk order.
func (f *FS) walkDir(dir *inode, fn dirEntryFunc) error {
	if dir.flag(disklayout.InodeFlagInlineData) {
		return f.walkInlineDir(dir, fn)
	}
	if uint64(dir.size)%f.bs != 0 {
		return corrupt("directory %d: size %d is not a multiple of the block size", dir.ino, dir.size)
	}
	nblk := f.lblocks(dir)
	if nblk > f.blocks {
		return corrupt("directory %d: %d blocks exceed the filesystem", dir.ino, nblk)
	}
	// Read runs of up to 32 blocks at a time (one ReadAt each).
	const chunkBlocks = 32
	buf := make([]byte, min(nblk, chunkBlocks)<<f.bsBits)
	for lblk := uint64(0); lblk < nblk; {
		r, err := f.mapRun(dir, lblk)
		if err != nil {
			return err
		}
		n := min(r.n, nblk-lblk, chunkBlocks)
		if r.phys != 0 { // holes in directories hold no entries
			chunk := buf[:n<<f.bsBits]
			if err := f.readFull(chunk, r.phys<<f.bsBits); err != nil {
				return fmt.Errorf("ext: directory %d: %w", dir.ino, err)
			}
			for i := uint64(0); i < n; i++ {
				if err := f.parseDirBlock(dir, chunk[i<<f.bsBits:(i+1)<<f.bsBits], fn); err != nil {
					return err
				}
			}
		}
		lblk += n
	}
	return nil
}

// walkInlineDir walks a directory stored in i_block (parent inode number,
// then entries) and in the system.data xattr (more entries).
func (f *FS) walkInlineDir(dir *inode, fn dirEntryFunc) error {
	parent := le32(dir.Block[:])
	if uint64(parent) > f.inodes || parent == 0 {
		return corrupt("inline directory %d: parent inode %d out of range", dir.ino, parent)
	}
	if err := fn([]byte(".."), parent, disklayout.FtDir); err != nil {
		return err
	}
	if err := f.parseDirBlock(dir, dir.Block[4:], fn); err != nil {
		return err
	}
	extra, err := f.systemData(dir)
	if err != nil || len(extra) == 0 {
		return err
	}
	return f.parseDirBlock(dir, extra, fn)
}

func (f *FS) dirInode(ino uint64) (*inode, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return nil, err
	}
	if in.typ() != fsys.S_IFDIR {
		return nil, fmt.Errorf("ext: inode %d: %w", ino, fsys.ErrNotDir)
	}
	return in, nil
}

// ReadDir returns the entries of directory dir in on-disk order, without
// "." and "..". Type is set only with the filetype feature.
func (f *FS) ReadDir(dir uint64) ([]fsys.DirEntry, error) {
	in, err := f.dirInode(dir)
	if err != nil {
		return nil, err
	}
	var out []fsys.DirEntry
	err = f.walkDir(in, func(name []byte, ino uint32, ft uint8) error {
		if isDots(name) {
			return nil
		}
		e := fsys.DirEntry{Name: string(name), Ino: uint64(ino)}
		if f.fileType && int(ft) < len(ftypeMode) {
			e.Type = ftypeMode[ft]
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func isDots(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}

// Lookup returns the inode number of name in directory dir. Indexed
// directories are searched through their hash tree; big linear ones
// through a cached name index.
func (f *FS) Lookup(dir uint64, name string) (uint64, error) {
	in, err := f.dirInode(dir)
	if err != nil {
		return 0, err
	}
	notFound := func() (uint64, error) {
		return 0, fmt.Errorf("ext: %q in directory %d: %w", name, dir, fs.ErrNotExist)
	}
	if name == "" || len(name) > disklayout.MaxNameLen {
		return notFound()
	}
	if name == "." {
		return dir, nil
	}
	bname := []byte(name)
	if name != ".." && !in.flag(disklayout.InodeFlagInlineData) {
		if f.dirIndex && in.flag(disklayout.InodeFlagIndex) && !in.flag(disklayout.InodeFlagCasefold) {
			ino, ok, err := f.htreeLookup(in, bname)
			if err != errNoHtree {
				if err != nil {
					return 0, err
				}
				if !ok {
					return notFound()
				}
				return uint64(ino), nil
			}
		}
		if f.lblocks(in) > nameIndexMinBlocks {
			idx, err := f.nameIndex(in)
			if err != nil {
				return 0, err
			}
			if ino, ok := idx[name]; ok {
				return uint64(ino), nil
			}
			return notFound()
		}
	}
	var found uint32
	err = f.walkDir(in, func(n []byte, ino uint32, _ uint8) error {
		if bytes.Equal(n, bname) {
			found = ino
			return errStop
		}
		return nil
	})
	if err == errStop {
		return uint64(found), nil
	}
	if err != nil {
		return 0, err
	}
	return notFound()
}

// nameIndex returns a name -> inode map of a linear directory, cached.
func (f *FS) nameIndex(dir *inode) (map[string]uint32, error) {
	if m, ok := f.ncache.get(dir.ino); ok {
		return m, nil
	}
	m := make(map[string]uint32)
	err := f.walkDir(dir, func(name []byte, ino uint32, _ uint8) error {
		if !isDots(name) {
			if _, dup := m[string(name)]; !dup { // the first of duplicate names wins, as in a scan
				m[string(name)] = ino
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.ncache.put(dir.ino, m)
	return m, nil
}

// errNoHtree means the index is absent or of a kind this reader does not
// hash; the caller falls back to scanning, which is always correct.
var errNoHtree = errors.New("no usable htree")

// dirBlock returns logical block lblk of a directory via the block cache.
func (f *FS) dirBlock(dir *inode, lblk uint64) ([]byte, error) {
	if lblk >= f.lblocks(dir) {
		return nil, corrupt("directory %d: htree points to block %d past the directory end", dir.ino, lblk)
	}
	r, err := f.mapRun(dir, lblk)
	if err != nil {
		return nil, err
	}
	if r.phys == 0 {
		return nil, corrupt("directory %d: htree points to hole at block %d", dir.ino, lblk)
	}
	return f.metaBlock(r.phys)
}

type dxFrame struct {
	entries []byte // count entries, 8 bytes each
	count   int
	at      int
}

// htreeLookup searches an indexed directory: hash the name, descend the
// index to one leaf block, and continue into following leaves only while
// their hash says the run of equal hashes continues there.
func (f *FS) htreeLookup(dir *inode, name []byte) (uint32, bool, error) {
	if uint64(dir.size)%f.bs != 0 || f.lblocks(dir) == 0 {
		return 0, false, corrupt("directory %d: size %d invalid", dir.ino, dir.size)
	}
	root, err := f.dirBlock(dir, 0)
	if err != nil {
		return 0, false, err
	}
	if len(root) < disklayout.DxRootEntries+8 {
		return 0, false, errNoHtree
	}
	info := disklayout.DecodeDxRootInfo(root)
	maxLevels := uint8(disklayout.DxMaxLevelsLegacy)
	if f.largeDir {
		maxLevels = disklayout.DxMaxLevels
	}
	version := info.HashVersion
	if f.unsigned && version <= disklayout.HashTea {
		version += 3
	}
	hash, ok := dxHash(name, version, &f.hashSeed)
	if !ok || info.InfoLength != disklayout.DxRootInfoSize || info.ReservedZero != 0 {
		return 0, false, errNoHtree
	}
	if info.IndirectLevels >= maxLevels {
		return 0, false, corrupt("directory %d: htree has %d levels", dir.ino, int(info.IndirectLevels)+1)
	}
	levels := int(info.IndirectLevels)
	var path [disklayout.DxMaxLevels]dxFrame
	// descend fills path[from..levels] starting with the entries at level
	// from, following the name's hash, or the first entries when first.
	descend := func(from int, entries []byte, first bool) (uint32, error) {
		for level := from; ; level++ {
			if len(entries) < 8 {
				return 0, corrupt("directory %d: htree node too small", dir.ino)
			}
			cl := disklayout.DecodeDxCountLimit(entries)
			if cl.Count == 0 || cl.Count > cl.Limit || int(cl.Limit)*disklayout.DxEntrySize > len(entries) {
				return 0, corrupt("directory %d: htree node count %d limit %d invalid", dir.ino, cl.Count, cl.Limit)
			}
			n := int(cl.Count)
			at := 0
			if !first {
				at = sort.Search(n-1, func(i int) bool { return disklayout.DecodeDxEntry(entries, i+1).Hash > hash })
			}
			path[level] = dxFrame{entries: entries[:n*disklayout.DxEntrySize], count: n, at: at}
			blk := disklayout.DecodeDxEntry(entries, at).Block
			if level == levels {
				return blk, nil
			}
			node, err := f.dirBlock(dir, uint64(blk))
			if err != nil {
				return 0, err
			}
			entries = node[disklayout.DxNodeEntries:]
		}
	}
	leaf, err := descend(0, root[disklayout.DxRootInfoOffset+int(info.InfoLength):], false)
	if err != nil {
		return 0, false, err
	}
	// Bound the walk by the directory's size whatever the index says.
	for visits := uint64(0); visits < f.lblocks(dir); visits++ {
		b, err := f.dirBlock(dir, uint64(leaf))
		if err != nil {
			return 0, false, err
		}
		var found uint32
		err = f.parseDirBlock(dir, b, func(n []byte, ino uint32, _ uint8) error {
			if bytes.Equal(n, name) {
				found = ino
				return errStop
			}
			return nil
		})
		if err == errStop {
			return found, true, nil
		}
		if err != nil {
			return 0, false, err
		}
		// Step to the next index entry; stop unless it continues our hash.
		level := levels
		for level >= 0 && path[level].at+1 >= path[level].count {
			level--
		}
		if level < 0 {
			return 0, false, nil
		}
		path[level].at++
		e := disklayout.DecodeDxEntry(path[level].entries, path[level].at)
		if e.Hash&^1 != hash {
			return 0, false, nil
		}
		if level == levels {
			leaf = e.Block
			continue
		}
		node, err := f.dirBlock(dir, uint64(e.Block))
		if err != nil {
			return 0, false, err
		}
		if leaf, err = descend(level+1, node[disklayout.DxNodeEntries:], true); err != nil {
			return 0, false, err
		}
	}
	return 0, false, corrupt("directory %d: htree walk does not end", dir.ino)
}
