package fatiso

// On-disk layout of FAT12/16/32: the BIOS parameter block, the FAT
// itself and 32-byte directory slots. Decoding only; fat.go walks.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxFATBytes bounds the FAT read at open (go-diskfs holds it several
// times over): 32 MiB is 8M FAT32 clusters, a 256 GiB volume at 32 KiB.
const maxFATBytes = 32 << 20

// bpb is the decoded and validated boot sector of a FAT volume.
type bpb struct {
	bytesPerSector    int64
	sectorsPerCluster int64
	reservedSectors   int64
	numFATs           int64
	rootEntries       int64
	totalSectors      int64
	media             byte
	fatSectors        int64
	rootCluster       uint32 // FAT32
	hasSerial         bool
	serial            uint32
	label             string
	fsType            string

	// Derived geometry, bytes from the start of the volume.
	fatBits      int // 12, 16 or 32
	fatOffset    int64
	fatBytes     int64
	rootDirOff   int64 // FAT12/16 fixed root directory
	rootDirBytes int64
	dataOffset   int64
	clusterBytes int64
	clusters     uint32 // data clusters, numbered 2..clusters+1
}

// decodeBPB decodes sector 0 of a FAT volume and checks that its fields
// describe a possible volume, deciding FAT12/16/32 as Linux does: FAT32
// when the 16-bit FAT size is zero, else FAT12 below 4085 clusters.
func decodeBPB(s []byte) (*bpb, error) {
	if len(s) < 512 {
		return nil, errors.New("boot sector shorter than 512 bytes")
	}
	if s[510] != 0x55 || s[511] != 0xaa {
		return nil, errors.New("no 0x55AA boot sector signature")
	}
	if !(s[0] == 0xeb && s[2] == 0x90) && s[0] != 0xe9 {
		return nil, fmt.Errorf("no x86 jump instruction at byte 0 (%#02x)", s[0])
	}
	le := binary.LittleEndian
	b := &bpb{
		bytesPerSector:    int64(le.Uint16(s[11:])),
		sectorsPerCluster: int64(s[13]),
		reservedSectors:   int64(le.Uint16(s[14:])),
		numFATs:           int64(s[16]),
		rootEntries:       int64(le.Uint16(s[17:])),
		totalSectors:      int64(le.Uint16(s[19:])),
		media:             s[21],
		fatSectors:        int64(le.Uint16(s[22:])),
	}
	if b.totalSectors == 0 {
		b.totalSectors = int64(le.Uint32(s[32:]))
	}
	switch b.bytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("bytes per sector %d (want 512, 1024, 2048 or 4096)", b.bytesPerSector)
	}
	if spc := b.sectorsPerCluster; spc == 0 || spc > 128 || spc&(spc-1) != 0 {
		return nil, fmt.Errorf("sectors per cluster %d (want a power of two up to 128)", spc)
	}
	if b.reservedSectors == 0 {
		return nil, errors.New("zero reserved sectors")
	}
	if b.numFATs == 0 || b.numFATs > 4 {
		return nil, fmt.Errorf("%d FATs", b.numFATs)
	}
	if b.media != 0xf0 && b.media < 0xf8 {
		return nil, fmt.Errorf("media descriptor %#02x", b.media)
	}
	if b.totalSectors == 0 {
		return nil, errors.New("zero total sectors")
	}
	extOff := 36 // extended BPB of FAT12/16
	if b.fatSectors == 0 {
		b.fatBits = 32
		b.fatSectors = int64(le.Uint32(s[36:]))
		b.rootCluster = le.Uint32(s[44:])
		extOff = 64
		if b.fatSectors == 0 {
			return nil, errors.New("zero sectors per FAT")
		}
		if b.rootEntries != 0 {
			return nil, fmt.Errorf("FAT32 with %d fixed root directory entries", b.rootEntries)
		}
	} else if b.rootEntries == 0 || (b.rootEntries*32)%b.bytesPerSector != 0 {
		return nil, fmt.Errorf("FAT12/16 root directory of %d entries is not a whole number of sectors", b.rootEntries)
	}
	if sig := s[extOff+2]; sig == 0x29 || sig == 0x28 {
		b.hasSerial = true
		b.serial = le.Uint32(s[extOff+3:])
		if sig == 0x29 {
			b.label = strings.TrimRight(string(s[extOff+7:extOff+18]), " ")
			b.fsType = strings.TrimRight(string(s[extOff+18:extOff+26]), " ")
		}
	}

	bps := b.bytesPerSector
	b.fatOffset = b.reservedSectors * bps
	b.fatBytes = b.fatSectors * bps
	if b.fatBytes > maxFATBytes {
		return nil, fmt.Errorf("FAT of %d bytes exceeds the %d MiB this reader supports", b.fatBytes, maxFATBytes>>20)
	}
	b.rootDirOff = b.fatOffset + b.numFATs*b.fatBytes
	b.rootDirBytes = b.rootEntries * 32
	b.dataOffset = b.rootDirOff + b.rootDirBytes
	b.clusterBytes = b.sectorsPerCluster * bps
	dataSectors := b.totalSectors - b.dataOffset/bps
	if dataSectors < b.sectorsPerCluster {
		return nil, fmt.Errorf("no room for data: %d sectors total, data starts at sector %d", b.totalSectors, b.dataOffset/bps)
	}
	clusters := dataSectors / b.sectorsPerCluster
	if clusters > 0x0ffffff5 {
		return nil, fmt.Errorf("%d clusters", clusters)
	}
	b.clusters = uint32(clusters)
	if b.fatBits == 0 {
		b.fatBits = 16
		if clusters < 4085 {
			b.fatBits = 12
		}
	}
	if capacity := b.fatBytes * 8 / int64(b.fatBits); capacity < clusters+2 {
		return nil, fmt.Errorf("FAT holds %d entries, %d clusters need %d", capacity, clusters, clusters+2)
	}
	if b.fatBits == 32 && (b.rootCluster < 2 || b.rootCluster > b.clusters+1) {
		return nil, fmt.Errorf("FAT32 root directory cluster %d outside 2..%d", b.rootCluster, b.clusters+1)
	}
	return b, nil
}

