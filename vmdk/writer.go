package vmdk

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Subformats Write produces, named as qemu-img's subformat option and the
// descriptor's createType name them.
const (
	MonolithicSparse     = "monolithicSparse"
	MonolithicFlat       = "monolithicFlat"
	TwoGbMaxExtentSparse = "twoGbMaxExtentSparse"
	TwoGbMaxExtentFlat   = "twoGbMaxExtentFlat"
	StreamOptimized      = "streamOptimized"
)

// Subformats lists the subformats Write accepts.
var Subformats = []string{MonolithicSparse, MonolithicFlat, TwoGbMaxExtentSparse, TwoGbMaxExtentFlat, StreamOptimized}

// Geometry of the sparse extents Write produces: VMware's and qemu's
// defaults, 64 KiB grains and 512-entry grain tables.
const (
	writeGrainSectors = 128
	writeGrainBytes   = writeGrainSectors * SectorSize
	writeGTEs         = 512
	gtSectors         = writeGTEs * 4 / SectorSize
	embeddedDescSize  = 20 // sectors reserved for an embedded descriptor, as VMware and qemu do
)

// SplitExtentSectors is the size of each extent file of the twoGbMaxExtent
// subformats but the last: VMware's 2047 MiB, which keeps every file, sparse
// metadata included, below 2 GiB.
const SplitExtentSectors = 4192256

// MaxWriteSize is the largest virtual size Write accepts.
const MaxWriteSize = MaxCapacity * SectorSize

// DefaultCompressionLevel is the zlib level of streamOptimized grains when
// WriteOptions.CompressionLevel is 0.
const DefaultCompressionLevel = zlib.BestSpeed

// WriteOptions control Write. The zero value writes a monolithicSparse disk
// with an IDE adapter and a random CID.
type WriteOptions struct {
	// Subformat is one of the Subformats; "" means MonolithicSparse.
	Subformat string
	// AdapterType is recorded in the descriptor: ide (default), buslogic,
	// lsilogic or legacyESX.
	AdapterType string
	// CID is the content ID written to the descriptor; 0 picks a random
	// one. With a fixed CID the output is a function of the input alone.
	CID uint32
	// CompressionLevel is the zlib level of streamOptimized grains (1-9);
	// 0 means DefaultCompressionLevel.
	CompressionLevel int
	// Workers is the number of goroutines reading and compressing grains;
	// 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called from one goroutine at a time with the
	// number of bytes of the disk written so far, ending with the full size.
	Progress func(done int64)
}

// OutputFiles returns the paths Write creates for dst: the descriptor (or
// the monolithic file) first, then any extent files, named as qemu-img
// names them (dst "disk.vmdk" gets "disk-f001.vmdk", "disk-s001.vmdk" or
// "disk-flat.vmdk").
func OutputFiles(dst string, size int64, subformat string) ([]string, error) {
	if subformat == "" {
		subformat = MonolithicSparse
	}
	exts, err := planExtents(dst, size, subformat)
	if err != nil {
		return nil, err
	}
	files := []string{dst}
	for _, e := range exts {
		if e.path != dst {
			files = append(files, e.path)
		}
	}
	return files, nil
}

