// Package vmdk reads VMware virtual disks (VMDK) in place, read-only, and
// writes new ones (see Write).
//
// Open accepts a text descriptor (monolithicFlat, twoGbMaxExtentFlat,
// twoGbMaxExtentSparse, vmfs, vmfsSparse, ...) or a sparse file with an
// embedded descriptor (monolithicSparse, streamOptimized in both the VMware
// and the qemu-img layout), follows parentFileNameHint chains of delta
// disks, and returns a Disk: an io.ReaderAt over the virtual disk that is
// safe for concurrent use, and that tells where its data is (DataRanges).
//
// Untrusted input is expected: header fields are bounded before anything
// is allocated from them, compressed grains may not inflate beyond the
// grain size, and every error names the file it concerns (see Error).
package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// MaxChainDepth bounds the number of parent disks Open follows.
const MaxChainDepth = 64

// Disk is an open VMDK. Its methods are safe for concurrent use.
type Disk struct {
	path    string
	info    Info
	size    int64
	starts  []int64 // start of each extent, ascending
	extents []extent
	parent  *Disk
	files   []*os.File
	once    sync.Once
	cerr    error
}

// Info describes an open disk and, through Parent, its chain.
type Info struct {
	Path       string
	CreateType string
	Version    int // descriptor version; 0 for a sparse file without one
	CID        uint32
	ParentCID  uint32 // NoParentCID if the disk has no parent
	ParentHint string // parentFileNameHint as written
	Size       int64  // virtual size in bytes
	Extents    []ExtentInfo
	Parent     *Info
	DDB        map[string]string // ddb.* entries, keys without the "ddb." prefix
}

// ExtentInfo describes one extent.
type ExtentInfo struct {
	Access string // RW, RDONLY, NOACCESS
	Type   string // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE
	File   string // resolved path; "" for ZERO
	Offset int64  // FLAT/VMFS: bytes into File where the extent's data begins
	Size   int64  // bytes of virtual disk covered
	// Allocated is the host allocation of File (st_blocks*512), as du
	// reports it: the whole file, even if the extent covers only part of
	// it. 0 for ZERO and NOACCESS extents.
	Allocated   int64
	GrainSize   int64 // sparse extents: bytes per grain
	Compressed  bool
	Layout      string // one of the Layout* constants; "" for a NOACCESS sparse extent, which is never opened
	RedundantGD bool   // the primary grain directory was damaged; the redundant one is used
}

type extent interface {
	// readAt fills p from extent-relative offset rel; the caller keeps
	// rel+len(p) within the extent.
	readAt(p []byte, rel int64) error
}

// Open opens a VMDK given the path of its descriptor file or of a
// monolithic sparse or streamOptimized file, read-only, following the
// parent chain of delta disks (at most MaxChainDepth deep). Every extent
// file and parent must exist. The child's parentCID must equal its
// parent's CID.
func Open(path string) (*Disk, error) {
	return openDisk(path, newCaches(), nil)
}

