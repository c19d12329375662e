package imgfmt

import (
	"encoding/binary"
	"io"
)

// WriteVDI writes a dynamically allocated VDI image: the header in the
// first sector, the block map in the following sectors, then each 1 MiB
// block that holds non-zero data. qemu reads VDI only with 1 MiB blocks,
// so a non-empty disk costs at least 1 MiB.
func WriteVDI(w io.Writer, content io.ReaderAt, size int64, opts Options) error {
	if err := checkSize(size, MaxSize); err != nil {
		return err
	}
	used, err := allocation(content, size, vdiBlockSize)
	if err != nil {
		return err
	}
	blocks := int64(len(used))
	headerLen := int64(binary.Size(vdiHeader{}))
	offBlocks := roundUp(headerLen, SectorSize)
	offData := offBlocks + roundUp(blocks*4, SectorSize)

	bmap := make([]byte, offData-offBlocks)
	var allocated uint32
	for i, u := range used {
		e := uint32(vdiUnalloc)
		if u {
			e = allocated
			allocated++
		}
		binary.LittleEndian.PutUint32(bmap[i*4:], e)
	}

	create, err := opts.newUUID()
	if err != nil {
		return err
	}
	modify, err := opts.newUUID()
	if err != nil {
		return err
	}
	h := vdiHeader{
		Signature:       vdiSignature,
		Version:         vdiVersion,
		HeaderSize:      vdiHeaderSize,
		Type:            vdiTypeNormal,
		OffsetBlocks:    uint32(offBlocks),
		OffsetData:      uint32(offData),
		LegacyGeometry:  vdiGeometry{SectorSize: SectorSize},
		DiskSize:        uint64(roundUp(size, SectorSize)),
		BlockSize:       vdiBlockSize,
		Blocks:          uint32(blocks),
		BlocksAllocated: allocated,
		UUIDCreate:      vdiUUID(create),
		UUIDModify:      vdiUUID(modify),
	}
	copy(h.Info[:], vdiInfoText)

	ow := &offsetWriter{w: w}
	if err := ow.writeAt(0, h.encode()); err != nil {
		return err
	}
	if err := ow.writeAt(offBlocks, bmap); err != nil {
		return err
	}
	for i, u := range used {
		if u {
			if err := ow.copyFrom(content, size, int64(i)*vdiBlockSize, vdiBlockSize); err != nil {
				return err
			}
		}
	}
	return ow.at(offData + int64(allocated)*vdiBlockSize)
}
