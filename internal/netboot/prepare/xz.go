package prepare

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// maxDict bounds the LZMA dictionary a decoder may allocate. Kernels'
// own initramfs decompressors use far less (xz's presets top at 64 MiB).
const maxDict = 64 << 20

var errXZ = errors.New("xz: malformed or unsupported stream")

// checkXZ walks the block headers of the xz stream that runs from start
// to the end of the image (locating them through the index at its end)
// and refuses any LZMA2 dictionary over maxDict, so that decoding cannot
// be made to allocate gigabytes by a forged header. One stream only.
func checkXZ(ra io.ReaderAt, start, end int64) error {
	read := func(off, n int64) ([]byte, error) {
		if off < start || n < 0 || off+n > end || n > 16<<20 {
			return nil, errXZ
		}
		b := make([]byte, n)
		if _, err := ra.ReadAt(b, off); err != nil {
			return nil, errXZ
		}
		return b, nil
	}
	// Stream padding: zeros in multiples of four after the footer.
	for end-start > 24 {
		b, err := read(end-4, 4)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, []byte{0, 0, 0, 0}) {
			break
		}
		end -= 4
	}
	hdr, err := read(start, 12)
	if err != nil {
		return err
	}
	foot, err := read(end-12, 12)
	if err != nil || string(foot[10:12]) != "YZ" || !bytes.Equal(foot[8:10], hdr[6:8]) || !crcOK(foot[4:10], foot[0:4]) {
		return errXZ
	}
	backward := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
	indexStart := end - 12 - backward
	index, err := read(indexStart, backward)
	if err != nil || index[0] != 0 || !crcOK(index[:len(index)-4], index[len(index)-4:]) {
		return errXZ
	}
	p := index[1 : len(index)-4]
	count, ok := uvarint(&p)
	if !ok || count > uint64(len(p)/2) {
		return errXZ
	}
	off := start + 12
	for i := uint64(0); i < count; i++ {
		unpadded, ok1 := uvarint(&p)
		_, ok2 := uvarint(&p)
		if !ok1 || !ok2 || unpadded > uint64(end) {
			return errXZ
		}
		if err := checkBlockHeader(read, off); err != nil {
			return err
		}
		off += (int64(unpadded) + 3) &^ 3
	}
	if off != indexStart {
		return fmt.Errorf("xz: concatenated streams are not supported")
	}
	return nil
}

func checkBlockHeader(read func(off, n int64) ([]byte, error), off int64) error {
	b, err := read(off, 1)
	if err != nil || b[0] == 0 {
		return errXZ
	}
	h, err := read(off, (int64(b[0])+1)*4)
	if err != nil {
		return err
	}
	if !crcOK(h[:len(h)-4], h[len(h)-4:]) {
		return errXZ
	}
	flags := h[1]
	p := h[2 : len(h)-4] // without the CRC32
	if flags&0x40 != 0 {
		if _, ok := uvarint(&p); !ok {
			return errXZ
		}
	}
	if flags&0x80 != 0 {
		if _, ok := uvarint(&p); !ok {
			return errXZ
		}
	}
	for i := 0; i <= int(flags&3); i++ {
		id, ok1 := uvarint(&p)
		n, ok2 := uvarint(&p)
		if !ok1 || !ok2 || n > uint64(len(p)) {
			return errXZ
		}
		props := p[:n]
		p = p[n:]
		if id == 0x21 { // LZMA2
			if len(props) != 1 || props[0] > 40 {
				return errXZ
			}
			c := props[0]
			dict := uint64(2|c&1) << (c/2 + 11)
			if c == 40 || dict > maxDict {
				return fmt.Errorf("xz: block dictionary of %d bytes exceeds the %d-byte limit", dict, maxDict)
			}
		}
	}
	return nil
}

func crcOK(data, sum []byte) bool {
	return crc32.ChecksumIEEE(data) == binary.LittleEndian.Uint32(sum)
}

// uvarint reads an xz multibyte integer (at most 9 bytes) from *p.
func uvarint(p *[]byte) (uint64, bool) {
	var v uint64
	for i := 0; i < 9 && i < len(*p); i++ {
		c := (*p)[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			*p = (*p)[i+1:]
			return v, true
		}
	}
	return 0, false
}
