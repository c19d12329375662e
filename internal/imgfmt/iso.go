package imgfmt

import (
	"encoding/binary"
	"io"
)

// ISO layout, in 2048-byte sectors: the system area (0-15), then the
// primary volume descriptor, the El Torito boot record, the terminator,
// the two path tables, the root directory, the boot catalog and the boot
// image. The root directory is empty: the catalog and the image are
// reachable only through the boot record.
const (
	isoPVDSector     = 16
	isoBootVDSector  = 17
	isoTermSector    = 18
	isoLPathSector   = 19
	isoMPathSector   = 20
	isoRootSector    = 21
	isoCatalogSector = 22
	isoImageSector   = 23
	isoSectors       = isoImageSector + floppy144Size/isoSectorSize
	isoVolumeID      = "VMROOT"
)

// ISOSize is the size of every ISO WriteISO produces (743 sectors).
const ISOSize = isoSectors * isoSectorSize

// WriteISO writes an ISO 9660 CD that boots the content as an El Torito
// emulated 1.44 MB floppy. El Torito floppy emulation maps the whole
// diskette onto the CD, so the image is padded to 1,474,560 bytes, and
// content larger than that is refused.
func WriteISO(w io.Writer, content io.ReaderAt, size int64, opts Options) error {
	if err := checkSize(size, floppy144Size); err != nil {
		return err
	}
	now := opts.now()

	root := func(id uint8) isoDirRecord {
		return isoDirRecord{
			Length:               isoDirRecordLen,
			Extent:               both32(isoRootSector),
			DataLength:           both32(isoSectorSize),
			Recorded:             dirTime(now),
			Flags:                isoDirFlag,
			VolumeSequenceNumber: both16(1),
			IDLength:             1,
			ID:                   id,
		}
	}
	pathRec := isoPathTableRecord{IDLength: 1, Extent: isoRootSector, Parent: 1}
	lPath := encodeLE(&pathRec)
	mPath := make([]byte, len(lPath))
	copy(mPath, lPath)
	binary.BigEndian.PutUint32(mPath[2:], isoRootSector)
	binary.BigEndian.PutUint16(mPath[6:], 1)

	pvd := isoPrimaryVD{
		Type:                 isoVDPrimary,
		Version:              1,
		VolumeSpaceSize:      both32(isoSectors),
		VolumeSetSize:        both16(1),
		VolumeSequenceNumber: both16(1),
		LogicalBlockSize:     both16(isoSectorSize),
		PathTableSize:        both32(uint32(len(lPath))),
		RootDirectory:        root(0),
		Created:              volumeTime(now),
		Modified:             volumeTime(now),
		Expires:              noVolumeTime(),
		Effective:            noVolumeTime(),
		FileStructureVersion: 1,
	}
	copy(pvd.StdID[:], isoStdID)
	binary.LittleEndian.PutUint32(pvd.LPathTable[:], isoLPathSector)
	binary.BigEndian.PutUint32(pvd.MPathTable[:], isoMPathSector)
	for _, f := range []struct {
		dst []byte
		s   string
	}{
		{pvd.SystemID[:], ""},
		{pvd.VolumeID[:], isoVolumeID},
		{pvd.VolumeSetID[:], ""},
		{pvd.PublisherID[:], ""},
		{pvd.PreparerID[:], ""},
		{pvd.ApplicationID[:], "VMROOT"},
		{pvd.CopyrightFileID[:], ""},
		{pvd.AbstractFileID[:], ""},
		{pvd.BibliographicFileID[:], ""},
	} {
		copy(f.dst, padded(f.s, len(f.dst), ' '))
	}

	br := isoBootRecordVD{Type: isoVDBoot, Version: 1}
	copy(br.StdID[:], isoStdID)
	copy(br.BootSystemID[:], eltoritoID)
	binary.LittleEndian.PutUint32(br.BootCatalog[:], isoCatalogSector)

	term := isoTerminatorVD{Type: isoVDEnd, Version: 1}
	copy(term.StdID[:], isoStdID)

	rootDir := append(encodeLE(ptr(root(0))), encodeLE(ptr(root(1)))...)

	val := eltoritoValidationEntry{HeaderID: 1, PlatformID: eltoritoX86, Key: [2]byte{0x55, 0xAA}}
	copy(val.IDString[:], "VMROOT")
	entry := eltoritoDefaultEntry{
		BootIndicator: eltoritoBootable,
		MediaType:     eltoritoFloppy144,
		SectorCount:   1,
		LoadRBA:       isoImageSector,
	}
	catalog := append(val.encode(), encodeLE(&entry)...)

	ow := &offsetWriter{w: w}
	for _, part := range []struct {
		sector int64
		data   []byte
	}{
		{isoPVDSector, encodeLE(&pvd)},
		{isoBootVDSector, encodeLE(&br)},
		{isoTermSector, encodeLE(&term)},
		{isoLPathSector, lPath},
		{isoMPathSector, mPath},
		{isoRootSector, rootDir},
		{isoCatalogSector, catalog},
	} {
		if err := ow.writeAt(part.sector*isoSectorSize, part.data); err != nil {
			return err
		}
	}
	if err := ow.padTo(isoImageSector * isoSectorSize); err != nil {
		return err
	}
	if err := ow.copyFrom(content, size, 0, floppy144Size); err != nil {
		return err
	}
	return ow.at(ISOSize)
}

func ptr[T any](v T) *T { return &v }
