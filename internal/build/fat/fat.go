// Package fat creates FAT12, FAT16 and FAT32 filesystems whose whole
// content is known up front: the caller declares directories and files,
// then Write lays the volume out in one pass (directories first, then
// every file in one contiguous cluster run) and streams the file data
// into place.
//
// The FAT is sized by iterating until it covers every cluster the volume
// has plus the two reserved entries, so fsck.fat accepts the volume at
// every size (go-diskfs v1.9.4 gets this wrong at some sizes, e.g. 64 MiB
// and 4 GiB FAT32). Names that are not plain upper-case 8.3 names get
// VFAT long-name entries, or the NT lower-case flags when that suffices,
// as Linux and mtools read them. Write only reads the sources; it never
// holds more than one file open or more than a few MiB in memory.
package fat

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// Options choose the volume's type and identity.
type Options struct {
	// Type is 12, 16 or 32; 0 chooses by size: FAT12 below 16 MiB, FAT16
	// below 512 MiB, FAT32 above.
	Type          int
	Label         string // up to 11 characters; empty means "NO NAME"
	VolumeID      uint32
	HiddenSectors uint32    // the partition's first LBA, for boot loaders that read it
	Time          time.Time // every timestamp; zero means 1980-01-01
}

// Source opens a file's content; Write reads exactly the declared size.
type Source func() (io.ReadCloser, error)

type node struct {
	name     string
	dir      bool
	children []*node
	byName   map[string]*node // by upper-case name
	size     int64
	src      Source

	short         [11]byte
	ntFlags       byte
	lfn           []uint16 // nil when the short name says it all
	cluster       uint32
	nclus         uint32
	parentCluster uint32
}

// Builder collects a volume's tree; Write creates the volume.
type Builder struct {
	size int64
	opts Options
	root *node
}

// New starts a volume of size bytes (rounded down to whole sectors).
func New(size int64, opts Options) *Builder {
	return &Builder{size: size, opts: opts, root: &node{dir: true, byName: map[string]*node{}}}
}

// MaxFileSize is the largest file FAT can hold.
const MaxFileSize = 1<<32 - 1

const badChars = "\"*/:<>?\\|"

func validName(n string) error {
	if n == "" || n == "." || n == ".." {
		return fmt.Errorf("invalid name %q", n)
	}
	if len(utf16.Encode([]rune(n))) > 255 {
		return fmt.Errorf("name longer than 255 characters: %q", n)
	}
	for _, r := range n {
		if r < 0x20 || strings.ContainsRune(badChars, r) {
			return fmt.Errorf("name %q has a character FAT does not allow (%q)", n, r)
		}
	}
	if strings.HasSuffix(n, ".") || strings.HasSuffix(n, " ") {
		return fmt.Errorf("name %q ends with a dot or space", n)
	}
	return nil
}

// parent walks to p's parent directory, creating missing directories.
func (b *Builder) parent(p string) (*node, string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		return nil, "", errors.New("the root directory already exists")
	}
	d := b.root
	for _, name := range parts[:len(parts)-1] {
		if err := validName(name); err != nil {
			return nil, "", err
		}
		c := d.byName[strings.ToUpper(name)]
		if c == nil {
			c = &node{name: name, dir: true, byName: map[string]*node{}}
			d.add(c)
		} else if !c.dir {
			return nil, "", fmt.Errorf("%s is a file, not a directory", name)
		}
		d = c
	}
	last := parts[len(parts)-1]
	return d, last, validName(last)
}

func (d *node) add(c *node) {
	d.children = append(d.children, c)
	d.byName[strings.ToUpper(c.name)] = c
}

// Mkdir creates directory p and its parents; an existing directory is fine.
func (b *Builder) Mkdir(p string) error {
	d, name, err := b.parent(p)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", p, err)
	}
	if c := d.byName[strings.ToUpper(name)]; c != nil {
		if !c.dir {
			return fmt.Errorf("mkdir %s: a file has this name", p)
		}
		return nil
	}
	d.add(&node{name: name, dir: true, byName: map[string]*node{}})
	return nil
}

