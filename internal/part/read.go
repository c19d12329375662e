// Package part reads MBR (with the EBR chain of logical partitions) and GPT
// partition tables from any io.ReaderAt.
//
// Damage is handled as Linux's partition code does where it can: a broken
// EBR chain (loop, missing signature, EBR beyond the disk, more than
// MaxLogical links) ends the walk and adds a Table.Warnings entry but keeps
// every partition found so far; a partition extending past the end of the
// disk is kept as recorded and warned about. A damaged primary GPT falls
// back to the backup (with a warning); a damaged backup next to a good
// primary is a warning; both damaged is an error. Read never allocates
// more than a few MiB whatever the disk says.
package part

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Scheme is the kind of partition table found.
type Scheme string

const (
	SchemeMBR  Scheme = "mbr"
	SchemeGPT  Scheme = "gpt"
	SchemeNone Scheme = "none"
)

// MaxLogical bounds the EBR chain walk. Linux stops at 256 partitions per disk.
const MaxLogical = 252

// Partition is one entry of a partition table.
type Partition struct {
	Number   int    // Linux numbering: MBR primaries 1-4 by slot, logical partitions 5, 6, ... in chain order; GPT entries by index+1
	Start    int64  // bytes from the start of the disk
	Size     int64  // bytes
	Type     string // util-linux name ("Linux", "W95 FAT32 (LBA)", "EFI System", ...); "0xNN" or the GUID when unknown
	MBRType  byte   // MBR type code (0 for GPT)
	TypeGUID string // GPT type GUID, upper-case canonical form
	UUID     string // GPT partition GUID (upper case), or for MBR the Linux PARTUUID "dddddddd-nn" (hex)
	Name     string // GPT partition name
	Bootable bool   // MBR active flag (0x80), or GPT legacy BIOS bootable attribute (bit 2)
	Extended bool   // the extended container itself; holds no filesystem
	Logical  bool
}

// Table is a disk's partition table.
type Table struct {
	Scheme     Scheme
	SectorSize int    // 512, or 4096 for a GPT found with 4096-byte sectors
	DiskID     string // MBR disk signature as 0x%08x, or GPT disk GUID
	Partitions []Partition
	// Warnings describe damage that was worked around (see the package doc).
	Warnings []string
}

// Reader returns a reader over the partition's bytes.
func (p Partition) Reader(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, p.Start, p.Size)
}

// Read parses the partition table of a disk of the given size.
//
// A disk with no MBR signature, or whose sector 0 is a filesystem boot
// sector (FAT/NTFS/exFAT BPB) or which holds an ext2/3/4 or ISO9660
// filesystem starting at byte 0, is SchemeNone with no partitions. An MBR
// with a protective entry (type 0xEE, also in a hybrid MBR) is read as
// GPT: the primary header at LBA 1, or the backup at the last LBA when the
// primary or its entry array fails its CRC or checks. GPT is looked for
// with 512-byte and then 4096-byte sectors; MBRs assume 512-byte sectors.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	if size < 512 {
		return nil, fmt.Errorf("part: disk of %d bytes is too small to hold a partition table", size)
	}
	s0 := make([]byte, 512)
	if err := readFull(r, s0, 0); err != nil {
		return nil, fmt.Errorf("part: reading sector 0: %w", err)
	}
	none := &Table{Scheme: SchemeNone, SectorSize: 512}
	if !hasMBRSignature(s0) {
		return none, nil
	}
	entries := decodeMBREntries(s0)
	for _, e := range entries {
		if e.Type == mbrTypeGPTProtective {
			return readGPT(r, size)
		}
	}
	if looksLikeBootSector(s0) {
		return none, nil
	}
	head := make([]byte, min(size, 32774))
	if err := readFull(r, head, 0); err != nil {
		return nil, fmt.Errorf("part: reading the start of the disk: %w", err)
	}
	if hasFilesystemAt0(head) {
		return none, nil
	}
	for _, e := range entries {
		// Linux rejects the table (it is not an MBR) when a status byte is neither.
		if e.Status != 0 && e.Status != 0x80 {
			return none, nil
		}
	}
	return readMBR(r, size, s0, entries)
}

