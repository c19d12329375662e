package vmdk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var qemuSubformats = []struct {
	name   string
	layout string
}{
	{"monolithicSparse", LayoutHostedSparse},
	{"monolithicFlat", LayoutFlat},
	{"twoGbMaxExtentSparse", LayoutHostedSparse},
	{"twoGbMaxExtentFlat", LayoutFlat},
	{"streamOptimized", LayoutStreamQemu},
}

func TestQemuSubformats(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	for _, sf := range qemuSubformats {
		t.Run(sf.name, func(t *testing.T) {
			path := filepath.Join(sd.dir, sf.name+".vmdk")
			convert(t, sd.raw, path, sf.name)
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkInfo(t, d, path)
			for _, e := range d.Info().Extents {
				if e.Layout != sf.layout {
					t.Errorf("layout %q, want %q", e.Layout, sf.layout)
				}
				if e.Access != AccessRW {
					t.Errorf("access %q", e.Access)
				}
			}
			mustEqual(t, "whole-disk read", readAll(t, d, smallSize), sd.want)
			mustEqual(t, "1 MiB reads", readAll(t, d, MiB), sd.want)
			mustEqual(t, "4 KiB reads", readAll(t, d, 4*KiB), sd.want)
			mustEqual(t, "odd-sized reads", readAll(t, d, 12345), sd.want)
			randomReads(t, d, sd.want, 300, 7)
		})
	}
}

func TestVMDKStream(t *testing.T) {
	py := vmdkstreamPython(t)
	needQemu(t)
	sd := newSmallDisk(t)
	path := filepath.Join(sd.dir, "vmware-stream.vmdk")
	run(t, py, "-m", "VMDKstream", sd.raw, path)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkInfo(t, d, path)
	info := d.Info()
	if l := info.Extents[0].Layout; l != LayoutStreamVMware {
		t.Errorf("layout %q, want %q", l, LayoutStreamVMware)
	}
	if info.Extents[0].Access != AccessRDONLY {
		t.Errorf("access %q, want RDONLY as in the embedded descriptor", info.Extents[0].Access)
	}
	if info.DDB["adapterType"] != "lsilogic" {
		t.Errorf("DDB %v", info.DDB)
	}
	mustEqual(t, "whole-disk read", readAll(t, d, smallSize), sd.want)
	mustEqual(t, "4 KiB reads", readAll(t, d, 4*KiB), sd.want)
	randomReads(t, d, sd.want, 300, 8)
}

