package overlay

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// ID kinds. See the package documentation.
const (
	idLowerDir  = 1 // ino
	idLowerFile = 2 // ino, parent directory's ino
	idUpper     = 3 // ino, host handle type, host handle
)

// MaxIDLen bounds the length of an ID.
const MaxIDLen = 56

// ID returns a compact stable identifier of n that Resolve maps back to
// it, in this process or a later one over the same diff.
func (o *FS) ID(n *Node) ([]byte, error) {
	return o.AppendID(make([]byte, 0, MaxIDLen), n)
}

// AppendID is ID appending to dst, so a caller can keep it off the heap.
func (o *FS) AppendID(dst []byte, n *Node) ([]byte, error) {
	o.ns.RLock()
	defer o.ns.RUnlock()
	start := len(dst)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, n.ino)
	switch {
	case n.ino&upperTag != 0:
		h, _, err := unix.NameToHandleAt(o.ufd, n.dataPath(), 0)
		if err != nil {
			return nil, err
		}
		if len(h.Bytes()) > MaxIDLen-13 {
			return nil, syscall.EOVERFLOW
		}
		dst[start] = idUpper
		dst = binary.BigEndian.AppendUint32(dst, uint32(h.Type()))
		dst = append(dst, h.Bytes()...)
	case n.mode == fsys.S_IFDIR:
		dst[start] = idLowerDir
	default:
		dst[start] = idLowerFile
		p := n.state().parent
		if p == nil {
			return nil, syscall.ESTALE
		}
		dst = binary.BigEndian.AppendUint64(dst, p.ino)
	}
	return dst, nil
}

// Resolve maps an ID back to its node as the union shows it now, or
// fails with ESTALE when the object is gone.
func (o *FS) Resolve(id []byte) (*Node, error) {
	if len(id) < 9 {
		return nil, syscall.ESTALE
	}
	ino := binary.BigEndian.Uint64(id[1:9])
	o.ns.RLock()
	defer o.ns.RUnlock()
	switch id[0] {
	case idUpper:
		if len(id) < 13 || o.ufd < 0 {
			return nil, syscall.ESTALE
		}
		h := unix.NewFileHandle(int32(binary.BigEndian.Uint32(id[9:13])), id[13:])
		return o.byHandle(h, ino)
	case idLowerDir:
		return o.lowerDir(ino)
	case idLowerFile:
		if len(id) < 17 {
			return nil, syscall.ESTALE
		}
		if n, err := o.byIndex('r', ino); err == nil {
			return n, nil
		}
		pino := binary.BigEndian.Uint64(id[9:17])
		var dir *Node
		var err error
		if pino&upperTag != 0 {
			dir, err = o.byIndex('u', pino)
		} else {
			dir, err = o.lowerDir(pino)
		}
		if err != nil {
			return nil, err
		}
		ents, err := o.readDirLocked(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.Ino == ino {
				return o.lookupLocked(dir, e.Name)
			}
		}
	}
	return nil, syscall.ESTALE
}

// byHandle opens an upper object by host file handle and finds its union
// node through the path the host reports for it.
func (o *FS) byHandle(h unix.FileHandle, ino uint64) (*Node, error) {
	fd, err := unix.OpenByHandleAt(o.ufd, h, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil, syscall.ESTALE
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	unix.Close(fd)
	if err != nil || !strings.HasPrefix(p, o.diff+"/") && p != o.diff {
		return nil, syscall.ESTALE
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, o.diff), "/")
	n, err := o.walk(o.root, rel)
	if err != nil || n.ino != ino {
		return nil, syscall.ESTALE
	}
	return n, nil
}

func (o *FS) walk(n *Node, rel string) (*Node, error) {
	if rel == "" {
		return n, nil
	}
	for _, c := range strings.Split(rel, "/") {
		var err error
		if n, err = o.lookupLocked(n, c); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// byIndex follows a handle recorded in .wh..wh.plnk (kind 'd' for a
// renamed lower directory, 'r' for a renamed lower file, 'u' for an
// upper directory reached through its children).
func (o *FS) byIndex(kind byte, ino uint64) (*Node, error) {
	if o.ufd < 0 {
		return nil, syscall.ESTALE
	}
	if kind == 'u' {
		return nil, syscall.ESTALE
	}
	buf := make([]byte, 256)
	k, err := unix.Readlinkat(o.ufd, plnkDir+"/"+string(kind)+strconv.FormatUint(ino, 10), buf)
	if err != nil {
		return nil, syscall.ESTALE
	}
	raw, err := hex.DecodeString(string(buf[:k]))
	if err != nil || len(raw) < 4 {
		return nil, syscall.ESTALE
	}
	h := unix.NewFileHandle(int32(binary.BigEndian.Uint32(raw)), raw[4:])
	return o.byHandle(h, ino)
}

// recordMove notes where a lower object went when it is renamed, so its
// ID keeps resolving. Caller holds ns exclusively.
func (o *FS) recordMove(n *Node) {
	if n.ino&upperTag != 0 {
		return
	}
	kind := "r"
	if n.mode == fsys.S_IFDIR {
		kind = "d"
	}
	h, _, err := unix.NameToHandleAt(o.ufd, n.dataPath(), 0)
	if err != nil {
		return
	}
	raw := binary.BigEndian.AppendUint32(nil, uint32(h.Type()))
	raw = append(raw, h.Bytes()...)
	p := plnkDir + "/" + kind + strconv.FormatUint(n.ino, 10)
	tmp := o.stageName()
	if unix.Symlinkat(hex.EncodeToString(raw), o.ufd, tmp) == nil {
		unix.Renameat(o.ufd, tmp, o.ufd, p)
	}
}

// lowerDir finds the union node of a directory that came from a lower
// layer: through a recorded move of it or of an ancestor, or else through
// its ".." chain in the (immutable) lower layer.
func (o *FS) lowerDir(ino uint64) (*Node, error) {
	if ino == o.root.ino {
		return o.root, nil
	}
	l, ok := o.dec(ino)
	if !ok {
		return nil, syscall.ESTALE
	}
	lfs := o.lowers[l.layer]
	var names []string // from the directory up
	cur := l.ino
	for cur != lfs.Root() {
		if n, err := o.byIndex('d', o.enc(lref{l.layer, cur})); err == nil {
			return o.walkDown(n, names, ino)
		}
		par, err := lfs.Lookup(cur, "..")
		if err != nil || par == cur {
			return nil, syscall.ESTALE
		}
		ents, err := lfs.ReadDir(par)
		if err != nil {
			return nil, syscall.ESTALE
		}
		found := false
		for _, e := range ents {
			if e.Ino == cur {
				names = append(names, e.Name)
				found = true
				break
			}
		}
		if !found {
			return nil, syscall.ESTALE
		}
		cur = par
	}
	return o.walkDown(o.root, names, ino)
}

func (o *FS) walkDown(n *Node, up []string, ino uint64) (*Node, error) {
	for i := len(up) - 1; i >= 0; i-- {
		var err error
		if n, err = o.lookupLocked(n, up[i]); err != nil {
			return nil, syscall.ESTALE
		}
	}
	if n.ino != ino {
		return nil, syscall.ESTALE
	}
	return n, nil
}
