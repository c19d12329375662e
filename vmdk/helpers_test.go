package vmdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// needTool skips the test when a command is missing, naming its package.
func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
}

func needQemu(t testing.TB) {
	needTool(t, "qemu-img", "qemu-utils")
	needTool(t, "qemu-io", "qemu-utils")
}

// vmdkstreamPython returns a python3 that can import Debian's VMDKstream
// module (python3-vmdkstream ships a module, not a command).
func vmdkstreamPython(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err := exec.Command(py, "-c", "import VMDKstream").Run(); err == nil {
			return py
		}
	}
	t.Skip("python3 module VMDKstream not installed (Debian package python3-vmdkstream)")
	return ""
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// region is a run of bytes written into a raw test disk.
type region struct {
	off  int64
	data []byte
}

// writeRaw creates a sparse raw file of size bytes holding regions and
// returns its full content (zeros elsewhere).
func writeRaw(t testing.TB, path string, size int64, regions []region) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if _, err := f.WriteAt(r.data, r.off); err != nil {
			t.Fatal(err)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// textBytes returns compressible but non-trivial data.
func textBytes(rng *rand.Rand, n int) []byte {
	words := []string{"vmroot ", "grain ", "extent ", "sparse ", "\n", "0123 ", "KDMV "}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// patternRegions is the content of the small test disk: random
// (incompressible) and text data, explicit zeros, holes, unaligned runs,
// single bytes at grain edges and data at the very end.
func patternRegions(size int64) []region {
	rng := rand.New(rand.NewPCG(1, 2))
	return []region{
		{0, randBytes(rng, 1*MiB)},
		{1 * MiB, make([]byte, 1*MiB)}, // written zeros
		// 2..5 MiB: hole
		{5*MiB + 1234, randBytes(rng, 77777)},
		{6 * MiB, textBytes(rng, 3*MiB)},
		{9*MiB + 64*KiB - 1, []byte{0xEE}},
		{9*MiB + 128*KiB, []byte{0x01}},
		{10*MiB + 4095, randBytes(rng, 64*KiB+2)},
		{12*MiB - 100, textBytes(rng, 200)},
		{16 * MiB, randBytes(rng, 2*MiB+512)},
		{size - 64*KiB, randBytes(rng, 64*KiB)},
	}
}

func contentOf(size int64, regions []region) []byte {
	b := make([]byte, size)
	for _, r := range regions {
		copy(b[r.off:], r.data)
	}
	return b
}

// smallDisk is the shared 24 MiB raw disk and its bytes.
type smallDisk struct {
	dir  string
	raw  string
	want []byte
}

const smallSize = 24 * MiB

func newSmallDisk(t testing.TB) smallDisk {
	t.Helper()
	dir := t.TempDir()
	regs := patternRegions(smallSize)
	raw := filepath.Join(dir, "disk.raw")
	writeRaw(t, raw, smallSize, regs)
	return smallDisk{dir: dir, raw: raw, want: contentOf(smallSize, regs)}
}

// convert runs qemu-img convert from raw to a VMDK subformat.
func convert(t testing.TB, raw, out, subformat string) {
	t.Helper()
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+subformat, raw, out)
}

// qemuRaw returns what qemu reads from a VMDK.
func qemuRaw(t testing.TB, vmdk string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu.raw")
	run(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type qemuInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Filename    string `json:"filename"`
	ActualSize  int64  `json:"actual-size"`
	ClusterSize int64  `json:"cluster-size"`
	Format      string `json:"format"`
	Specific    struct {
		Type string `json:"type"`
		Data struct {
			CID        uint32 `json:"cid"`
			ParentCID  uint32 `json:"parent-cid"`
			CreateType string `json:"create-type"`
			Extents    []struct {
				VirtualSize int64  `json:"virtual-size"`
				Filename    string `json:"filename"`
				Format      string `json:"format"`
				Compressed  bool   `json:"compressed"`
				ClusterSize int64  `json:"cluster-size"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
	BackingFilename string `json:"backing-filename"`
}

func qemuImgInfo(t testing.TB, path string) qemuInfo {
	t.Helper()
	var qi qemuInfo
	out := run(t, "qemu-img", "info", "--output=json", "-f", "vmdk", path)
	if err := json.Unmarshal(out, &qi); err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	return qi
}

// checkInfo compares Info with what qemu-img reports.
func checkInfo(t *testing.T, d *Disk, path string) {
	t.Helper()
	qi := qemuImgInfo(t, path)
	info := d.Info()
	q := qi.Specific.Data
	if info.Size != qi.VirtualSize || d.Size() != qi.VirtualSize {
		t.Errorf("size %d / %d, qemu says %d", info.Size, d.Size(), qi.VirtualSize)
	}
	if info.CreateType != q.CreateType {
		t.Errorf("createType %q, qemu says %q", info.CreateType, q.CreateType)
	}
	if info.CID != q.CID || info.ParentCID != q.ParentCID {
		t.Errorf("CID %08x parentCID %08x, qemu says %08x %08x", info.CID, info.ParentCID, q.CID, q.ParentCID)
	}
	if len(info.Extents) != len(q.Extents) {
		t.Fatalf("%d extents, qemu says %d", len(info.Extents), len(q.Extents))
	}
	for i, e := range info.Extents {
		qe := q.Extents[i]
		qname := qe.Filename
		if !filepath.IsAbs(qname) {
			qname = filepath.Join(filepath.Dir(path), filepath.Base(qname))
		}
		if e.Size != qe.VirtualSize || filepath.Clean(e.File) != filepath.Clean(qname) || e.Compressed != qe.Compressed {
			t.Errorf("extent %d: %+v; qemu says %+v", i, e, qe)
		}
		// qemu reports the extent type only for extents listed in a
		// separate descriptor.
		if qe.Format != "" && qe.Format != e.Type {
			t.Errorf("extent %d: type %s, qemu says %s", i, e.Type, qe.Format)
		}
		if qe.ClusterSize != 0 && qe.ClusterSize != e.GrainSize {
			t.Errorf("extent %d: grain %d, qemu says cluster %d", i, e.GrainSize, qe.ClusterSize)
		}
	}
}

// readAll reads the whole disk in chunks of the given size.
func readAll(t testing.TB, d *Disk, chunk int) []byte {
	t.Helper()
	out := make([]byte, d.Size())
	for off := int64(0); off < d.Size(); off += int64(chunk) {
		end := min(off+int64(chunk), d.Size())
		n, err := d.ReadAt(out[off:end], off)
		if err != nil && !(errors.Is(err, io.EOF) && end == d.Size()) {
			t.Fatalf("ReadAt(%d, %d): n=%d %v", off, end-off, n, err)
		}
		if n != int(end-off) {
			t.Fatalf("ReadAt(%d, %d): n=%d", off, end-off, n)
		}
	}
	return out
}

// firstDiff describes where two byte slices first differ.
func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return "lengths differ"
	}
	for i := range got {
		if got[i] != want[i] {
			return "first difference at byte " + strconv.Itoa(i)
		}
	}
	return ""
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs from oracle: %s", what, firstDiff(got, want))
	}
}

// randomReads checks unaligned random reads against want.
func randomReads(t testing.TB, d *Disk, want []byte, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	buf := make([]byte, 300*KiB)
	for i := 0; i < n; i++ {
		off := rng.Int64N(int64(len(want)))
		l := rng.IntN(len(buf)) + 1
		got := buf[:l]
		m, err := d.ReadAt(got, off)
		end := min(off+int64(l), int64(len(want)))
		if int64(m) != end-off {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, l, m, err)
		}
		if end < off+int64(l) && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d) past end: err %v, want io.EOF", off, l, err)
		}
		if end == off+int64(l) && err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, l, err)
		}
		if !bytes.Equal(got[:m], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d): %s", off, l, firstDiff(got[:m], want[off:end]))
		}
	}
}

func copyFile(t testing.TB, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantErr asserts err is a single-line error mentioning each of subs.
func wantErr(t testing.TB, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}
