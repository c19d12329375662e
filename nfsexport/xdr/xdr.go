// Package xdr implements the subset of XDR (RFC 4506) that ONC RPC, MOUNT
// and NFSv3 use.
//
// Decoding never panics and never allocates more than the caller's bound:
// every variable-length item is checked against a caller-supplied maximum
// and against the bytes actually remaining before anything is allocated.
// Errors are sticky: after the first failure every further read returns a
// zero value and Err reports the first failure.
//
// Opaque data returned by the Decoder aliases the input buffer. Encoders
// append into a reusable buffer and can reference large external byte
// slices without copying them (see Encoder.OpaqueRef), so a reply can be
// written with one writev.
package xdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort reports input that ends before the item being decoded.
var ErrShort = errors.New("xdr: input too short")

// ErrTooLong reports a length field above the caller's bound.
var ErrTooLong = errors.New("xdr: length exceeds bound")

// ErrBadBool reports a boolean encoded as something other than 0 or 1.
var ErrBadBool = errors.New("xdr: invalid boolean")

// ErrBadValue reports an enum or union discriminant outside its domain.
var ErrBadValue = errors.New("xdr: invalid discriminant")

// Decoder reads XDR items from a byte slice.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder reading b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes d read b from the start, clearing any error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{buf: b} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the number of bytes consumed.
func (d *Decoder) Offset() int { return d.off }

// Rest returns the unread bytes (aliasing the input) without consuming them.
func (d *Decoder) Rest() []byte { return d.buf[d.off:] }

// SetErr records err unless an earlier error is already recorded. Codecs
// use it for semantic failures (bad discriminants).
func (d *Decoder) SetErr(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) fail(err error, what string, n uint64) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s (%d) at offset %d", err, what, n, d.off)
	}
}

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.buf)-d.off < 4 {
		d.fail(ErrShort, "uint32", 4)
		return 0
	}
	v := binary.BigEndian.Uint32(d.buf[d.off:])
	d.off += 4
	return v
}

// Int32 reads an int.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf)-d.off < 8 {
		d.fail(ErrShort, "uint64", 8)
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf[d.off:])
	d.off += 8
	return v
}

// Int64 reads a hyper.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Bool reads a boolean; values other than 0 and 1 are errors.
func (d *Decoder) Bool() bool {
	v := d.Uint32()
	if v > 1 {
		d.fail(ErrBadBool, "bool", uint64(v))
		return false
	}
	return v == 1
}

func pad(n int) int { return (4 - n&3) & 3 }

// FixedOpaque reads n bytes plus padding and returns them aliased.
func (d *Decoder) FixedOpaque(n int) []byte {
	if d.err != nil {
		return nil
	}
	total := n + pad(n)
	if n < 0 || len(d.buf)-d.off < total {
		d.fail(ErrShort, "fixed opaque", uint64(n))
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += total
	return b
}

// Opaque reads a variable-length opaque of at most max bytes, aliased.
func (d *Decoder) Opaque(max int) []byte {
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.fail(ErrTooLong, "opaque", uint64(n))
		return nil
	}
	return d.FixedOpaque(int(n))
}

// String reads a string of at most max bytes. It is the only decoding
// call that copies, because Go strings are immutable.
func (d *Decoder) String(max int) string {
	b := d.Opaque(max)
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// Count reads an array length and checks it against max and against the
// remaining input, assuming each element takes at least minSize bytes,
// so a caller may allocate count elements safely.
func (d *Decoder) Count(max, minSize int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		d.fail(ErrTooLong, "array count", uint64(n))
		return 0
	}
	if minSize > 0 && uint64(n)*uint64(minSize) > uint64(len(d.buf)-d.off) {
		d.fail(ErrShort, "array count", uint64(n))
		return 0
	}
	return int(n)
}

// Encoder appends XDR items to a buffer. Large opaque payloads can be
// referenced instead of copied; Buffers then interleaves them.
type Encoder struct {
	buf  []byte
	refs []ref
}

type ref struct {
	at   int // offset in buf where data is spliced in
	data []byte
}

