// Package disklayout holds the on-disk structures of ext2, ext3 and ext4
// (superblock, group descriptors, inodes, extent tree nodes, directory
// entries, htree nodes, extended attributes) and their decoding from
// little-endian bytes.
//
// Decoders here only check what is needed to decode safely (lengths,
// magic numbers); whether the decoded values make sense for a particular
// filesystem is the walking code's business (package ext).
package disklayout

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// SuperblockOffset is the byte offset of the primary superblock, and
// SuperblockSize its length.
const (
	SuperblockOffset = 1024
	SuperblockSize   = 1024
	SuperMagic       = 0xEF53
)

// Superblock revision levels.
const (
	RevGoodOld = 0 // fixed 128-byte inodes, first inode 11
	RevDynamic = 1
)

// Superblock flags (s_flags).
const (
	FlagSignedHash   = 0x1
	FlagUnsignedHash = 0x2
)

// Superblock is the decoded ext superblock (the fields vmroot uses).
type Superblock struct {
	InodesCount      uint32
	BlocksCount      uint64 // lo | hi<<32 (hi only with 64bit)
	FreeBlocksCount  uint64
	FreeInodesCount  uint32
	FirstDataBlock   uint32
	LogBlockSize     uint32
	LogClusterSize   uint32
	BlocksPerGroup   uint32
	ClustersPerGroup uint32
	InodesPerGroup   uint32
	Magic            uint16
	State            uint16
	CreatorOS        uint32
	RevLevel         uint32
	FirstIno         uint32
	InodeSize        uint16
	FeatureCompat    uint32
	FeatureIncompat  uint32
	FeatureRoCompat  uint32
	UUID             [16]byte
	VolumeName       [16]byte
	HashSeed         [4]uint32
	DefHashVersion   uint8
	DescSize         uint16
	FirstMetaBg      uint32
	MinExtraIsize    uint16
	Flags            uint32
	LogGroupsPerFlex uint8
	ChecksumType     uint8
	ChecksumSeed     uint32
}

// ErrBadMagic is returned by DecodeSuperblock when the magic number is wrong.
var ErrBadMagic = errors.New("not an ext2/3/4 filesystem (bad superblock magic)")

// DecodeSuperblock decodes the 1024-byte superblock in b.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, fmt.Errorf("superblock: %d bytes, need %d", len(b), SuperblockSize)
	}
	s := &Superblock{
		InodesCount:      le.Uint32(b[0:]),
		BlocksCount:      uint64(le.Uint32(b[4:])),
		FreeBlocksCount:  uint64(le.Uint32(b[12:])),
		FreeInodesCount:  le.Uint32(b[16:]),
		FirstDataBlock:   le.Uint32(b[20:]),
		LogBlockSize:     le.Uint32(b[24:]),
		LogClusterSize:   le.Uint32(b[28:]),
		BlocksPerGroup:   le.Uint32(b[32:]),
		ClustersPerGroup: le.Uint32(b[36:]),
		InodesPerGroup:   le.Uint32(b[40:]),
		Magic:            le.Uint16(b[56:]),
		State:            le.Uint16(b[58:]),
		CreatorOS:        le.Uint32(b[72:]),
		RevLevel:         le.Uint32(b[76:]),
		FirstIno:         le.Uint32(b[84:]),
		InodeSize:        le.Uint16(b[88:]),
		FeatureCompat:    le.Uint32(b[92:]),
		FeatureIncompat:  le.Uint32(b[96:]),
		FeatureRoCompat:  le.Uint32(b[100:]),
		DefHashVersion:   b[252],
		DescSize:         le.Uint16(b[254:]),
		FirstMetaBg:      le.Uint32(b[260:]),
		MinExtraIsize:    le.Uint16(b[348:]),
		Flags:            le.Uint32(b[352:]),
		LogGroupsPerFlex: b[372],
		ChecksumType:     b[373],
		ChecksumSeed:     le.Uint32(b[0x270:]),
	}
	copy(s.UUID[:], b[104:120])
	copy(s.VolumeName[:], b[120:136])
	for i := range s.HashSeed {
		s.HashSeed[i] = le.Uint32(b[236+4*i:])
	}
	if s.Magic != SuperMagic {
		return nil, ErrBadMagic
	}
	if s.FeatureIncompat&Incompat64Bit != 0 {
		s.BlocksCount |= uint64(le.Uint32(b[336:])) << 32
		s.FreeBlocksCount |= uint64(le.Uint32(b[344:])) << 32
	}
	if s.RevLevel == RevGoodOld {
		s.InodeSize = GoodOldInodeSize
		s.FirstIno = 11
	}
	return s, nil
}

// HasMagic reports whether head (the first bytes of a device, at least
// 1024+58 of them) holds the ext superblock magic number.
func HasMagic(head []byte) bool {
	const off = SuperblockOffset + 56
	return len(head) >= off+2 && le.Uint16(head[off:]) == SuperMagic
}

// BlockSize returns 1024 << s_log_block_size (callers check the range).
func (s *Superblock) BlockSize() uint64 {
	if s.LogBlockSize > 32 {
		return 0
	}
	return 1024 << s.LogBlockSize
}

// GroupDescSize is the size of one group descriptor: 32 bytes, or
// s_desc_size with the 64bit feature.
func (s *Superblock) GroupDescSize() int {
	if s.FeatureIncompat&Incompat64Bit != 0 {
		return int(s.DescSize)
	}
	return GroupDescSize32
}