func (b *bpb) volumeBytes() int64 { return b.totalSectors * b.bytesPerSector }

func (b *bpb) clusterOffset(c uint32) int64 { return b.dataOffset + int64(c-2)*b.clusterBytes }

// FAT entry classes, normalised to FAT32 values.
const (
	fatBad = 0x0ffffff7
	fatEOC = 0x0ffffff8
)

// decodeFAT returns entries 0..b.clusters+1 of a FAT, with bad-cluster and
// end-of-chain markers of FAT12/16 widened to their FAT32 values.
func decodeFAT(b *bpb, raw []byte) []uint32 {
	n := int(b.clusters) + 2
	out := make([]uint32, n)
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		var v uint32
		switch b.fatBits {
		case 12:
			w := uint32(le.Uint16(raw[i*3/2:]))
			if i%2 == 1 {
				w >>= 4
			}
			v = w & 0xfff
			if v >= 0xff7 {
				v |= 0x0ffff000
			}
		case 16:
			v = uint32(le.Uint16(raw[i*2:]))
			if v >= 0xfff7 {
				v |= 0x0fff0000
			}
		default:
			v = le.Uint32(raw[i*4:]) & 0x0fffffff
		}
		out[i] = v
	}
	return out
}

// FAT directory entry attribute bits.
const (
	attrReadOnly = 0x01
	attrVolume   = 0x08
	attrDir      = 0x10
	attrLFN      = 0x0f
)

// dirSlot is one 8.3 directory entry.
type dirSlot struct {
	index   int // slot number within the directory
	name    [8]byte
	ext     [3]byte
	attr    byte
	ntCase  byte // bit 3: base name lower case, bit 4: extension lower case
	crtTime uint16
	crtDate uint16
	crtCs   byte // 10 ms units, 0-199
	accDate uint16
	wrtTime uint16
	wrtDate uint16
	cluster uint32
	size    uint32
}

// decodeDirSlots returns the 8.3 entries of a directory's bytes that name
// files or directories: it stops at the first free-and-last slot (0x00),
// skips deleted slots (0xE5), long-name slots, the volume label, "." and
// "..". This is the set, in order, that go-diskfs's ReadDir lists.
func decodeDirSlots(b []byte, fat32 bool) []dirSlot {
	var out []dirSlot
	le := binary.LittleEndian
	for i := 0; i+32 <= len(b); i += 32 {
		e := b[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xe5 || e[11] == attrLFN || e[11]&attrVolume != 0 {
			continue
		}
		var s dirSlot
		copy(s.name[:], e[0:8])
		copy(s.ext[:], e[8:11])
		base := strings.TrimRight(string(s.name[:]), " ")
		if base == "" || base == "." || base == ".." {
			continue
		}
		s.index = i / 32
		s.attr = e[11]
		s.ntCase = e[12]
		s.crtCs = e[13]
		s.crtTime = le.Uint16(e[14:])
		s.crtDate = le.Uint16(e[16:])
		s.accDate = le.Uint16(e[18:])
		s.wrtTime = le.Uint16(e[22:])
		s.wrtDate = le.Uint16(e[24:])
		s.cluster = uint32(le.Uint16(e[26:]))
		if fat32 {
			s.cluster |= uint32(le.Uint16(e[20:])) << 16
		}
		s.size = le.Uint32(e[28:])
		out = append(out, s)
	}
	return out
}

// shortName is the 8.3 name as go-diskfs's FileInfo.ShortName reports it.
func (s dirSlot) shortName() string {
	base := strings.TrimRight(string(s.name[:]), " ")
	ext := strings.TrimRight(string(s.ext[:]), " ")
	if s.ntCase&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if s.ntCase&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext != "" {
		return base + "." + ext
	}
	return base
}

// fatTime decodes a FAT date and time (local time of the writer, taken as
// UTC); a zero date is the zero time.
func fatTime(date, tm uint16, centis byte) time.Time {
	if date == 0 {
		return time.Time{}
	}
	return time.Date(int(date>>9)+1980, time.Month(date>>5&0xf), int(date&0x1f),
		int(tm>>11), int(tm>>5&0x3f), int(tm&0x1f)*2+int(centis/100), int(centis%100)*10_000_000, time.UTC)
}
