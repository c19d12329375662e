package vmdk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// On-disk layout of VMDK sparse extents, after VMware's "Virtual Disk
// Format 5.0" technical note. This file only encodes and decodes bytes; the
// logic that walks grain directories and markers lives in sparse.go and
// stream.go.

// SectorSize is the unit of every offset and size field in a VMDK.
const SectorSize = 512

// Magic numbers as they appear in the first four bytes of an extent file.
const (
	MagicSparse = "KDMV" // hosted sparse and streamOptimized extents
	MagicCOWD   = "COWD" // ESX vmfsSparse (redo log) extents
)

// SparseHeader flag bits.
const (
	FlagNewlineTest = 1 << 0  // the four newline bytes must be checked
	FlagRedundantGD = 1 << 1  // rgdOffset names a redundant grain directory
	FlagZeroedGrain = 1 << 2  // grain table entry 1 means a zero grain
	FlagCompressed  = 1 << 16 // grains are compressed
	FlagHasMarkers  = 1 << 17 // grains are preceded by grain markers
)

// Compression algorithms of SparseHeader.CompressAlgorithm.
const (
	CompressNone    = 0
	CompressDeflate = 1 // RFC 1950 zlib stream per grain
)

// GDAtEnd in the header's GDOffset means the real header is the footer
// near the end of a streamOptimized file.
const GDAtEnd = 0xFFFFFFFFFFFFFFFF

// Grain table entries with special meaning.
const (
	GTEUnallocated = 0 // read the parent, or zeros
	GTEZeroed      = 1 // zero grain when FlagZeroedGrain is set
)

// Marker types of a streamOptimized extent (Marker.Type, when Size is 0).
const (
	MarkerEOS    = 0 // end of stream
	MarkerGT     = 1 // a grain table follows
	MarkerGD     = 2 // a grain directory follows
	MarkerFooter = 3 // a copy of the header with the final gdOffset follows
)

// GrainMarkerSize is the size of the LBA+size prefix of a compressed grain
// in an extent with FlagHasMarkers; the compressed data follows directly.
const GrainMarkerSize = 12

// FooterSize is the footer marker, footer and end-of-stream marker that end
// a VMware-layout streamOptimized file.
const FooterSize = 3 * SectorSize

// newline bytes of SparseHeader, checked when FlagNewlineTest is set.
var newlineBytes = [4]byte{'\n', ' ', '\r', '\n'}

// SparseHeader is the 512-byte header of a hosted sparse or streamOptimized
// extent ("SparseExtentHeader"). All offsets and sizes are in sectors.
type SparseHeader struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64 // virtual size of the extent
	GrainSize         uint64 // sectors per grain
	DescriptorOffset  uint64 // embedded descriptor, 0 if none
	DescriptorSize    uint64
	NumGTEsPerGT      uint32
	RGDOffset         uint64 // redundant grain directory
	GDOffset          uint64 // grain directory, or GDAtEnd
	OverHead          uint64 // sectors before the first grain
	UncleanShutdown   bool
	Newline           [4]byte // "\n \r\n" unless mangled by a text transfer
	CompressAlgorithm uint16
}

// Layout offsets of SparseHeader fields.
const (
	shMagic     = 0
	shVersion   = 4
	shFlags     = 8
	shCapacity  = 12
	shGrainSize = 20
	shDescOff   = 28
	shDescSize  = 36
	shNumGTEs   = 44
	shRGD       = 48
	shGD        = 56
	shOverHead  = 64
	shUnclean   = 72
	shNewline   = 73
	shCompress  = 77
	shEnd       = 79
)

var errShortHeader = errors.New("header shorter than 512 bytes")

// DecodeSparseHeader decodes a SparseHeader from the first 512 bytes of b.
// It checks only the magic number; Validate checks the values.
func DecodeSparseHeader(b []byte) (SparseHeader, error) {
	var h SparseHeader
	if len(b) < SectorSize {
		return h, errShortHeader
	}
	if string(b[shMagic:shMagic+4]) != MagicSparse {
		return h, fmt.Errorf("bad magic %q, want %q", b[:4], MagicSparse)
	}
	le := binary.LittleEndian
	h.Version = le.Uint32(b[shVersion:])
	h.Flags = le.Uint32(b[shFlags:])
	h.Capacity = le.Uint64(b[shCapacity:])
	h.GrainSize = le.Uint64(b[shGrainSize:])
	h.DescriptorOffset = le.Uint64(b[shDescOff:])
	h.DescriptorSize = le.Uint64(b[shDescSize:])
	h.NumGTEsPerGT = le.Uint32(b[shNumGTEs:])
	h.RGDOffset = le.Uint64(b[shRGD:])
	h.GDOffset = le.Uint64(b[shGD:])
	h.OverHead = le.Uint64(b[shOverHead:])
	h.UncleanShutdown = b[shUnclean] != 0
	copy(h.Newline[:], b[shNewline:shNewline+4])
	h.CompressAlgorithm = le.Uint16(b[shCompress:])
	return h, nil
}

