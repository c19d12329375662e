package vmdk

import (
	"io"
	"os"
	"slices"
)

// Range is the byte range [Off, Off+Len) of a virtual disk.
type Range struct {
	Off, Len int64
}

// End returns Off+Len.
func (r Range) End() int64 { return r.Off + r.Len }

// DataRanger is implemented by readers that can tell, without reading,
// which parts of them may hold data. DataRanges returns ascending,
// disjoint ranges within [off, off+length) outside which everything reads
// as zeros. Write uses it to skip holes.
type DataRanger interface {
	DataRanges(off, length int64) ([]Range, error)
}

// DataRanges returns the parts of [off, off+length) that may hold data, in
// ascending order, clipped to the range and to Size, adjacent parts merged.
// Everything outside them reads as zeros; a range inside them may still
// read as zeros (an allocated grain of zeros, a host file whose holes the
// filesystem does not report). The answer comes from allocation metadata
// alone: grain tables of sparse extents (unallocated grains are looked up in
// the parent, zero grains are never data), SEEK_DATA/SEEK_HOLE on the host
// files of flat extents (all data where the host cannot tell), never for ZERO
// extents, always for NOACCESS ones (reading them is an error). The result
// has at most one range per grain or host data run: pass a bounded length
// to bound it. It is safe for concurrent use.
func (d *Disk) DataRanges(off, length int64) ([]Range, error) {
	if off < 0 || length < 0 {
		return nil, errf(ErrIO, d.path, off, "negative data range query (%d bytes)", length)
	}
	var out rangeList
	if err := d.dataRanges(off, length, &out); err != nil {
		return nil, err
	}
	return out.r, nil
}

func (d *Disk) dataRanges(off, length int64, out *rangeList) error {
	if off >= d.size {
		return nil
	}
	end := min(off+length, d.size)
	if length > d.size-off {
		end = d.size
	}
	i, found := slices.BinarySearch(d.starts, off)
	if !found {
		i--
	}
	for off < end {
		start := d.starts[i]
		eend := d.size
		if i+1 < len(d.starts) {
			eend = d.starts[i+1]
		}
		n := min(end, eend) - off
		if r, ok := d.extents[i].(dataRanger); ok {
			if err := r.dataRanges(off-start, n, start, out); err != nil {
				return err
			}
		} else {
			out.add(off, n) // NOACCESS and unknown extents: reading decides
		}
		off += n
		i++
	}
	return nil
}

// dataRanger is implemented by extents that know where their data is.
// base is the extent's offset in the disk; ranges are added in disk
// offsets, in ascending order.
type dataRanger interface {
	dataRanges(rel, n, base int64, out *rangeList) error
}

// rangeList accumulates ascending ranges, merging adjacent ones.
type rangeList struct{ r []Range }

func (l *rangeList) add(off, n int64) {
	if n <= 0 {
		return
	}
	if k := len(l.r); k > 0 && l.r[k-1].End() == off {
		l.r[k-1].Len += n
		return
	}
	l.r = append(l.r, Range{off, n})
}

func (zeroExtent) dataRanges(_, _, _ int64, _ *rangeList) error { return nil }

// dataRanges asks the host file for its data runs. Past the end of a file
// shorter than declared the extent reads as zeros, as in readAt.
func (e *flatExtent) dataRanges(rel, n, base int64, out *rangeList) error {
	pos, end := e.off+rel, e.off+rel+n
	for pos < end {
		data, hole, ok := seekData(e.f, pos)
		if !ok {
			out.add(base+pos-e.off, end-pos)
			return nil
		}
		if data < 0 || data >= end {
			return nil
		}
		data = max(data, pos)
		hole = min(max(hole, data), end)
		out.add(base+data-e.off, hole-data)
		pos = hole
		if hole == data {
			// A filesystem answering nonsense: stop asking, call it data.
			out.add(base+pos-e.off, end-pos)
			return nil
		}
	}
	return nil
}

// dataRanges walks the grain tables. Unallocated grains are data only where
// the parent has data; zero grains never are.
func (e *sparseExtent) dataRanges(rel, n, base int64, out *rangeList) error {
	end := rel + n
	// parentRun is a pending run of unallocated grains, looked up in the
	// parent at once.
	var pStart, pEnd int64
	flushParent := func() error {
		if pEnd > pStart && e.parent != nil {
			if err := e.parent.dataRanges(e.base+pStart, pEnd-pStart, out); err != nil {
				return err
			}
		}
		pStart, pEnd = 0, 0
		return nil
	}
	for rel < end {
		g := rel >> e.grainShift
		t, ti := g/e.gtEntries, g%e.gtEntries
		gt, err := e.table(t)
		if err != nil {
			return err
		}
		for ; ti < e.gtEntries && rel < end; ti++ {
			gEnd := min((t*e.gtEntries+ti+1)<<e.grainShift, end)
			var ent uint32
			if gt != nil {
				ent = gt[ti]
			}
			switch {
			case ent == GTEUnallocated:
				if pEnd != rel {
					if err := flushParent(); err != nil {
						return err
					}
					pStart = rel
				}
				pEnd = gEnd
			case ent == GTEZeroed && e.zeroGrain:
			default:
				if err := flushParent(); err != nil {
					return err
				}
				out.add(base+rel, gEnd-rel)
			}
			rel = gEnd
		}
	}
	return flushParent()
}

var (
	_ io.ReaderAt = (*Disk)(nil)
	_ DataRanger  = (*Disk)(nil)
)

// FileDataRanges reports the data runs of a host file in [off, off+n),
// from SEEK_DATA/SEEK_HOLE; where the host can't tell, all of it is data.
// Converters use it to skip the holes of sparse raw files.
func FileDataRanges(f *os.File, off, n int64) ([]Range, error) {
	var l rangeList
	if err := (&flatExtent{f: f}).dataRanges(off, n, 0, &l); err != nil {
		return nil, err
	}
	return l.r, nil
}
