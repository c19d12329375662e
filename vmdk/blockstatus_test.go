package vmdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// qemuDataRanges returns the ranges qemu-img map reports as data, merged.
func qemuDataRanges(t testing.TB, path, format string) []Range {
	t.Helper()
	var ents []struct {
		Start, Length int64
		Data          bool
	}
	out := run(t, "qemu-img", "map", "--output=json", "-f", format, path)
	if err := json.Unmarshal(out, &ents); err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var l rangeList
	for _, e := range ents {
		if e.Data {
			l.add(e.Start, e.Length)
		}
	}
	return l.r
}

// qemuTruth is what qemu-img map says is data in a disk without a parent.
// qemu's vmdk driver calls all of a flat extent data, so flat extent files
// are mapped as raw files (qemu then asks the host for holes, as we do).
func qemuTruth(t testing.TB, d *Disk, path string) []Range {
	t.Helper()
	whole := qemuDataRanges(t, path, "vmdk")
	var l rangeList
	for i, e := range d.Info().Extents {
		start := d.starts[i]
		src, shift := whole, start
		if e.Type == ExtentFlat {
			src, shift = qemuDataRanges(t, e.File, "raw"), start-e.Offset
		} else {
			shift = 0
		}
		for _, r := range src {
			lo, hi := max(r.Off+shift, start), min(r.End()+shift, start+e.Size)
			if lo < hi {
				l.add(lo, hi-lo)
			}
		}
	}
	return l.r
}

// checkDataRanges compares DataRanges with the truth and with the disk's
// content: every non-zero byte lies in a data range, and queries of any
// window agree with the whole-disk answer.
func checkDataRanges(t *testing.T, d *Disk, truth []Range) {
	t.Helper()
	all, err := d.DataRanges(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	if truth != nil && !slices.Equal(all, truth) {
		t.Errorf("DataRanges\n  %v\nqemu-img map data\n  %v", all, truth)
	}
	content := readAll(t, d, MiB)
	pos := int64(0)
	for _, r := range append(all, Range{d.Size(), 0}) {
		if r.Off < pos || r.Len < 0 || (r.Len == 0 && r.Off != d.Size()) {
			t.Fatalf("ranges not ascending and disjoint: %v", all)
		}
		if i := bytes.IndexFunc(content[pos:r.Off], func(c rune) bool { return c != 0 }); i >= 0 {
			t.Fatalf("non-zero byte at %d outside every data range", pos+int64(i))
		}
		pos = r.End()
	}
	// Window queries agree with the whole-disk answer, from several
	// goroutines at once (grain tables come from a shared cache).
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(5, uint64(g)))
			for range 50 {
				off := rng.Int64N(d.Size() + 100)
				n := rng.Int64N(3 * MiB)
				got, err := d.DataRanges(off, n)
				if err != nil {
					t.Error(err)
					return
				}
				var want rangeList
				for _, r := range all {
					lo, hi := max(r.Off, off), min(r.End(), off+n)
					if lo < hi {
						want.add(lo, hi-lo)
					}
				}
				if !slices.Equal(got, want.r) {
					t.Errorf("DataRanges(%d, %d) = %v, want %v", off, n, got, want.r)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDataRanges(t *testing.T) {
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
			checkDataRanges(t, d, qemuTruth(t, d, path))
			// The disk has holes in every layout: 2-5 MiB is never written.
			if r, _ := d.DataRanges(2*MiB, 3*MiB); len(r) != 0 {
				t.Errorf("hole at 2-5 MiB reported as data: %v", r)
			}
		})
	}
	t.Run("VMwareStream", func(t *testing.T) {
		path := filepath.Join(sd.dir, "ours-stream.vmdk")
		if err := Write(path, bytes.NewReader(sd.want), smallSize, WriteOptions{Subformat: StreamOptimized}); err != nil {
			t.Fatal(err)
		}
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		checkDataRanges(t, d, qemuTruth(t, d, path))
	})
	t.Run("DeltaChain", func(t *testing.T) {
		_, _, _, delta2 := deltaChain(t)
		d, err := Open(delta2)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		// qemu maps the flat base as all data, so it is no oracle here: the
		// ranges must be its data ranges less the host holes of the base.
		checkDataRanges(t, d, nil)
		all, _ := d.DataRanges(0, d.Size())
		q := qemuDataRanges(t, delta2, "vmdk")
		for _, r := range all {
			i := slices.IndexFunc(q, func(x Range) bool { return x.Off <= r.Off && r.End() <= x.End() })
			if i < 0 {
				t.Errorf("range %v is not data to qemu (%v)", r, q)
			}
		}
		// Where neither delta wrote (10-16 MiB), the base's host holes show.
		base := qemuTruth(t, d.parent.parent, filepath.Join(filepath.Dir(delta2), "base.vmdk"))
		clip := func(rs []Range) []Range {
			var l rangeList
			for _, r := range rs {
				if lo, hi := max(r.Off, 10*MiB), min(r.End(), 16*MiB); lo < hi {
					l.add(lo, hi-lo)
				}
			}
			return l.r
		}
		if got, want := clip(all), clip(base); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("chain ranges in 10-16 MiB %v, base's %v", got, want)
		}
		// delta2 zeroes 6M+256k over data of delta1: a zero grain is no data.
		if r, _ := d.DataRanges(6*MiB, 256*KiB); len(r) != 0 {
			t.Errorf("zeroed grains reported as data: %v", r)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		path := filepath.Join(sd.dir, "monolithicSparse.vmdk")
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		wantErr(t, func() error { _, err := d.DataRanges(-1, 10); return err }(), path, "negative")
		if r, err := d.DataRanges(d.Size(), 1<<62); err != nil || len(r) != 0 {
			t.Errorf("past the end: %v, %v", r, err)
		}
		if r, err := d.DataRanges(0, 1<<62); err != nil || r[len(r)-1].End() != d.Size() {
			t.Errorf("huge length: %v, %v", r, err)
		}
	})
}

func ExampleDisk_DataRanges() {
	d, err := Open("disk.vmdk")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	// Visit only the parts of the first GiB that may hold data.
	ranges, err := d.DataRanges(0, 1<<30)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range ranges {
		fmt.Println(r.Off, r.Len)
	}
}
