package imgfmt

import "encoding/binary"

// On-disk structures of qcow2 version 3 (qemu docs/interop/qcow2.txt).
// All fields are big endian.

const (
	qcow2Magic         = 0x514649FB // "QFI\xfb"
	qcow2Version       = 3
	qcow2RefcountOrder = 4 // 16-bit refcounts, the default

	// qcow2Copied marks an L1 or L2 entry whose target has refcount 1;
	// qemu-img check counts a missing flag as corruption.
	qcow2Copied = uint64(1) << 63
)

// qcow2Header is the image header at offset 0 (header_length 112: the
// version 3 fields plus the compression type and its padding).
type qcow2Header struct {
	Magic                 uint32
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64 // virtual disk size in bytes
	CryptMethod           uint32
	L1Size                uint32 // entries
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
	CompressionType       uint8 // 0: zlib
	_                     [7]byte
}

const qcow2HeaderLen = 112

func (h *qcow2Header) encode() []byte {
	b, err := binary.Append(nil, binary.BigEndian, h)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}
