package server

import (
	"fmt"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

// BenchmarkCreate creates small files in one directory of the diff, as
// an untar does.
func BenchmarkCreate(b *testing.B) {
	needRoot(b)
	tree := baseTree(b, b.TempDir())
	f := newFixture(b, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{})
	c := f.dial("127.0.0.1", 1000, 1000)
	tmp := c.mustWalk("tmp")
	data := make([]byte, 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := c.nfs.Create(bg, &nfs3.CreateArgs{Where: nfs3.DirOpArgs{Dir: tmp, Name: fmt.Sprintf("f%07d", i)}, Mode: nfs3.Unchecked, Attr: nfs3.Sattr{SetMode: true, Mode: 0o644}})
		if err != nil || r.Status != nfs3.OK {
			b.Fatal(err, r.Status)
		}
		w, err := c.nfs.Write(bg, &nfs3.WriteArgs{File: r.FH.FH, Stable: nfs3.Unstable, Data: data})
		if err != nil || w.Status != nfs3.OK {
			b.Fatal(err, w.Status)
		}
	}
}

// BenchmarkReaddirplus lists a 300-entry base directory with handles and
// attributes, as `ls -l` over NFS does.
func BenchmarkReaddirplus(b *testing.B) {
	needRoot(b)
	tree := baseTree(b, b.TempDir())
	f := newFixture(b, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{})
	c := f.dial("127.0.0.1", 1000, 1000)
	sub := c.mustWalk("data/sub")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var cookie uint64
		for {
			r, err := c.nfs.Readdirplus(bg, &nfs3.ReaddirplusArgs{Dir: sub, Cookie: cookie, DirCount: 8192, MaxCount: 32768})
			if err != nil || r.Status != nfs3.OK {
				b.Fatal(err, r.Status)
			}
			for _, e := range r.Entries {
				cookie = e.Cookie
			}
			if r.EOF {
				break
			}
		}
	}
}

// BenchmarkRead reads a 3 MiB base file in 1 MiB READs, as a client
// streaming a kernel or initrd does.
func BenchmarkRead(b *testing.B) {
	needRoot(b)
	tree := baseTree(b, b.TempDir())
	f := newFixture(b, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{})
	c := f.dial("127.0.0.1", 1000, 1000)
	big := c.mustWalk("data/big")
	b.SetBytes(3 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := uint64(0); ; off += 1 << 20 {
			r, err := c.nfs.Read(bg, big, off, 1<<20)
			if err != nil || r.Status != nfs3.OK {
				b.Fatal(err, r.Status)
			}
			if r.EOF {
				break
			}
		}
	}
}

// BenchmarkOpenRead opens and reads small base files as libnfs's
// nfs_open and nfs_read do: LOOKUP of each component, ACCESS, READ.
func BenchmarkOpenRead(b *testing.B) {
	needRoot(b)
	tree := baseTree(b, b.TempDir())
	f := newFixture(b, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{})
	c := f.dial("127.0.0.1", 1000, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fh := c.mustWalk(fmt.Sprintf("data/sub/file-%d", i%300+1))
		a, err := c.nfs.Access(bg, fh, nfs3.AccessRead)
		if err != nil || a.Status != nfs3.OK {
			b.Fatal(err, a.Status)
		}
		r, err := c.nfs.Read(bg, fh, 0, 1<<20)
		if err != nil || r.Status != nfs3.OK || !r.EOF {
			b.Fatal(err, r.Status)
		}
	}
}