// AddFile declares file p (parents are created) of size bytes read from src.
func (b *Builder) AddFile(p string, size int64, src Source) error {
	d, name, err := b.parent(p)
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	if size < 0 || size > MaxFileSize {
		return fmt.Errorf("add %s: %d bytes; FAT files hold at most %d", p, size, int64(MaxFileSize))
	}
	if c := d.byName[strings.ToUpper(name)]; c != nil {
		return fmt.Errorf("add %s: %q already exists (FAT names ignore case)", p, c.name)
	}
	d.add(&node{name: name, size: size, src: src})
	return nil
}

// geometry is the volume's layout in sectors.
type geometry struct {
	typ                   int
	spc                   uint32 // sectors per cluster
	reserved, fatSectors  uint32
	rootEntries, rootSecs uint32
	total, dataStart      uint32
	clusters              uint32 // data clusters (numbered from 2)
	clusterBytes          int64
}

const (
	maxClus12 = 4084
	maxClus16 = 65524
	minClus32 = 65525
	maxClus32 = 0x0FFFFFF5 - 2
)

// plan computes the FAT size for a type and cluster size: the smallest FAT
// that holds an entry for every cluster plus the two reserved entries.
func plan(typ int, total, spc, rootEntries uint32) geometry {
	g := geometry{typ: typ, spc: spc, total: total, reserved: 1, rootEntries: rootEntries}
	if typ == 32 {
		g.reserved, g.rootEntries = 32, 0
	}
	g.rootSecs = (g.rootEntries*dirEntSize + sectorSize - 1) / sectorSize
	g.fatSectors = 1
	for {
		meta := g.reserved + 2*g.fatSectors + g.rootSecs
		if meta >= total {
			g.clusters = 0
			return g
		}
		g.clusters = (total - meta) / spc
		entries := uint64(g.clusters) + 2
		var bytes uint64
		switch typ {
		case 12:
			bytes = (entries*3 + 1) / 2
		case 16:
			bytes = entries * 2
		default:
			bytes = entries * 4
		}
		need := uint32((bytes + sectorSize - 1) / sectorSize)
		if need <= g.fatSectors {
			break
		}
		g.fatSectors = need
	}
	g.dataStart = g.reserved + 2*g.fatSectors + g.rootSecs
	g.clusterBytes = int64(spc) * sectorSize
	return g
}

func chooseGeometry(size int64, typ int, rootEntries uint32) (geometry, error) {
	if size/sectorSize > 0xFFFFFFFF {
		return geometry{}, fmt.Errorf("%d bytes is too large for FAT", size)
	}
	total := uint32(size / sectorSize)
	if typ == 0 {
		switch {
		case size < 16<<20:
			typ = 12
		case size < 512<<20:
			typ = 16
		default:
			typ = 32
		}
	}
	switch typ {
	case 12, 16:
		limit := uint32(maxClus12)
		if typ == 16 {
			limit = maxClus16
		}
		for spc := uint32(1); spc <= 128; spc *= 2 {
			g := plan(typ, total, spc, rootEntries)
			if g.clusters == 0 {
				break
			}
			if g.clusters <= limit {
				if typ == 16 && g.clusters <= maxClus12 {
					return g, fmt.Errorf("%d bytes is too small for FAT16 (%d clusters; FAT16 needs more than %d): use FAT12", size, g.clusters, maxClus12)
				}
				return g, nil
			}
		}
		return geometry{}, fmt.Errorf("%d bytes does not fit FAT%d", size, typ)
	case 32:
		spc := uint32(64)
		switch {
		case size <= 260<<20:
			spc = 1
		case size <= 8<<30:
			spc = 8
		case size <= 16<<30:
			spc = 16
		case size <= 32<<30:
			spc = 32
		}
		for ; ; spc /= 2 {
			g := plan(32, total, spc, 0)
			if g.clusters >= minClus32 {
				if g.clusters > maxClus32 {
					return g, fmt.Errorf("%d bytes is too large for FAT32", size)
				}
				return g, nil
			}
			if spc == 1 {
				return g, fmt.Errorf("%d bytes is too small for FAT32 (%d clusters; FAT32 needs at least %d, about 33 MiB)", size, g.clusters, minClus32)
			}
		}
	}
	return geometry{}, fmt.Errorf("unknown FAT type %d (want 12, 16 or 32)", typ)
}

