package vmdk

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// Layout names reported in ExtentInfo.Layout.
const (
	LayoutFlat          = "flat"
	LayoutZero          = "zero"
	LayoutHostedSparse  = "hosted sparse"
	LayoutStreamVMware  = "streamOptimized (VMware)"
	LayoutStreamQemu    = "streamOptimized (qemu)"
	LayoutCOWD          = "vmfsSparse (COWD)"
	LayoutStreamWalked  = "streamOptimized (VMware, no footer: markers walked)"
	maxCompressedFactor = 2 // a compressed grain may be at most this many grains long, as in qemu
	maxWalkedGrains     = 1 << 24
)

// sparseExtent reads a hosted sparse, streamOptimized or COWD extent.
// Everything in it is immutable after open except the shared caches, so
// readAt may run concurrently.
type sparseExtent struct {
	path       string
	r          io.ReaderAt
	fileSize   int64
	size       int64 // virtual bytes covered, from the descriptor
	grainBytes int64
	grainShift uint
	gtEntries  int64
	overHead   int64 // bytes of metadata before the first grain
	gd         []uint32
	rgd        []uint32 // nil if none, or if it replaced a damaged gd
	walked     []walkedGrain
	usedRGD    bool
	zeroGrain  bool
	compressed bool
	markers    bool
	layout     string
	id         uint32
	c          *caches
	pool       sync.Pool // *inflater

	parent *Disk // nil: unallocated grains read as zeros
	base   int64 // virtual offset of this extent in the disk
}

type walkedGrain struct {
	grain  uint64
	sector uint32
}

type inflater struct {
	cbuf []byte
	br   bytes.Reader
	zr   io.ReadCloser
	fr   io.ReadCloser
	one  [1]byte
}

func sparseErr(path string, off int64, format string, args ...any) *Error {
	return errf(ErrCorrupt, path, off, format, args...)
}

// newSparseExtent opens a KDMV extent of size virtual bytes whose header
// h has passed Validate.
func newSparseExtent(path string, r io.ReaderAt, fileSize int64, h SparseHeader, size int64, c *caches) (*sparseExtent, error) {
	if h.Capacity == 0 {
		return nil, sparseErr(path, 0, "sparse extent has capacity 0")
	}
	if size > int64(h.Capacity)*SectorSize {
		return nil, sparseErr(path, 0, "descriptor declares %d bytes but the sparse header holds only %d", size, int64(h.Capacity)*SectorSize)
	}
	e := &sparseExtent{
		path:       path,
		r:          r,
		fileSize:   fileSize,
		size:       size,
		compressed: h.Compressed(),
		markers:    h.Flags&FlagHasMarkers != 0,
		zeroGrain:  h.Flags&FlagZeroedGrain != 0,
		layout:     LayoutHostedSparse,
		c:          c,
		id:         c.newID(),
	}
	if !e.compressed && e.markers {
		return nil, errf(ErrUnsupported, path, 0, "grain markers without compression")
	}
	if h.GDOffset == GDAtEnd {
		foot, ferr := readFooter(r, fileSize)
		if ferr == nil {
			ferr = footerMatches(&h, &foot, fileSize)
		}
		if ferr != nil {
			walked, werr := walkStream(r, fileSize, &h)
			if werr != nil {
				return nil, sparseErr(path, -1, "streamOptimized footer unusable (%v) and marker walk failed: %v", ferr, werr)
			}
			e.setGeometry(&h)
			e.walked = walked
			e.layout = LayoutStreamWalked
			return e, nil
		}
		h = foot
		e.layout = LayoutStreamVMware
	} else if e.compressed {
		e.layout = LayoutStreamQemu
	}
	e.setGeometry(&h)
	var rgdOff uint64
	if h.Flags&FlagRedundantGD != 0 && h.RGDOffset != 0 {
		rgdOff = h.RGDOffset
	}
	if err := e.loadGD(h.GDOffset, rgdOff, h.GDEntries()); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *sparseExtent) setGeometry(h *SparseHeader) {
	e.grainBytes = h.GrainBytes()
	e.grainShift = uint(bits.TrailingZeros64(uint64(e.grainBytes)))
	e.gtEntries = int64(h.NumGTEsPerGT)
	e.overHead = int64(h.OverHead) * SectorSize
}

