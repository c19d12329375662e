package nfs3_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	. "github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

func TestSamplesCoverEveryProcedure(t *testing.T) {
	args, res := map[uint32]bool{}, map[uint32]bool{}
	for _, s := range samples() {
		if s.args {
			args[s.proc] = true
		} else {
			res[s.proc] = true
		}
	}
	for p := uint32(1); p < NumProcs; p++ {
		if !args[p] || !res[p] {
			t.Errorf("%s: args sample %v, result sample %v", ProcNames[p], args[p], res[p])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		b := encode(s.value)
		if len(b)%4 != 0 {
			t.Errorf("%s: encoding is %d bytes, not a multiple of 4", s.name, len(b))
		}
		got := s.empty()
		d := xdr.NewDecoder(b)
		got.DecodeXDR(d)
		if d.Err() != nil {
			t.Errorf("%s: decode: %v", s.name, d.Err())
			continue
		}
		if d.Remaining() != 0 {
			t.Errorf("%s: %d bytes left after decoding", s.name, d.Remaining())
		}
		if !reflect.DeepEqual(got, s.value) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", s.name, got, s.value)
		}
		if s.args {
			d := xdr.NewDecoder(b)
			a, err := DecodeArgs(s.proc, d)
			if err != nil || !reflect.DeepEqual(a, s.value) {
				t.Errorf("%s: DecodeArgs = %+v, %v", s.name, a, err)
			}
		}
		// Every proper prefix is short input: an error, never a panic.
		for n := 0; n < len(b); n += 1 + n/64 {
			d := xdr.NewDecoder(b[:n])
			s.empty().DecodeXDR(d)
			if !errors.Is(d.Err(), xdr.ErrShort) {
				t.Errorf("%s: %d-byte prefix of %d: err %v, want ErrShort", s.name, n, len(b), d.Err())
				break
			}
		}
	}
}

// Known-answer encodings, written out by hand from RFC 1813, so the codec
// is checked against the specification rather than against itself.
func TestKnownEncodings(t *testing.T) {
	hex := func(s string) []byte {
		s = strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s)
		b := make([]byte, len(s)/2)
		for i := range b {
			var v byte
			for _, c := range s[2*i : 2*i+2] {
				v <<= 4
				switch {
				case c >= '0' && c <= '9':
					v |= byte(c - '0')
				default:
					v |= byte(c-'a') + 10
				}
			}
			b[i] = v
		}
		return b
	}
	cases := []struct {
		name string
		v    xdr.Encodable
		want string
	}{
		{"LOOKUP args", &LookupArgs{What: DirOpArgs{Dir: FH{0xaa, 0xbb, 0xcc}, Name: "etc"}},
			"00000003 aabbcc00 00000003 65746300"},
		{"CREATE exclusive", &CreateArgs{Where: DirOpArgs{Dir: FH{1, 2, 3, 4}, Name: "f"}, Mode: Exclusive, Verf: verf},
			"00000004 01020304 00000001 66000000 00000002 0102030405060708"},
		{"CREATE guarded mode only", &CreateArgs{Where: DirOpArgs{Dir: FH{1, 2, 3, 4}, Name: "f"}, Mode: Guarded, Attr: Sattr{SetMode: true, Mode: 0o644}},
			"00000004 01020304 00000001 66000000 00000001 00000001 000001a4 00000000 00000000 00000000 00000000 00000000"},
		{"SETATTR atime client mtime server", &SetattrArgs{Object: FH{9, 9, 9, 9}, Attr: Sattr{Atime: SetTime{How: SetToClientTime, Time: Time{0x10, 0x20}}, Mtime: SetTime{How: SetToServerTime}}},
			"00000004 09090909 00000000 00000000 00000000 00000000 00000002 00000010 00000020 00000001 00000000"},
		{"GETATTR fail", &GetattrRes{Status: ErrStale}, "00000046"},
		{"LOOKUP fail", &LookupRes{Status: ErrNoEnt}, "00000002 00000000"},
		{"READ ok", &ReadRes{Status: OK, EOF: true, Data: []byte("hello")},
			"00000000 00000000 00000005 00000001 00000005 68656c6c 6f000000"},
		{"READDIR one entry", &ReaddirRes{Status: OK, Verf: verf, Entries: []DirEntry{{FileID: 5, Name: "ab", Cookie: 9}}, EOF: true},
			"00000000 00000000 0102030405060708 00000001 0000000000000005 00000002 61620000 0000000000000009 00000000 00000001"},
		{"WRITE fail with wcc", &WriteRes{Status: ErrROFS, Wcc: WccData{Before: PreOpAttr{Present: true, Attr: WccAttr{Size: 1, Mtime: Time{2, 3}, Ctime: Time{4, 5}}}}},
			"0000001e 00000001 0000000000000001 00000002 00000003 00000004 00000005 00000000"},
	}
	for _, c := range cases {
		if got, want := encode(c.v), hex(c.want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, got, want)
		}
	}
	if n := len(encode(&attr)); n != 84 {
		t.Errorf("fattr3 encodes to %d bytes, want 84", n)
	}
	r := ReaddirRes{Status: OK, DirAttr: post, Entries: []DirEntry{{Name: "abcde"}, {Name: "x"}}}
	if got, want := len(encode(&r)), ReaddirResOverhead+DirEntrySize("abcde")+DirEntrySize("x"); got != want {
		t.Errorf("READDIR size helpers: encoded %d, helpers say %d", got, want)
	}
	rp := ReaddirplusRes{Status: OK, DirAttr: post, Entries: []DirEntryPlus{{Name: "abcde", Attr: post, FH: PostOpFH{Present: true, FH: fh}}, {Name: "x"}}}
	if got, want := len(encode(&rp)), ReaddirResOverhead+DirEntryPlusSize("abcde", true, len(fh))+DirEntryPlusSize("x", false, -1); got != want {
		t.Errorf("READDIRPLUS size helpers: encoded %d, helpers say %d", got, want)
	}
}

