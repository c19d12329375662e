package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// recordingExtent records which virtual ranges of a disk were read.
type recordingExtent struct {
	inner extent
	base  int64
	mu    sync.Mutex
	reads [][2]int64
}

func (r *recordingExtent) readAt(p []byte, rel int64) error {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{r.base + rel, r.base + rel + int64(len(p))})
	r.mu.Unlock()
	return r.inner.readAt(p, rel)
}

func (r *recordingExtent) overlapping(lo, hi int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rd := range r.reads {
		if rd[0] < hi && lo < rd[1] {
			return true
		}
	}
	return false
}

func qemuIO(t testing.TB, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "vmdk"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	run(t, "qemu-io", append(args, path)...)
}

// deltaChain builds base (twoGbMaxExtentFlat) <- delta1 (monolithicSparse)
// <- delta2 (monolithicSparse with zeroed-grain GTEs).
func deltaChain(t testing.TB) (dir, base, delta1, delta2 string) {
	t.Helper()
	sd := newSmallDisk(t)
	dir = sd.dir
	base = filepath.Join(dir, "base.vmdk")
	delta1 = filepath.Join(dir, "delta1.vmdk")
	delta2 = filepath.Join(dir, "delta2.vmdk")
	convert(t, sd.raw, base, "twoGbMaxExtentFlat")
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", delta1)
	qemuIO(t, delta1,
		"write -P 0xab 1000 70000",
		"write -P 0xcd 3M 64k",
		fmt.Sprint("write -P 0x5a ", smallSize-5000, " 4000"),
		"write -P 0x11 6M 512k")
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "delta1.vmdk", "-F", "vmdk", delta2)
	qemuIO(t, delta2,
		"write -z 6M 256k",
		"write -P 0x77 6400k 5000",
		"write -P 0x42 20000 100")
	return
}

func TestDeltaChain(t *testing.T) {
	needQemu(t)
	dir, base, delta1, delta2 := deltaChain(t)
	want := qemuRaw(t, delta2)
	d, err := Open(delta2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustEqual(t, "delta2 vs qemu", readAll(t, d, MiB), want)
	mustEqual(t, "delta2 4 KiB reads", readAll(t, d, 4*KiB), want)
	randomReads(t, d, want, 300, 11)
	checkInfo(t, d, delta2)

	info := d.Info()
	if info.ParentHint != "delta1.vmdk" || info.Parent == nil || info.Parent.Parent == nil || info.Parent.Parent.Parent != nil {
		t.Fatalf("chain info %+v", info)
	}
	if info.Parent.Path != filepath.Join(dir, "delta1.vmdk") || info.Parent.Parent.Path != base {
		t.Errorf("parent paths %q, %q", info.Parent.Path, info.Parent.Parent.Path)
	}
	for _, p := range []struct {
		info *Info
		path string
	}{{&info, delta2}, {info.Parent, delta1}, {info.Parent.Parent, base}} {
		q := qemuImgInfo(t, p.path).Specific.Data
		if p.info.CID != q.CID || p.info.ParentCID != q.ParentCID || p.info.CreateType != q.CreateType {
			t.Errorf("%s: CID %08x/%08x %s, qemu says %08x/%08x %s", p.path, p.info.CID, p.info.ParentCID, p.info.CreateType, q.CID, q.ParentCID, q.CreateType)
		}
	}
	if info.ParentCID != info.Parent.CID || info.Parent.ParentCID != info.Parent.Parent.CID {
		t.Error("CIDs do not chain")
	}

	d1, err := Open(delta1)
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	mustEqual(t, "delta1 vs qemu", readAll(t, d1, MiB), qemuRaw(t, delta1))
}

// TestZeroedGrain checks that a zeroed-grain GTE reads zeros without
// reading the parent, while an unallocated grain does read it.
func TestZeroedGrain(t *testing.T) {
	needQemu(t)
	_, _, _, delta2 := deltaChain(t)
	d, err := Open(delta2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	se := d.extents[0].(*sparseExtent)
	if !se.zeroGrain {
		t.Fatal("qemu did not set the zeroed-grain flag")
	}
	gt, err := se.table(6 * MiB / se.grainBytes / se.gtEntries)
	if err != nil {
		t.Fatal(err)
	}
	if g := 6 * MiB / se.grainBytes % se.gtEntries; gt[g] != GTEZeroed || gt[g+1] != GTEZeroed {
		t.Fatalf("qemu-io write -z left GTEs %d %d, want %d", gt[g], gt[g+1], GTEZeroed)
	}
	rec := &recordingExtent{inner: d.parent.extents[0]}
	d.parent.extents[0] = rec
	buf := make([]byte, 256*KiB)
	if _, err := d.ReadAt(buf, 6*MiB); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Error("zeroed grains read non-zero")
	}
	if rec.overlapping(6*MiB, 6*MiB+256*KiB) {
		t.Error("parent was read for zeroed grains")
	}
	// The parent holds 0x11 there: prove the recorder sees parent reads.
	if _, err := d.ReadAt(buf[:4096], 6*MiB+384*KiB); err != nil {
		t.Fatal(err)
	}
	if !rec.overlapping(6*MiB+384*KiB, 6*MiB+388*KiB) || buf[0] != 0x11 {
		t.Errorf("unallocated grain did not come from the parent (byte %#x)", buf[0])
	}
}

var cidLine = regexp.MustCompile(`(?m)^CID=[0-9a-f]+$`)

func editFile(t testing.TB, path string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := edit(string(b))
	if s == string(b) {
		t.Fatalf("edit of %s changed nothing", path)
	}
	writeFile(t, path, []byte(s))
}

func TestParentErrors(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	dir := sd.dir
	base := filepath.Join(dir, "base.vmdk")
	child := filepath.Join(dir, "child.vmdk")
	convert(t, sd.raw, base, "twoGbMaxExtentFlat")
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "-b", "base.vmdk", "-F", "vmdk", child)
	qemuIO(t, child, "write -P 0x33 2047k 2k", "write -P 0x34 20M 100k")
	d, err := Open(child)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "twoGbMaxExtentSparse delta vs qemu", readAll(t, d, MiB), qemuRaw(t, child))
	d.Close()
	childCID := fmt.Sprintf("%08x", d.Info().CID)

	t.Run("CIDMismatch", func(t *testing.T) {
		editFile(t, base, func(s string) string { return cidLine.ReplaceAllString(s, "CID=deadbeef") })
		_, err := Open(child)
		if !errors.Is(err, ErrParent) {
			t.Errorf("err %v, want ErrParent", err)
		}
		wantErr(t, err, child, base, "parentCID", "deadbeef")
	})
	t.Run("Loop", func(t *testing.T) {
		editFile(t, base, func(s string) string {
			s = cidLine.ReplaceAllString(s, fmt.Sprintf("CID=%08x", d.Info().ParentCID))
			s = strings.Replace(s, "parentCID=ffffffff", "parentCID="+childCID, 1)
			return strings.Replace(s, "createType=", "parentFileNameHint=\"child.vmdk\"\ncreateType=", 1)
		})
		_, err := Open(child)
		if !errors.Is(err, ErrParent) {
			t.Errorf("err %v, want ErrParent", err)
		}
		wantErr(t, err, child, "loop")
	})
	t.Run("SelfLoop", func(t *testing.T) {
		editFile(t, child, func(s string) string {
			return strings.Replace(s, `parentFileNameHint="base.vmdk"`, `parentFileNameHint="./child.vmdk"`, 1)
		})
		editFile(t, child, func(s string) string {
			return regexp.MustCompile(`parentCID=[0-9a-f]+`).ReplaceAllString(s, "parentCID="+childCID)
		})
		_, err := Open(child)
		wantErr(t, err, child, "loop")
	})
	t.Run("MissingParent", func(t *testing.T) {
		editFile(t, child, func(s string) string {
			return strings.Replace(s, `parentFileNameHint="./child.vmdk"`, `parentFileNameHint="nowhere/base.vmdk"`, 1)
		})
		_, err := Open(child)
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err %v does not wrap ErrNotExist", err)
		}
		wantErr(t, err, child, filepath.Join(dir, "nowhere/base.vmdk"))
	})
}