// entries counts the directory entries d needs.
func (d *node) entries(isRoot bool) int {
	n := 0
	if !isRoot {
		n = 2 // . and ..
	}
	for _, c := range d.children {
		n += 1 + (len(c.lfn)+12)/13
	}
	return n
}

// names assigns short names (and long names where needed) in d.
func (d *node) names() {
	used := map[[11]byte]bool{}
	var pending []*node
	for _, c := range d.children {
		if s, nt, ok := plainShort(c.name); ok && !used[s] {
			c.short, c.ntFlags = s, nt
			used[s] = true
		} else {
			pending = append(pending, c)
		}
	}
	for _, c := range pending {
		c.lfn = utf16.Encode([]rune(c.name))
		c.short = numberedShort(c.name, used)
		used[c.short] = true
	}
}

const shortChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$%'-_@~`!(){}^#&"

// plainShort reports whether name is an 8.3 name needing no long entry,
// and its encoding.
func plainShort(name string) (s [11]byte, nt byte, ok bool) {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
	}
	if base == "" || len(base) > 8 || len(ext) > 3 {
		return s, 0, false
	}
	caseOf := func(p string) (lower, upper bool) {
		for _, r := range p {
			switch {
			case r >= 'a' && r <= 'z':
				lower = true
			case r >= 'A' && r <= 'Z':
				upper = true
			case !strings.ContainsRune(shortChars, r):
				return true, true // forces a long name
			}
		}
		return
	}
	bl, bu := caseOf(base)
	el, eu := caseOf(ext)
	if bl && bu || el && eu {
		return s, 0, false
	}
	if bl {
		nt |= ntLowerBase
	}
	if el {
		nt |= ntLowerExt
	}
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], strings.ToUpper(base))
	copy(s[8:], strings.ToUpper(ext))
	if s[0] == 0xE5 {
		s[0] = 0x05
	}
	return s, nt, true
}

// numberedShort makes a unique "BASIS~N.EXT" alias for a long name.
func numberedShort(name string, used map[[11]byte]bool) [11]byte {
	clean := func(p string, max int) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(p) {
			if r == ' ' || r == '.' {
				continue
			}
			if r > 127 || !strings.ContainsRune(shortChars, r) {
				r = '_'
			}
			b.WriteRune(r)
			if b.Len() == max {
				break
			}
		}
		return b.String()
	}
	base, ext := strings.TrimLeft(name, "."), ""
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base, ext = base[:i], base[i+1:]
	}
	base, ext = clean(base, 8), clean(ext, 3)
	if base == "" {
		base = "_"
	}
	for n := 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		var s [11]byte
		for i := range s {
			s[i] = ' '
		}
		copy(s[:8], b+tail)
		copy(s[8:], ext)
		if !used[s] {
			return s
		}
	}
}

// maxDirEntries is the most entries a FAT directory may hold (2 MiB).
const maxDirEntries = 65536

// run is a chain of consecutive clusters.
type run struct{ start, n uint32 }

