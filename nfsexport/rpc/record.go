package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxRecord bounds a reassembled TCP record: a 1 MiB WRITE plus
// headers.
const DefaultMaxRecord = 1<<20 + 4<<10

const lastFragment = 1 << 31

// ErrRecordTooLarge reports a record whose fragments add up to more than
// the configured maximum. The connection cannot be resynchronised and is
// closed.
var ErrRecordTooLarge = errors.New("rpc: record exceeds maximum size")

// ReadRecord reads one record-marked record (RFC 5531 section 11) from r,
// reassembling fragments, and returns it in a pooled buffer that the
// caller hands back with PutBuffer. The total size, fragment headers
// included, never exceeds max; memory grows with the bytes actually
// received, not with what the headers claim.
func ReadRecord(r io.Reader, max int) (*[]byte, error) {
	var hdr [4]byte
	var bp *[]byte
	total := 0
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if bp != nil {
				PutBuffer(bp)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ lastFragment)
		total += 4 + n
		if total > max {
			if bp != nil {
				PutBuffer(bp)
			}
			return nil, fmt.Errorf("%w: %d > %d", ErrRecordTooLarge, total, max)
		}
		if bp == nil {
			bp = GetBuffer(min(n, 64<<10))
		}
		b := *bp
		// Grow in steps bounded by what has arrived, so a header that
		// lies about its length costs at most one step.
		for remaining := n; remaining > 0; {
			if len(b) == cap(b) {
				nb := GetBuffer(min(2*cap(b)+4096, len(b)+remaining))
				*nb = append(*nb, b...)
				*bp = b
				PutBuffer(bp)
				bp, b = nb, *nb
			}
			chunk := min(remaining, cap(b)-len(b))
			m, err := io.ReadFull(r, b[len(b):len(b)+chunk])
			b = b[:len(b)+m]
			if err != nil {
				*bp = b
				PutBuffer(bp)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			remaining -= chunk
		}
		*bp = b
		if h&lastFragment != 0 {
			return bp, nil
		}
	}
}

// AppendRecordMark sets the 4-byte record mark that starts a single-fragment
// record of n payload bytes into hdr.
func putRecordMark(hdr []byte, n int) {
	binary.BigEndian.PutUint32(hdr, lastFragment|uint32(n))
}

// Size classes for pooled buffers; the last covers a default-size record.
var classes = [...]int{4 << 10, 32 << 10, 128 << 10, 512 << 10, DefaultMaxRecord + 64<<10}

var pools [len(classes)]sync.Pool

// GetBuffer returns an empty buffer with capacity at least n, pooled when
// n fits a size class.
func GetBuffer(n int) *[]byte {
	for i, c := range classes {
		if n <= c {
			if v := pools[i].Get(); v != nil {
				bp := v.(*[]byte)
				*bp = (*bp)[:0]
				return bp
			}
			b := make([]byte, 0, c)
			return &b
		}
	}
	b := make([]byte, 0, n)
	return &b
}

// PutBuffer returns a buffer obtained from GetBuffer to its pool.
func PutBuffer(bp *[]byte) {
	c := cap(*bp)
	for i := len(classes) - 1; i >= 0; i-- {
		if c == classes[i] {
			*bp = (*bp)[:0]
			pools[i].Put(bp)
			return
		}
	}
}
