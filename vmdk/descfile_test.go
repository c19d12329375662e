package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handDisk builds a disk from a hand-written descriptor with tiny extents
// of every kind, and returns the descriptor path and the expected bytes.
type handPart struct {
	line string // extent line; %s is replaced by the file name
	file string // "" for ZERO
	data []byte // bytes the extent covers
}

func writeHandDisk(t *testing.T, dir string, parts []handPart) (string, []byte) {
	t.Helper()
	var desc strings.Builder
	desc.WriteString("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=12345678\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentFlat\"\n\n# Extent description\n")
	var want []byte
	for _, p := range parts {
		if strings.Contains(p.line, "%s") {
			desc.WriteString(fmt.Sprintf(p.line, p.file))
		} else {
			desc.WriteString(p.line)
		}
		desc.WriteByte('\n')
		want = append(want, p.data...)
	}
	desc.WriteString("\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.geometry.cylinders = \"3\"\n")
	path := filepath.Join(dir, "hand disk.vmdk")
	if err := os.WriteFile(path, []byte(desc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func handParts(t *testing.T, dir, otherDir string, withReadOnly bool) []handPart {
	rng := rand.New(rand.NewPCG(5, 6))
	a := randBytes(rng, MiB)
	writeFile(t, filepath.Join(dir, "a-f001.vmdk"), a)
	// Extent data starting 8 sectors into its file.
	two := randBytes(rng, MiB+8*SectorSize)
	writeFile(t, filepath.Join(dir, "part two.bin"), two)
	abs := filepath.Join(otherDir, "abs c.bin")
	c := randBytes(rng, MiB)
	writeFile(t, abs, c)
	v := textBytes(rng, MiB)
	writeFile(t, filepath.Join(dir, "v.bin"), v)
	// Declared 1 MiB, holds 300 KiB: qemu reads zeros past its end.
	short := randBytes(rng, 300*KiB)
	writeFile(t, filepath.Join(dir, "short.bin"), short)
	shortWant := append(bytes.Clone(short), make([]byte, MiB-300*KiB)...)
	// A SPARSE extent made by qemu-img.
	sp := append(randBytes(rng, 640*KiB), make([]byte, 2*MiB-640*KiB)...)
	copy(sp[MiB+3:], textBytes(rng, 5000))
	writeFile(t, filepath.Join(dir, "sp.raw"), sp)
	convert(t, filepath.Join(dir, "sp.raw"), filepath.Join(dir, "sp.vmdk"), "monolithicSparse")

	parts := []handPart{
		{`RW 2048 FLAT "%s" 0`, "a-f001.vmdk", a},
		{`RW 2048 FLAT "%s" 8`, "part two.bin", two[8*SectorSize:]},
		{`RW 2048 FLAT "%s" 0`, abs, c},
		{`RW 2048 VMFS "%s"`, "v.bin", v},
		{`RW 2048 FLAT "%s" 0`, "short.bin", shortWant},
		{`RW 4096 SPARSE "%s"`, "sp.vmdk", sp},
	}
	if withReadOnly {
		parts = append(parts,
			handPart{`RDONLY 2048 FLAT "%s" 0`, "a-f001.vmdk", a},
			handPart{`RW 1024 ZERO`, "", make([]byte, 512*KiB)},
			handPart{`RDONLY 2048 FLAT "%s" 8`, "part two.bin", two[8*SectorSize:]},
		)
	}
	return parts
}

// TestHandDescriptorQemu checks a hand-written multi-extent descriptor of
// extents qemu reads (RW FLAT, VMFS, SPARSE, a short flat file, absolute
// and spaced names) against qemu's own reading and the source bytes.
func TestHandDescriptorQemu(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	path, want := writeHandDisk(t, dir, handParts(t, dir, t.TempDir(), false))
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustEqual(t, "qemu's reading", qemuRaw(t, path), want)
	checkInfo(t, d, path)
	mustEqual(t, "1 MiB+7 reads", readAll(t, d, MiB+7), want)
	mustEqual(t, "whole read", readAll(t, d, len(want)), want)
	randomReads(t, d, want, 400, 3)
}

// TestHandDescriptorAll adds what qemu cannot read (RDONLY, ZERO) and
// checks Info against the descriptor.
func TestHandDescriptorAll(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	other := t.TempDir()
	parts := handParts(t, dir, other, true)
	path, want := writeHandDisk(t, dir, parts)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustEqual(t, "1 MiB-1 reads", readAll(t, d, MiB-1), want)
	randomReads(t, d, want, 400, 4)
	info := d.Info()
	if info.Size != int64(len(want)) || info.CreateType != "twoGbMaxExtentFlat" || info.CID != 0x12345678 || info.ParentCID != NoParentCID || info.Version != 1 {
		t.Errorf("info %+v", info)
	}
	if info.DDB["adapterType"] != "lsilogic" || info.DDB["geometry.cylinders"] != "3" {
		t.Errorf("DDB %v", info.DDB)
	}
	wantExt := []ExtentInfo{
		{Access: "RW", Type: "FLAT", File: filepath.Join(dir, "a-f001.vmdk"), Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "FLAT", File: filepath.Join(dir, "part two.bin"), Offset: 8 * SectorSize, Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "FLAT", File: filepath.Join(other, "abs c.bin"), Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "VMFS", File: filepath.Join(dir, "v.bin"), Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "FLAT", File: filepath.Join(dir, "short.bin"), Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "SPARSE", File: filepath.Join(dir, "sp.vmdk"), Size: 2 * MiB, Layout: LayoutHostedSparse, GrainSize: 64 * KiB},
		{Access: "RDONLY", Type: "FLAT", File: filepath.Join(dir, "a-f001.vmdk"), Size: MiB, Layout: LayoutFlat},
		{Access: "RW", Type: "ZERO", Size: 512 * KiB, Layout: LayoutZero},
		{Access: "RDONLY", Type: "FLAT", File: filepath.Join(dir, "part two.bin"), Offset: 8 * SectorSize, Size: MiB, Layout: LayoutFlat},
	}
	if len(info.Extents) != len(wantExt) {
		t.Fatalf("%d extents, want %d", len(info.Extents), len(wantExt))
	}
	for i, e := range info.Extents {
		alloc := e.Allocated
		e.Allocated = 0
		if e != wantExt[i] {
			t.Errorf("extent %d:\n got %+v\nwant %+v", i, e, wantExt[i])
		}
		if e.File != "" {
			// The files were written densely: allocation covers the data.
			fi, err := os.Stat(e.File)
			if err != nil {
				t.Fatal(err)
			}
			if alloc < fi.Size()/2 || alloc > fi.Size()+64*KiB {
				t.Errorf("extent %d: Allocated %d for a %d-byte dense file", i, alloc, fi.Size())
			}
		} else if alloc != 0 {
			t.Errorf("ZERO extent: Allocated %d", alloc)
		}
	}
}

func TestNoAccess(t *testing.T) {
	dir := t.TempDir()
	a := bytes.Repeat([]byte{7}, MiB)
	writeFile(t, filepath.Join(dir, "a.bin"), a)
	desc := "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 2048 VMFS \"a.bin\"\nNOACCESS 2048 VMFS \"gone.bin\"\nRW 2048 ZERO\n"
	path := filepath.Join(dir, "na.vmdk")
	writeFile(t, path, []byte(desc))
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 2*MiB)
	n, err := d.ReadAt(buf, 0)
	if n != MiB || !errors.Is(err, ErrNoAccess) {
		t.Fatalf("read into NOACCESS: %d, %v", n, err)
	}
	wantErr(t, err, filepath.Join(dir, "gone.bin"), "NOACCESS")
	if !bytes.Equal(buf[:n], a) {
		t.Error("data before the NOACCESS extent differs")
	}
	if n, err := d.ReadAt(buf[:MiB], 2*MiB); n != MiB || err != nil || !bytes.Equal(buf[:MiB], make([]byte, MiB)) {
		t.Errorf("ZERO extent after NOACCESS: %d, %v", n, err)
	}
}

func TestUnsupportedExtent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rdm.bin"), make([]byte, 4096))
	path := filepath.Join(dir, "rdm.vmdk")
	writeFile(t, path, []byte("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfsRawDeviceMap\"\nRW 8 VMFSRDM \"rdm.bin\"\n"))
	_, err := Open(path)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("err %v, want ErrUnsupported", err)
	}
	wantErr(t, err, filepath.Join(dir, "rdm.bin"), "VMFSRDM", "line 5")
}
