package part

// On-disk layout of MBR, EBR and GPT structures and their decoding from
// bytes. Nothing here reads a disk or follows a pointer; read.go does.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

const (
	mbrSignatureOff = 510
	mbrDiskIDOff    = 440
	mbrTableOff     = 446
	mbrEntrySize    = 16

	gptSignature      = "EFI PART"
	gptMinHeaderSize  = 92
	gptMinEntrySize   = 128
	gptMaxEntrySize   = 4096
	gptMaxEntryBytes  = 4 << 20 // the spec minimum is 16 KiB; real disks use exactly that
	gptNameOff        = 56
	gptAttrLegacyBoot = 1 << 2
)

// mbrEntry is one 16-byte partition entry of an MBR or EBR.
type mbrEntry struct {
	Status   byte
	Type     byte
	StartLBA uint32 // relative: to the disk (MBR), to the EBR (logical) or to the extended start (link)
	Sectors  uint32
}

func (e mbrEntry) empty() bool { return e.Type == 0 || e.Sectors == 0 }

// isExtendedType reports whether t marks an extended (container) partition,
// as Linux treats it: DOS 0x05, W95 LBA 0x0f, Linux 0x85.
func isExtendedType(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

const mbrTypeGPTProtective = 0xee

// hasMBRSignature reports whether a 512-byte sector ends in 0x55 0xAA.
func hasMBRSignature(sector []byte) bool {
	return len(sector) >= 512 && sector[mbrSignatureOff] == 0x55 && sector[mbrSignatureOff+1] == 0xaa
}

// decodeMBREntries returns the four entries of an MBR or EBR sector.
func decodeMBREntries(sector []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		b := sector[mbrTableOff+i*mbrEntrySize:]
		es[i] = mbrEntry{
			Status:   b[0],
			Type:     b[4],
			StartLBA: binary.LittleEndian.Uint32(b[8:12]),
			Sectors:  binary.LittleEndian.Uint32(b[12:16]),
		}
	}
	return es
}

// looksLikeBootSector reports whether sector 0 is a filesystem's own boot
// sector (a FAT/NTFS/exFAT volume boot record) rather than an MBR: a jump
// instruction followed by a plausible BIOS parameter block. MBRs carry boot
// code there too, so the BPB fields must all be sane, as libblkid requires.
func looksLikeBootSector(s []byte) bool {
	if len(s) < 512 {
		return false
	}
	if !(s[0] == 0xeb && s[2] == 0x90) && s[0] != 0xe9 {
		return false
	}
	if string(s[3:11]) == "NTFS    " || string(s[3:11]) == "EXFAT   " {
		return true
	}
	bps := binary.LittleEndian.Uint16(s[11:13])
	spc := s[13]
	reserved := binary.LittleEndian.Uint16(s[14:16])
	fats := s[16]
	media := s[21]
	switch bps {
	case 512, 1024, 2048, 4096:
	default:
		return false
	}
	if spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || fats > 4 {
		return false
	}
	if media != 0xf0 && media < 0xf8 {
		return false
	}
	// A FAT type string is not required by the spec, but an MBR whose
	// boot code happens to satisfy all the above also needs one of these.
	return string(s[54:59]) == "FAT12" || string(s[54:59]) == "FAT16" || string(s[54:57]) == "FAT" ||
		string(s[82:87]) == "FAT32"
}

// hasFilesystemAt0 reports whether the disk starts with an ext2/3/4
// superblock (magic at 1024+56) or an ISO9660 volume descriptor ("CD001"
// at 32769). sb is the first 33 KiB of the disk, possibly shorter.
func hasFilesystemAt0(sb []byte) bool {
	if len(sb) >= 1024+58 && binary.LittleEndian.Uint16(sb[1024+56:]) == 0xef53 {
		return true
	}
	return len(sb) >= 32769+5 && string(sb[32769:32774]) == "CD001"
}

// gptHeader is the GPT header (UEFI 2.x section 5.3.2).
type gptHeader struct {
	Revision       uint32
	HeaderSize     uint32
	HeaderCRC      uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       [16]byte
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
	EntriesCRC     uint32
}

// decodeGPTHeader decodes and checks a GPT header sector: signature, size
// fields, CRC32 and entry-array geometry. It does not check MyLBA.
func decodeGPTHeader(sector []byte) (gptHeader, error) {
	var h gptHeader
	if len(sector) < 512 || string(sector[0:8]) != gptSignature {
		return h, fmt.Errorf("no %q signature", gptSignature)
	}
	le := binary.LittleEndian
	h.Revision = le.Uint32(sector[8:])
	h.HeaderSize = le.Uint32(sector[12:])
	h.HeaderCRC = le.Uint32(sector[16:])
	h.MyLBA = le.Uint64(sector[24:])
	h.AlternateLBA = le.Uint64(sector[32:])
	h.FirstUsableLBA = le.Uint64(sector[40:])
	h.LastUsableLBA = le.Uint64(sector[48:])
	copy(h.DiskGUID[:], sector[56:72])
	h.EntriesLBA = le.Uint64(sector[72:])
	h.NumEntries = le.Uint32(sector[80:])
	h.EntrySize = le.Uint32(sector[84:])
	h.EntriesCRC = le.Uint32(sector[88:])
	if h.HeaderSize < gptMinHeaderSize || int(h.HeaderSize) > len(sector) {
		return h, fmt.Errorf("header size %d outside [%d, %d]", h.HeaderSize, gptMinHeaderSize, len(sector))
	}
	buf := make([]byte, h.HeaderSize)
	copy(buf, sector[:h.HeaderSize])
	clear(buf[16:20])
	if got := crc32.ChecksumIEEE(buf); got != h.HeaderCRC {
		return h, fmt.Errorf("header CRC mismatch (stored %#08x, computed %#08x)", h.HeaderCRC, got)
	}
	if h.EntrySize < gptMinEntrySize || h.EntrySize > gptMaxEntrySize || h.EntrySize%8 != 0 {
		return h, fmt.Errorf("partition entry size %d invalid (must be a multiple of 8 in [%d, %d])",
			h.EntrySize, gptMinEntrySize, gptMaxEntrySize)
	}
	if n := uint64(h.NumEntries) * uint64(h.EntrySize); n > gptMaxEntryBytes {
		return h, fmt.Errorf("partition entry array of %d entries x %d bytes exceeds %d bytes",
			h.NumEntries, h.EntrySize, gptMaxEntryBytes)
	}
	if h.FirstUsableLBA > h.LastUsableLBA {
		return h, fmt.Errorf("first usable LBA %d beyond last usable LBA %d", h.FirstUsableLBA, h.LastUsableLBA)
	}
	return h, nil
}

