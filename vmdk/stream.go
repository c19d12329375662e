package vmdk

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// walkStream recovers the grain map of a VMware-layout streamOptimized
// extent whose footer is unusable by following its markers from the first
// grain to the end-of-stream marker. Grain and metadata markers are
// trusted only as far as they stay inside the file and the disk; a stream
// that ends without an end-of-stream marker is reported as truncated
// rather than served with holes.
func walkStream(r io.ReaderAt, fileSize int64, h *SparseHeader) ([]walkedGrain, error) {
	if !h.Compressed() || h.Flags&FlagHasMarkers == 0 {
		return nil, errors.New("not a marker-based streamOptimized extent")
	}
	grainSectors := h.GrainSize
	grainBytes := int64(grainSectors) * SectorSize
	off := int64(h.OverHead) * SectorSize
	if end := int64(h.DescriptorOffset+h.DescriptorSize) * SectorSize; off < end {
		off = end
	}
	off = max(off, SectorSize)
	var grains []walkedGrain
	var b [16]byte
	for {
		if off > fileSize-GrainMarkerSize {
			return nil, fmt.Errorf("stream truncated at byte %d: no end-of-stream marker", off)
		}
		n, err := r.ReadAt(b[:], off)
		if n < GrainMarkerSize {
			return nil, fmt.Errorf("reading marker at byte %d: %w", off, err)
		}
		m := DecodeMarker(b[:n])
		if m.Size != 0 {
			if m.Val%grainSectors != 0 || m.Val >= h.Capacity {
				return nil, fmt.Errorf("grain marker at byte %d has LBA %d, not a grain of a %d-sector disk", off, m.Val, h.Capacity)
			}
			if int64(m.Size) > maxCompressedFactor*grainBytes {
				return nil, fmt.Errorf("grain marker at byte %d declares %d compressed bytes, over the %d-byte limit", off, m.Size, maxCompressedFactor*grainBytes)
			}
			if off/SectorSize > 0xFFFFFFFF {
				return nil, fmt.Errorf("grain at byte %d is beyond the 2 TiB a grain table can address", off)
			}
			if len(grains) >= maxWalkedGrains {
				return nil, fmt.Errorf("more than %d grains", maxWalkedGrains)
			}
			grains = append(grains, walkedGrain{grain: m.Val / grainSectors, sector: uint32(off / SectorSize)})
			off = alignSector(off + GrainMarkerSize + int64(m.Size))
			continue
		}
		if n < 16 {
			return nil, fmt.Errorf("stream truncated in the marker at byte %d", off)
		}
		switch m.Type {
		case MarkerEOS:
			sort.SliceStable(grains, func(i, j int) bool { return grains[i].grain < grains[j].grain })
			return dedupeGrains(grains), nil
		case MarkerGT, MarkerGD, MarkerFooter:
			if m.Val > uint64(fileSize-off)/SectorSize {
				return nil, fmt.Errorf("marker at byte %d declares %d sectors of metadata, past the end of the file", off, m.Val)
			}
			off += SectorSize + int64(m.Val)*SectorSize
		default:
			return nil, fmt.Errorf("unknown marker type %d at byte %d", m.Type, off)
		}
	}
}

// dedupeGrains keeps the last-written copy of each grain of a sorted,
// stably ordered list.
func dedupeGrains(g []walkedGrain) []walkedGrain {
	out := g[:0]
	for i := range g {
		if len(out) > 0 && out[len(out)-1].grain == g[i].grain {
			out[len(out)-1] = g[i]
			continue
		}
		out = append(out, g[i])
	}
	return out
}

func alignSector(off int64) int64 {
	return (off + SectorSize - 1) &^ (SectorSize - 1)
}