// newCOWDExtent opens an ESX vmfsSparse extent whose header passed Validate.
func newCOWDExtent(path string, r io.ReaderAt, fileSize int64, h COWDHeader, size int64, c *caches) (*sparseExtent, error) {
	if size > int64(h.NumSectors)*SectorSize {
		return nil, sparseErr(path, 0, "descriptor declares %d bytes but the COWD header holds only %d", size, int64(h.NumSectors)*SectorSize)
	}
	e := &sparseExtent{
		path:       path,
		r:          r,
		fileSize:   fileSize,
		size:       size,
		grainBytes: int64(h.GrainSize) * SectorSize,
		gtEntries:  COWDGTEsPerGT,
		layout:     LayoutCOWD,
		c:          c,
		id:         c.newID(),
	}
	e.grainShift = uint(bits.TrailingZeros64(uint64(e.grainBytes)))
	need := (int64(h.NumSectors)*SectorSize + e.grainBytes*COWDGTEsPerGT - 1) / (e.grainBytes * COWDGTEsPerGT)
	if err := e.loadGD(uint64(h.GDOffset), 0, need); err != nil {
		return nil, err
	}
	return e, nil
}

// loadGD reads the grain directory and, if present, the redundant one. The
// primary is damaged if it cannot be read, if an entry names a grain table
// that does not lie inside the file, or if an entry is 0 (no table) where
// the redundant directory has one; the redundant directory then replaces
// it, provided it is itself undamaged.
func (e *sparseExtent) loadGD(gdOff, rgdOff uint64, entries int64) error {
	gd, perr := e.readGD(gdOff, entries)
	if rgdOff == 0 {
		if perr != nil {
			return perr
		}
		e.gd = gd
		return nil
	}
	rgd, rerr := e.readGD(rgdOff, entries)
	if perr == nil && rerr == nil {
		for i := range gd {
			if gd[i] == 0 && rgd[i] != 0 {
				perr = sparseErr(e.path, int64(gdOff)*SectorSize+int64(i)*4, "grain directory entry %d is empty but the redundant directory has table %d", i, rgd[i])
				break
			}
		}
	}
	switch {
	case perr == nil:
		e.gd, e.rgd = gd, rgd
		if rerr != nil {
			e.rgd = nil
		}
	case rerr == nil:
		e.gd, e.usedRGD = rgd, true
	default:
		return sparseErr(e.path, -1, "grain directory damaged (%v) and redundant grain directory damaged (%v)", errMsg(perr), errMsg(rerr))
	}
	return nil
}

// errMsg strips the path from an *Error for nesting in another message.
func errMsg(err error) string {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Path = ""
		return c.Error()[2:]
	}
	return err.Error()
}

func (e *sparseExtent) readGD(sector uint64, entries int64) ([]uint32, error) {
	off := int64(sector) * SectorSize
	if sector == 0 || off < 0 || entries*4 > e.fileSize || off > e.fileSize-entries*4 {
		return nil, sparseErr(e.path, -1, "grain directory at sector %d (%d entries) lies outside the file", sector, entries)
	}
	// Read through a small buffer: the directory may be large, and its
	// size is bounded only by the file's.
	gd := make([]uint32, entries)
	var buf [16 * 1024]byte
	for i := int64(0); i < entries; {
		n := min(entries-i, int64(len(buf))/4)
		if _, err := e.r.ReadAt(buf[:n*4], off+i*4); err != nil {
			return nil, wrapErr(ErrIO, e.path, off+i*4, err, "reading grain directory")
		}
		DecodeGT(gd[i:i+n], buf[:n*4])
		i += n
	}
	tableBytes := e.gtEntries * 4
	for i, s := range gd {
		if s == 0 {
			continue
		}
		if t := int64(s) * SectorSize; t > e.fileSize-tableBytes {
			return nil, sparseErr(e.path, off+int64(i)*4, "grain directory entry %d points to sector %d, past the end of the file (%d bytes)", i, s, e.fileSize)
		}
	}
	return gd, nil
}