func openDisk(path string, c *caches, chain []os.FileInfo) (_ *Disk, err error) {
	if len(chain) >= MaxChainDepth {
		return nil, errf(ErrParent, path, -1, "parent chain deeper than %d disks", MaxChainDepth)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, wrapErr(ErrIO, path, -1, err, "cannot open")
	}
	d := &Disk{path: path, files: []*os.File{f}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, wrapErr(ErrIO, path, -1, err, "cannot stat")
	}
	for _, prev := range chain {
		if os.SameFile(prev, fi) {
			return nil, errf(ErrParent, path, -1, "parent loop: file is already in the chain")
		}
	}
	chain = append(chain, fi)
	if fi.IsDir() {
		return nil, errf(ErrCorrupt, path, -1, "is a directory, not a VMDK")
	}
	var head [SectorSize]byte
	n, err := f.ReadAt(head[:], 0)
	if n < len(head) && err != io.EOF {
		return nil, wrapErr(ErrIO, path, 0, err, "reading header")
	}
	var desc *Descriptor
	switch string(head[:4]) {
	case MagicSparse:
		desc, err = d.openMonolithic(f, fi.Size(), head[:n], c)
	case MagicCOWD:
		err = d.openMonolithicCOWD(f, fi.Size(), head[:n], c)
	default:
		desc, err = d.openDescriptorFile(f, fi.Size(), c)
	}
	if err != nil {
		return nil, err
	}
	d.info.Path = path
	if desc != nil {
		d.info.Version, d.info.CID, d.info.ParentCID = desc.Version, desc.CID, desc.ParentCID
		d.info.ParentHint, d.info.DDB = desc.ParentHint, desc.DDB
		if d.info.CreateType == "" {
			d.info.CreateType = desc.CreateType
		}
	} else {
		d.info.ParentCID = NoParentCID
	}
	d.info.Size = d.size
	if desc != nil && desc.ParentHint != "" {
		if err := d.openParent(desc, c, chain); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// openMonolithic opens a sparse file that is its own single extent, or
// (capacity 0) a sparse file that only carries a descriptor.
func (d *Disk) openMonolithic(f *os.File, fileSize int64, head []byte, c *caches) (*Descriptor, error) {
	h, err := DecodeSparseHeader(head)
	if err != nil {
		return nil, wrapErr(ErrCorrupt, d.path, 0, err, "sparse header")
	}
	if err := h.Validate(fileSize); err != nil {
		return nil, wrapErr(ErrCorrupt, d.path, 0, err, "sparse header")
	}
	var desc *Descriptor
	if h.DescriptorSize != 0 {
		off := int64(h.DescriptorOffset) * SectorSize
		buf := make([]byte, h.DescriptorSize*SectorSize)
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, wrapErr(ErrIO, d.path, off, err, "reading embedded descriptor")
		}
		desc, err = ParseDescriptor(buf)
		if err != nil {
			return nil, wrapErr(ErrCorrupt, d.path, off, err, "embedded descriptor")
		}
	}
	if h.Capacity == 0 {
		if desc == nil {
			return nil, errf(ErrCorrupt, d.path, 0, "sparse header has capacity 0 and no descriptor")
		}
		return desc, d.addExtents(desc, c)
	}
	size := int64(h.Capacity) * SectorSize
	access := AccessRW
	// The file is its own extent whatever name its descriptor gives it
	// (writers such as VMDKstream put a fixed name there), as in qemu.
	if desc != nil && len(desc.Extents) == 1 {
		el := desc.Extents[0]
		if el.Type != ExtentSparse {
			return nil, errf(ErrCorrupt, d.path, int64(h.DescriptorOffset)*SectorSize, "embedded descriptor line %d: extent type %s in a sparse file", el.Line, el.Type)
		}
		size, access = el.Sectors*SectorSize, el.Access
	}
	se, err := newSparseExtent(d.path, f, fileSize, h, size, c)
	if err != nil {
		return nil, err
	}
	ei := se.info(AccessRW, ExtentSparse, d.path, size)
	ei.Allocated = allocated(f)
	var ext extent = se
	if access == AccessNOACCESS {
		ext = noAccess{d.path}
	}
	ei.Access = access
	d.add(ext, size, ei)
	switch {
	case h.Compressed():
		d.info.CreateType = "streamOptimized"
	case desc == nil:
		d.info.CreateType = "monolithicSparse"
	}
	return desc, nil
}

func (d *Disk) openMonolithicCOWD(f *os.File, fileSize int64, head []byte, c *caches) error {
	h, err := DecodeCOWDHeader(head)
	if err == nil {
		err = h.Validate(fileSize)
	}
	if err != nil {
		return wrapErr(ErrCorrupt, d.path, 0, err, "COWD header")
	}
	size := int64(h.NumSectors) * SectorSize
	se, err := newCOWDExtent(d.path, f, fileSize, h, size, c)
	if err != nil {
		return err
	}
	ei := se.info(AccessRW, ExtentVMFSSparse, d.path, size)
	ei.Allocated = allocated(f)
	d.add(se, size, ei)
	d.info.CreateType = "vmfsSparse"
	return nil
}

func (d *Disk) openDescriptorFile(f *os.File, fileSize int64, c *caches) (*Descriptor, error) {
	if fileSize > MaxDescriptorSize {
		return nil, errf(ErrCorrupt, d.path, -1, "not a VMDK: no sparse magic, and at %d bytes too large for a descriptor", fileSize)
	}
	buf := make([]byte, fileSize)
	if n, err := f.ReadAt(buf, 0); n < len(buf) {
		return nil, wrapErr(ErrIO, d.path, int64(n), err, "reading descriptor")
	}
	if !Detect(buf) {
		return nil, errf(ErrCorrupt, d.path, -1, "not a VMDK: no sparse magic and no descriptor text")
	}
	desc, err := ParseDescriptor(buf)
	if err != nil {
		return nil, wrapErr(ErrCorrupt, d.path, -1, err, "descriptor")
	}
	// The descriptor file holds no data; close it now.
	f.Close()
	d.files = d.files[:0]
	return desc, d.addExtents(desc, c)
}

// addExtents opens the extents a descriptor lists, resolving relative
// names against the descriptor's directory.
func (d *Disk) addExtents(desc *Descriptor, c *caches) error {
	if len(desc.Extents) == 0 {
		return errf(ErrCorrupt, d.path, -1, "descriptor lists no extents")
	}
	dir := filepath.Dir(d.path)
	for _, el := range desc.Extents {
		size := el.Sectors * SectorSize
		ei := ExtentInfo{Access: el.Access, Type: el.Type, Size: size}
		if el.Type == ExtentZero {
			ei.Layout = LayoutZero
			var ext extent = zeroExtent{}
			if el.Access == AccessNOACCESS {
				ext = noAccess{d.path}
			}
			d.add(ext, size, ei)
			continue
		}
		name := el.File
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		ei.File = name
		declared := fmt.Sprintf("declared in %s line %d", d.path, el.Line)
		switch el.Type {
		case ExtentVMFSRDM, ExtentVMFSRaw, ExtentSESparse:
			return errf(ErrUnsupported, name, -1, "extent type %s is not supported (%s)", el.Type, declared)
		}
		if el.Access == AccessNOACCESS {
			// Never opened: VMware keeps such extents unreadable, and the
			// file need not exist.
			ei.Layout = LayoutFlat
			if el.Type == ExtentSparse || el.Type == ExtentVMFSSparse {
				ei.Layout = ""
			}
			d.add(noAccess{name}, size, ei)
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return wrapErr(ErrIO, name, -1, err, "missing extent file (%s)", declared)
			}
			return wrapErr(ErrIO, name, -1, err, "cannot open extent file (%s)", declared)
		}
		d.files = append(d.files, f)
		fi, err := f.Stat()
		if err != nil {
			return wrapErr(ErrIO, name, -1, err, "cannot stat extent file")
		}
		if fi.IsDir() {
			return errf(ErrCorrupt, name, -1, "extent file is a directory (%s)", declared)
		}
		ei.Allocated = allocated(f)
		switch el.Type {
		case ExtentFlat, ExtentVMFS:
			ei.Offset = el.Offset * SectorSize
			ei.Layout = LayoutFlat
			d.add(&flatExtent{f: f, path: name, off: ei.Offset}, size, ei)
		case ExtentSparse, ExtentVMFSSparse:
			se, err := openSparseFile(name, f, fi.Size(), size, c)
			if err != nil {
				return err
			}
			alloc := ei.Allocated
			ei = se.info(el.Access, el.Type, name, size)
			ei.Allocated = alloc
			d.add(se, size, ei)
		}
	}
	return nil
}

