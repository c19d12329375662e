package fatiso

import (
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/vmroot/vmroot/internal/fsys"
)

// ProbeFAT reports whether sector0 (at least 512 bytes) is a FAT boot
// sector: 0x55AA signature, a jump instruction and a BIOS parameter block
// whose geometry describes a possible FAT12/16/32 volume.
func ProbeFAT(sector0 []byte) bool {
	_, err := decodeBPB(sector0)
	return err == nil
}

// fatReader is what vmroot uses of go-diskfs's FAT12/16/32 filesystems.
type fatReader interface {
	ReadDir(p string) ([]iofs.DirEntry, error)
	Label() string
}

// OpenFAT opens a FAT12, FAT16 or FAT32 volume of the given size.
//
// go-diskfs reads the boot sector, FAT and directories and supplies names
// (VFAT long names, 8.3 names with the NT lower-case flags) and
// modification times; vmroot checks the geometry and every cluster chain
// it will follow first (go-diskfs loops forever on a looping chain) and
// decodes what go-diskfs does not expose: attributes, start clusters,
// access and creation times.
//
// The tree is indexed at open; any inconsistency (looping or broken
// chain, cross-linked directory, more than MaxEntries entries or MaxDepth
// levels) is an error. Attributes: directories 0755, files 0644 or 0444
// with the read-only attribute, uid/gid 0. Timestamps are taken as UTC
// (FAT stores the writer's local time) with FAT's resolution: mtime 2 s,
// atime one day, crtime 10 ms. Lookup is case-insensitive and also
// accepts the 8.3 alias, as Linux's vfat does. Short names with bytes
// >= 0x80 are passed through undecoded (no code page), and long names
// outside the BMP come out as U+FFFD (go-diskfs decodes LFN as UCS-2).
func OpenFAT(r io.ReaderAt, size int64) (fsys.FS, error) {
	s0 := make([]byte, 512)
	if n, err := r.ReadAt(s0, 0); n < len(s0) {
		return nil, fmt.Errorf("fat: reading boot sector: %v", err)
	}
	b, err := decodeBPB(s0)
	if err != nil {
		return nil, fmt.Errorf("fat: not a FAT filesystem: %v", err)
	}
	if b.volumeBytes() > size {
		return nil, fmt.Errorf("fat: volume of %d bytes does not fit in %d bytes (truncated image?)", b.volumeBytes(), size)
	}
	raw := make([]byte, b.fatBytes)
	if n, err := r.ReadAt(raw, b.fatOffset); n < len(raw) {
		return nil, fmt.Errorf("fat: reading FAT: %v", err)
	}
	f := &fatFS{b: b, fat: decodeFAT(b, raw), st: newStorage(r, size)}
	f.t = &tree{r: r, size: size}

	err = f.st.guard("fat: opening with go-diskfs", func() error {
		var err error
		switch b.fatBits {
		case 12:
			f.gd, err = fat12.Read(f.st, size, 0, 0)
		case 16:
			f.gd, err = fat16.Read(f.st, size, 0, 0)
		default:
			f.gd, err = fat32.Read(f.st, size, 0, 0)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := f.index(); err != nil {
		return nil, err
	}
	f.t.info = f.fsInfo()
	return f.t, nil
}

type fatFS struct {
	b   *bpb
	fat []uint32
	st  *storage
	gd  fatReader
	t   *tree
}

// chain returns the data extents of the cluster chain starting at start.
// With want > 0 it stops after want clusters and fails if the chain is
// shorter; with want == 0 it must reach an end-of-chain mark within limit
// clusters. A chain that comes back to a cluster is an error.
func (f *fatFS) chain(start uint32, want, limit int64) ([]extent, int64, error) {
	var out []extent
	var n int64
	seen := make(map[uint32]bool)
	c := start
	for {
		if c < 2 || c > f.b.clusters+1 {
			return nil, 0, fmt.Errorf("cluster chain from %d reaches invalid cluster %d", start, c)
		}
		if seen[c] {
			return nil, 0, fmt.Errorf("cluster chain from %d loops at cluster %d", start, c)
		}
		seen[c] = true
		off := f.b.clusterOffset(c)
		if k := len(out); k > 0 && out[k-1].diskOff+out[k-1].n == off {
			out[k-1].n += f.b.clusterBytes
		} else {
			out = append(out, extent{fileOff: n * f.b.clusterBytes, diskOff: off, n: f.b.clusterBytes})
		}
		n++
		if want > 0 && n == want {
			return out, n, nil
		}
		next := f.fat[c]
		switch {
		case next >= fatEOC:
			if want > 0 {
				return nil, 0, fmt.Errorf("cluster chain from %d ends after %d clusters, %d needed", start, n, want)
			}
			return out, n, nil
		case next == fatBad:
			return nil, 0, fmt.Errorf("cluster chain from %d reaches a bad cluster after %d", start, c)
		case next < 2:
			return nil, 0, fmt.Errorf("cluster chain from %d reaches free cluster %d", start, c)
		}
		if want == 0 && n >= limit {
			return nil, 0, fmt.Errorf("cluster chain from %d is longer than %d clusters", start, limit)
		}
		c = next
	}
}

// readExtents reads the bytes the extents map.
func (f *fatFS) readExtents(es []extent) ([]byte, error) {
	var total int64
	for _, e := range es {
		total += e.n
	}
	buf := make([]byte, total)
	for _, e := range es {
		if n, err := f.t.r.ReadAt(buf[e.fileOff:e.fileOff+e.n], e.diskOff); int64(n) < e.n {
			return nil, fmt.Errorf("reading image at %d: %v", e.diskOff, err)
		}
	}
	return buf, nil
}

type fatDir struct {
	ino   uint64
	path  string // go-diskfs path of the directory
	depth int
	data  []byte
}

func (f *fatFS) index() error {
	root := &node{dirIsCI: true}
	root.attr = fsys.Attr{Mode: fsys.S_IFDIR | 0o755, Nlink: 2}
	var data []byte
	var err error
	if f.b.fatBits == 32 {
		data, err = f.dirData(f.b.rootCluster)
	} else {
		data = make([]byte, f.b.rootDirBytes)
		if n, rerr := f.t.r.ReadAt(data, f.b.rootDirOff); n < len(data) {
			err = fmt.Errorf("reading root directory: %v", rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("fat: root directory: %w", err)
	}
	root.attr.Size = int64(len(data))
	root.attr.Blocks = (root.attr.Size + 511) / 512
	f.t.add(root)
	seenDirs := map[uint32]bool{}
	if f.b.fatBits == 32 {
		seenDirs[f.b.rootCluster] = true
	}
	queue := []fatDir{{ino: 1, path: ".", data: data}}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		var subdirs []fatDir
		subdirs, err := f.indexDir(d, seenDirs)
		if err != nil {
			name := "/" + strings.TrimPrefix(d.path, ".")
			return fmt.Errorf("fat: directory %q: %w", name, err)
		}
		queue = append(queue, subdirs...)
	}
	return nil
}

func (f *fatFS) dirData(cluster uint32) ([]byte, error) {
	es, _, err := f.chain(cluster, 0, maxDirBytes/f.b.clusterBytes+1)
	if err != nil {
		return nil, err
	}
	return f.readExtents(es)
}

func (f *fatFS) indexDir(d fatDir, seenDirs map[uint32]bool) ([]fatDir, error) {
	var entries []iofs.DirEntry
	err := f.st.guard("go-diskfs ReadDir", func() error {
		var err error
		entries, err = f.gd.ReadDir(d.path)
		return err
	})
	if err != nil {
		return nil, err
	}
	slots := decodeDirSlots(d.data, f.b.fatBits == 32)
	if len(slots) != len(entries) {
		return nil, fmt.Errorf("go-diskfs lists %d entries, the directory holds %d", len(entries), len(slots))
	}
	dir := f.t.nodes[d.ino-1]
	var subdirs []fatDir
	for i, de := range entries {
		s := slots[i]
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		if sn, ok := fi.(fat12.FileInfo); !ok || !strings.EqualFold(sn.ShortName(), s.shortName()) {
			return nil, fmt.Errorf("go-diskfs entry %d %q does not match the on-disk entry %q", i, de.Name(), s.shortName())
		}
		name := de.Name()
		if err := validName(name); err != nil {
			return nil, err
		}
		n := &node{}
		n.attr = fsys.Attr{
			Nlink:  1,
			Mtime:  fi.ModTime(),
			Ctime:  fi.ModTime(),
			Atime:  fatTime(s.accDate, 0, 0),
			Crtime: fatTime(s.crtDate, s.crtTime, s.crtCs),
		}
		isDir := s.attr&attrDir != 0
		var data []byte
		switch {
		case isDir:
			if d.depth+1 >= MaxDepth {
				return nil, fmt.Errorf("more than %d directory levels", MaxDepth)
			}
			if seenDirs[s.cluster] {
				return nil, fmt.Errorf("subdirectory %q starts at cluster %d, already used by another directory", name, s.cluster)
			}
			seenDirs[s.cluster] = true
			data, err = f.dirData(s.cluster)
			if err != nil {
				return nil, fmt.Errorf("subdirectory %q: %w", name, err)
			}
			n.dirIsCI = true
			n.attr.Mode = fsys.S_IFDIR | 0o755
			n.attr.Nlink = 2
			n.attr.Size = int64(len(data))
		default:
			n.attr.Mode = fsys.S_IFREG | 0o644
			if s.attr&attrReadOnly != 0 {
				n.attr.Mode = fsys.S_IFREG | 0o444
			}
			n.attr.Size = int64(s.size)
			if s.size > 0 {
				start, want := s.cluster, (int64(s.size)+f.b.clusterBytes-1)/f.b.clusterBytes
				n.resolve = func() ([]extent, error) {
					es, _, err := f.chain(start, want, 0)
					if err != nil {
						return nil, fmt.Errorf("fat: file %q: %w", name, err)
					}
					return es, nil
				}
			}
		}
		n.attr.Blocks = (n.attr.Size + f.b.clusterBytes - 1) / f.b.clusterBytes * f.b.clusterBytes / 512
		ino, err := f.t.add(n)
		if err != nil {
			return nil, err
		}
		if !f.t.addChild(dir, name, ino) {
			continue
		}
		if sn := strings.ToUpper(s.shortName()); !strings.EqualFold(sn, name) {
			if dir.short == nil {
				dir.short = map[string]int{}
			}
			if _, dup := dir.short[sn]; !dup {
				dir.short[sn] = len(dir.children) - 1
			}
		}
		if isDir {
			subdirs = append(subdirs, fatDir{ino: ino, path: path.Join(d.path, name), depth: d.depth + 1, data: data})
		}
	}
	return subdirs, nil
}

func (f *fatFS) fsInfo() fsys.Info {
	var label string
	_ = f.st.guard("go-diskfs Label", func() error {
		label = strings.TrimRight(f.gd.Label(), " ")
		return nil
	})
	if label == "" && f.b.label != "NO NAME" {
		label = f.b.label
	}
	var free uint64
	for _, v := range f.fat[2:] {
		if v == 0 {
			free++
		}
	}
	info := fsys.Info{
		Type:       "vfat",
		Label:      label,
		BlockSize:  f.b.clusterBytes,
		Blocks:     uint64(f.b.clusters),
		FreeBlocks: free,
		Inodes:     uint64(len(f.t.nodes)),
		Features:   []string{fmt.Sprintf("FAT%d", f.b.fatBits)},
	}
	if f.b.hasSerial {
		info.UUID = fmt.Sprintf("%04X-%04X", f.b.serial>>16, f.b.serial&0xffff)
	}
	return info
}
