package nfs3_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/mount"
	. "github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/nfsexport/portmap"
	"github.com/vmroot/vmroot/nfsexport/rpc"
	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Fuzz selectors: the first input byte picks what the rest decodes as.
const (
	selArgs    = 0            // + proc: NFS arguments (through DecodeArgs)
	selRes     = NumProcs     // + proc: NFS results (client side)
	selOther   = 2 * NumProcs // + index into others
	numOthers  = 8
	numSelects = selOther + numOthers
)

func newRes(proc uint32) codec {
	switch proc {
	case ProcGetattr:
		return new(GetattrRes)
	case ProcSetattr, ProcRemove, ProcRmdir:
		return new(WccRes)
	case ProcLookup:
		return new(LookupRes)
	case ProcAccess:
		return new(AccessRes)
	case ProcReadlink:
		return new(ReadlinkRes)
	case ProcRead:
		return new(ReadRes)
	case ProcWrite:
		return new(WriteRes)
	case ProcCreate, ProcMkdir, ProcSymlink, ProcMknod:
		return new(CreateRes)
	case ProcRename:
		return new(RenameRes)
	case ProcLink:
		return new(LinkRes)
	case ProcReaddir:
		return new(ReaddirRes)
	case ProcReaddirplus:
		return new(ReaddirplusRes)
	case ProcFsstat:
		return new(FsstatRes)
	case ProcFsinfo:
		return new(FsinfoRes)
	case ProcPathconf:
		return new(PathconfRes)
	case ProcCommit:
		return new(CommitRes)
	}
	return nil
}

func newOther(i int) codec {
	return [numOthers]func() codec{
		func() codec { return new(mount.DirPath) },
		func() codec { return new(mount.MntRes) },
		func() codec { return new(mount.MountList) },
		func() codec { return new(mount.ExportList) },
		func() codec { return new(portmap.Mapping) },
		func() codec { return new(portmap.CallArgs) },
		func() codec { return new(portmap.List) },
		func() codec { return new(portmap.CallResult) },
	}[i]()
}

func otherSamples() []codec {
	return []codec{
		&mount.DirPath{Path: "/export/vm1"},
		&mount.MntRes{Status: mount.OK, FH: fh, AuthFlavors: []rpc.Flavor{rpc.AuthSys, rpc.AuthNone}},
		&mount.MountList{{Hostname: "10.0.0.7", Directory: "/export"}},
		&mount.ExportList{{Dir: "/export", Groups: []string{"10.0.0.0/8", "*"}}},
		&portmap.Mapping{Prog: 100003, Vers: 3, Prot: 6, Port: 2049},
		&portmap.CallArgs{Prog: 100005, Vers: 3, Proc: 0, Args: []byte{1, 2, 3, 4}},
		&portmap.List{{Prog: 100000, Vers: 2, Prot: 6, Port: 111}, {Prog: 100003, Vers: 3, Prot: 6, Port: 2049}},
		&portmap.CallResult{Port: 2049, Res: []byte{0, 0, 0, 0}},
	}
}

// FuzzNFSArgs decodes fuzzed bytes as the arguments (and results) of
// every NFSv3 procedure and as MOUNT and portmap messages. Decoding must
// not panic; whatever decodes must re-encode to exactly the bytes it
// consumed in length and decode again to the same value.
func FuzzNFSArgs(f *testing.F) {
	for _, s := range samples() {
		sel := byte(selRes + s.proc)
		if s.args {
			sel = byte(selArgs + s.proc)
		}
		f.Add(append([]byte{sel}, encode(s.value)...))
	}
	for i, v := range otherSamples() {
		f.Add(append([]byte{byte(selOther + i)}, encode(v)...))
	}
	f.Add([]byte{byte(ProcWrite), 0, 0, 0, 64})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		sel, body := int(in[0])%numSelects, in[1:]
		var v codec
		d := xdr.NewDecoder(body)
		switch {
		case sel < selRes:
			a, err := DecodeArgs(uint32(sel), d)
			if err != nil || a == nil {
				return
			}
			v = a.(codec)
		case sel < selOther:
			v = newRes(uint32(sel - selRes))
			if v == nil {
				return
			}
			v.DecodeXDR(d)
		default:
			v = newOther(sel - selOther)
			v.DecodeXDR(d)
		}
		if d.Err() != nil {
			return
		}
		out := encode(v)
		if len(out) != d.Offset() {
			t.Fatalf("selector %d: consumed %d bytes, re-encoded to %d", sel, d.Offset(), len(out))
		}
		again := reflect.New(reflect.TypeOf(v).Elem()).Interface().(codec)
		d2 := xdr.NewDecoder(out)
		again.DecodeXDR(d2)
		if d2.Err() != nil {
			t.Fatalf("selector %d: re-encoding does not decode: %v", sel, d2.Err())
		}
		if !reflect.DeepEqual(normal(again), normal(v)) {
			t.Fatalf("selector %d: round trip changed the value\n got %+v\nwant %+v", sel, again, v)
		}
		if !bytes.Equal(encode(again), out) {
			t.Fatalf("selector %d: encoding is not stable", sel)
		}
	})
}

// normal maps empty slices to nil so that DeepEqual compares content.
func normal(v any) any {
	var walk func(reflect.Value)
	walk = func(x reflect.Value) {
		switch x.Kind() {
		case reflect.Pointer:
			if !x.IsNil() {
				walk(x.Elem())
			}
		case reflect.Struct:
			for i := 0; i < x.NumField(); i++ {
				walk(x.Field(i))
			}
		case reflect.Slice:
			if x.Len() == 0 && x.CanSet() {
				x.Set(reflect.Zero(x.Type()))
				return
			}
			for i := 0; i < x.Len(); i++ {
				walk(x.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
	return v
}
