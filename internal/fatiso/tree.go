package fatiso

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/vmroot/vmroot/internal/fsys"
)

// Limits on the trees OpenFAT and OpenISO index.
const (
	MaxEntries = 1_000_000
	MaxDepth   = 256
	// maxDirBytes bounds one directory: FAT allows 65536 32-byte entries;
	// an ISO9660 directory of that many entries with Rock Ridge fits too.
	maxDirBytes = 16 << 20
)

// extent maps file bytes [fileOff, fileOff+n) to image bytes at diskOff.
type extent struct {
	fileOff, diskOff, n int64
}

type node struct {
	attr     fsys.Attr
	children []fsys.DirEntry // directories, in on-disk order
	byName   map[string]int  // directories: name -> index in children
	short    map[string]int  // FAT directories: upper-case 8.3 name -> index
	link     string          // symlinks
	dirIsCI  bool            // FAT: case-insensitive lookup

	// Regular files: extents, possibly found on first read.
	once    sync.Once
	extents []extent
	extErr  error
	resolve func() ([]extent, error)
}

// tree is the indexed, immutable (after open) view of a filesystem that
// implements fsys.FS. Inode numbers are 1 (root), 2, 3, ... in
// breadth-first order of the directory walk in on-disk entry order, so the
// same image always gives the same numbers.
type tree struct {
	r     io.ReaderAt
	size  int64
	nodes []*node // nodes[ino-1]
	info  fsys.Info
}

var _ fsys.FS = (*tree)(nil)

func (t *tree) add(n *node) (uint64, error) {
	if len(t.nodes) >= MaxEntries {
		return 0, fmt.Errorf("more than %d entries", MaxEntries)
	}
	t.nodes = append(t.nodes, n)
	ino := uint64(len(t.nodes))
	n.attr.Ino = ino
	return ino, nil
}

// addChild links child ino under dir as name; a duplicate name is dropped
// (only a corrupt image has one) and reported as false.
func (t *tree) addChild(dir *node, name string, ino uint64) bool {
	if dir.byName == nil {
		dir.byName = make(map[string]int)
	}
	key := name
	if dir.dirIsCI {
		key = strings.ToLower(name)
	}
	if _, dup := dir.byName[key]; dup {
		return false
	}
	dir.byName[key] = len(dir.children)
	c := t.nodes[ino-1]
	dir.children = append(dir.children, fsys.DirEntry{Name: name, Ino: ino, Type: c.attr.Mode & fsys.S_IFMT})
	if c.attr.IsDir() {
		dir.attr.Nlink++
	}
	return true
}

func (t *tree) node(ino uint64) (*node, error) {
	if ino == 0 || ino > uint64(len(t.nodes)) {
		return nil, fmt.Errorf("inode %d: %w", ino, fsys.ErrNotExist)
	}
	return t.nodes[ino-1], nil
}

func (t *tree) Root() uint64 { return 1 }

func (t *tree) Stat(ino uint64) (fsys.Attr, error) {
	n, err := t.node(ino)
	if err != nil {
		return fsys.Attr{}, err
	}
	return n.attr, nil
}

func (t *tree) Lookup(dir uint64, name string) (uint64, error) {
	d, err := t.node(dir)
	if err != nil {
		return 0, err
	}
	if !d.attr.IsDir() {
		return 0, fsys.ErrNotDir
	}
	key := name
	if d.dirIsCI {
		key = strings.ToLower(name)
	}
	if i, ok := d.byName[key]; ok {
		return d.children[i].Ino, nil
	}
	if i, ok := d.short[strings.ToUpper(name)]; ok {
		return d.children[i].Ino, nil
	}
	return 0, fmt.Errorf("%q: %w", name, fsys.ErrNotExist)
}

func (t *tree) ReadDir(dir uint64) ([]fsys.DirEntry, error) {
	d, err := t.node(dir)
	if err != nil {
		return nil, err
	}
	if !d.attr.IsDir() {
		return nil, fsys.ErrNotDir
	}
	return append([]fsys.DirEntry(nil), d.children...), nil
}

func (t *tree) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	n, err := t.node(ino)
	if err != nil {
		return 0, err
	}
	switch {
	case n.attr.IsDir():
		return 0, fsys.ErrIsDir
	case !n.attr.IsRegular():
		return 0, fmt.Errorf("inode %d is not a regular file", ino)
	case off < 0:
		return 0, fmt.Errorf("negative offset %d", off)
	}
	size := n.attr.Size
	if off >= size {
		return 0, io.EOF
	}
	n.once.Do(func() {
		if n.resolve != nil {
			n.extents, n.extErr = n.resolve()
		}
	})
	if n.extErr != nil {
		return 0, n.extErr
	}
	want := p
	if int64(len(want)) > size-off {
		want = want[:size-off]
	}
	done := 0
	// First extent that ends after off.
	i := sort.Search(len(n.extents), func(i int) bool { return n.extents[i].fileOff+n.extents[i].n > off })
	for done < len(want) {
		pos := off + int64(done)
		if i >= len(n.extents) || n.extents[i].fileOff > pos {
			return done, fmt.Errorf("inode %d: no data mapped at offset %d", ino, pos)
		}
		e := n.extents[i]
		chunk := want[done:min(len(want), done+int(e.fileOff+e.n-pos))]
		m, err := t.r.ReadAt(chunk, e.diskOff+pos-e.fileOff)
		done += m
		if m < len(chunk) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return done, fmt.Errorf("inode %d: reading image at %d: %w", ino, e.diskOff+pos-e.fileOff, err)
		}
		i++
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

func (t *tree) Readlink(ino uint64) (string, error) {
	n, err := t.node(ino)
	if err != nil {
		return "", err
	}
	if !n.attr.IsSymlink() {
		return "", fsys.ErrNotLink
	}
	return n.link, nil
}

func (t *tree) ListXattr(ino uint64) ([]string, error) {
	if _, err := t.node(ino); err != nil {
		return nil, err
	}
	return []string{}, nil
}

func (t *tree) GetXattr(ino uint64, name string) ([]byte, error) {
	if _, err := t.node(ino); err != nil {
		return nil, err
	}
	return nil, fsys.ErrNoAttr
}

func (t *tree) Info() fsys.Info {
	i := t.info
	i.Features = append([]string(nil), i.Features...)
	return i
}

func (t *tree) Close() error { return nil }

// validName rejects names a directory listing cannot carry.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid file name %q", name)
	}
	return nil
}
