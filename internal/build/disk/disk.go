// Package disk writes partition tables: an MBR with primary, extended and
// logical partitions (an EBR chain), or a GPT with its protective MBR and
// backup copy. Validate refuses tables whose partitions overlap, leave the
// disk or the extended partition, or cannot be encoded; Write writes only
// the table sectors, never partition content.
package disk

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
)

// Scheme is "mbr" or "gpt".
type Scheme string

const (
	MBR Scheme = "mbr"
	GPT Scheme = "gpt"
)

// Well-known GPT partition types.
var (
	TypeESP       = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeBasicData = mustGUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
	TypeLinux     = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// Partition is one entry. Start and Sectors are absolute, in 512-byte sectors.
type Partition struct {
	Number   int // MBR: 1-4 primary or extended, 5 and up logical in chain order; GPT: 1-128
	Start    int64
	Sectors  int64
	MBRType  byte
	GPTType  GUID
	GUID     GUID // GPT partition GUID; zero means random
	Name     string
	Bootable bool // MBR active flag; GPT legacy-BIOS-bootable attribute
}

// End is the partition's last sector.
func (p Partition) End() int64 { return p.Start + p.Sectors - 1 }

// IsExtended reports an MBR extended partition type.
func IsExtended(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

// Table is a whole disk's partition table.
type Table struct {
	Scheme     Scheme
	Sectors    int64 // the disk's size
	DiskID     uint32
	DiskGUID   GUID // zero means random
	Partitions []Partition
}

// FirstUsable and LastUsable bound the sectors partitions may use.
func (t *Table) FirstUsable() int64 {
	if t.Scheme == GPT {
		return 2 + gptTableSectors
	}
	return 1
}

func (t *Table) LastUsable() int64 {
	if t.Scheme == GPT {
		return t.Sectors - 2 - gptTableSectors
	}
	return t.Sectors - 1
}

// ebrs returns the sector of each logical partition's EBR: the first sector
// after the previous logical partition, or the extended partition's start.
func ebrs(ext Partition, logical []Partition) []int64 {
	out := make([]int64, len(logical))
	at := ext.Start
	for i, l := range logical {
		out[i] = at
		at = l.End() + 1
	}
	return out
}

func (t *Table) split() (primary []Partition, ext *Partition, logical []Partition) {
	for i := range t.Partitions {
		p := t.Partitions[i]
		switch {
		case p.Number >= 5:
			logical = append(logical, p)
		default:
			primary = append(primary, p)
			if IsExtended(p.MBRType) {
				ext = &t.Partitions[i]
			}
		}
	}
	sort.Slice(logical, func(a, b int) bool { return logical[a].Number < logical[b].Number })
	return
}

// Validate checks that the table can be written and describes a sane disk.
func (t *Table) Validate() error {
	if t.Scheme != MBR && t.Scheme != GPT {
		return fmt.Errorf("unknown partition table %q (want mbr or gpt)", t.Scheme)
	}
	if t.Sectors < 64 {
		return fmt.Errorf("a %d-sector disk is too small for a partition table", t.Sectors)
	}
	seen := map[int]bool{}
	for _, p := range t.Partitions {
		if seen[p.Number] {
			return fmt.Errorf("partition %d is defined twice", p.Number)
		}
		seen[p.Number] = true
		if p.Sectors <= 0 {
			return fmt.Errorf("partition %d has no sectors", p.Number)
		}
		if t.Scheme == GPT {
			if p.Number < 1 || p.Number > gptEntries {
				return fmt.Errorf("partition %d: GPT partitions are numbered 1-%d", p.Number, gptEntries)
			}
			if p.GPTType == (GUID{}) {
				return fmt.Errorf("partition %d has no GPT type", p.Number)
			}
		} else {
			if p.Number < 1 {
				return fmt.Errorf("partition %d: MBR partitions are numbered from 1", p.Number)
			}
			if p.MBRType == 0 {
				return fmt.Errorf("partition %d: type 0x00 marks an unused entry", p.Number)
			}
			if p.Number <= 4 && p.Start > 0xFFFFFFFF || p.Sectors > 0xFFFFFFFF {
				return fmt.Errorf("partition %d lies beyond the 2 TiB an MBR can address", p.Number)
			}
		}
		if p.Start < t.FirstUsable() || p.End() > t.LastUsable() {
			return fmt.Errorf("partition %d (sectors %d-%d) does not fit the disk (usable sectors %d-%d)", p.Number, p.Start, p.End(), t.FirstUsable(), t.LastUsable())
		}
	}
	if t.Scheme == GPT {
		return overlaps(t.Partitions)
	}
	primary, ext, logical := t.split()
	nExt := 0
	for _, p := range primary {
		if IsExtended(p.MBRType) {
			nExt++
		}
	}
	if nExt > 1 {
		return fmt.Errorf("an MBR holds at most one extended partition, found %d", nExt)
	}
	if err := overlaps(primary); err != nil {
		return err
	}
	if len(logical) == 0 {
		return nil
	}
	if ext == nil {
		return fmt.Errorf("partition %d is a logical partition (5 and up) but there is no extended partition (type 0x05, 0x0f or 0x85)", logical[0].Number)
	}
	for i, l := range logical {
		if l.Number != 5+i {
			return fmt.Errorf("logical partitions are numbered 5, 6, ... in order; partition %d is missing", 5+i)
		}
		if IsExtended(l.MBRType) {
			return fmt.Errorf("partition %d: a logical partition cannot be extended", l.Number)
		}
		if l.Start < ext.Start || l.End() > ext.End() {
			return fmt.Errorf("logical partition %d (sectors %d-%d) does not fit inside extended partition %d (sectors %d-%d)", l.Number, l.Start, l.End(), ext.Number, ext.Start, ext.End())
		}
	}
	for i, at := range ebrs(*ext, logical) {
		if logical[i].Start <= at {
			return fmt.Errorf("logical partition %d must start after sector %d, which holds its EBR (partitions overlap or are out of order)", logical[i].Number, at)
		}
	}
	return nil
}

func overlaps(ps []Partition) error {
	s := append([]Partition(nil), ps...)
	sort.Slice(s, func(a, b int) bool { return s[a].Start < s[b].Start })
	for i := 1; i < len(s); i++ {
		if s[i].Start <= s[i-1].End() {
			return fmt.Errorf("partitions %d (sectors %d-%d) and %d (sectors %d-%d) overlap", s[i-1].Number, s[i-1].Start, s[i-1].End(), s[i].Number, s[i].Start, s[i].End())
		}
	}
	return nil
}

// Write validates the table and writes its sectors to w, a disk of
// t.Sectors sectors.
func (t *Table) Write(w io.WriterAt) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.Scheme == GPT {
		return t.writeGPT(w)
	}
	primary, ext, logical := t.split()
	var slots [4]mbrEntry
	for _, p := range primary {
		slots[p.Number-1] = mbrEntry{Bootable: p.Bootable, Type: p.MBRType, Start: uint32(p.Start),
			Sectors: uint32(p.Sectors), CHSStart: p.Start, CHSEnd: p.End()}
	}
	if _, err := w.WriteAt(bootRecord(slots[:], t.DiskID), 0); err != nil {
		return err
	}
	if ext == nil {
		return nil
	}
	at := ebrs(*ext, logical)
	for i, l := range logical {
		ents := []mbrEntry{{Bootable: l.Bootable, Type: l.MBRType, Start: uint32(l.Start - at[i]),
			Sectors: uint32(l.Sectors), CHSStart: l.Start, CHSEnd: l.End()}}
		if i+1 < len(logical) {
			// The link covers the next EBR through the end of its partition.
			n := logical[i+1]
			ents = append(ents, mbrEntry{Type: 0x05, Start: uint32(at[i+1] - ext.Start),
				Sectors: uint32(n.End() - at[i+1] + 1), CHSStart: at[i+1], CHSEnd: n.End()})
		}
		if _, err := w.WriteAt(bootRecord(ents, 0), at[i]*sectorSize); err != nil {
			return err
		}
	}
	return nil
}

func randomGUID() (GUID, error) {
	var g GUID
	if _, err := rand.Read(g[:]); err != nil {
		return g, err
	}
	g[7] = g[7]&0x0F | 0x40 // version 4 (stored little-endian)
	g[8] = g[8]&0x3F | 0x80
	return g, nil
}

func (t *Table) writeGPT(w io.WriterAt) error {
	pmbr := bootRecord([]mbrEntry{{Type: 0xEE, Start: 1, Sectors: uint32(min(t.Sectors-1, 0xFFFFFFFF)),
		CHSStart: 1, CHSEnd: t.Sectors - 1}}, 0)
	if _, err := w.WriteAt(pmbr, 0); err != nil {
		return err
	}
	arr := make([]byte, gptTableSectors*sectorSize)
	for _, p := range t.Partitions {
		id := p.GUID
		if id == (GUID{}) {
			var err error
			if id, err = randomGUID(); err != nil {
				return err
			}
		}
		var attrs uint64
		if p.Bootable {
			attrs |= 1 << 2
		}
		gptEntry{Type: p.GPTType, ID: id, First: p.Start, Last: p.End(), Attrs: attrs, Name: p.Name}.
			encode(arr[(p.Number-1)*gptEntrySize:])
	}
	dg := t.DiskGUID
	if dg == (GUID{}) {
		var err error
		if dg, err = randomGUID(); err != nil {
			return err
		}
	}
	last := t.Sectors - 1
	h := gptHeader{Current: 1, Backup: last, FirstUsable: t.FirstUsable(), LastUsable: t.LastUsable(),
		DiskGUID: dg, EntriesLBA: 2, EntriesCRC: crc32.ChecksumIEEE(arr)}
	backup := h
	backup.Current, backup.Backup, backup.EntriesLBA = last, 1, last-gptTableSectors
	for _, s := range []struct {
		b   []byte
		lba int64
	}{{h.encode(), 1}, {arr, 2}, {arr, backup.EntriesLBA}, {backup.encode(), last}} {
		if _, err := w.WriteAt(s.b, s.lba*sectorSize); err != nil {
			return err
		}
	}
	return nil
}
