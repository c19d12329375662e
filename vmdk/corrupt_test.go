package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// sparseFixture converts the small disk to a sparse subformat and returns
// the file's bytes and decoded header.
func sparseFixture(t *testing.T, subformat string) (smallDisk, string, []byte, SparseHeader) {
	t.Helper()
	needQemu(t)
	sd := newSmallDisk(t)
	path := filepath.Join(sd.dir, subformat+".vmdk")
	convert(t, sd.raw, path, subformat)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h SparseHeader
	if !strings.HasPrefix(subformat, "twoGb") {
		if h, err = DecodeSparseHeader(b); err != nil {
			t.Fatal(err)
		}
	}
	return sd, path, b, h
}

func le32(b []byte, off int64) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

func put32(b []byte, off int64, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// gteOffset returns the byte offset of the GTE of grain g via the GD at
// gdSector.
func gteOffset(b []byte, h SparseHeader, gdSector uint64, g int64) int64 {
	gt := le32(b, int64(gdSector)*SectorSize+4*(g/int64(h.NumGTEsPerGT)))
	return int64(gt)*SectorSize + 4*(g%int64(h.NumGTEsPerGT))
}

func openBytes(t *testing.T, dir, name string, b []byte) (*Disk, string, error) {
	t.Helper()
	path := filepath.Join(dir, name)
	writeFile(t, path, b)
	d, err := Open(path)
	return d, path, err
}

func TestRedundantGD(t *testing.T) {
	for _, sf := range []string{"streamOptimized", "twoGbMaxExtentSparse"} {
		t.Run(sf, func(t *testing.T) {
			sd, path, orig, h := sparseFixture(t, sf)
			if sf == "twoGbMaxExtentSparse" {
				path = strings.TrimSuffix(path, ".vmdk") + "-s001.vmdk"
				var err error
				if orig, err = os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
				if h, err = DecodeSparseHeader(orig); err != nil {
					t.Fatal(err)
				}
			}
			corruptGD(t, path, orig, h, sd.want)
		})
	}
	sd, _, orig, h := sparseFixture(t, "monolithicSparse")
	gdLen := int(h.GDEntries() * 4)
	gd := int(h.GDOffset * SectorSize)
	for _, fill := range []byte{0xFF, 0x00} {
		t.Run(fmt.Sprintf("monolithicSparse/fill%02x", fill), func(t *testing.T) {
			b := bytes.Clone(orig)
			for i := gd; i < gd+gdLen; i++ {
				b[i] = fill
			}
			d, _, err := openBytes(t, sd.dir, "gd.vmdk", b)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if !d.Info().Extents[0].RedundantGD {
				t.Error("redundant GD not reported in use")
			}
			mustEqual(t, "read via redundant GD", readAll(t, d, MiB), sd.want)
		})
	}
	t.Run("BothDamaged", func(t *testing.T) {
		b := bytes.Clone(orig)
		for _, off := range []int{gd, int(h.RGDOffset * SectorSize)} {
			for i := off; i < off+gdLen; i++ {
				b[i] = 0xFF
			}
		}
		_, path, err := openBytes(t, sd.dir, "both.vmdk", b)
		wantErr(t, err, path, "grain directory damaged", "redundant grain directory damaged", "past the end of the file")
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("err %v, want ErrCorrupt", err)
		}
	})
	t.Run("GTFallback", func(t *testing.T) {
		// A primary grain table whose first entry points past EOF is
		// replaced by its redundant copy.
		b := bytes.Clone(orig)
		put32(b, gteOffset(b, h, h.GDOffset, 0), 0x00FFFFFF)
		d, _, err := openBytes(t, sd.dir, "gt.vmdk", b)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		mustEqual(t, "read via redundant GT", readAll(t, d, MiB), sd.want)
	})
	t.Run("GTPastEOF", func(t *testing.T) {
		b := bytes.Clone(orig)
		put32(b, gteOffset(b, h, h.GDOffset, 3), 0x00FFFFFF)
		put32(b, gteOffset(b, h, h.RGDOffset, 3), 0x00FFFFFF)
		d, path, err := openBytes(t, sd.dir, "gtbad.vmdk", b)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		buf := make([]byte, 64*KiB)
		if _, err := d.ReadAt(buf, 2*64*KiB); err != nil {
			t.Errorf("grain 2 is fine but: %v", err)
		}
		_, err = d.ReadAt(buf, 3*64*KiB)
		wantErr(t, err, path, "past the end of the file", "at byte 8589934080")
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("err %v, want ErrCorrupt", err)
		}
	})
}