// table returns grain table t, or nil if the table is absent (all of its
// grains unallocated).
func (e *sparseExtent) table(t int64) ([]uint32, error) {
	key := uint64(e.id)<<32 | uint64(t)
	if gt, ok := e.c.gt.get(key); ok {
		return gt, nil
	}
	var gt []uint32
	if e.walked != nil {
		gt = e.walkedTable(t)
	} else {
		if t >= int64(len(e.gd)) || e.gd[t] == 0 {
			return nil, nil
		}
		var err error
		gt, err = e.readGT(e.gd[t])
		if err != nil {
			return nil, err
		}
		if e.badEntry(gt) >= 0 && e.rgd != nil && t < int64(len(e.rgd)) && e.rgd[t] != 0 {
			if alt, aerr := e.readGT(e.rgd[t]); aerr == nil && e.badEntry(alt) < 0 {
				gt = alt
			}
		}
	}
	if gt == nil {
		return nil, nil
	}
	return e.c.gt.add(key, gt, int64(len(gt))*4+64), nil
}

func (e *sparseExtent) readGT(sector uint32) ([]uint32, error) {
	off := int64(sector) * SectorSize
	buf := make([]byte, e.gtEntries*4)
	if _, err := e.r.ReadAt(buf, off); err != nil {
		return nil, wrapErr(ErrIO, e.path, off, err, "reading grain table")
	}
	gt := make([]uint32, e.gtEntries)
	DecodeGT(gt, buf)
	return gt, nil
}

func (e *sparseExtent) walkedTable(t int64) []uint32 {
	first := uint64(t * e.gtEntries)
	i, _ := binarySearchGrain(e.walked, first)
	if i == len(e.walked) || e.walked[i].grain >= first+uint64(e.gtEntries) {
		return nil
	}
	gt := make([]uint32, e.gtEntries)
	for ; i < len(e.walked) && e.walked[i].grain < first+uint64(e.gtEntries); i++ {
		gt[e.walked[i].grain-first] = e.walked[i].sector
	}
	return gt
}

