package netboot

import (
	"sync"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/overlay"
	"golang.org/x/sys/unix"
)

// maxOverlayNodes bounds the inode table of an OverlayFS; boot file
// lookups touch a few dozen names.
const maxOverlayNodes = 1 << 16

// OverlayFS presents one host's union (what vmroot serves that host) as
// the read-only fsys.FS the boot services read, so a kernel or initrd the
// host installed in its own diff is the one it boots. Stat, ReadAt and
// Readlink work on inodes reached through Root and Lookup (as
// fsys.Resolve does); it does not own o and Close does nothing.
func OverlayFS(o *overlay.FS) fsys.FS {
	return &overlayFS{o: o, nodes: map[uint64]*overlay.Node{}}
}

type overlayFS struct {
	o     *overlay.FS
	mu    sync.Mutex
	nodes map[uint64]*overlay.Node
}

func (f *overlayFS) remember(n *overlay.Node) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.nodes) >= maxOverlayNodes {
		clear(f.nodes)
	}
	f.nodes[n.Ino()] = n
	return n.Ino()
}

func (f *overlayFS) node(ino uint64) (*overlay.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ino == f.o.Root().Ino() {
		return f.o.Root(), nil
	}
	n := f.nodes[ino]
	if n == nil {
		return nil, fsys.ErrNotExist
	}
	return n, nil
}

func (f *overlayFS) Root() uint64 { return f.o.Root().Ino() }

func (f *overlayFS) Stat(ino uint64) (fsys.Attr, error) {
	n, err := f.node(ino)
	if err != nil {
		return fsys.Attr{}, err
	}
	return f.o.Getattr(n)
}

func (f *overlayFS) Lookup(dir uint64, name string) (uint64, error) {
	d, err := f.node(dir)
	if err != nil {
		return 0, err
	}
	n, err := f.o.Lookup(d, name)
	if err != nil {
		return 0, err
	}
	return f.remember(n), nil
}

func (f *overlayFS) ReadDir(dir uint64) ([]fsys.DirEntry, error) {
	d, err := f.node(dir)
	if err != nil {
		return nil, err
	}
	ents, err := f.o.ReadDir(d)
	if err != nil {
		return nil, err
	}
	out := make([]fsys.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, fsys.DirEntry{Name: e.Name, Ino: e.Ino, Type: e.Mode & fsys.S_IFMT})
	}
	return out, nil
}

func (f *overlayFS) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	n, err := f.node(ino)
	if err != nil {
		return 0, err
	}
	h, err := f.o.Open(n, unix.O_RDONLY)
	if err != nil {
		return 0, err
	}
	defer h.Release()
	return h.ReadAt(p, off)
}

func (f *overlayFS) Readlink(ino uint64) (string, error) {
	n, err := f.node(ino)
	if err != nil {
		return "", err
	}
	return f.o.Readlink(n)
}

func (f *overlayFS) ListXattr(ino uint64) ([]string, error) {
	n, err := f.node(ino)
	if err != nil {
		return nil, err
	}
	return f.o.ListXattr(n)
}

func (f *overlayFS) GetXattr(ino uint64, name string) ([]byte, error) {
	n, err := f.node(ino)
	if err != nil {
		return nil, err
	}
	return f.o.GetXattr(n, name)
}

func (f *overlayFS) Info() fsys.Info { return fsys.Info{Type: "overlay"} }
func (f *overlayFS) Close() error    { return nil }
