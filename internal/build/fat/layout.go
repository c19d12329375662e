package fat

import (
	"encoding/binary"
	"time"
)

// On-disk encodings of the FAT boot sector (BPB), the FAT32 FSInfo sector
// and directory entries, after Microsoft's "FAT: General Overview of
// On-Disk Format" (version 1.03).

const (
	sectorSize = 512
	dirEntSize = 32

	attrReadOnly = 0x01
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLFN      = 0x0F

	// NT reserved byte flags: the base name / extension is lower case.
	ntLowerBase = 0x08
	ntLowerExt  = 0x10

	media = 0xF8
)

// bpb holds the boot sector fields this package sets.
type bpb struct {
	Type              int // 12, 16 or 32
	SectorsPerCluster uint8
	Reserved          uint16
	RootEntries       uint16 // FAT12/16 only
	TotalSectors      uint32
	FATSectors        uint32
	HiddenSectors     uint32
	VolumeID          uint32
	Label             [11]byte
}

// encode returns the boot sector. The boot code area holds a loop that
// halts: the volume is not meant to be booted from its own boot sector.
func (b bpb) encode() []byte {
	s := make([]byte, sectorSize)
	copy(s[3:11], "VMROOT  ")
	le := binary.LittleEndian
	le.PutUint16(s[11:], sectorSize)
	s[13] = b.SectorsPerCluster
	le.PutUint16(s[14:], b.Reserved)
	s[16] = 2 // FATs
	le.PutUint16(s[17:], b.RootEntries)
	if b.Type != 32 && b.TotalSectors < 0x10000 {
		le.PutUint16(s[19:], uint16(b.TotalSectors))
	} else {
		le.PutUint32(s[32:], b.TotalSectors)
	}
	s[21] = media
	le.PutUint16(s[24:], 63)  // sectors per track
	le.PutUint16(s[26:], 255) // heads
	le.PutUint32(s[28:], b.HiddenSectors)
	ext := 36
	fsType := "FAT16   "
	switch b.Type {
	case 12:
		fsType = "FAT12   "
	case 32:
		fsType = "FAT32   "
		le.PutUint32(s[36:], b.FATSectors)
		le.PutUint32(s[44:], 2) // root cluster
		le.PutUint16(s[48:], 1) // FSInfo sector
		le.PutUint16(s[50:], 6) // backup boot sector
		ext = 64
	}
	if b.Type != 32 {
		le.PutUint16(s[22:], uint16(b.FATSectors))
	}
	s[ext] = 0x80   // drive number
	s[ext+2] = 0x29 // extended boot signature
	le.PutUint32(s[ext+3:], b.VolumeID)
	copy(s[ext+7:ext+18], b.Label[:])
	copy(s[ext+18:ext+26], fsType)
	// jmp short to the code after the BPB; the code is "cli; hlt; jmp $-2".
	code := ext + 26
	s[0], s[1], s[2] = 0xEB, byte(code-2), 0x90
	copy(s[code:], []byte{0xFA, 0xF4, 0xEB, 0xFD})
	s[510], s[511] = 0x55, 0xAA
	return s
}

// fsInfo encodes the FAT32 FSInfo sector.
func fsInfo(free, nextFree uint32) []byte {
	s := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(s[0:], 0x41615252)
	le.PutUint32(s[484:], 0x61417272)
	le.PutUint32(s[488:], free)
	le.PutUint32(s[492:], nextFree)
	le.PutUint32(s[508:], 0xAA550000)
	return s
}

// dirEnt is a short (8.3) directory entry.
type dirEnt struct {
	Name    [11]byte
	Attr    byte
	NTRes   byte
	Time    time.Time
	Cluster uint32
	Size    uint32
}

func (d dirEnt) encode(p []byte) {
	copy(p[0:11], d.Name[:])
	p[11] = d.Attr
	p[12] = d.NTRes
	le := binary.LittleEndian
	dd, tt := dosTime(d.Time)
	le.PutUint16(p[14:], tt)
	le.PutUint16(p[16:], dd)
	le.PutUint16(p[18:], dd) // last access date
	le.PutUint16(p[20:], uint16(d.Cluster>>16))
	le.PutUint16(p[22:], tt)
	le.PutUint16(p[24:], dd)
	le.PutUint16(p[26:], uint16(d.Cluster))
	le.PutUint32(p[28:], d.Size)
}

// lfnEnt encodes long-name entry number seq (1-based) holding the UTF-16
// units u (up to 13), for a short name with checksum sum.
func lfnEnt(p []byte, seq int, last bool, u []uint16, sum byte) {
	ord := byte(seq)
	if last {
		ord |= 0x40
	}
	p[0] = ord
	p[11] = attrLFN
	p[13] = sum
	offs := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for i, o := range offs {
		var v uint16
		switch {
		case i < len(u):
			v = u[i]
		case i == len(u):
			v = 0
		default:
			v = 0xFFFF
		}
		binary.LittleEndian.PutUint16(p[o:], v)
	}
}

// shortSum is the checksum of an 8.3 name stored in its long-name entries.
func shortSum(n [11]byte) byte {
	var s byte
	for _, c := range n {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// dosTime encodes t (clamped to 1980..2107) as FAT date and time.
func dosTime(t time.Time) (date, tm uint16) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return
}