// TestChainDepth builds chains of ZERO-extent descriptors: MaxChainDepth
// disks open, one more does not.
func TestChainDepth(t *testing.T) {
	dir := t.TempDir()
	name := func(i int) string { return fmt.Sprintf("d%02d.vmdk", i) }
	write := func(n int) {
		for i := 0; i < n; i++ {
			s := fmt.Sprintf("version=1\nCID=%08x\ncreateType=\"monolithicFlat\"\nRW 8 ZERO\n", i)
			if i+1 < n {
				s += fmt.Sprintf("parentCID=%08x\nparentFileNameHint=%q\n", i+1, name(i+1))
			}
			writeFile(t, filepath.Join(dir, name(i)), []byte(s))
		}
	}
	write(MaxChainDepth)
	d, err := Open(filepath.Join(dir, name(0)))
	if err != nil {
		t.Fatalf("chain of %d: %v", MaxChainDepth, err)
	}
	depth := 0
	for i := d.Info(); i.Parent != nil; i = *i.Parent {
		depth++
	}
	d.Close()
	if depth != MaxChainDepth-1 {
		t.Errorf("chain depth %d", depth)
	}
	write(MaxChainDepth + 1)
	_, err = Open(filepath.Join(dir, name(0)))
	wantErr(t, err, name(MaxChainDepth), "deeper than 64")
}

// TestLargerChild reads a child larger than its parent: past the parent's
// end, unallocated grains read as zeros.
func TestLargerChild(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	base := filepath.Join(sd.dir, "base.vmdk")
	child := filepath.Join(sd.dir, "child.vmdk")
	convert(t, sd.raw, base, "monolithicSparse")
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child, "32M")
	qemuIO(t, child, "write -P 0x9 30M 5000", "write -P 0x8 23M 2M")
	d, err := Open(child)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 32*MiB {
		t.Fatalf("size %d", d.Size())
	}
	mustEqual(t, "child larger than parent vs qemu", readAll(t, d, 3*MiB), qemuRaw(t, child))
}
