package xdr

import (
	"bytes"
	"errors"
	"testing"
)

func TestBoundsCheckedBeforeUse(t *testing.T) {
	// A count of 2^32-1 with 8 bytes behind it must fail without
	// allocating, both against the bound and against the remaining input.
	d := NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	if n := d.Count(1<<30, 4); n != 0 || !errors.Is(d.Err(), ErrTooLong) {
		t.Errorf("huge count: n=%d err=%v", n, d.Err())
	}
	d = NewDecoder([]byte{0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2})
	if n := d.Count(16, 4); n != 0 || !errors.Is(d.Err(), ErrShort) {
		t.Errorf("count 3 with 2 elements present: n=%d err=%v", n, d.Err())
	}
	d = NewDecoder([]byte{0, 0, 1, 0, 'a'})
	if b := d.Opaque(255); b != nil || !errors.Is(d.Err(), ErrTooLong) {
		t.Errorf("256-byte opaque with bound 255: %v", d.Err())
	}
	d = NewDecoder([]byte{0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0})
	if s := d.String(255); s != "" || !errors.Is(d.Err(), ErrShort) {
		t.Errorf("string missing padding: %q %v", s, d.Err())
	}
	// Errors are sticky.
	if d.Uint32() != 0 || d.Uint64() != 0 || d.Bool() || !errors.Is(d.Err(), ErrShort) {
		t.Errorf("reads after an error must return zero values and keep the first error")
	}
	d = NewDecoder([]byte{0, 0, 0, 2})
	if d.Bool() || !errors.Is(d.Err(), ErrBadBool) {
		t.Errorf("bool 2: %v", d.Err())
	}
}

func TestOpaqueAliasesInput(t *testing.T) {
	in := []byte{0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0, 0, 9}
	d := NewDecoder(in)
	b := d.Opaque(10)
	in[4] = 'X'
	if string(b) != "Xyz" || cap(b) != 3 || d.Uint32() != 9 || d.Remaining() != 0 {
		t.Errorf("opaque %q cap %d", b, cap(b))
	}
}

func TestRefsTruncateAndBuffers(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 1001) // referenced: not copied
	e := NewEncoder(16)
	e.Uint32(1)
	e.OpaqueRef(big)
	e.Uint32(2)
	if !e.HasRefs() || len(e.Bytes()) != 4+4+3+4 || e.Len() != 4+4+1001+3+4 {
		t.Fatalf("ref layout: contiguous %d, total %d", len(e.Bytes()), e.Len())
	}
	var flat []byte
	for _, b := range e.Buffers(nil) {
		flat = append(flat, b...)
	}
	want := NewEncoder(0)
	want.Uint32(1)
	want.Opaque(big)
	want.Uint32(2)
	if !bytes.Equal(flat, want.Bytes()) {
		t.Errorf("Buffers differ from a copying encoding")
	}
	big[0] = 8 // the encoder holds a reference, not a copy
	if e.Buffers(nil)[1][0] != 8 {
		t.Errorf("OpaqueRef copied its input")
	}
	m := e.Mark()
	e.OpaqueRef(big)
	e.Truncate(m)
	if e.Len() != len(flat) || len(e.Buffers(nil)) != 3 {
		t.Errorf("Truncate kept a ref written after the mark")
	}
	e.Truncate(4)
	if e.HasRefs() || e.Len() != 4 {
		t.Errorf("Truncate before the ref's length kept it: len %d", e.Len())
	}
	small := NewEncoder(0)
	small.OpaqueRef([]byte("tiny"))
	if small.HasRefs() {
		t.Errorf("small payloads should be copied")
	}
}