func readMBR(r io.ReaderAt, size int64, s0 []byte, entries [4]mbrEntry) (*Table, error) {
	diskID := binary.LittleEndian.Uint32(s0[mbrDiskIDOff:])
	t := &Table{Scheme: SchemeMBR, SectorSize: 512, DiskID: fmt.Sprintf("0x%08x", diskID)}
	for i, e := range entries {
		if e.empty() {
			continue
		}
		p := mbrPartition(diskID, i+1, int64(e.StartLBA), e)
		p.Extended = isExtendedType(e.Type)
		t.checkBounds(p, size)
		t.Partitions = append(t.Partitions, p)
	}
	next := 5
	for _, e := range entries {
		if e.empty() || !isExtendedType(e.Type) {
			continue
		}
		if err := t.walkEBR(r, size, diskID, e, &next); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func mbrPartition(diskID uint32, num int, startLBA int64, e mbrEntry) Partition {
	return Partition{
		Number:   num,
		Start:    startLBA * 512,
		Size:     int64(e.Sectors) * 512,
		Type:     MBRTypeName(e.Type),
		MBRType:  e.Type,
		UUID:     fmt.Sprintf("%08x-%02x", diskID, num),
		Bootable: e.Status == 0x80,
	}
}

// walkEBR follows the chain of extended boot records inside ext. In each
// EBR, data entries are relative to that EBR and the link to the next EBR
// is relative to the start of ext; like Linux, all four entries are looked
// at and the first extended-type entry is the link.
func (t *Table) walkEBR(r io.ReaderAt, size int64, diskID uint32, ext mbrEntry, next *int) error {
	extStart := int64(ext.StartLBA)
	extEnd := extStart + int64(ext.Sectors)
	ebr := extStart
	seen := make(map[int64]bool)
	sector := make([]byte, 512)
	for links := 0; ; links++ {
		if links == MaxLogical {
			t.warnf("EBR chain in extended partition at LBA %d has more than %d links; stopped", extStart, MaxLogical)
			return nil
		}
		if seen[ebr] {
			t.warnf("EBR chain in extended partition at LBA %d loops back to LBA %d; stopped", extStart, ebr)
			return nil
		}
		seen[ebr] = true
		if (ebr+1)*512 > size {
			t.warnf("EBR at LBA %d is beyond the end of the disk (%d sectors); stopped", ebr, size/512)
			return nil
		}
		if err := readFull(r, sector, ebr*512); err != nil {
			return fmt.Errorf("part: reading EBR at LBA %d: %w", ebr, err)
		}
		if !hasMBRSignature(sector) {
			t.warnf("EBR at LBA %d has no 0x55AA signature; stopped", ebr)
			return nil
		}
		var link *mbrEntry
		for _, e := range decodeMBREntries(sector) {
			if e.empty() {
				continue
			}
			if isExtendedType(e.Type) {
				if link == nil {
					link = &e
				}
				continue
			}
			p := mbrPartition(diskID, *next, ebr+int64(e.StartLBA), e)
			p.Logical = true
			*next++
			if p.Start/512+int64(e.Sectors) > extEnd {
				t.warnf("logical partition %d (LBA %d, %d sectors) extends beyond its extended partition (ends at LBA %d)",
					p.Number, p.Start/512, e.Sectors, extEnd)
			}
			t.checkBounds(p, size)
			t.Partitions = append(t.Partitions, p)
		}
		if link == nil {
			return nil
		}
		ebr = extStart + int64(link.StartLBA)
	}
}

func (t *Table) checkBounds(p Partition, size int64) {
	if p.Start+p.Size > size {
		t.warnf("partition %d (bytes %d-%d) extends beyond the end of the disk (%d bytes)",
			p.Number, p.Start, p.Start+p.Size, size)
	}
}

func (t *Table) warnf(format string, args ...any) {
	t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
}

var errNoGPTSignature = errors.New("no GPT header signature")

func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	for _, ss := range []int64{512, 4096} {
		t, err := readGPTSectorSize(r, size, ss)
		if errors.Is(err, errNoGPTSignature) {
			continue
		}
		return t, err
	}
	return nil, errors.New("part: protective MBR (type 0xEE) but no GPT header at LBA 1 or the last LBA with 512- or 4096-byte sectors")
}

// gpt is one validated copy of the GPT: header and entry array.
type gpt struct {
	h       gptHeader
	entries []byte
}

func readGPTSectorSize(r io.ReaderAt, size, ss int64) (*Table, error) {
	if size < 3*ss {
		return nil, errNoGPTSignature
	}
	lastLBA := size/ss - 1
	prim, perr := loadGPT(r, size, ss, 1)
	if perr == nil {
		t := buildGPT(prim, size, ss)
		alt := int64(prim.h.AlternateLBA)
		switch {
		case prim.h.AlternateLBA > uint64(lastLBA):
			t.warnf("backup GPT header LBA %d is beyond the end of the disk (last LBA %d); disk truncated?", prim.h.AlternateLBA, lastLBA)
		default:
			if alt != lastLBA {
				t.warnf("backup GPT header is at LBA %d, not at the last LBA %d", alt, lastLBA)
			}
			if _, berr := loadGPT(r, size, ss, alt); berr != nil {
				t.warnf("backup GPT at LBA %d is damaged: %v", alt, berr)
			}
		}
		return t, nil
	}
	back, berr := loadGPT(r, size, ss, lastLBA)
	if berr == nil {
		t := buildGPT(back, size, ss)
		t.warnf("primary GPT is damaged (%v); using the backup at LBA %d", perr, lastLBA)
		return t, nil
	}
	if errors.Is(perr, errNoGPTSignature) && errors.Is(berr, errNoGPTSignature) {
		return nil, errNoGPTSignature
	}
	return nil, fmt.Errorf("part: GPT: primary header at LBA 1: %v; backup header at LBA %d: %v", perr, lastLBA, berr)
}

// loadGPT reads and validates the GPT header at lba and its entry array.
func loadGPT(r io.ReaderAt, size, ss, lba int64) (*gpt, error) {
	sector := make([]byte, ss)
	if err := readFull(r, sector, lba*ss); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if string(sector[:8]) != gptSignature {
		return nil, errNoGPTSignature
	}
	h, err := decodeGPTHeader(sector)
	if err != nil {
		return nil, err
	}
	if h.MyLBA != uint64(lba) {
		return nil, fmt.Errorf("header at LBA %d says it is at LBA %d", lba, h.MyLBA)
	}
	n := int64(h.NumEntries) * int64(h.EntrySize) // bounded by decodeGPTHeader
	sectors := uint64(size / ss)
	if h.EntriesLBA < 2 || h.EntriesLBA >= sectors || h.EntriesLBA == uint64(lba) ||
		int64(h.EntriesLBA)*ss+n > size {
		return nil, fmt.Errorf("partition entry array at LBA %d (%d bytes) is outside the disk or overlaps the header",
			h.EntriesLBA, n)
	}
	entries := make([]byte, n)
	if err := readFull(r, entries, int64(h.EntriesLBA)*ss); err != nil {
		return nil, fmt.Errorf("reading partition entry array: %w", err)
	}
	if got := gptEntriesCRC(entries); got != h.EntriesCRC {
		return nil, fmt.Errorf("partition entry array CRC mismatch (stored %#08x, computed %#08x)", h.EntriesCRC, got)
	}
	return &gpt{h: h, entries: entries}, nil
}

func buildGPT(g *gpt, size, ss int64) *Table {
	t := &Table{Scheme: SchemeGPT, SectorSize: int(ss), DiskID: formatGUID(g.h.DiskGUID)}
	es := int(g.h.EntrySize)
	const maxLBA = (1<<63 - 1) / 4096
	for i := 0; i < int(g.h.NumEntries); i++ {
		e := decodeGPTEntry(g.entries[i*es : (i+1)*es])
		if e.empty() {
			continue
		}
		if e.LastLBA < e.FirstLBA || e.LastLBA > maxLBA {
			t.warnf("GPT entry %d has an invalid LBA range %d-%d; skipped", i+1, e.FirstLBA, e.LastLBA)
			continue
		}
		tg := formatGUID(e.TypeGUID)
		p := Partition{
			Number:   i + 1,
			Start:    int64(e.FirstLBA) * ss,
			Size:     int64(e.LastLBA-e.FirstLBA+1) * ss,
			Type:     GPTTypeName(tg),
			TypeGUID: tg,
			UUID:     formatGUID(e.PartGUID),
			Name:     e.Name,
			Bootable: e.Attribute&gptAttrLegacyBoot != 0,
		}
		t.checkBounds(p, size)
		t.Partitions = append(t.Partitions, p)
	}
	return t
}

// readFull reads len(p) bytes at off; a short read is an error even when
// the reader reports io.EOF with it.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