func binarySearchGrain(w []walkedGrain, g uint64) (int, bool) {
	lo, hi := 0, len(w)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if w[m].grain < g {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(w) && w[lo].grain == g
}

// badEntry returns the index of the first entry of gt that cannot be a
// grain of this file, or -1.
func (e *sparseExtent) badEntry(gt []uint32) int {
	for i, s := range gt {
		if s == GTEUnallocated || s == GTEZeroed && e.zeroGrain {
			continue
		}
		if off := int64(s) * SectorSize; off < e.overHead || off >= e.fileSize {
			return i
		}
	}
	return -1
}

// readAt fills p from extent-relative offset rel; rel+len(p) <= e.size.
func (e *sparseExtent) readAt(p []byte, rel int64) error {
	for len(p) > 0 {
		g := rel >> e.grainShift
		t, ti := g/e.gtEntries, g%e.gtEntries
		gt, err := e.table(t)
		if err != nil {
			return err
		}
		for len(p) > 0 && ti < e.gtEntries {
			var ent uint32
			if gt != nil {
				ent = gt[ti]
			}
			in := rel & (e.grainBytes - 1)
			n := e.grainBytes - in
			j := ti + 1
			// Coalesce a run of grains that need the same action.
			for n < int64(len(p)) && j < e.gtEntries && e.continues(gt, ent, j-ti, j) {
				n += e.grainBytes
				j++
			}
			n = min(n, int64(len(p)))
			if err := e.readRun(p[:n], rel, ent, ti+t*e.gtEntries, in); err != nil {
				return err
			}
			p, rel, ti = p[n:], rel+n, j
		}
	}
	return nil
}

// continues reports whether grain j of gt extends a run that began k
// grains earlier with entry first.
func (e *sparseExtent) continues(gt []uint32, first uint32, k, j int64) bool {
	var ent uint32
	if gt != nil {
		ent = gt[j]
	}
	switch {
	case first == GTEUnallocated || first == GTEZeroed && e.zeroGrain:
		return ent == first
	case e.compressed:
		return false
	default:
		return int64(ent) == int64(first)+k*(e.grainBytes/SectorSize)
	}
}

func (e *sparseExtent) readRun(p []byte, rel int64, ent uint32, grain, in int64) error {
	switch {
	case ent == GTEUnallocated:
		if e.parent == nil {
			clear(p)
			return nil
		}
		return e.parent.readZeroPad(p, e.base+rel)
	case ent == GTEZeroed && e.zeroGrain:
		clear(p)
		return nil
	}
	off := int64(ent) * SectorSize
	if off < e.overHead {
		return sparseErr(e.path, -1, "grain table entry for virtual byte %d points to sector %d, inside the metadata (grains start at byte %d)", e.base+rel, ent, e.overHead)
	}
	if e.compressed {
		return e.readCompressed(p, off, grain, in)
	}
	if off+in+int64(len(p)) > e.fileSize {
		return sparseErr(e.path, off+in, "grain for virtual byte %d lies past the end of the file (%d bytes)", e.base+rel, e.fileSize)
	}
	n, err := e.r.ReadAt(p, off+in)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return wrapErr(ErrIO, e.path, off+in+int64(n), err, "reading grain")
	}
	return nil
}

func (e *sparseExtent) readCompressed(p []byte, off, grain, in int64) error {
	if in == 0 && int64(len(p)) == e.grainBytes {
		return e.inflate(p, off, grain)
	}
	key := uint64(e.id)<<40 | uint64(grain)
	if grainCopy(e.c.grain, key, p, in) {
		return nil
	}
	buf := grainBuffer(e.c.grain, key, e.grainBytes)
	if err := e.inflate(buf, off, grain); err != nil {
		return err
	}
	grainInsert(e.c.grain, key, buf, p, in)
	return nil
}