// openSparseFile opens a KDMV or COWD extent of size virtual bytes.
func openSparseFile(name string, f io.ReaderAt, fileSize, size int64, c *caches) (*sparseExtent, error) {
	var head [SectorSize]byte
	n, err := f.ReadAt(head[:], 0)
	if n < 4 {
		return nil, wrapErr(ErrCorrupt, name, 0, err, "sparse extent too short for a header")
	}
	switch string(head[:4]) {
	case MagicSparse:
		h, err := DecodeSparseHeader(head[:n])
		if err == nil {
			err = h.Validate(fileSize)
		}
		if err != nil {
			return nil, wrapErr(ErrCorrupt, name, 0, err, "sparse header")
		}
		return newSparseExtent(name, f, fileSize, h, size, c)
	case MagicCOWD:
		h, err := DecodeCOWDHeader(head[:n])
		if err == nil {
			err = h.Validate(fileSize)
		}
		if err != nil {
			return nil, wrapErr(ErrCorrupt, name, 0, err, "COWD header")
		}
		return newCOWDExtent(name, f, fileSize, h, size, c)
	}
	return nil, errf(ErrCorrupt, name, 0, "sparse extent has magic %q, want %q or %q", head[:4], MagicSparse, MagicCOWD)
}

func (e *sparseExtent) info(access, typ, file string, size int64) ExtentInfo {
	return ExtentInfo{Access: access, Type: typ, File: file, Size: size, GrainSize: e.grainBytes, Compressed: e.compressed, Layout: e.layout, RedundantGD: e.usedRGD}
}

func (d *Disk) add(e extent, size int64, ei ExtentInfo) {
	if se, ok := e.(*sparseExtent); ok {
		se.base = d.size
	}
	d.starts = append(d.starts, d.size)
	d.extents = append(d.extents, e)
	d.info.Extents = append(d.info.Extents, ei)
	d.size += size
}

