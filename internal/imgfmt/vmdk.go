package imgfmt

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// vmdkGrainSectors is the smallest grain VMware's specification allows (a
// power of two of at least 8 sectors, 4 KiB). qemu would also read
// one-sector grains, which VMware products are not specified to accept.
const vmdkGrainSectors = 8

// vmdkMaxSize is the sparse extent limit of VMware hosted products (2 TiB
// less a sector); MaxSize is lower anyway.
const vmdkMaxSize = 2<<40 - SectorSize

// WriteVMDK writes a monolithicSparse VMDK: header, embedded descriptor,
// redundant and primary grain directories with all their grain tables,
// then the grains that hold non-zero data, in disk order. The extent's
// name in the descriptor is opts.Name.
func WriteVMDK(w io.Writer, content io.ReaderAt, size int64, opts Options) error {
	if err := checkSize(size, min(MaxSize, vmdkMaxSize)); err != nil {
		return err
	}
	name := opts.Name
	if name == "" {
		name = "disk.vmdk"
	}
	// The descriptor has no quoting: a name that breaks its line cannot
	// be written.
	if strings.ContainsAny(name, "\"\r\n\x00") || strings.ContainsRune(name, '/') {
		return fmt.Errorf("imgfmt: VMDK extent name %q cannot appear in a descriptor", name)
	}
	var cidBytes [4]byte
	if err := readRandom(opts, cidBytes[:]); err != nil {
		return err
	}
	cid := binary.LittleEndian.Uint32(cidBytes[:])
	if cid == 0xFFFFFFFF { // means "no parent" in parentCID
		cid = 0xFFFFFFFE
	}

	const grainBytes = vmdkGrainSectors * SectorSize
	capacity := divRoundUp(size, SectorSize)
	used, err := allocation(content, size, grainBytes)
	if err != nil {
		return err
	}
	numGTs := divRoundUp(int64(len(used)), vmdkGTEsPerGT)
	gdSectors := divRoundUp(numGTs*4, SectorSize)
	const gtSectors = vmdkGTEsPerGT * 4 / SectorSize

	desc := vmdkDescriptor{
		CID:       cid,
		Sectors:   capacity,
		FileName:  name,
		Cylinders: max(1, divRoundUp(capacity, 16*63)),
	}.encode()
	descSectors := divRoundUp(int64(len(desc)), SectorSize)

	rgd := 1 + descSectors
	rgt := rgd + gdSectors
	gd := rgt + numGTs*gtSectors
	gt := gd + gdSectors
	overhead := gt + numGTs*gtSectors

	h := vmdkHeader{
		Magic:              vmdkMagic,
		Version:            vmdkVersion,
		Flags:              vmdkFlagNLTest | vmdkFlagRedundGD,
		Capacity:           uint64(capacity),
		GrainSize:          vmdkGrainSectors,
		DescriptorOffset:   1,
		DescriptorSize:     uint64(descSectors),
		NumGTEsPerGT:       vmdkGTEsPerGT,
		RGDOffset:          uint64(rgd),
		GDOffset:           uint64(gd),
		OverHead:           uint64(overhead),
		SingleEndLineChar:  '\n',
		NonEndLineChar:     ' ',
		DoubleEndLineChar1: '\r',
		DoubleEndLineChar2: '\n',
	}

	// Grain tables: entry g holds the sector of grain g, 0 if unallocated.
	gts := make([]byte, numGTs*gtSectors*SectorSize)
	next := overhead
	for g, u := range used {
		if u {
			binary.LittleEndian.PutUint32(gts[g*4:], uint32(next))
			next += vmdkGrainSectors
		}
	}
	dir := func(first int64) []byte {
		b := make([]byte, gdSectors*SectorSize)
		for i := range numGTs {
			binary.LittleEndian.PutUint32(b[i*4:], uint32(first+i*gtSectors))
		}
		return b
	}

	ow := &offsetWriter{w: w}
	for _, part := range []struct {
		sector int64
		data   []byte
	}{
		{0, h.encode()},
		{1, desc},
		{rgd, dir(rgt)},
		{rgt, gts},
		{gd, dir(gt)},
		{gt, gts},
	} {
		if err := ow.writeAt(part.sector*SectorSize, part.data); err != nil {
			return err
		}
	}
	if err := ow.padTo(overhead * SectorSize); err != nil {
		return err
	}
	for g, u := range used {
		if u {
			if err := ow.copyFrom(content, size, int64(g)*grainBytes, grainBytes); err != nil {
				return err
			}
		}
	}
	return ow.at(next * SectorSize)
}

func readRandom(opts Options, b []byte) error {
	r := opts.Rand
	if r == nil {
		r = randReader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("imgfmt: random identifier: %w", err)
	}
	return nil
}