// Write writes the first size bytes of src to dst as a VMDK of the chosen
// subformat, rounded up to a whole sector with zeros. Grains that read as
// all zeros are not stored, and flat extents are written as sparse files.
// If src implements DataRanger (a *Disk does), its holes are skipped
// without being read. Every file is written under a temporary name in the
// destination directory and renamed into place only when all are complete,
// extent files before the descriptor; on error no output is left behind.
// Existing files of the same names are replaced.
//
// streamOptimized output has VMware's layout: the header's gdOffset is
// GDAtEnd, each grain is a zlib stream behind a grain marker, grain tables
// follow the grains they map behind GT markers (tables with no grain are
// not written), then the grain directory behind a GD marker, the footer
// marker, the footer holding the real gdOffset, and the end-of-stream marker.
func Write(dst string, src io.ReaderAt, size int64, opts WriteOptions) error {
	if opts.Subformat == "" {
		opts.Subformat = MonolithicSparse
	}
	if size <= 0 || size > MaxWriteSize {
		return fmt.Errorf("%s: cannot write a VMDK of %d bytes (want 1 to %d)", dst, size, int64(MaxWriteSize))
	}
	adapter, heads, err := adapterGeometry(opts.AdapterType)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	level := opts.CompressionLevel
	if level == 0 {
		level = DefaultCompressionLevel
	}
	if level < zlib.BestSpeed || level > zlib.BestCompression {
		return fmt.Errorf("%s: compression level %d, want 1 to 9", dst, level)
	}
	exts, err := planExtents(dst, size, opts.Subformat)
	if err != nil {
		return err
	}
	cid := opts.CID
	for cid == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("%s: choosing a CID: %w", dst, err)
		}
		cid = binary.LittleEndian.Uint32(b[:])
	}
	vsize := roundUp(size, SectorSize)
	desc := &Descriptor{
		Version:    1,
		CID:        cid,
		ParentCID:  NoParentCID,
		CreateType: opts.Subformat,
		Other:      map[string]string{"encoding": "UTF-8"},
		DDB: map[string]string{
			"adapterType":        adapter,
			"geometry.heads":     fmt.Sprint(heads),
			"geometry.sectors":   "63",
			"geometry.cylinders": fmt.Sprint(cylinders(vsize, heads, adapter)),
			"virtualHWVersion":   "4",
		},
	}
	for _, e := range exts {
		typ := ExtentSparse
		if e.flat {
			typ = ExtentFlat
		}
		desc.Extents = append(desc.Extents, ExtentLine{Access: AccessRW, Sectors: e.size / SectorSize, Type: typ, File: filepath.Base(e.path)})
	}
	// Catch what would make the final renames fail before doing the work.
	for _, e := range append([]*extentPlan{{path: dst}}, exts...) {
		if fi, err := os.Stat(e.path); err == nil && fi.IsDir() {
			return fmt.Errorf("%s: is a directory", e.path)
		}
	}
	w := &writer{dst: dst, src: src, size: size, vsize: vsize, exts: exts, level: level, opts: opts}
	if err := w.run(desc); err != nil {
		w.abort()
		return err
	}
	return nil
}

// extentPlan is one output extent.
type extentPlan struct {
	path  string
	start int64 // virtual offset
	size  int64 // bytes, a whole number of sectors
	flat  bool
	f     *os.File // the temporary file, once created
	sink  extentSink
}

func planExtents(dst string, size int64, subformat string) ([]*extentPlan, error) {
	if size <= 0 || size > MaxWriteSize {
		return nil, fmt.Errorf("%s: cannot write a VMDK of %d bytes (want 1 to %d)", dst, size, int64(MaxWriteSize))
	}
	vsize := roundUp(size, SectorSize)
	prefix, suffix := dst, ""
	if strings.HasSuffix(dst, ".vmdk") {
		prefix, suffix = strings.TrimSuffix(dst, ".vmdk"), ".vmdk"
	}
	split := func(letter byte, flat bool) []*extentPlan {
		var out []*extentPlan
		for i, off := 1, int64(0); off < vsize; i++ {
			n := min(vsize-off, SplitExtentSectors*SectorSize)
			out = append(out, &extentPlan{path: fmt.Sprintf("%s-%c%03d%s", prefix, letter, i, suffix), start: off, size: n, flat: flat})
			off += n
		}
		return out
	}
	switch subformat {
	case MonolithicSparse, StreamOptimized:
		return []*extentPlan{{path: dst, size: vsize}}, nil
	case MonolithicFlat:
		return []*extentPlan{{path: prefix + "-flat" + suffix, size: vsize, flat: true}}, nil
	case TwoGbMaxExtentSparse:
		if n := (vsize + SplitExtentSectors*SectorSize - 1) / (SplitExtentSectors * SectorSize); n > 999 {
			return nil, fmt.Errorf("%s: %d extent files needed, more than the 999 the naming allows", dst, n)
		}
		return split('s', false), nil
	case TwoGbMaxExtentFlat:
		if n := (vsize + SplitExtentSectors*SectorSize - 1) / (SplitExtentSectors * SectorSize); n > 999 {
			return nil, fmt.Errorf("%s: %d extent files needed, more than the 999 the naming allows", dst, n)
		}
		return split('f', true), nil
	}
	return nil, fmt.Errorf("%s: unknown VMDK subformat %q (want one of %s)", dst, subformat, strings.Join(Subformats, ", "))
}