// TestStreamFooterLost removes the footer of a VMware-layout stream: the
// reader must fall back to walking the markers and read the same bytes,
// and must refuse a stream cut short instead of serving holes.
func TestStreamFooterLost(t *testing.T) {
	py := vmdkstreamPython(t)
	sd := newSmallDisk(t)
	path := filepath.Join(sd.dir, "s.vmdk")
	run(t, py, "-m", "VMDKstream", sd.raw, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Blank the footer marker; keep the end-of-stream marker.
	nofoot := filepath.Join(sd.dir, "nofooter.vmdk")
	c := bytes.Clone(b)
	clear(c[len(c)-FooterSize : len(c)-SectorSize])
	// A zero sector reads as an end-of-stream marker, so make it invalid.
	c[len(c)-FooterSize+12] = 9
	if err := os.WriteFile(nofoot, c, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(nofoot)
	if err == nil {
		t.Fatal("stream with an unknown marker type opened")
	}
	wantErr(t, err, nofoot, "unknown marker type 9")

	// Drop footer marker and footer entirely: the walk ends at the EOS.
	c = append(bytes.Clone(b[:len(b)-FooterSize]), b[len(b)-SectorSize:]...)
	if err := os.WriteFile(nofoot, c, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = Open(nofoot)
	if err != nil {
		t.Fatal(err)
	}
	if l := d.Info().Extents[0].Layout; l != LayoutStreamWalked {
		t.Errorf("layout %q, want %q", l, LayoutStreamWalked)
	}
	mustEqual(t, "walked stream", readAll(t, d, MiB), sd.want)
	d.Close()

	// Cut the stream in the middle of the grains.
	cut := filepath.Join(sd.dir, "cut.vmdk")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(cut)
	wantErr(t, err, cut, "footer", "truncated")
}

// TestSplit5G uses qemu's 2 GiB split on a sparse 5 GiB disk with data
// around the split points.
func TestSplit5G(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	const size = 5 * GiB
	rngRegs := patternRegions(8 * MiB)
	regs := []region{
		{0, rngRegs[0].data},
		{2*GiB - 1000, rngRegs[2].data}, // spans the first split
		{3*GiB + 12345, rngRegs[3].data[:10000]},
		{4*GiB - 65536 - 3, rngRegs[0].data},  // spans the second split
		{size - 4096, rngRegs[2].data[:4096]}, // end of disk
	}
	raw := filepath.Join(dir, "big.raw")
	writeRaw(t, raw, size, regs)
	for _, sf := range qemuSubformats {
		t.Run(sf.name, func(t *testing.T) {
			path := filepath.Join(dir, sf.name+".vmdk")
			convert(t, raw, path, sf.name)
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkInfo(t, d, path)
			if strings.HasPrefix(sf.name, "twoGb") && len(d.Info().Extents) != 3 {
				t.Errorf("%d extents, want 3", len(d.Info().Extents))
			}
			for _, r := range regs {
				lo := max(r.off-70000, 0)
				hi := min(r.off+int64(len(r.data))+70000, size)
				got := make([]byte, hi-lo)
				n, err := d.ReadAt(got, lo)
				if n != len(got) || (err != nil && !(err == io.EOF && hi == size)) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", lo, hi-lo, n, err)
				}
				want := make([]byte, hi-lo)
				copy(want[r.off-lo:], r.data)
				mustEqual(t, "region around "+strconvI(r.off), got, want)
			}
			// A full read is cheap only where the reader, not the kernel,
			// produces the zeros: reading 5 GiB of host holes through
			// pread costs seconds on a busy machine.
			if testing.Short() || sf.name != "twoGbMaxExtentSparse" {
				return
			}
			// Full read, compared chunk by chunk with the expected bytes.
			want := contentOf(0, nil)
			buf := make([]byte, 8*MiB)
			for off := int64(0); off < size; off += int64(len(buf)) {
				if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				want = expectChunk(want, regs, off, len(buf))
				if !bytes.Equal(buf, want) {
					t.Fatalf("full read: chunk at %d: %s", off, firstDiff(buf, want))
				}
			}
		})
	}
}

// expectChunk returns the n expected bytes at off, reusing buf.
func expectChunk(buf []byte, regs []region, off int64, n int) []byte {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	clear(buf)
	for _, r := range regs {
		lo, hi := max(r.off, off), min(r.off+int64(len(r.data)), off+int64(n))
		if lo < hi {
			copy(buf[lo-off:hi-off], r.data[lo-r.off:])
		}
	}
	return buf
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func TestReadAtEdges(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	path := filepath.Join(sd.dir, "m.vmdk")
	convert(t, sd.raw, path, "monolithicSparse")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 10)
	if n, err := d.ReadAt(buf, smallSize); n != 0 || err != io.EOF {
		t.Errorf("read at Size: %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := d.ReadAt(buf, smallSize-4); n != 4 || err != io.EOF || !bytes.Equal(buf[:4], sd.want[smallSize-4:]) {
		t.Errorf("read across Size: %d, %v", n, err)
	}
	if n, err := d.ReadAt(buf[:0], 5); n != 0 || err != nil {
		t.Errorf("empty read: %d, %v", n, err)
	}
	_, err = d.ReadAt(buf, -1)
	wantErr(t, err, path, "negative")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(buf, 0); err == nil {
		t.Error("read after Close succeeded")
	} else {
		wantErr(t, err, path)
	}
}

func TestDetect(t *testing.T) {
	yes := []string{
		"KDMV\x01\x00\x00\x00",
		"COWD\x01\x00\x00\x00",
		"# Disk DescriptorFile\nversion=1\nCID=fffffffe\n",
		"# Disk Descriptor File\r\n# Created by VMDKstream\r\nversion=1\r\n",
		"\n\n  version = 1\n",
	}
	no := []string{
		"",
		"KDM",
		"\x7fELF\x02\x01\x01",
		"# Disk DescriptorFile\nCID=1\nversion=1\n",
		"version\x00=1\n",
		"hello world\n",
		strings.Repeat("#\n", 5000) + "version=1\n",
	}
	for _, s := range yes {
		if !Detect([]byte(s)) {
			t.Errorf("Detect(%q) = false", s)
		}
	}
	for _, s := range no {
		if Detect([]byte(s)) {
			t.Errorf("Detect(%q) = true", s)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	e := errf(ErrCorrupt, "/x/a.vmdk", 512, "bad %s", "thing")
	if !errors.Is(e, ErrCorrupt) || errors.Is(e, ErrParent) {
		t.Error("Is does not follow Kind")
	}
	if got := e.Error(); got != "/x/a.vmdk: at byte 512: bad thing" {
		t.Errorf("message %q", got)
	}
	_, err := Open("/nonexistent/dir/x.vmdk")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v does not wrap ErrNotExist", err)
	}
	wantErr(t, err, "/nonexistent/dir/x.vmdk", "no such file")
}