// Encode writes h as a 512-byte header into b, zeroing the padding.
func (h *SparseHeader) Encode(b []byte) {
	b = b[:SectorSize]
	clear(b)
	le := binary.LittleEndian
	copy(b[shMagic:], MagicSparse)
	le.PutUint32(b[shVersion:], h.Version)
	le.PutUint32(b[shFlags:], h.Flags)
	le.PutUint64(b[shCapacity:], h.Capacity)
	le.PutUint64(b[shGrainSize:], h.GrainSize)
	le.PutUint64(b[shDescOff:], h.DescriptorOffset)
	le.PutUint64(b[shDescSize:], h.DescriptorSize)
	le.PutUint32(b[shNumGTEs:], h.NumGTEsPerGT)
	le.PutUint64(b[shRGD:], h.RGDOffset)
	le.PutUint64(b[shGD:], h.GDOffset)
	le.PutUint64(b[shOverHead:], h.OverHead)
	if h.UncleanShutdown {
		b[shUnclean] = 1
	}
	copy(b[shNewline:], h.Newline[:])
	le.PutUint16(b[shCompress:], h.CompressAlgorithm)
}

// Limits applied by Validate. They are far above anything VMware or qemu
// write and keep every allocation sized by a header field bounded.
const (
	MaxGrainSize      = 2048    // sectors (1 MiB): largest grain buffered whole
	MaxGTEsPerGT      = 4096    // entries per grain table (COWD uses 4096)
	MaxDescriptorSize = 1 << 20 // bytes of descriptor text
	MaxCapacity       = 1 << 40 // sectors (512 TiB)
	maxGDEntries      = 32 << 20
)

// Compressed reports whether grains are deflate-compressed.
func (h *SparseHeader) Compressed() bool { return h.CompressAlgorithm == CompressDeflate }

// GrainBytes is the size of one grain in bytes.
func (h *SparseHeader) GrainBytes() int64 { return int64(h.GrainSize) * SectorSize }

// GDEntries is the number of grain directory entries needed to cover
// Capacity. Call it only on a header that passed Validate.
func (h *SparseHeader) GDEntries() int64 {
	grains := (h.Capacity + h.GrainSize - 1) / h.GrainSize
	return int64((grains + uint64(h.NumGTEsPerGT) - 1) / uint64(h.NumGTEsPerGT))
}

// Validate checks that the header's values are sane for a file of fileSize
// bytes, so that tables it describes can be allocated and read. A
// GDOffset of GDAtEnd is accepted; the caller must then use the footer.
func (h *SparseHeader) Validate(fileSize int64) error {
	if h.Version < 1 || h.Version > 3 {
		return fmt.Errorf("unsupported sparse header version %d", h.Version)
	}
	if h.Flags&FlagNewlineTest != 0 && h.Newline != newlineBytes {
		return fmt.Errorf("newline check bytes are %q, want %q: file was altered by a text-mode transfer", h.Newline[:], newlineBytes[:])
	}
	if h.CompressAlgorithm > CompressDeflate {
		return fmt.Errorf("unsupported compression algorithm %d", h.CompressAlgorithm)
	}
	if h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > MaxGrainSize {
		return fmt.Errorf("grain size %d sectors is not a power of two between 1 and %d", h.GrainSize, MaxGrainSize)
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > MaxGTEsPerGT {
		return fmt.Errorf("%d grain table entries per table, want 1 to %d", h.NumGTEsPerGT, MaxGTEsPerGT)
	}
	if h.Capacity > MaxCapacity {
		return fmt.Errorf("capacity %d sectors exceeds the limit of %d", h.Capacity, uint64(MaxCapacity))
	}
	if h.DescriptorSize > MaxDescriptorSize/SectorSize {
		return fmt.Errorf("embedded descriptor of %d sectors exceeds the limit of %d", h.DescriptorSize, MaxDescriptorSize/SectorSize)
	}
	fileSectors := uint64(fileSize) / SectorSize
	if h.OverHead > fileSectors {
		return fmt.Errorf("file truncated: %d bytes, header says grains start at byte %d", fileSize, h.OverHead*SectorSize)
	}
	if h.DescriptorSize != 0 && (h.DescriptorOffset == 0 || h.DescriptorOffset > fileSectors || h.DescriptorSize > fileSectors-h.DescriptorOffset) {
		return fmt.Errorf("embedded descriptor (sectors %d+%d) lies outside the file (%d sectors)", h.DescriptorOffset, h.DescriptorSize, fileSectors)
	}
	if h.Capacity == 0 {
		return nil
	}
	gdBytes := uint64(h.GDEntries()) * 4
	if h.GDEntries() > maxGDEntries {
		return fmt.Errorf("grain directory of %d entries exceeds the limit of %d", h.GDEntries(), maxGDEntries)
	}
	if h.GDOffset != GDAtEnd {
		if err := tableInFile("grain directory", h.GDOffset, gdBytes, fileSize); err != nil {
			return err
		}
	}
	if h.Flags&FlagRedundantGD != 0 && h.RGDOffset != 0 {
		if err := tableInFile("redundant grain directory", h.RGDOffset, gdBytes, fileSize); err != nil {
			return err
		}
	}
	return nil
}

func tableInFile(what string, sector, bytes uint64, fileSize int64) error {
	if sector == 0 || sector > uint64(fileSize)/SectorSize || bytes > uint64(fileSize)-sector*SectorSize {
		return fmt.Errorf("%s at sector %d (%d bytes) lies outside the file (%d bytes)", what, sector, bytes, fileSize)
	}
	return nil
}

// Marker is the 512-byte metadata marker (or, with Size != 0, the 12-byte
// grain marker) of a streamOptimized extent.
type Marker struct {
	Val  uint64 // metadata sectors that follow, or the grain's LBA
	Size uint32 // compressed grain bytes; 0 for a metadata marker
	Type uint32 // Marker*; meaningful only when Size is 0
}

// DecodeMarker decodes a marker from b, which must hold at least 16 bytes
// (12 for a grain marker; Type is then left 0).
func DecodeMarker(b []byte) Marker {
	le := binary.LittleEndian
	m := Marker{Val: le.Uint64(b), Size: le.Uint32(b[8:])}
	if m.Size == 0 && len(b) >= 16 {
		m.Type = le.Uint32(b[12:])
	}
	return m
}

// Encode writes m into b: 12 bytes for a grain marker, else a full
// 512-byte sector.
func (m Marker) Encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b, m.Val)
	le.PutUint32(b[8:], m.Size)
	if m.Size == 0 {
		b = b[:SectorSize]
		clear(b[12:])
		le.PutUint32(b[12:], m.Type)
	}
}