func adapterGeometry(a string) (string, int, error) {
	switch a {
	case "", "ide":
		return "ide", 16, nil
	case "buslogic", "lsilogic", "legacyESX":
		return a, 255, nil
	}
	return "", 0, fmt.Errorf("unknown adapter type %q (want ide, buslogic, lsilogic or legacyESX)", a)
}

func cylinders(vsize int64, heads int, adapter string) int64 {
	c := vsize / SectorSize / int64(heads*63)
	if adapter == "ide" {
		c = min(c, 16383)
	}
	return max(c, 1)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// writer carries one Write.
type writer struct {
	dst   string
	src   io.ReaderAt
	size  int64
	vsize int64
	exts  []*extentPlan
	level int
	opts  WriteOptions
	desc  *os.File // separate descriptor file, if any
	temps []*os.File
}

// extentSink receives the non-zero grains of one extent, in ascending
// order, and writes its metadata at the end.
type extentSink interface {
	grain(g int64, payload []byte) error // g: grain index within the extent
	finish() error
}

func (w *writer) create(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	w.temps = append(w.temps, f)
	// CreateTemp makes the file private; a disk image is not.
	return f, f.Chmod(0o644)
}

// abort removes every temporary file.
func (w *writer) abort() {
	for _, f := range w.temps {
		f.Close()
		os.Remove(f.Name())
	}
}

func (w *writer) run(desc *Descriptor) error {
	text := desc.Encode()
	monolithic := len(w.exts) == 1 && w.exts[0].path == w.dst
	stream := desc.CreateType == StreamOptimized
	for _, e := range w.exts {
		f, err := w.create(e.path)
		if err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		e.f = f
		var embedded []byte
		if monolithic {
			embedded = text
		}
		switch {
		case e.flat:
			e.sink = &flatSink{e: e}
		case stream:
			e.sink, err = newStreamSink(e, embedded)
		default:
			e.sink, err = newSparseSink(e, embedded)
		}
		if err != nil {
			return err
		}
	}
	if !monolithic {
		f, err := w.create(w.dst)
		if err != nil {
			return fmt.Errorf("%s: %w", w.dst, err)
		}
		if _, err := f.Write(text); err != nil {
			return fmt.Errorf("%s: %w", w.dst, err)
		}
		w.desc = f
	}
	if err := w.pump(stream); err != nil {
		return err
	}
	for _, e := range w.exts {
		if err := e.sink.finish(); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	// Close everything before renaming anything, so a failed close leaves
	// no output.
	for _, f := range w.temps {
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	// Extents first: the descriptor only appears once they are all there.
	// A failure halfway removes what was renamed (an old file it replaced
	// is lost, as the new one was incomplete without the rest).
	var renamed []string
	for _, e := range w.exts {
		if e.path == w.dst {
			continue
		}
		if err := os.Rename(e.f.Name(), e.path); err != nil {
			for _, p := range renamed {
				os.Remove(p)
			}
			return fmt.Errorf("%s: %w", e.path, err)
		}
		renamed = append(renamed, e.path)
	}
	top := w.desc
	if monolithic {
		top = w.exts[0].f
	}
	if err := os.Rename(top.Name(), w.dst); err != nil {
		for _, p := range renamed {
			os.Remove(p)
		}
		return fmt.Errorf("%s: %w", w.dst, err)
	}
	return nil
}

// Work is split into chunks of chunkGrains grains, read and encoded by the
// workers and written in order by the caller's goroutine.
const (
	chunkGrains = 16
	chunkBytes  = chunkGrains * writeGrainBytes
	rangeWindow = 256 << 20 // bytes of the source asked about at once
)

// Split extents are a whole number of chunks, so no chunk spans two
// extents (this fails to compile otherwise).
var _ = [1]int{}[SplitExtentSectors*SectorSize%chunkBytes]

// piece is a run of the disk: a chunk of grains, or a hole.
type piece struct {
	off, n  int64
	hole    bool
	raw     []byte
	payload [chunkGrains][]byte // nil: zero grain
	enc     []byte              // compressed payloads
	reads   []Range             // parts of the chunk to read; the rest is a hole
	err     error
	done    chan struct{}
}

var zeroGrain [writeGrainBytes]byte

// pump reads the source through the workers and feeds the sinks.
func (w *writer) pump(compress bool) error {
	workers := w.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan *piece, workers)
	order := make(chan *piece, 2*workers+2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	pool := sync.Pool{New: func() any { return &piece{raw: make([]byte, chunkBytes)} }}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var zw *zlib.Writer
			for p := range jobs {
				if compress && zw == nil {
					zw, _ = zlib.NewWriterLevel(io.Discard, w.level) // level checked by Write
				}
				p.err = w.fill(p)
				if p.err == nil {
					w.encode(p, zw)
				}
				close(p.done)
			}
		}()
	}
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		perr = w.produce(func(p *piece) bool {
			if p.done == nil {
				// A hole: complete already.
				p.done = make(chan struct{})
				close(p.done)
			} else {
				select {
				case jobs <- p:
				case <-stop:
					return false
				}
			}
			select {
			case order <- p:
				return true
			case <-stop:
				return false
			}
		}, &pool)
	}()
	err := w.consume(order, &pool)
	close(stop)
	for range order {
	}
	wg.Wait()
	if err == nil {
		err = perr
	}
	return err
}

