package ext

import (
	"fmt"
	"io"
	"sort"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

// run says where file blocks starting at some logical block live: n
// blocks at disk block phys, or n blocks that read as zeros (phys 0: a
// hole or an uninitialized extent).
type run struct {
	phys uint64
	n    uint64
}

// metaBlock returns disk block blk through the bounded block cache. The
// returned slice is shared and must not be modified.
func (f *FS) metaBlock(blk uint64) ([]byte, error) {
	if blk == 0 || blk >= f.blocks {
		return nil, corrupt("block %d outside the filesystem (%d blocks)", blk, f.blocks)
	}
	if b, ok := f.bcache.get(blk); ok {
		return b, nil
	}
	b := make([]byte, f.bs)
	if err := f.readFull(b, blk*f.bs); err != nil {
		return nil, fmt.Errorf("ext: reading block %d: %w", blk, err)
	}
	f.bcache.put(blk, b)
	return b, nil
}

// mapRun maps logical block lblk of a block-mapped or extent-mapped inode.
func (f *FS) mapRun(in *inode, lblk uint64) (run, error) {
	var r run
	var err error
	if in.flag(disklayout.InodeFlagExtents) {
		r, err = f.extentRun(in, lblk)
	} else {
		r, err = f.indirectRun(in, lblk)
	}
	if err != nil {
		return r, err
	}
	if r.phys != 0 && (r.phys >= f.blocks || f.blocks-r.phys < r.n) {
		return r, corrupt("inode %d: file block %d maps to disk blocks %d+%d outside the filesystem (%d blocks)",
			in.ino, lblk, r.phys, r.n, f.blocks)
	}
	return r, nil
}

// extentRun walks the extent tree from the root in i_block. Each level
// must be exactly one shallower than its parent, so a malicious tree
// cannot loop, and at most ExtentMaxDepth levels deep.
func (f *FS) extentRun(in *inode, lblk uint64) (run, error) {
	node := in.Block[:]
	end := uint64(1) << 32 // first logical block not covered by node
	want := -1
	for level := 0; ; level++ {
		if len(node) < disklayout.ExtentHeaderSize {
			return run{}, corrupt("inode %d: extent node too small", in.ino)
		}
		h := disklayout.DecodeExtentHeader(node)
		switch {
		case h.Magic != disklayout.ExtentMagic:
			return run{}, corrupt("inode %d: bad extent header magic %#x at depth %d", in.ino, h.Magic, level)
		case h.Depth > disklayout.ExtentMaxDepth:
			return run{}, corrupt("inode %d: extent tree depth %d exceeds %d", in.ino, h.Depth, disklayout.ExtentMaxDepth)
		case want >= 0 && int(h.Depth) != want:
			return run{}, corrupt("inode %d: extent node at level %d has depth %d, want %d", in.ino, level, h.Depth, want)
		case h.Entries > h.Max || disklayout.ExtentHeaderSize+int(h.Max)*disklayout.ExtentEntrySize > len(node):
			return run{}, corrupt("inode %d: extent node with %d/%d entries does not fit %d bytes", in.ino, h.Entries, h.Max, len(node))
		}
		n := int(h.Entries)
		if h.Depth == 0 {
			i := sort.Search(n, func(i int) bool { return uint64(disklayout.DecodeExtent(node, i).Block) > lblk }) - 1
			next := end
			if i+1 < n {
				next = min(next, uint64(disklayout.DecodeExtent(node, i+1).Block))
			}
			if i >= 0 {
				e := disklayout.DecodeExtent(node, i)
				if eend := uint64(e.Block) + uint64(e.Len); lblk < eend {
					if eend > next {
						return run{}, corrupt("inode %d: extents overlap at file block %d", in.ino, e.Block)
					}
					off := lblk - uint64(e.Block)
					if e.Uninitialized {
						return run{0, eend - lblk}, nil
					}
					if e.Start == 0 {
						return run{}, corrupt("inode %d: extent maps to block 0", in.ino)
					}
					return run{e.Start + off, eend - lblk}, nil
				}
			}
			if next <= lblk {
				return run{}, corrupt("inode %d: extents out of order near file block %d", in.ino, lblk)
			}
			return run{0, next - lblk}, nil
		}
		if n == 0 {
			return run{}, corrupt("inode %d: empty extent index node", in.ino)
		}
		i := sort.Search(n, func(i int) bool { return uint64(disklayout.DecodeExtentIndex(node, i).Block) > lblk }) - 1
		if i < 0 {
			first := uint64(disklayout.DecodeExtentIndex(node, 0).Block)
			return run{0, first - lblk}, nil
		}
		ix := disklayout.DecodeExtentIndex(node, i)
		if i+1 < n {
			nb := uint64(disklayout.DecodeExtentIndex(node, i+1).Block)
			if nb <= uint64(ix.Block) {
				return run{}, corrupt("inode %d: extent index out of order", in.ino)
			}
			end = min(end, nb)
		}
		b, err := f.metaBlock(ix.Leaf)
		if err != nil {
			return run{}, fmt.Errorf("inode %d: extent tree: %w", in.ino, err)
		}
		node = b
		want = int(h.Depth) - 1
	}
}

// indirectRun maps a block through the classic ext2/3 block map.
func (f *FS) indirectRun(in *inode, lblk uint64) (run, error) {
	if lblk < disklayout.NDirBlocks {
		ptr := func(i uint64) uint64 { return uint64(le32(in.Block[i*4:])) }
		return contiguous(ptr, lblk, disklayout.NDirBlocks), nil
	}
	apb := f.bs / 4 // pointers per block
	rel := lblk - disklayout.NDirBlocks
	// span[k]: file blocks under one pointer k levels above the data.
	span := [4]uint64{1, apb, apb * apb, apb * apb * apb}
	levels := 0
	var root uint32
	switch {
	case rel < span[1]:
		levels, root = 1, le32(in.Block[disklayout.IndBlock*4:])
	case rel-span[1] < span[2]:
		rel -= span[1]
		levels, root = 2, le32(in.Block[disklayout.DIndBlock*4:])
	case rel-span[1]-span[2] < span[3]:
		rel -= span[1] + span[2]
		levels, root = 3, le32(in.Block[disklayout.TIndBlock*4:])
	default:
		return run{}, corrupt("inode %d: file block %d beyond the block map", in.ino, lblk)
	}
	ptr := uint64(root)
	for k := levels; ; k-- {
		if ptr == 0 {
			return run{0, span[k] - rel%span[k]}, nil
		}
		b, err := f.metaBlock(ptr)
		if err != nil {
			return run{}, fmt.Errorf("inode %d: block map: %w", in.ino, err)
		}
		idx := rel / span[k-1] % apb
		if k == 1 {
			return contiguous(func(i uint64) uint64 { return uint64(le32(b[i*4:])) }, idx, apb), nil
		}
		ptr = uint64(le32(b[idx*4:]))
	}
}

// contiguous returns the run starting at pointer i of n: consecutive
// disk blocks, or consecutive zero pointers.
func contiguous(ptr func(uint64) uint64, i, n uint64) run {
	p := ptr(i)
	j := i + 1
	if p == 0 {
		for j < n && ptr(j) == 0 {
			j++
		}
		return run{0, j - i}
	}
	for j < n && ptr(j) == p+(j-i) {
		j++
	}
	return run{p, j - i}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// ReadAt reads file data of a regular file. Holes and uninitialized
// extents read as zeros; each contiguous run of blocks is one read.
func (f *FS) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return 0, err
	}
	switch in.typ() {
	case fsys.S_IFREG:
	case fsys.S_IFDIR:
		return 0, fmt.Errorf("ext: inode %d: %w", ino, fsys.ErrIsDir)
	default:
		return 0, fmt.Errorf("ext: inode %d is not a regular file", ino)
	}
	return f.readData(in, p, off)
}

