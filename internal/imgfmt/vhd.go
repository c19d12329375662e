package imgfmt

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// vhdBlockSize is the dynamic disk block size: the smallest whose sector
// bitmap is a whole byte. Readers size the bitmap as sectors/8 (VirtualBox
// does), which smaller blocks would make zero.
const vhdBlockSize = 4096

// vhdCreator identifies this package in the footer. Readers that know no
// better (qemu among them) take the disk size from the CHS geometry, so
// the writers make the geometry cover the whole disk exactly.
var vhdCreator = [4]byte{'v', 'm', 'r', 't'}

// VHDDiskSize returns the virtual size a VHD holding size bytes gets: the
// smallest size at least as large whose CHS geometry, computed as the VHD
// specification prescribes, spans exactly that many sectors. A one-sector
// disk becomes 68 sectors (1 cylinder, 4 heads, 17 sectors per track).
func VHDDiskSize(size int64) (int64, error) {
	if err := checkSize(size, MaxSize); err != nil {
		return 0, err
	}
	need := divRoundUp(size, SectorSize)
	// Products of the geometry are at most 255*16 sectors apart.
	for n := need; n < need+2*255*16; n++ {
		c, h, s := vhdGeometry(n)
		if p := c * h * s; p >= need {
			return p * SectorSize, nil
		}
	}
	return 0, fmt.Errorf("%w: no VHD geometry covers %d bytes", ErrSize, size)
}

func vhdTimeStamp(t time.Time) uint32 {
	d := t.Sub(vhdEpoch) / time.Second
	if d < 0 {
		return 0
	}
	return uint32(d)
}

func newVHDFooter(diskSize int64, diskType uint32, dataOffset uint64, opts Options) (vhdFooter, error) {
	id, err := opts.newUUID()
	if err != nil {
		return vhdFooter{}, err
	}
	c, h, s := vhdGeometry(diskSize / SectorSize)
	f := vhdFooter{
		Features:           vhdFeaturesReserved,
		FileFormatVersion:  vhdVersion,
		DataOffset:         dataOffset,
		TimeStamp:          vhdTimeStamp(opts.now()),
		CreatorApplication: vhdCreator,
		CreatorVersion:     0x00010000,
		CreatorHostOS:      [4]byte{'W', 'i', '2', 'k'}, // the spec names only Windows and Macintosh
		OriginalSize:       uint64(diskSize),
		CurrentSize:        uint64(diskSize),
		Cylinders:          uint16(c),
		Heads:              uint8(h),
		SectorsPerTrack:    uint8(s),
		DiskType:           diskType,
		UniqueID:           id,
	}
	copy(f.Cookie[:], "conectix")
	return f, nil
}

// WriteVHDFixed writes a fixed VHD: the disk data (its size rounded up as
// VHDDiskSize says) followed by the footer.
func WriteVHDFixed(w io.Writer, content io.ReaderAt, size int64, opts Options) error {
	diskSize, err := VHDDiskSize(size)
	if err != nil {
		return err
	}
	f, err := newVHDFooter(diskSize, vhdTypeFixed, vhdNoDataOffset, opts)
	if err != nil {
		return err
	}
	ow := &offsetWriter{w: w}
	if err := ow.copyFrom(content, size, 0, diskSize); err != nil {
		return err
	}
	_, err = ow.Write(f.encode())
	return err
}

// WriteVHD writes a dynamic VHD: footer copy, dynamic header, block
// allocation table, then for each 4 KiB block holding non-zero data its
// sector bitmap and data, and the footer last.
func WriteVHD(w io.Writer, content io.ReaderAt, size int64, opts Options) error {
	diskSize, err := VHDDiskSize(size)
	if err != nil {
		return err
	}
	const (
		headerOff   = SectorSize
		batOff      = headerOff + 1024
		bitmapBytes = SectorSize // vhdBlockSize/SectorSize bits, padded to a sector
	)
	used, err := allocation(content, size, vhdBlockSize)
	if err != nil {
		return err
	}
	entries := divRoundUp(diskSize, vhdBlockSize)
	used = append(used, make([]bool, entries-int64(len(used)))...)
	batBytes := roundUp(entries*4, SectorSize)

	f, err := newVHDFooter(diskSize, vhdTypeDynamic, headerOff, opts)
	if err != nil {
		return err
	}
	footer := f.encode()
	dh := vhdDynamicHeader{
		DataOffset:      vhdNoDataOffset,
		TableOffset:     batOff,
		HeaderVersion:   vhdVersion,
		MaxTableEntries: uint32(entries),
		BlockSize:       vhdBlockSize,
	}
	copy(dh.Cookie[:], "cxsparse")

	bat := make([]byte, batBytes)
	next := int64(batOff) + batBytes
	for i, u := range used {
		e := uint32(vhdBATUnused)
		if u {
			e = uint32(next / SectorSize)
			next += bitmapBytes + vhdBlockSize
		}
		binary.BigEndian.PutUint32(bat[i*4:], e)
	}

	ow := &offsetWriter{w: w}
	if err := ow.writeAt(0, footer); err != nil {
		return err
	}
	if err := ow.writeAt(headerOff, dh.encode()); err != nil {
		return err
	}
	if err := ow.writeAt(batOff, bat); err != nil {
		return err
	}
	// Every sector of a stored block is marked present, so that readers
	// that honour the bitmap (and differencing children) see the data.
	bitmap := make([]byte, bitmapBytes)
	for i := range vhdBlockSize / SectorSize / 8 {
		bitmap[i] = 0xFF
	}
	for i, u := range used {
		if !u {
			continue
		}
		if _, err := ow.Write(bitmap); err != nil {
			return err
		}
		if err := ow.copyFrom(content, size, int64(i)*vhdBlockSize, vhdBlockSize); err != nil {
			return err
		}
	}
	if err := ow.at(next); err != nil {
		return err
	}
	_, err = ow.Write(footer)
	return err
}