// produce emits the disk as pieces in order: chunks that may hold data,
// and holes the source reports between them.
func (w *writer) produce(emit func(*piece) bool, pool *sync.Pool) error {
	ranger, _ := w.src.(DataRanger)
	for win := int64(0); win < w.vsize; win += rangeWindow {
		winEnd := min(win+rangeWindow, w.vsize)
		var ranges []Range
		if ranger != nil && win < w.size {
			var err error
			ranges, err = ranger.DataRanges(win, min(winEnd, w.size)-win)
			if err != nil {
				return fmt.Errorf("%s: asking the source where its data is: %w", w.dst, err)
			}
		} else if win < w.size {
			ranges = []Range{{win, min(winEnd, w.size) - win}}
		}
		off := win
		for off < winEnd {
			// Skip to the chunk holding the next data range.
			for len(ranges) > 0 && ranges[0].End() <= off {
				ranges = ranges[1:]
			}
			next := winEnd
			if len(ranges) > 0 {
				next = max(off, ranges[0].Off&^(chunkBytes-1))
			}
			if next > off {
				if !emit(&piece{off: off, n: next - off, hole: true}) {
					return nil
				}
				off = next
				continue
			}
			p := pool.Get().(*piece)
			*p = piece{raw: p.raw, enc: p.enc, reads: p.reads[:0], off: off, n: min(chunkBytes, winEnd-off), done: make(chan struct{})}
			for _, r := range ranges {
				if r.Off >= off+p.n {
					break
				}
				lo, hi := max(r.Off, off), min(r.End(), off+p.n)
				p.reads = append(p.reads, Range{lo, hi - lo})
			}
			if !emit(p) {
				return nil
			}
			off += p.n
		}
	}
	return nil
}

