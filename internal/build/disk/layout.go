package disk

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

// On-disk encodings of the MBR, EBRs and GPT. internal/part reads the same
// structures; these are the writing side.

const (
	sectorSize   = 512
	gptEntries   = 128
	gptEntrySize = 128
	// gptTableSectors is the size of one copy of the entry array.
	gptTableSectors = gptEntries * gptEntrySize / sectorSize
)

// mbrEntry is one 16-byte partition entry of an MBR or EBR.
type mbrEntry struct {
	Bootable bool
	Type     byte
	Start    uint32 // relative, as the table it sits in defines
	Sectors  uint32
	// CHSStart and CHSEnd are the absolute LBAs the CHS fields describe.
	CHSStart, CHSEnd int64
}

func (e mbrEntry) encode(p []byte) {
	if e.Bootable {
		p[0] = 0x80
	}
	copy(p[1:4], chs(e.CHSStart))
	p[4] = e.Type
	copy(p[5:8], chs(e.CHSEnd))
	binary.LittleEndian.PutUint32(p[8:], e.Start)
	binary.LittleEndian.PutUint32(p[12:], e.Sectors)
}

// chs encodes an LBA for a 255-head, 63-sector geometry, saturating at
// 1023/254/63 as every tool does for disks past 8 GiB.
func chs(lba int64) []byte {
	c, h, s := lba/(255*63), (lba/63)%255, lba%63+1
	if c > 1023 {
		c, h, s = 1023, 254, 63
	}
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

// bootRecord encodes an MBR or EBR sector: up to four entries and the
// signature; diskID goes into the MBR's disk signature field.
func bootRecord(entries []mbrEntry, diskID uint32) []byte {
	s := make([]byte, sectorSize)
	binary.LittleEndian.PutUint32(s[440:], diskID)
	for i, e := range entries {
		e.encode(s[446+16*i:])
	}
	s[510], s[511] = 0x55, 0xAA
	return s
}

// GUID is a GPT GUID in its on-disk (mixed-endian) byte order.
type GUID [16]byte

// ParseGUID reads the textual form "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("invalid GUID %q", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("invalid GUID %q", s)
	}
	// The first three fields are stored little-endian.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

func (g GUID) String() string {
	return fmt.Sprintf("%02X%02X%02X%02X-%02X%02X-%02X%02X-%X-%X",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:])
}

// gptEntry is one partition entry of the GPT array.
type gptEntry struct {
	Type, ID    GUID
	First, Last int64
	Attrs       uint64
	Name        string
}

func (e gptEntry) encode(p []byte) {
	copy(p[0:16], e.Type[:])
	copy(p[16:32], e.ID[:])
	binary.LittleEndian.PutUint64(p[32:], uint64(e.First))
	binary.LittleEndian.PutUint64(p[40:], uint64(e.Last))
	binary.LittleEndian.PutUint64(p[48:], e.Attrs)
	for i, u := range utf16.Encode([]rune(e.Name)) {
		if i == 36 {
			break
		}
		binary.LittleEndian.PutUint16(p[56+2*i:], u)
	}
}

// gptHeader is the GPT header; encode fills in its CRC.
type gptHeader struct {
	Current, Backup int64
	FirstUsable     int64
	LastUsable      int64
	DiskGUID        GUID
	EntriesLBA      int64
	EntriesCRC      uint32
}

func (h gptHeader) encode() []byte {
	s := make([]byte, sectorSize)
	le := binary.LittleEndian
	copy(s[0:8], "EFI PART")
	le.PutUint32(s[8:], 0x00010000)
	le.PutUint32(s[12:], 92)
	le.PutUint64(s[24:], uint64(h.Current))
	le.PutUint64(s[32:], uint64(h.Backup))
	le.PutUint64(s[40:], uint64(h.FirstUsable))
	le.PutUint64(s[48:], uint64(h.LastUsable))
	copy(s[56:72], h.DiskGUID[:])
	le.PutUint64(s[72:], uint64(h.EntriesLBA))
	le.PutUint32(s[80:], gptEntries)
	le.PutUint32(s[84:], gptEntrySize)
	le.PutUint32(s[88:], h.EntriesCRC)
	le.PutUint32(s[16:], crc32.ChecksumIEEE(s[:92]))
	return s
}