// COWDHeader is the header of an ESX vmfsSparse ("COWD") extent, as far
// as reading needs it. Grain tables always hold COWDGTEsPerGT entries.
type COWDHeader struct {
	Version      uint32
	Flags        uint32
	NumSectors   uint32 // capacity
	GrainSize    uint32 // sectors per grain
	GDOffset     uint32 // sector of the grain directory
	NumGDEntries uint32
	FreeSector   uint32
}

// COWDGTEsPerGT is the fixed grain table size of COWD extents.
const COWDGTEsPerGT = 4096

// DecodeCOWDHeader decodes a COWD header from the first 32 bytes of b.
func DecodeCOWDHeader(b []byte) (COWDHeader, error) {
	var h COWDHeader
	if len(b) < 32 {
		return h, errShortHeader
	}
	if string(b[:4]) != MagicCOWD {
		return h, fmt.Errorf("bad magic %q, want %q", b[:4], MagicCOWD)
	}
	le := binary.LittleEndian
	h.Version = le.Uint32(b[4:])
	h.Flags = le.Uint32(b[8:])
	h.NumSectors = le.Uint32(b[12:])
	h.GrainSize = le.Uint32(b[16:])
	h.GDOffset = le.Uint32(b[20:])
	h.NumGDEntries = le.Uint32(b[24:])
	h.FreeSector = le.Uint32(b[28:])
	return h, nil
}

// Encode writes the fields of h into the first 32 bytes of b (a COWD
// header is 2048 bytes; the rest is left as is).
func (h *COWDHeader) Encode(b []byte) {
	le := binary.LittleEndian
	copy(b, MagicCOWD)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint32(b[12:], h.NumSectors)
	le.PutUint32(b[16:], h.GrainSize)
	le.PutUint32(b[20:], h.GDOffset)
	le.PutUint32(b[24:], h.NumGDEntries)
	le.PutUint32(b[28:], h.FreeSector)
}

// Validate checks the COWD header's values against a file of fileSize bytes.
func (h *COWDHeader) Validate(fileSize int64) error {
	if h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > MaxGrainSize {
		return fmt.Errorf("grain size %d sectors is not a power of two between 1 and %d", h.GrainSize, MaxGrainSize)
	}
	need := (uint64(h.NumSectors) + uint64(h.GrainSize)*COWDGTEsPerGT - 1) / (uint64(h.GrainSize) * COWDGTEsPerGT)
	if uint64(h.NumGDEntries) < need {
		return fmt.Errorf("grain directory of %d entries cannot cover %d sectors", h.NumGDEntries, h.NumSectors)
	}
	if uint64(h.NumGDEntries) > maxGDEntries {
		return fmt.Errorf("grain directory of %d entries exceeds the limit of %d", h.NumGDEntries, maxGDEntries)
	}
	return tableInFile("grain directory", uint64(h.GDOffset), need*4, fileSize)
}

// DecodeGT decodes little-endian 32-bit table entries from b into dst.
func DecodeGT(dst []uint32, b []byte) {
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
}