func TestDecodeBounds(t *testing.T) {
	big := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }
	cases := []struct {
		name string
		v    xdr.Encodable
		into xdr.Decodable
		want error
	}{
		{"65-byte handle", &FHArgs{Object: big(65)}, new(FHArgs), xdr.ErrTooLong},
		{"1025-byte name", &LookupArgs{What: DirOpArgs{Dir: fh, Name: string(big(1025))}}, new(LookupArgs), xdr.ErrTooLong},
		{"4097-byte symlink target", &SymlinkArgs{Where: where, Target: string(big(4097))}, new(SymlinkArgs), xdr.ErrTooLong},
		{"write of 1 MiB + 4", &WriteArgs{File: fh, Data: big(MaxData + 4)}, new(WriteArgs), xdr.ErrTooLong},
		{"createmode 3", &CreateArgs{Where: where, Mode: 3}, new(CreateArgs), xdr.ErrBadValue},
		{"time_how 3", &SetattrArgs{Object: fh, Attr: Sattr{Atime: SetTime{How: 3}}}, new(SetattrArgs), xdr.ErrBadValue},
		{"stable_how 3", &WriteArgs{File: fh, Stable: 3}, new(WriteArgs), xdr.ErrBadValue},
	}
	for _, c := range cases {
		d := xdr.NewDecoder(encode(c.v))
		c.into.DecodeXDR(d)
		if !errors.Is(d.Err(), c.want) {
			t.Errorf("%s: err %v, want %v", c.name, d.Err(), c.want)
		}
	}
	// A boolean that is neither 0 nor 1.
	b := encode(&SetattrArgs{Object: fh})
	b[len(b)-4+3] = 2 // guard.check
	d := xdr.NewDecoder(b)
	new(SetattrArgs).DecodeXDR(d)
	if !errors.Is(d.Err(), xdr.ErrBadBool) {
		t.Errorf("guard bool 2: err %v, want ErrBadBool", d.Err())
	}
	// A READDIR reply claiming a list longer than the bound stops there.
	var r ReaddirRes
	r.Status = OK
	r.Entries = make([]DirEntry, MaxDirEntries+1)
	d = xdr.NewDecoder(encode(&r))
	new(ReaddirRes).DecodeXDR(d)
	if !errors.Is(d.Err(), xdr.ErrTooLong) {
		t.Errorf("%d entries: err %v, want ErrTooLong", MaxDirEntries+1, d.Err())
	}
	// Exactly at the bounds decodes.
	d = xdr.NewDecoder(encode(&WriteArgs{File: fh2, Data: big(MaxData)}))
	var w WriteArgs
	w.DecodeXDR(d)
	if d.Err() != nil || len(w.Data) != MaxData || len(w.File) != FHSize {
		t.Errorf("1 MiB write with 64-byte handle: %v", d.Err())
	}
}