// gptEntry is one GPT partition entry (UEFI 2.x section 5.3.3).
type gptEntry struct {
	TypeGUID  [16]byte
	PartGUID  [16]byte
	FirstLBA  uint64
	LastLBA   uint64
	Attribute uint64
	Name      string
}

func (e gptEntry) empty() bool { return e.TypeGUID == [16]byte{} }

func decodeGPTEntry(b []byte) gptEntry {
	le := binary.LittleEndian
	var e gptEntry
	copy(e.TypeGUID[:], b[0:16])
	copy(e.PartGUID[:], b[16:32])
	e.FirstLBA = le.Uint64(b[32:])
	e.LastLBA = le.Uint64(b[40:])
	e.Attribute = le.Uint64(b[48:])
	nameBytes := b[gptNameOff:min(len(b), gptNameOff+72)]
	u := make([]uint16, 0, len(nameBytes)/2)
	for i := 0; i+1 < len(nameBytes); i += 2 {
		c := le.Uint16(nameBytes[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	e.Name = string(utf16.Decode(u))
	return e
}

// gptEntriesCRC is the CRC32 over the whole entry array.
func gptEntriesCRC(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// formatGUID renders a GPT GUID (first three fields little-endian) in
// upper-case canonical form, as sfdisk and sgdisk print it.
func formatGUID(g [16]byte) string {
	le := binary.LittleEndian
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		le.Uint32(g[0:4]), le.Uint16(g[4:6]), le.Uint16(g[6:8]), g[8:10], g[10:16]))
}

// mbrTypeNames are the names util-linux fdisk/sfdisk print for MBR type codes.
var mbrTypeNames = map[byte]string{
	0x00: "Empty",
	0x01: "FAT12",
	0x04: "FAT16 <32M",
	0x05: "Extended",
	0x06: "FAT16",
	0x07: "HPFS/NTFS/exFAT",
	0x0b: "W95 FAT32",
	0x0c: "W95 FAT32 (LBA)",
	0x0e: "W95 FAT16 (LBA)",
	0x0f: "W95 Ext'd (LBA)",
	0x11: "Hidden FAT12",
	0x14: "Hidden FAT16 <32M",
	0x16: "Hidden FAT16",
	0x17: "Hidden HPFS/NTFS",
	0x1b: "Hidden W95 FAT32",
	0x1c: "Hidden W95 FAT32 (LBA)",
	0x1e: "Hidden W95 FAT16 (LBA)",
	0x27: "Hidden NTFS WinRE",
	0x42: "SFS",
	0x82: "Linux swap / Solaris",
	0x83: "Linux",
	0x85: "Linux extended",
	0x86: "NTFS volume set",
	0x87: "NTFS volume set",
	0x88: "Linux plaintext",
	0x8e: "Linux LVM",
	0xa5: "FreeBSD",
	0xa6: "OpenBSD",
	0xa8: "Darwin UFS",
	0xa9: "NetBSD",
	0xaf: "HFS / HFS+",
	0xda: "Non-FS data",
	0xee: "GPT",
	0xef: "EFI (FAT-12/16/32)",
	0xfb: "VMware VMFS",
	0xfc: "VMware VMKCORE",
	0xfd: "Linux raid autodetect",
}

// MBRTypeName returns the util-linux name of an MBR type code, or "0xNN"
// for codes it does not know.
func MBRTypeName(t byte) string {
	if n, ok := mbrTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", t)
}

// gptTypeNames are the names util-linux fdisk/sfdisk print for GPT type GUIDs.
var gptTypeNames = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"024DEE41-33E7-11D3-9D69-0008C781F39F": "MBR partition scheme",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux home",
	"3B8F8425-20E0-4F3B-907F-1A25A76F98E8": "Linux server data",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"44479540-F297-41B2-9AF7-D131D5F0458A": "Linux root (x86)",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"8DA63339-0007-60C0-C436-083AC8230908": "Linux reserved",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery environment",
	"AA31E02A-400F-11DB-9590-000C2911D1B8": "VMware VMFS",
	"9198EFFC-31C0-11DB-8F78-000C2911D1B8": "VMware Reserved",
	"9D275380-40AD-11DB-BF97-000C2911D1B8": "VMware Diagnostic",
	"381CFCCC-7288-11E0-92EE-000C2911D0B2": "VMware Virtual SAN",
	"77719A0C-A4A0-11E3-A47E-000C29745A24": "VMware Virsto",
}

// GPTTypeName returns the util-linux name of a GPT type GUID (upper-case
// canonical form), or the GUID itself for types it does not know.
func GPTTypeName(guid string) string {
	if n, ok := gptTypeNames[guid]; ok {
		return n
	}
	return guid
}
