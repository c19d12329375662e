package server

import (
	"bytes"
	"testing"
)

// FuzzParseFH: any bytes presented as a file handle give a status, never a
// panic; only handles this host made pass, and they give their ID back.
func FuzzParseFH(f *testing.F) {
	st := &hostState{mac: hostKey([]byte("0123456789abcdef"), "a")}
	other := &hostState{mac: hostKey([]byte("0123456789abcdef"), "b")}
	good := st.makeFH([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte(good))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{1}, 70))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, s := st.parseFH(b)
		if s == 0 {
			if !bytes.Equal(st.makeFH(id), b) {
				t.Fatalf("accepted a handle it would not make: %x", b)
			}
			if _, s2 := other.parseFH(b); s2 == 0 {
				t.Fatalf("host b accepts host a's handle %x", b)
			}
		}
		// A handle made from any ID round-trips.
		if len(b) > 0 && len(b) <= 56 {
			fh := st.makeFH(b)
			if len(fh) > 64 {
				t.Fatalf("handle of %d bytes", len(fh))
			}
			if got, s := st.parseFH(fh); s != 0 || !bytes.Equal(got, b) {
				t.Fatalf("round trip of %x: %x %v", b, got, s)
			}
		}
	})
}