// NewEncoder returns an Encoder whose buffer starts with capacity n.
func NewEncoder(n int) *Encoder { return &Encoder{buf: make([]byte, 0, n)} }

// Reset empties e, keeping its buffer.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	clear(e.refs)
	e.refs = e.refs[:0]
}

// Len returns the encoded length including referenced payloads.
func (e *Encoder) Len() int {
	n := len(e.buf)
	for _, r := range e.refs {
		n += len(r.data)
	}
	return n
}

// Mark returns a position usable with Truncate.
func (e *Encoder) Mark() int { return len(e.buf) }

// Truncate discards everything written after mark m, including
// referenced payloads spliced in after it.
func (e *Encoder) Truncate(m int) {
	e.buf = e.buf[:m]
	// A ref's splice point follows its 4-byte length, so refs at or
	// before m were written entirely before the mark.
	i := len(e.refs)
	for i > 0 && e.refs[i-1].at > m {
		i--
	}
	clear(e.refs[i:])
	e.refs = e.refs[:i]
}

// Bytes returns the contiguous encoded bytes. It must not be used when
// references were added (see HasRefs); use Buffers instead.
func (e *Encoder) Bytes() []byte { return e.buf }

// HasRefs reports whether payloads were referenced rather than copied.
func (e *Encoder) HasRefs() bool { return len(e.refs) > 0 }

// Buffers appends the encoded output, in order, to bufs.
func (e *Encoder) Buffers(bufs [][]byte) [][]byte {
	prev := 0
	for _, r := range e.refs {
		if r.at > prev {
			bufs = append(bufs, e.buf[prev:r.at])
		}
		if len(r.data) > 0 {
			bufs = append(bufs, r.data)
		}
		prev = r.at
	}
	if len(e.buf) > prev {
		bufs = append(bufs, e.buf[prev:])
	}
	return bufs
}

// PutUint32At overwrites 4 bytes at offset off of the contiguous buffer.
func (e *Encoder) PutUint32At(off int, v uint32) {
	binary.BigEndian.PutUint32(e.buf[off:], v)
}

// Uint32 appends an unsigned int.
func (e *Encoder) Uint32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

// Int32 appends an int.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper.
func (e *Encoder) Uint64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

// Int64 appends a hyper.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Bool appends a boolean.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

var zeros [4]byte

// FixedOpaque appends b and its padding.
func (e *Encoder) FixedOpaque(b []byte) {
	e.buf = append(e.buf, b...)
	e.buf = append(e.buf, zeros[:pad(len(b))]...)
}

// Opaque appends a length-prefixed opaque, copying b.
func (e *Encoder) Opaque(b []byte) {
	if len(b) > math.MaxUint32 {
		panic("xdr: opaque longer than 2^32-1") // caller bug, not input
	}
	e.Uint32(uint32(len(b)))
	e.FixedOpaque(b)
}

// OpaqueRef appends a length-prefixed opaque whose bytes are not copied:
// b is spliced into the output by Buffers and must stay valid and
// unchanged until the output has been written.
func (e *Encoder) OpaqueRef(b []byte) {
	if len(b) < 512 {
		e.Opaque(b)
		return
	}
	e.Uint32(uint32(len(b)))
	e.refs = append(e.refs, ref{at: len(e.buf), data: b})
	e.buf = append(e.buf, zeros[:pad(len(b))]...)
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, zeros[:pad(len(s))]...)
}

// Append appends raw, already-encoded bytes.
func (e *Encoder) Append(b []byte) { e.buf = append(e.buf, b...) }

// Encodable is a value with an XDR encoding.
type Encodable interface{ EncodeXDR(e *Encoder) }

// Decodable is a value that can be decoded; failures are recorded in d.
type Decodable interface{ DecodeXDR(d *Decoder) }

// Void encodes and decodes nothing.
type Void struct{}

// EncodeXDR implements Encodable.
func (Void) EncodeXDR(*Encoder) {}

// DecodeXDR implements Decodable.
func (*Void) DecodeXDR(*Decoder) {}