// fill reads the parts of p that may hold data and zeros the rest.
func (w *writer) fill(p *piece) error {
	p.raw = p.raw[:p.n]
	clear(p.raw)
	for _, r := range p.reads {
		if err := w.read(p.raw[r.Off-p.off:r.End()-p.off], r.Off); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) read(b []byte, off int64) error {
	if off >= w.size {
		return nil
	}
	b = b[:min(int64(len(b)), w.size-off)]
	n, err := w.src.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: reading the source at byte %d: %w", w.dst, off+int64(n), err)
}

// encode finds the zero grains of p and, with zw, compresses the others
// behind grain markers.
func (w *writer) encode(p *piece, zw *zlib.Writer) {
	p.enc = p.enc[:0]
	var ends [chunkGrains]int
	for i := 0; int64(i)*writeGrainBytes < p.n; i++ {
		g := p.raw[i*writeGrainBytes : min(int64(i+1)*writeGrainBytes, p.n)]
		if bytes.Equal(g, zeroGrain[:len(g)]) {
			continue
		}
		if zw == nil {
			p.payload[i] = g
			continue
		}
		start := len(p.enc)
		p.enc = append(p.enc, zeroGrain[:GrainMarkerSize]...)
		buf := bytes.NewBuffer(p.enc)
		zw.Reset(buf)
		zw.Write(g) // a bytes.Buffer does not fail
		if len(g) < writeGrainBytes {
			zw.Write(zeroGrain[:writeGrainBytes-len(g)])
		}
		zw.Close()
		p.enc = buf.Bytes()
		clen := len(p.enc) - start - GrainMarkerSize
		Marker{Val: uint64(p.off/SectorSize) + uint64(i*writeGrainSectors), Size: uint32(clen)}.Encode(p.enc[start:])
		p.enc = append(p.enc, zeroGrain[:int(roundUp(int64(len(p.enc)-start), SectorSize))-(len(p.enc)-start)]...)
		ends[i] = len(p.enc)
		p.payload[i] = p.enc[start:] // resliced below: enc may have moved
	}
	if zw != nil {
		start := 0
		for i := range p.payload {
			if p.payload[i] != nil {
				p.payload[i] = p.enc[start:ends[i]]
				start = ends[i]
			}
		}
	}
}

// consume writes pieces in order to the extents.
func (w *writer) consume(order <-chan *piece, pool *sync.Pool) error {
	var done int64
	ei := 0
	for p := range order {
		<-p.done
		if p.err != nil {
			return p.err
		}
		for i := 0; !p.hole && i < chunkGrains; i++ {
			if p.payload[i] == nil {
				continue
			}
			off := p.off + int64(i)*writeGrainBytes
			for off >= w.exts[ei].start+w.exts[ei].size {
				ei++
			}
			e := w.exts[ei]
			pl := p.payload[i]
			if e.flat {
				// One write for a run of data grains (extent boundaries
				// are chunk boundaries, so a run stays in one extent).
				j := i + 1
				for j < chunkGrains && p.payload[j] != nil {
					j++
				}
				pl = p.raw[i*writeGrainBytes : min(int64(j)*writeGrainBytes, p.n)]
				i = j - 1
			}
			if err := e.sink.grain((off-e.start)/writeGrainBytes, pl); err != nil {
				return fmt.Errorf("%s: %w", e.path, err)
			}
		}
		done = min(p.off+p.n, w.vsize)
		if !p.hole {
			pool.Put(p) // its grains are written: reuse its buffers
		}
		if w.opts.Progress != nil {
			w.opts.Progress(done)
		}
	}
	return nil
}

// offWriter writes sequentially from off through WriteAt, so that other
// parts of the file can be written with WriteAt meanwhile.
type offWriter struct {
	f   *os.File
	off int64
}

func (o *offWriter) Write(b []byte) (int, error) {
	n, err := o.f.WriteAt(b, o.off)
	o.off += int64(n)
	return n, err
}

// flatSink writes runs of non-zero grains in place; the rest stays a hole.
type flatSink struct{ e *extentPlan }

func (s *flatSink) grain(g int64, payload []byte) error {
	off := g * writeGrainBytes
	_, err := s.e.f.WriteAt(payload[:min(int64(len(payload)), s.e.size-off)], off)
	return err
}

func (s *flatSink) finish() error { return s.e.f.Truncate(s.e.size) }

// sparseGeometry is the table arithmetic of a sparse extent of size bytes.
type sparseGeometry struct {
	capacity  uint64 // sectors
	gtCount   int64
	gdSectors int64
}

func geometryOf(size int64) sparseGeometry {
	capacity := uint64(size / SectorSize)
	grains := int64((capacity + writeGrainSectors - 1) / writeGrainSectors)
	gts := (grains + writeGTEs - 1) / writeGTEs
	return sparseGeometry{capacity: capacity, gtCount: gts, gdSectors: (gts*4 + SectorSize - 1) / SectorSize}
}

// sectorOf checks that a grain or table at byte off can be addressed by a
// 32-bit table entry.
func sectorOf(off int64) (uint32, error) {
	if off/SectorSize > math.MaxUint32 {
		return 0, errors.New("sparse extent grows past the 2 TiB its 32-bit grain tables can address; use a flat or split subformat")
	}
	return uint32(off / SectorSize), nil
}

// sparseSink writes a hosted sparse extent in qemu's and VMware's layout:
// header, embedded descriptor, redundant grain directory and tables,
// grain directory and tables (all tables preallocated), then grains in
// disk order. Tables without grains stay holes of the file.
type sparseSink struct {
	e        *extentPlan
	g        sparseGeometry
	h        SparseHeader
	desc     []byte
	rgtStart int64 // sector of the first redundant grain table
	gtStart  int64
	out      *bufio.Writer
	ow       *offWriter
	cur      int64 // table being filled, -1 if none
	gt       []byte
	gtUsed   bool
}

func newSparseSink(e *extentPlan, desc []byte) (*sparseSink, error) {
	g := geometryOf(e.size)
	s := &sparseSink{e: e, g: g, desc: desc, cur: -1, gt: make([]byte, writeGTEs*4)}
	h := SparseHeader{
		Version:      1,
		Flags:        FlagNewlineTest | FlagRedundantGD,
		Capacity:     g.capacity,
		GrainSize:    writeGrainSectors,
		NumGTEsPerGT: writeGTEs,
		Newline:      newlineBytes,
	}
	next := int64(1)
	if desc != nil {
		ds := max(embeddedDescSize, (int64(len(desc))+SectorSize-1)/SectorSize)
		h.DescriptorOffset, h.DescriptorSize = 1, uint64(ds)
		next += ds
	}
	h.RGDOffset = uint64(next)
	s.rgtStart = next + g.gdSectors
	h.GDOffset = uint64(s.rgtStart + g.gtCount*gtSectors)
	s.gtStart = int64(h.GDOffset) + g.gdSectors
	h.OverHead = uint64(roundUp(s.gtStart+g.gtCount*gtSectors, writeGrainSectors))
	s.h = h
	s.ow = &offWriter{f: e.f, off: int64(h.OverHead) * SectorSize}
	s.out = bufio.NewWriterSize(s.ow, 1<<20)
	if _, err := sectorOf(s.ow.off); err != nil {
		return nil, fmt.Errorf("%s: %w", e.path, err)
	}
	return s, nil
}

func (s *sparseSink) grain(g int64, payload []byte) error {
	if t := g / writeGTEs; t != s.cur {
		if err := s.flushGT(); err != nil {
			return err
		}
		s.cur = t
	}
	pos := s.ow.off + int64(s.out.Buffered())
	if _, err := sectorOf(pos + writeGrainBytes - 1); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s.gt[(g%writeGTEs)*4:], uint32(pos/SectorSize))
	s.gtUsed = true
	if _, err := s.out.Write(payload); err != nil {
		return err
	}
	// A short last grain is stored whole, as every reader expects.
	_, err := s.out.Write(zeroGrain[:writeGrainBytes-len(payload)])
	return err
}

