package vmdk

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// qemuCompare asserts that qemu reads the VMDK at path as the raw file.
func qemuCompare(t testing.TB, path, raw string) {
	t.Helper()
	run(t, "qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", path, raw)
}

// nonZeroGrains counts the 64 KiB grains of b holding a non-zero byte.
func nonZeroGrains(b []byte) int {
	n := 0
	for off := 0; off < len(b); off += writeGrainBytes {
		g := b[off:min(off+writeGrainBytes, len(b))]
		if !bytes.Equal(g, zeroGrain[:len(g)]) {
			n++
		}
	}
	return n
}

// allocatedGrains counts the grain table entries of a sparse extent that
// name a grain, read straight from the file.
func allocatedGrains(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeSparseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	gdOff := h.GDOffset
	if gdOff == GDAtEnd {
		f, _ := DecodeSparseHeader(b[len(b)-2*SectorSize:])
		gdOff = f.GDOffset
	}
	n := 0
	for i := range h.GDEntries() {
		gt := le32(b, int64(gdOff)*SectorSize+i*4)
		if gt == 0 {
			continue
		}
		for j := range int64(h.NumGTEsPerGT) {
			if le32(b, int64(gt)*SectorSize+j*4) > GTEZeroed {
				n++
			}
		}
	}
	return n
}