// Write creates the volume in w at byte offset off. It writes the boot
// sectors, both FATs, the directories and the file data; unused data
// clusters are not written (they may hold anything).
func (b *Builder) Write(w io.WriterAt, off int64) error {
	// Directories in breadth-first order, then files in the same order.
	dirs := []*node{b.root}
	var files []*node
	for i := 0; i < len(dirs); i++ {
		d := dirs[i]
		sort.SliceStable(d.children, func(x, y int) bool { return d.children[x].dir && !d.children[y].dir })
		d.names()
		for _, c := range d.children {
			if c.dir {
				dirs = append(dirs, c)
			} else {
				files = append(files, c)
			}
		}
	}
	rootEntries := uint32(512)
	if n := uint32(b.root.entries(true) + 1); n > rootEntries {
		rootEntries = (n + 15) / 16 * 16
	}
	g, err := chooseGeometry(b.size, b.opts.Type, rootEntries)
	if err != nil {
		return err
	}
	if g.typ != 32 && g.rootEntries > 0xFFF0 {
		return fmt.Errorf("%d entries in the root directory; FAT%d holds at most 65520", g.rootEntries, g.typ)
	}

	// Allocate clusters: FAT32's root first, at cluster 2.
	next := uint32(2)
	var runs []run
	alloc := func(n *node, bytes int64) error {
		c := uint32((bytes + g.clusterBytes - 1) / g.clusterBytes)
		if c == 0 {
			return nil
		}
		if uint64(next-2)+uint64(c) > uint64(g.clusters) {
			return fmt.Errorf("the content does not fit in a %d-byte FAT%d volume (%d clusters of %d bytes)", b.size, g.typ, g.clusters, g.clusterBytes)
		}
		n.cluster, n.nclus = next, c
		runs = append(runs, run{next, c})
		next += c
		return nil
	}
	for i, d := range dirs {
		if i == 0 && g.typ != 32 {
			continue
		}
		ents := d.entries(i == 0)
		if i == 0 && b.opts.Label != "" {
			ents++
		}
		if ents > maxDirEntries {
			return fmt.Errorf("directory %s needs %d entries; FAT directories hold at most %d", d.name, ents, maxDirEntries)
		}
		if err := alloc(d, max(int64(ents)*dirEntSize, 1)); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := alloc(f, f.size); err != nil {
			return err
		}
	}

	label, err := labelBytes(b.opts.Label)
	if err != nil {
		return err
	}
	bs := bpb{Type: g.typ, SectorsPerCluster: uint8(g.spc), Reserved: uint16(g.reserved),
		RootEntries: uint16(g.rootEntries), TotalSectors: g.total, FATSectors: g.fatSectors,
		HiddenSectors: b.opts.HiddenSectors, VolumeID: b.opts.VolumeID, Label: label}
	reserved := make([]byte, int64(g.reserved)*sectorSize)
	copy(reserved, bs.encode())
	if g.typ == 32 {
		info := fsInfo(g.clusters-(next-2), next)
		copy(reserved[sectorSize:], info)
		copy(reserved[6*sectorSize:], bs.encode())
		copy(reserved[7*sectorSize:], info)
	}
	if _, err := w.WriteAt(reserved, off); err != nil {
		return err
	}
	if err := writeFATs(w, off+int64(g.reserved)*sectorSize, g, runs); err != nil {
		return err
	}

	at := func(cluster uint32) int64 {
		return off + int64(g.dataStart)*sectorSize + int64(cluster-2)*g.clusterBytes
	}
	t := b.opts.Time
	for i, d := range dirs {
		var buf []byte
		if i == 0 && g.typ != 32 {
			buf = make([]byte, int64(g.rootSecs)*sectorSize)
		} else {
			buf = make([]byte, int64(d.nclus)*g.clusterBytes)
		}
		p := buf
		put := func(e dirEnt) { e.encode(p); p = p[dirEntSize:] }
		if i == 0 {
			if b.opts.Label != "" {
				put(dirEnt{Name: label, Attr: attrVolumeID, Time: t})
			}
		} else {
			dot := [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
			put(dirEnt{Name: dot, Attr: attrDir, Time: t, Cluster: d.cluster})
			dot[1] = '.'
			parent := d.parentCluster
			if g.typ == 32 && parent == 2 {
				parent = 0 // ".." names the root as cluster 0
			}
			put(dirEnt{Name: dot, Attr: attrDir, Time: t, Cluster: parent})
		}
		for _, c := range d.children {
			if c.dir {
				c.parentCluster = d.cluster
			}
			if c.lfn != nil {
				sum := shortSum(c.short)
				n := (len(c.lfn) + 12) / 13
				for k := n; k >= 1; k-- {
					lfnEnt(p, k, k == n, c.lfn[(k-1)*13:min(k*13, len(c.lfn))], sum)
					p = p[dirEntSize:]
				}
			}
			e := dirEnt{Name: c.short, NTRes: c.ntFlags, Time: t, Cluster: c.cluster, Attr: attrArchive}
			if c.dir {
				e.Attr = attrDir
			} else {
				e.Size = uint32(c.size)
			}
			put(e)
		}
		pos := int64(g.reserved+2*g.fatSectors) * sectorSize
		if i == 0 && g.typ != 32 {
			pos += off
		} else {
			pos = at(d.cluster)
		}
		if _, err := w.WriteAt(buf, pos); err != nil {
			return err
		}
	}

	buf := make([]byte, 1<<20)
	for _, f := range files {
		if f.size == 0 {
			continue
		}
		if err := copyFile(w, at(f.cluster), f, buf); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(w io.WriterAt, pos int64, f *node, buf []byte) error {
	r, err := f.src()
	if err != nil {
		return err
	}
	defer r.Close()
	left := f.size
	for left > 0 {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), left)])
		if n > 0 {
			if _, werr := w.WriteAt(buf[:n], pos); werr != nil {
				return werr
			}
			pos += int64(n)
			left -= int64(n)
		}
		if err != nil && left > 0 {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%s: shorter than its declared %d bytes", f.name, f.size)
			}
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// writeFATs writes both FAT copies, streaming them in chunks so that the
// memory used does not grow with the volume.
func writeFATs(w io.WriterAt, pos int64, g geometry, runs []run) error {
	eoc := map[int]uint32{12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[g.typ]
	value := func(c uint32, r *int) uint32 {
		switch c {
		case 0:
			return eoc&^0xFF | media
		case 1:
			return eoc
		}
		for *r < len(runs) && c >= runs[*r].start+runs[*r].n {
			*r++
		}
		if *r < len(runs) && c >= runs[*r].start {
			if c == runs[*r].start+runs[*r].n-1 {
				return eoc
			}
			return c + 1
		}
		return 0
	}
	fatBytes := int64(g.fatSectors) * sectorSize
	const chunk = 1 << 20 // FAT12 FATs (at most 6 KiB) are written whole
	var ri int
	var c uint32
	for done := int64(0); done < fatBytes; {
		n := min(chunk, fatBytes-done)
		if g.typ == 12 {
			n = fatBytes // at most 6 KiB
		}
		buf := make([]byte, n)
		switch g.typ {
		case 12:
			for ; c < g.clusters+2; c++ {
				v := value(c, &ri)
				i := c * 3 / 2
				if c%2 == 0 {
					buf[i] = byte(v)
					buf[i+1] = buf[i+1]&0xF0 | byte(v>>8)&0x0F
				} else {
					buf[i] = buf[i]&0x0F | byte(v<<4)
					buf[i+1] = byte(v >> 4)
				}
			}
		case 16:
			for i := int64(0); i+2 <= n && c < g.clusters+2; i, c = i+2, c+1 {
				v := value(c, &ri)
				buf[i], buf[i+1] = byte(v), byte(v>>8)
			}
		case 32:
			for i := int64(0); i+4 <= n && c < g.clusters+2; i, c = i+4, c+1 {
				v := value(c, &ri)
				buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			}
		}
		for copyN := int64(0); copyN < 2; copyN++ {
			if _, err := w.WriteAt(buf, pos+copyN*fatBytes+done); err != nil {
				return err
			}
		}
		done += n
	}
	return nil
}

func labelBytes(l string) ([11]byte, error) {
	var s [11]byte
	if l == "" {
		l = "NO NAME"
	}
	if len(l) > 11 {
		return s, fmt.Errorf("label %q is longer than 11 characters", l)
	}
	for _, r := range l {
		if r != ' ' && (r > 127 || !strings.ContainsRune(shortChars, r) && !(r >= 'a' && r <= 'z')) {
			return s, fmt.Errorf("label %q has a character FAT labels do not allow (%q)", l, r)
		}
	}
	for i := range s {
		s[i] = ' '
	}
	copy(s[:], strings.ToUpper(l))
	return s, nil
}