// flushGT writes the current table and its redundant copy.
func (s *sparseSink) flushGT() error {
	if !s.gtUsed {
		return nil
	}
	for _, start := range []int64{s.gtStart, s.rgtStart} {
		if _, err := s.e.f.WriteAt(s.gt, (start+s.cur*gtSectors)*SectorSize); err != nil {
			return err
		}
	}
	clear(s.gt)
	s.gtUsed = false
	return nil
}

func (s *sparseSink) finish() error {
	if err := s.flushGT(); err != nil {
		return err
	}
	if err := s.out.Flush(); err != nil {
		return err
	}
	head := make([]byte, (1+s.h.DescriptorSize)*SectorSize)
	s.h.Encode(head)
	copy(head[SectorSize:], s.desc)
	if _, err := s.e.f.WriteAt(head, 0); err != nil {
		return err
	}
	// Both directories list every (preallocated) table; tables without
	// grains were never written and stay holes.
	gd := make([]byte, s.g.gdSectors*SectorSize)
	for _, d := range []struct{ gd, gts int64 }{{int64(s.h.GDOffset), s.gtStart}, {int64(s.h.RGDOffset), s.rgtStart}} {
		for i := range s.g.gtCount {
			binary.LittleEndian.PutUint32(gd[i*4:], uint32(d.gts+i*gtSectors))
		}
		if _, err := s.e.f.WriteAt(gd, d.gd*SectorSize); err != nil {
			return err
		}
	}
	return s.e.f.Truncate(s.ow.off)
}