func (f *FS) readData(in *inode, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ext: inode %d: negative offset %d", in.ino, off)
	}
	if off >= in.size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > in.size-off {
		want = want[:in.size-off]
	}
	if in.flag(disklayout.InodeFlagInlineData) {
		data, err := f.inlineData(in)
		if err != nil {
			return 0, err
		}
		n := 0
		if off < int64(len(data)) {
			n = copy(want, data[off:])
		}
		clear(want[n:]) // i_size may exceed the inline bytes: the rest reads as zeros
	} else {
		for n := 0; n < len(want); {
			pos := uint64(off) + uint64(n)
			lblk, within := pos>>f.bsBits, pos&(f.bs-1)
			r, err := f.mapRun(in, lblk)
			if err != nil {
				return n, err
			}
			chunk := min(r.n<<f.bsBits-within, uint64(len(want)-n))
			dst := want[n : n+int(chunk)]
			if r.phys == 0 {
				clear(dst)
			} else if err := f.readFull(dst, r.phys<<f.bsBits+within); err != nil {
				return n, fmt.Errorf("ext: inode %d: reading data: %w", in.ino, err)
			}
			n += int(chunk)
		}
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// DataExtents returns the byte ranges of a regular file that are backed
// by written data, in order; holes and uninitialized extents are left out.
func (f *FS) DataExtents(ino uint64) ([]fsys.Extent, error) {
	in, err := f.getInode(ino)
	if err != nil {
		return nil, err
	}
	if in.typ() != fsys.S_IFREG {
		return nil, fmt.Errorf("ext: inode %d is not a regular file", ino)
	}
	if in.size == 0 {
		return nil, nil
	}
	if in.flag(disklayout.InodeFlagInlineData) {
		data, err := f.inlineData(in)
		if err != nil || len(data) == 0 {
			return nil, err
		}
		return []fsys.Extent{{Off: 0, Len: int64(len(data))}}, nil
	}
	var out []fsys.Extent
	end := f.lblocks(in)
	mapped := uint64(0)
	for lblk := uint64(0); lblk < end; {
		r, err := f.mapRun(in, lblk)
		if err != nil {
			return nil, err
		}
		n := min(r.n, end-lblk)
		if r.phys != 0 {
			// A real file cannot map more blocks than the filesystem has;
			// a crafted block map that reuses blocks could, without bound.
			if mapped += n; mapped > f.blocks {
				return nil, corrupt("inode %d maps more blocks than the filesystem holds", ino)
			}
			o, l := int64(lblk<<f.bsBits), int64(n<<f.bsBits)
			if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == o {
				out[k].Len += l
			} else {
				out = append(out, fsys.Extent{Off: o, Len: l})
			}
		}
		lblk += n
	}
	if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len > in.size {
		out[k].Len = in.size - out[k].Off
	}
	return out, nil
}