func TestTruncatedSparse(t *testing.T) {
	sd, _, orig, _ := sparseFixture(t, "monolithicSparse")
	d, path, err := openBytes(t, sd.dir, "half.vmdk", orig[:len(orig)/2])
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, smallSize)
	_, err = d.ReadAt(buf, 0)
	wantErr(t, err, path, "past the end of the file")
	d.Close()

	_, path, err = openBytes(t, sd.dir, "tiny.vmdk", orig[:8*KiB])
	wantErr(t, err, path, "truncated")
	_, path, err = openBytes(t, sd.dir, "empty.vmdk", nil)
	wantErr(t, err, path, "not a VMDK")
}

func TestMissingSplitExtent(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "big.raw")
	writeRaw(t, raw, 5*GiB, nil)
	path := filepath.Join(dir, "appliance.vmdk")
	convert(t, raw, path, "twoGbMaxExtentFlat")
	missing := filepath.Join(dir, "appliance-f002.vmdk")
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	desc, _ := os.ReadFile(path)
	line := 0
	for i, l := range strings.Split(string(desc), "\n") {
		if strings.Contains(l, "appliance-f002.vmdk") {
			line = i + 1
		}
	}
	_, err := Open(path)
	wantErr(t, err, missing, "missing extent file", "declared in "+path+" line "+strconvI(int64(line)))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%v does not wrap ErrNotExist", err)
	}
}