// streamSink writes a streamOptimized extent in VMware's layout.
type streamSink struct {
	e      *extentPlan
	g      sparseGeometry
	h      SparseHeader
	desc   []byte
	ow     *offWriter
	out    *bufio.Writer
	gd     []uint32
	cur    int64
	gt     []byte
	gtUsed bool
	sector [SectorSize]byte
}

func newStreamSink(e *extentPlan, desc []byte) (*streamSink, error) {
	g := geometryOf(e.size)
	ds := (int64(len(desc)) + SectorSize - 1) / SectorSize
	h := SparseHeader{
		Version:           3,
		Flags:             FlagNewlineTest | FlagCompressed | FlagHasMarkers,
		Capacity:          g.capacity,
		GrainSize:         writeGrainSectors,
		DescriptorOffset:  1,
		DescriptorSize:    uint64(ds),
		NumGTEsPerGT:      writeGTEs,
		GDOffset:          GDAtEnd,
		OverHead:          uint64(roundUp(1+ds, writeGrainSectors)),
		Newline:           newlineBytes,
		CompressAlgorithm: CompressDeflate,
	}
	s := &streamSink{e: e, g: g, h: h, desc: desc, gd: make([]uint32, g.gtCount), cur: -1, gt: make([]byte, writeGTEs*4)}
	s.ow = &offWriter{f: e.f, off: int64(h.OverHead) * SectorSize}
	s.out = bufio.NewWriterSize(s.ow, 1<<20)
	return s, nil
}

func (s *streamSink) pos() int64 { return s.ow.off + int64(s.out.Buffered()) }

func (s *streamSink) grain(g int64, payload []byte) error {
	if t := g / writeGTEs; t != s.cur {
		if err := s.flushGT(); err != nil {
			return err
		}
		s.cur = t
	}
	if _, err := sectorOf(s.pos() + int64(len(payload))); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s.gt[(g%writeGTEs)*4:], uint32(s.pos()/SectorSize))
	s.gtUsed = true
	_, err := s.out.Write(payload)
	return err
}

// metadata writes a marker followed by b, padded to whole sectors, and
// returns the sector b starts at.
func (s *streamSink) metadata(typ uint32, b []byte) (uint32, error) {
	n := (int64(len(b)) + SectorSize - 1) / SectorSize
	Marker{Val: uint64(n), Type: typ}.Encode(s.sector[:])
	if _, err := s.out.Write(s.sector[:]); err != nil {
		return 0, err
	}
	if _, err := sectorOf(s.pos() + n*SectorSize); err != nil {
		return 0, err
	}
	sec := uint32(s.pos() / SectorSize)
	if _, err := s.out.Write(b); err != nil {
		return 0, err
	}
	_, err := s.out.Write(zeroGrain[:n*SectorSize-int64(len(b))])
	return sec, err
}

func (s *streamSink) flushGT() error {
	if !s.gtUsed {
		return nil
	}
	sec, err := s.metadata(MarkerGT, s.gt)
	if err != nil {
		return err
	}
	s.gd[s.cur] = sec
	clear(s.gt)
	s.gtUsed = false
	return nil
}

func (s *streamSink) finish() error {
	if err := s.flushGT(); err != nil {
		return err
	}
	gd := make([]byte, len(s.gd)*4)
	for i, v := range s.gd {
		binary.LittleEndian.PutUint32(gd[i*4:], v)
	}
	gdSec, err := s.metadata(MarkerGD, gd)
	if err != nil {
		return err
	}
	foot := s.h
	foot.GDOffset = uint64(gdSec)
	var hb [SectorSize]byte
	foot.Encode(hb[:])
	if _, err := s.metadata(MarkerFooter, hb[:]); err != nil {
		return err
	}
	clear(s.sector[:]) // end-of-stream marker
	if _, err := s.out.Write(s.sector[:]); err != nil {
		return err
	}
	if err := s.out.Flush(); err != nil {
		return err
	}
	head := make([]byte, int64(s.h.OverHead)*SectorSize)
	s.h.Encode(head)
	copy(head[SectorSize:], s.desc)
	_, err = s.e.f.WriteAt(head, 0)
	return err
}