func (d *Disk) openParent(desc *Descriptor, c *caches, chain []os.FileInfo) error {
	name := desc.ParentHint
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(d.path), name)
	}
	p, err := openDisk(name, c, chain)
	if err != nil {
		return wrapErr(ErrParent, d.path, -1, err, "opening parent %s", name)
	}
	if p.info.CID != desc.ParentCID {
		p.Close()
		return errf(ErrParent, d.path, -1, "parentCID %08x does not match CID %08x of parent %s", desc.ParentCID, p.info.CID, name)
	}
	d.parent = p
	pi := p.info
	d.info.Parent = &pi
	for _, e := range d.extents {
		if se, ok := e.(*sparseExtent); ok {
			se.parent = p
		}
	}
	return nil
}

// Size returns the virtual size of the disk in bytes.
func (d *Disk) Size() int64 { return d.size }

// Info describes the disk and its parents. The result is a copy.
func (d *Disk) Info() Info {
	return copyInfo(&d.info)
}

func copyInfo(in *Info) Info {
	out := *in
	out.Extents = slices.Clone(in.Extents)
	if in.DDB != nil {
		out.DDB = make(map[string]string, len(in.DDB))
		for k, v := range in.DDB {
			out.DDB[k] = v
		}
	}
	if in.Parent != nil {
		p := copyInfo(in.Parent)
		out.Parent = &p
	}
	return out
}

// ReadAt reads len(p) bytes of the virtual disk at off. Like any
// io.ReaderAt it returns io.EOF when the read reaches past Size. It is
// safe for concurrent use; reads of FLAT extents take no lock.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errf(ErrIO, d.path, off, "negative read offset")
	}
	if off >= d.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > d.size-off {
		p, eof = p[:d.size-off], io.EOF
	}
	i, found := slices.BinarySearch(d.starts, off)
	if !found {
		i--
	}
	done := 0
	for done < len(p) {
		start := d.starts[i]
		end := d.size
		if i+1 < len(d.starts) {
			end = d.starts[i+1]
		}
		n := min(int64(len(p)-done), end-off)
		if err := d.extents[i].readAt(p[done:done+int(n)], off-start); err != nil {
			return done, err
		}
		done += int(n)
		off += n
		i++
	}
	return done, eof
}

// readZeroPad reads like ReadAt but returns zeros past Size, as a parent
// smaller than its child is read.
func (d *Disk) readZeroPad(p []byte, off int64) error {
	if off >= d.size {
		clear(p)
		return nil
	}
	n, err := d.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return err
	}
	clear(p[n:])
	return nil
}

// Close closes the disk's files and its parents'. Reads after Close fail.
func (d *Disk) Close() error {
	d.once.Do(func() {
		for _, f := range d.files {
			if err := f.Close(); err != nil && d.cerr == nil {
				d.cerr = wrapErr(ErrIO, f.Name(), -1, err, "close")
			}
		}
		if d.parent != nil {
			if err := d.parent.Close(); err != nil && d.cerr == nil {
				d.cerr = err
			}
		}
	})
	return d.cerr
}

// flatExtent maps the extent straight onto a byte range of a file.
type flatExtent struct {
	f    *os.File
	path string
	off  int64
}

// readAt returns zeros for the part of the extent beyond the end of a
// file shorter than declared: qemu does the same (its raw driver pads
// reads at end of file), so a disk reads identically under both.
func (e *flatExtent) readAt(p []byte, rel int64) error {
	n, err := e.f.ReadAt(p, e.off+rel)
	if err != nil && err != io.EOF {
		return wrapErr(ErrIO, e.path, e.off+rel+int64(n), err, "read")
	}
	clear(p[n:])
	return nil
}

type zeroExtent struct{}

func (zeroExtent) readAt(p []byte, _ int64) error {
	clear(p)
	return nil
}

type noAccess struct{ path string }

func (e noAccess) readAt([]byte, int64) error {
	return errf(ErrNoAccess, e.path, -1, "read of a NOACCESS extent")
}

// Detect reports whether head, the first bytes of a file (512 or more
// when the file has them), looks like a VMDK: a sparse or COWD magic
// number, or a text descriptor whose first statement is a version line.
func Detect(head []byte) bool {
	if len(head) >= 4 && (string(head[:4]) == MagicSparse || string(head[:4]) == MagicCOWD) {
		return true
	}
	if len(head) > 4096 {
		head = head[:4096]
	}
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimSpace(line)
		for _, c := range line {
			if c < 0x20 && c != '\t' {
				return false
			}
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, ok := bytes.Cut(line, []byte("="))
		return ok && string(bytes.TrimSpace(k)) == "version"
	}
	return false
}