func TestCorruptDescriptor(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.bin"), make([]byte, 4096))
	rng := rand.New(rand.NewPCG(1, 1))
	good := "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.bin\" 0\n"
	if _, _, err := openBytes(t, dir, "good.vmdk", []byte(good)); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	cases := []struct {
		name, text string
		subs       []string
	}{
		{"garbage", string(randBytes(rng, 600)), []string{"not a VMDK"}},
		{"text", "hello\nworld\n", []string{"not a VMDK"}},
		{"noCreateType", strings.Replace(good, "createType=\"monolithicFlat\"\n", "", 1), []string{"no createType"}},
		{"badSize", strings.Replace(good, "RW 8 FLAT", "RW abc FLAT", 1), []string{"line 6", "bad extent line", "RW abc"}},
		{"badType", strings.Replace(good, "RW 8 FLAT", "RW 8 FOO", 1), []string{"line 6", "unknown extent type"}},
		{"badAccess", strings.Replace(good, "RW 8 FLAT \"f.bin\" 0", "RW8 FLAT \"f.bin\" 0", 1), []string{"line 6", "not a key=value"}},
		{"unterminated", strings.Replace(good, "\"f.bin\" 0", "\"f.bin 0", 1), []string{"line 6", "unterminated"}},
		{"trailing", strings.Replace(good, "\"f.bin\" 0", "\"f.bin\" 0 junk", 1), []string{"line 6", "trailing"}},
		{"sparseOffset", strings.Replace(good, "FLAT \"f.bin\" 0", "SPARSE \"f.bin\" 3", 1), []string{"line 6", "offset given"}},
		{"badCID", strings.Replace(good, "CID=1\n", "CID=xyz\n", 1), []string{"line 3", "bad CID"}},
		{"badVersion", strings.Replace(good, "version=1", "version=9", 1), []string{"line 2", "unsupported descriptor version"}},
		{"noExtents", strings.Replace(good, "RW 8 FLAT \"f.bin\" 0\n", "", 1), []string{"no extents"}},
		{"huge", good + strings.Repeat("#", MaxDescriptorSize), []string{"too large for a descriptor"}},
		{"hugeDisk", strings.Replace(good, "RW 8 FLAT", "RW 1099511627776 FLAT", 1) + "RW 8 ZERO\n", []string{"line 7", "exceeds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, path, err := openBytes(t, dir, tc.name+".vmdk", []byte(tc.text))
			wantErr(t, err, append(tc.subs, path)...)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestBadHeader edits header fields; each must be refused at Open with a
// clear error and without a large allocation.
func TestBadHeader(t *testing.T) {
	sd, _, orig, h := sparseFixture(t, "monolithicSparse")
	cases := []struct {
		name string
		edit func(h *SparseHeader, b []byte)
		subs []string
	}{
		{"version", func(h *SparseHeader, _ []byte) { h.Version = 9 }, []string{"version 9"}},
		{"grainNotPow2", func(h *SparseHeader, _ []byte) { h.GrainSize = 3 }, []string{"grain size 3"}},
		{"grainHuge", func(h *SparseHeader, _ []byte) { h.GrainSize = 1 << 30 }, []string{"grain size"}},
		{"gtesHuge", func(h *SparseHeader, _ []byte) { h.NumGTEsPerGT = 1 << 30 }, []string{"grain table entries"}},
		{"gtesZero", func(h *SparseHeader, _ []byte) { h.NumGTEsPerGT = 0 }, []string{"grain table entries"}},
		{"capacityHuge", func(h *SparseHeader, _ []byte) { h.Capacity = 1 << 50 }, []string{"capacity"}},
		{"hugeGD", func(h *SparseHeader, _ []byte) {
			h.Capacity, h.GrainSize, h.NumGTEsPerGT = 1<<39, 1, 1
		}, []string{"grain directory of"}},
		{"gdBeyondFile", func(h *SparseHeader, _ []byte) {
			// 2^25 grains in tables of 8 need a 16 MiB directory: more than the file holds.
			h.Capacity, h.GrainSize, h.NumGTEsPerGT = 1<<25, 1, 8
		}, []string{"grain directory", "outside the file"}},
		{"gdOffset", func(h *SparseHeader, _ []byte) { h.GDOffset = 1 << 40 }, []string{"grain directory at sector"}},
		{"descriptorHuge", func(h *SparseHeader, _ []byte) { h.DescriptorSize = 1 << 40 }, []string{"embedded descriptor"}},
		{"descriptorOutside", func(h *SparseHeader, _ []byte) { h.DescriptorOffset = 1 << 30 }, []string{"embedded descriptor", "outside the file"}},
		{"newline", func(h *SparseHeader, _ []byte) { h.Newline = [4]byte{'\n', ' ', '\n', '\n'} }, []string{"text-mode transfer"}},
		{"compression", func(h *SparseHeader, _ []byte) { h.CompressAlgorithm = 7 }, []string{"compression algorithm 7"}},
		{"overhead", func(h *SparseHeader, _ []byte) { h.OverHead = 1 << 40 }, []string{"truncated"}},
		{"magic", func(_ *SparseHeader, b []byte) {}, []string{"not a VMDK"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			hh := h
			tc.edit(&hh, b)
			hh.Encode(b)
			if tc.name == "magic" {
				copy(b, "KDMW")
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, path, err := openBytes(t, sd.dir, tc.name+".vmdk", b)
			runtime.ReadMemStats(&after)
			wantErr(t, err, append(tc.subs, path)...)
			if a := after.TotalAlloc - before.TotalAlloc; a > 8*MiB {
				t.Errorf("Open allocated %d bytes before refusing", a)
			}
		})
	}
}

// streamGrain locates grain g of a qemu streamOptimized file: the offset
// of its marker.
func streamGrain(b []byte, h SparseHeader, g int64) int64 {
	return int64(le32(b, gteOffset(b, h, h.GDOffset, g))) * SectorSize
}

func TestBadCompressedGrain(t *testing.T) {
	sd, _, orig, h := sparseFixture(t, "streamOptimized")
	grain := h.GrainBytes()
	deflate := func(data []byte) []byte {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(data)
		w.Close()
		return z.Bytes()
	}
	replace := func(g int64, payload []byte, lba uint64) []byte {
		b := bytes.Clone(orig)
		off := streamGrain(b, h, g)
		old := DecodeMarker(b[off:])
		if int(old.Size) < len(payload) {
			t.Fatalf("no room for %d bytes in grain %d (%d)", len(payload), g, old.Size)
		}
		Marker{Val: lba, Size: uint32(len(payload))}.Encode(b[off:])
		copy(b[off+GrainMarkerSize:], payload)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		subs []string
	}{
		{"tooBig", replace(1, deflate(make([]byte, 2*grain)), uint64(grain/SectorSize)), []string{"inflates to more than the grain size"}},
		{"tooBigByOne", replace(1, deflate(make([]byte, grain+1)), uint64(grain/SectorSize)), []string{"inflates to more than the grain size"}},
		{"short", replace(1, deflate(make([]byte, grain-1)), uint64(grain/SectorSize)), []string{"inflates to 65535 bytes"}},
		{"garbage", replace(1, bytes.Repeat([]byte{0x78, 0x9c, 0xff}, 100), uint64(grain/SectorSize)), []string{"bad deflate stream"}},
		{"badChecksum", func() []byte {
			z := deflate(bytes.Repeat([]byte{1}, int(grain)))
			z[len(z)-1] ^= 0xff
			return replace(1, z, uint64(grain/SectorSize))
		}(), []string{"bad deflate stream", "checksum"}},
		{"wrongLBA", replace(1, deflate(make([]byte, grain)), 0), []string{"grain marker says LBA 0"}},
		{"hugeMarkerSize", func() []byte {
			b := bytes.Clone(orig)
			off := streamGrain(b, h, 1)
			put32(b, off+8, 0xFFFFFFF0)
			return b
		}(), []string{"exceeds the", "limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, path, err := openBytes(t, sd.dir, tc.name+".vmdk", tc.b)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			buf := make([]byte, grain)
			if _, err := d.ReadAt(buf, 0); err != nil {
				t.Errorf("grain 0 is intact but: %v", err)
			}
			for _, l := range []int64{grain, 4096} { // whole-grain and cached paths
				_, err = d.ReadAt(buf[:l], grain)
				wantErr(t, err, append(tc.subs, path)...)
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("err %v, want ErrCorrupt", err)
				}
			}
		})
	}
}

// corruptGD overwrites the primary grain directory of the sparse extent
// at path (whose bytes are orig) in place and reads the disk through the
// redundant one.
func corruptGD(t *testing.T, path string, orig []byte, h SparseHeader, want []byte) {
	t.Helper()
	if h.Flags&FlagRedundantGD == 0 || h.RGDOffset == 0 {
		t.Fatal("qemu wrote no redundant grain directory")
	}
	b := bytes.Clone(orig)
	gd := int(h.GDOffset * SectorSize)
	for i := gd; i < gd+int(h.GDEntries()*4); i++ {
		b[i] = 0xFF
	}
	writeFile(t, path, b)
	disk := path
	if strings.HasSuffix(path, "-s001.vmdk") {
		disk = strings.TrimSuffix(path, "-s001.vmdk") + ".vmdk"
	}
	d, err := Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Info().Extents[0].RedundantGD {
		t.Error("redundant GD not reported in use")
	}
	mustEqual(t, "read via redundant GD", readAll(t, d, MiB), want)
}