func TestWriteSubformats(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	src, err := os.Open(sd.raw)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, sf := range Subformats {
		t.Run(sf, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.vmdk")
			var last atomic.Int64
			err := Write(path, src, smallSize, WriteOptions{Subformat: sf, AdapterType: "lsilogic", Progress: func(n int64) {
				if n < last.Load() {
					t.Errorf("progress went back from %d to %d", last.Load(), n)
				}
				last.Store(n)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if last.Load() != smallSize {
				t.Errorf("last progress %d, want %d", last.Load(), smallSize)
			}
			qemuCompare(t, path, sd.raw)
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkInfo(t, d, path)
			if got := d.Info().CreateType; got != sf {
				t.Errorf("createType %q, want %q", got, sf)
			}
			if got := d.Info().DDB["adapterType"]; got != "lsilogic" {
				t.Errorf("adapterType %q", got)
			}
			mustEqual(t, "read back", readAll(t, d, MiB), sd.want)
			files, err := OutputFiles(path, smallSize, sf)
			if err != nil {
				t.Fatal(err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != len(files) {
				t.Errorf("%d files in the output directory, want %v", len(ents), files)
			}
			for _, f := range files {
				if _, err := os.Stat(f); err != nil {
					t.Error(err)
				}
			}
			switch sf {
			case MonolithicSparse, StreamOptimized, TwoGbMaxExtentSparse:
				ext := files[len(files)-1]
				if got, want := allocatedGrains(t, ext), nonZeroGrains(sd.want); got != want {
					t.Errorf("%d grains stored, want %d (the non-zero ones)", got, want)
				}
				run(t, "qemu-img", "check", "-f", "vmdk", path)
			case MonolithicFlat, TwoGbMaxExtentFlat:
				ext := files[len(files)-1]
				if want := map[string]string{MonolithicFlat: "out-flat.vmdk", TwoGbMaxExtentFlat: "out-f001.vmdk"}[sf]; filepath.Base(ext) != want {
					t.Errorf("extent file %s, want %s", ext, want)
				}
				var st syscall.Stat_t
				if err := syscall.Stat(ext, &st); err != nil {
					t.Fatal(err)
				}
				// The disk has 5 MiB of holes and written zeros.
				if alloc := st.Blocks * 512; alloc > smallSize-4*MiB {
					t.Errorf("flat extent allocates %d of %d bytes: not sparse", alloc, int64(smallSize))
				}
			}
			if sf == StreamOptimized {
				checkStreamLayout(t, path, sd.want)
			}
		})
	}
}

// checkStreamLayout walks a streamOptimized file from front to back and
// checks VMware's layout: markers in order, grains in ascending LBA, each
// grain table after its grains and mapping them, the grain directory, the
// footer with its gdOffset, and the end-of-stream marker last.
func checkStreamLayout(t *testing.T, path string, want []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeSparseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.GDOffset != GDAtEnd || h.Version != 3 || h.Flags != FlagNewlineTest|FlagCompressed|FlagHasMarkers || h.CompressAlgorithm != CompressDeflate || h.GrainSize != 128 || h.NumGTEsPerGT != 512 {
		t.Fatalf("header %+v", h)
	}
	desc, err := ParseDescriptor(b[h.DescriptorOffset*SectorSize : (h.DescriptorOffset+h.DescriptorSize)*SectorSize])
	if err != nil || desc.CreateType != StreamOptimized || len(desc.Extents) != 1 || desc.Extents[0].Sectors != int64(h.Capacity) {
		t.Fatalf("embedded descriptor %+v: %v", desc, err)
	}
	off := int64(h.OverHead) * SectorSize
	grainAt := map[uint32]uint64{} // sector -> LBA
	var lastLBA int64 = -1
	var gts []int64 // sectors of grain tables
	var gdSector int64 = -1
	footer := false
	for {
		if off+SectorSize > int64(len(b)) {
			t.Fatalf("no end-of-stream marker before byte %d", off)
		}
		m := DecodeMarker(b[off : off+16])
		if m.Size != 0 {
			if footer || gdSector >= 0 {
				t.Fatalf("grain marker at byte %d after the grain directory", off)
			}
			if int64(m.Val) <= lastLBA || m.Val%128 != 0 {
				t.Fatalf("grain marker at byte %d: LBA %d after %d", off, m.Val, lastLBA)
			}
			lastLBA = int64(m.Val)
			g := make([]byte, writeGrainBytes)
			zr, err := zlib.NewReader(bytes.NewReader(b[off+GrainMarkerSize : off+GrainMarkerSize+int64(m.Size)]))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(zr, g); err != nil {
				t.Fatal(err)
			}
			lo := int64(m.Val) * SectorSize
			wantG := make([]byte, writeGrainBytes)
			copy(wantG, want[lo:])
			mustEqual(t, "grain at LBA "+strconvI(lo/SectorSize), g, wantG)
			grainAt[uint32(off/SectorSize)] = m.Val
			off = alignSector(off + GrainMarkerSize + int64(m.Size))
			continue
		}
		data := off + SectorSize
		switch m.Type {
		case MarkerGT:
			if m.Val != 4 || gdSector >= 0 {
				t.Fatalf("GT marker at byte %d: %+v", off, m)
			}
			gts = append(gts, data/SectorSize)
			// Every entry names a grain already written, with its LBA.
			for i := range int64(512) {
				s := le32(b, data+i*4)
				if s == 0 {
					continue
				}
				if _, ok := grainAt[s]; !ok || s >= uint32(off/SectorSize) {
					t.Fatalf("grain table at byte %d entry %d names sector %d: no grain written before it", data, i, s)
				}
			}
		case MarkerGD:
			if gdSector >= 0 || footer {
				t.Fatalf("second GD marker at byte %d", off)
			}
			gdSector = data / SectorSize
			if int64(m.Val) != (h.GDEntries()*4+SectorSize-1)/SectorSize {
				t.Fatalf("GD marker declares %d sectors", m.Val)
			}
		case MarkerFooter:
			if gdSector < 0 || m.Val != 1 {
				t.Fatalf("footer marker at byte %d before the grain directory, or %d sectors", off, m.Val)
			}
			f, err := DecodeSparseHeader(b[data:])
			if err != nil {
				t.Fatal(err)
			}
			if int64(f.GDOffset) != gdSector {
				t.Fatalf("footer gdOffset %d, grain directory is at sector %d", f.GDOffset, gdSector)
			}
			hf := h
			hf.GDOffset = f.GDOffset
			if f != hf {
				t.Fatalf("footer %+v differs from header %+v", f, h)
			}
			footer = true
		case MarkerEOS:
			if !footer || off != int64(len(b))-SectorSize || m.Val != 0 {
				t.Fatalf("end-of-stream marker at byte %d of %d (footer seen: %v)", off, len(b), footer)
			}
			if !bytes.Equal(b[off:], make([]byte, SectorSize)) {
				t.Fatal("end-of-stream marker sector is not all zeros")
			}
			// The directory names exactly the tables written.
			// Each table entry maps its grain's LBA, and every grain written
			// is mapped.
			var named []int64
			mapped := 0
			for i := range h.GDEntries() {
				s := le32(b, gdSector*SectorSize+i*4)
				if s == 0 {
					continue
				}
				named = append(named, int64(s))
				for j := range int64(512) {
					e := le32(b, int64(s)*SectorSize+j*4)
					if e == 0 {
						continue
					}
					if lba, want := grainAt[e], uint64(i*512+j)*128; lba != want {
						t.Fatalf("grain table %d entry %d maps LBA %d to a grain marked LBA %d", i, j, want, lba)
					}
					mapped++
				}
			}
			if mapped != len(grainAt) {
				t.Fatalf("%d grains written, %d mapped", len(grainAt), mapped)
			}
			if !slices.Equal(named, gts) {
				t.Fatalf("grain directory names tables %v, tables written at %v", named, gts)
			}
			return
		default:
			t.Fatalf("unknown marker type %d at byte %d", m.Type, off)
		}
		off = data + int64(m.Val)*SectorSize
	}
}

// regionSource is an in-memory sparse disk that reports its data ranges
// and counts the bytes read from it.
type regionSource struct {
	size  int64
	regs  []region
	read  atomic.Int64
	calls atomic.Int64
}

func (s *regionSource) ReadAt(p []byte, off int64) (int, error) {
	s.read.Add(int64(len(p)))
	b := expectChunk(nil, s.regs, off, len(p))
	n := copy(p, b[:max(0, min(int64(len(p)), s.size-off))])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *regionSource) DataRanges(off, length int64) ([]Range, error) {
	s.calls.Add(1)
	var out rangeList
	for _, r := range s.regs {
		lo, hi := max(r.off, off), min(r.off+int64(len(r.data)), off+length)
		if lo < hi {
			out.add(lo, hi-lo)
		}
	}
	return out.r, nil
}

// TestWriteSplit writes a 5 GiB disk of an odd size into three extent
// files from a source that reports its holes.
func TestWriteSplit(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	const size = 5*GiB + 1000 // not a whole sector: padded with zeros
	rngRegs := patternRegions(8 * MiB)
	regs := []region{
		{0, rngRegs[0].data},
		{SplitExtentSectors*SectorSize - 1000, rngRegs[2].data}, // spans the first split
		{3*GiB + 12345, rngRegs[3].data[:10000]},
		{2*SplitExtentSectors*SectorSize - 3, rngRegs[0].data[:5]}, // spans the second split
		{size - 4096, rngRegs[2].data[:4096]},                      // end of disk
	}
	raw := filepath.Join(dir, "big.raw")
	writeRaw(t, raw, roundUp(size, SectorSize), regs)
	var dataBytes int64
	for _, r := range regs {
		dataBytes += int64(len(r.data))
	}
	for _, sf := range []string{TwoGbMaxExtentFlat, TwoGbMaxExtentSparse, StreamOptimized} {
		t.Run(sf, func(t *testing.T) {
			src := &regionSource{size: size, regs: regs}
			path := filepath.Join(dir, sf+".vmdk")
			if err := Write(path, src, size, WriteOptions{Subformat: sf}); err != nil {
				t.Fatal(err)
			}
			if src.read.Load() != dataBytes {
				t.Errorf("read %d bytes of the source, want only its %d bytes of data", src.read.Load(), dataBytes)
			}
			qemuCompare(t, path, raw)
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkInfo(t, d, path)
			if sf != TwoGbMaxExtentFlat {
				run(t, "qemu-img", "check", "-f", "vmdk", path)
			}
			if sf == StreamOptimized {
				return
			}
			var sizes []int64
			for _, e := range d.Info().Extents {
				sizes = append(sizes, e.Size/SectorSize)
			}
			if want := []int64{SplitExtentSectors, SplitExtentSectors, roundUp(size, SectorSize)/SectorSize - 2*SplitExtentSectors}; !slices.Equal(sizes, want) {
				t.Errorf("extent sizes %v sectors, want %v", sizes, want)
			}
			letter := map[string]string{TwoGbMaxExtentFlat: "f", TwoGbMaxExtentSparse: "s"}[sf]
			for i, e := range d.Info().Extents {
				if want := filepath.Join(dir, sf+"-"+letter+"00"+string(rune('1'+i))+".vmdk"); e.File != want {
					t.Errorf("extent %d file %s, want %s", i, e.File, want)
				}
				if e.Allocated > 16*MiB {
					t.Errorf("extent %d allocates %d bytes for a few KiB of data", i, e.Allocated)
				}
			}
		})
	}
}

// TestWriteFromDisk converts a VMDK to a VMDK: holes of the source are not
// read, and the result is byte-identical whatever the number of workers.
func TestWriteFromDisk(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	in := filepath.Join(sd.dir, "in.vmdk")
	convert(t, sd.raw, in, "monolithicSparse")
	d, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var outs [][]byte
	for _, workers := range []int{1, 2, 5} {
		path := filepath.Join(sd.dir, "out.vmdk")
		if err := Write(path, d, d.Size(), WriteOptions{Subformat: StreamOptimized, CID: 0x1234abcd, Workers: workers}); err != nil {
			t.Fatal(err)
		}
		qemuCompare(t, path, sd.raw)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	for i := range outs {
		if !bytes.Equal(outs[i], outs[0]) {
			t.Fatalf("output with a fixed CID differs between worker counts: %s", firstDiff(outs[i], outs[0]))
		}
	}
	if !bytes.Contains(outs[0], []byte("CID=1234abcd\n")) {
		t.Error("descriptor does not carry the CID asked for")
	}
}

// failingSource fails reads at or beyond byte at.
type failingSource struct{ at int64 }

var errInjected = errors.New("injected read error")

func (s failingSource) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.at {
		return 0, errInjected
	}
	clear(p)
	p[0] = 1
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	for _, sf := range Subformats {
		path := filepath.Join(dir, "x.vmdk")
		err := Write(path, failingSource{at: 20 * MiB}, 64*MiB, WriteOptions{Subformat: sf})
		if !errors.Is(err, errInjected) {
			t.Fatalf("%s: error %v, want the read error", sf, err)
		}
		wantErr(t, err, "byte 20")
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("%s: files left behind after a failed write: %v", sf, ents)
		}
	}
	src := bytes.NewReader(make([]byte, MiB))
	wantErr(t, Write(filepath.Join(dir, "x.vmdk"), src, MiB, WriteOptions{Subformat: "monolithicSparce"}), "x.vmdk", "monolithicSparce")
	wantErr(t, Write(filepath.Join(dir, "x.vmdk"), src, 0, WriteOptions{}), "x.vmdk", "0 bytes")
	wantErr(t, Write(filepath.Join(dir, "x.vmdk"), src, MiB, WriteOptions{AdapterType: "nvme"}), "x.vmdk", "nvme")
	wantErr(t, Write(filepath.Join(dir, "x.vmdk"), src, MiB, WriteOptions{CompressionLevel: 11}), "x.vmdk", "level 11")
	wantErr(t, Write(filepath.Join(dir, "none", "x.vmdk"), src, MiB, WriteOptions{}), "x.vmdk")
	if err := os.Mkdir(filepath.Join(dir, "d-f001.vmdk"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Write(filepath.Join(dir, "d.vmdk"), src, MiB, WriteOptions{Subformat: TwoGbMaxExtentFlat}), "d-f001.vmdk", "is a directory")
	os.Remove(filepath.Join(dir, "d-f001.vmdk"))
	// A short source is an error, not a disk padded with zeros.
	wantErr(t, Write(filepath.Join(dir, "x.vmdk"), src, 2*MiB, WriteOptions{}), "x.vmdk", "byte 1048576")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left behind after failed writes: %v", ents)
	}
	// An existing file is replaced only by a complete new one.
	path := filepath.Join(dir, "keep.vmdk")
	writeFile(t, path, []byte("old"))
	if err := Write(path, failingSource{at: MiB}, 4*MiB, WriteOptions{}); err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("failed write changed the existing file to %d bytes", len(b))
	}
}

// TestWriteOverwrite replaces a split disk with a smaller one of another
// subformat; qemu still reads exactly the new disk.
func TestWriteOverwrite(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	src := bytes.NewReader(sd.want)
	path := filepath.Join(sd.dir, "o.vmdk")
	if err := Write(path, src, smallSize, WriteOptions{Subformat: TwoGbMaxExtentSparse}); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, src, smallSize, WriteOptions{Subformat: MonolithicSparse}); err != nil {
		t.Fatal(err)
	}
	qemuCompare(t, path, sd.raw)
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), MagicSparse) {
		t.Fatal("not replaced by the monolithic file")
	}
}