// inflate decompresses the grain at file offset off into dst, which is
// grainBytes long. Output beyond grainBytes is an error, so a hostile
// grain cannot make us allocate or write more.
func (e *sparseExtent) inflate(dst []byte, off, grain int64) error {
	st, _ := e.pool.Get().(*inflater)
	if st == nil {
		st = &inflater{cbuf: make([]byte, GrainMarkerSize+maxCompressedFactor*e.grainBytes)}
	}
	defer e.pool.Put(st)
	var clen int64
	data := off
	if e.markers {
		if off > e.fileSize-GrainMarkerSize {
			return sparseErr(e.path, off, "grain marker for grain %d lies past the end of the file (%d bytes)", grain, e.fileSize)
		}
		if _, err := e.r.ReadAt(st.cbuf[:GrainMarkerSize], off); err != nil {
			return wrapErr(ErrIO, e.path, off, err, "reading grain marker")
		}
		m := DecodeMarker(st.cbuf[:GrainMarkerSize])
		if m.Size == 0 {
			return sparseErr(e.path, off, "grain table points to a metadata marker, not grain %d", grain)
		}
		if want := uint64(grain) * uint64(e.grainBytes/SectorSize); m.Val != want {
			return sparseErr(e.path, off, "grain marker says LBA %d, grain table says %d", m.Val, want)
		}
		clen = int64(m.Size)
		if clen > maxCompressedFactor*e.grainBytes {
			return sparseErr(e.path, off, "compressed grain of %d bytes exceeds the %d-byte limit", clen, maxCompressedFactor*e.grainBytes)
		}
		data += GrainMarkerSize
		if data+clen > e.fileSize {
			return sparseErr(e.path, off, "compressed grain of %d bytes runs past the end of the file (%d bytes)", clen, e.fileSize)
		}
	} else {
		if off >= e.fileSize {
			return sparseErr(e.path, off, "compressed grain %d lies past the end of the file (%d bytes)", grain, e.fileSize)
		}
		clen = min(maxCompressedFactor*e.grainBytes, e.fileSize-off)
	}
	cb := st.cbuf[:clen]
	if n, err := e.r.ReadAt(cb, data); n < len(cb) {
		return wrapErr(ErrIO, e.path, data+int64(n), err, "reading compressed grain")
	}
	st.br.Reset(cb)
	var zr io.Reader
	var err error
	if isZlibHeader(cb) {
		if st.zr == nil {
			st.zr, err = zlib.NewReader(&st.br)
		} else {
			err = st.zr.(zlib.Resetter).Reset(&st.br, nil)
		}
		zr = st.zr
	} else {
		// Raw RFC 1951 deflate, as some writers emit.
		if st.fr == nil {
			st.fr = flate.NewReader(&st.br)
		} else {
			err = st.fr.(flate.Resetter).Reset(&st.br, nil)
		}
		zr = st.fr
	}
	if err != nil {
		return wrapErr(ErrCorrupt, e.path, data, err, "grain %d: bad deflate stream", grain)
	}
	n, err := io.ReadFull(zr, dst)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		// Only the grain that straddles the end of the extent may be short.
		if end := (grain + 1) * e.grainBytes; end <= e.size || int64(n) < e.size-grain*e.grainBytes {
			return sparseErr(e.path, data, "grain %d inflates to %d bytes, want %d", grain, n, e.grainBytes)
		}
		clear(dst[n:])
		return nil
	case err != nil:
		return wrapErr(ErrCorrupt, e.path, data, err, "grain %d: bad deflate stream", grain)
	}
	// The stream must end here; reading on also verifies the checksum.
	if m, err := io.ReadFull(zr, st.one[:]); m > 0 {
		return sparseErr(e.path, data, "grain %d inflates to more than the grain size (%d bytes)", grain, e.grainBytes)
	} else if err != io.EOF {
		return wrapErr(ErrCorrupt, e.path, data, err, "grain %d: bad deflate stream", grain)
	}
	return nil
}

func isZlibHeader(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// readFooter reads the footer of a VMWare-layout streamOptimized file: a
// footer marker, a copy of the header and an end-of-stream marker, in the
// last three sectors.
func readFooter(r io.ReaderAt, fileSize int64) (SparseHeader, error) {
	var b [FooterSize]byte
	if fileSize < FooterSize+SectorSize {
		return SparseHeader{}, errors.New("file too short for a footer")
	}
	if _, err := r.ReadAt(b[:], fileSize-FooterSize); err != nil {
		return SparseHeader{}, fmt.Errorf("reading footer: %w", err)
	}
	fm, eos := DecodeMarker(b[:]), DecodeMarker(b[2*SectorSize:])
	if fm.Size != 0 || fm.Type != MarkerFooter {
		return SparseHeader{}, errors.New("no footer marker at end of file minus 1536")
	}
	if eos.Val != 0 || eos.Size != 0 || eos.Type != MarkerEOS {
		return SparseHeader{}, errors.New("no end-of-stream marker at end of file minus 512")
	}
	return DecodeSparseHeader(b[SectorSize : 2*SectorSize])
}

func footerMatches(h, f *SparseHeader, fileSize int64) error {
	if f.GDOffset == GDAtEnd {
		return errors.New("footer has no grain directory offset")
	}
	if f.Capacity != h.Capacity || f.GrainSize != h.GrainSize || f.NumGTEsPerGT != h.NumGTEsPerGT || f.CompressAlgorithm != h.CompressAlgorithm {
		return errors.New("footer geometry differs from the header")
	}
	return f.Validate(fileSize)
}
