package server

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/nfsexport/client"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

// TestReadFromImage reads a base file at unaligned offsets and lengths,
// from pipelined calls, over UDP, and after a copy-up, and compares
// every byte.
func TestReadFromImage(t *testing.T) {
	needRoot(t)
	tree := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+12345)
	rand.New(rand.NewSource(1)).Read(data)
	if err := os.WriteFile(filepath.Join(tree, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1"), Squash: NoRootSquash}}, Unknown{})
	c := f.dial("127.0.0.1", 0, 0)
	blob := c.mustWalk("blob")
	check := func(c *conn, off uint64, count uint32) {
		t.Helper()
		r, err := c.nfs.Read(bg, blob, off, count)
		if err != nil || r.Status != nfs3.OK {
			t.Fatalf("READ %d+%d: %v %v", off, count, err, r.Status)
		}
		end := min(off+uint64(count), uint64(len(data)))
		if !bytes.Equal(r.Data, data[off:end]) || r.EOF != (end == uint64(len(data))) {
			t.Errorf("READ %d+%d: %d bytes, eof %v; want %d bytes", off, count, len(r.Data), r.EOF, end-off)
		}
	}
	for _, rg := range [][2]uint64{{0, 1 << 20}, {1, 40001}, {4095, 65538}, {1 << 20, 1 << 20}, {uint64(len(data)) - 33333, 1 << 20}, {uint64(len(data)) - 1, 100}, {3 << 20, 12345}} {
		check(c, rg[0], uint32(rg[1]))
	}
	// Whole-file streams in 1 MiB READs, one alone and two at once on
	// one connection.
	if b, st := c.readAll(blob); st != nfs3.OK || !bytes.Equal(b, data) {
		t.Errorf("sequential read: %d bytes %v", len(b), st)
	}
	var sw sync.WaitGroup
	for i := 0; i < 2; i++ {
		sw.Add(1)
		go func() {
			defer sw.Done()
			for off := uint64(0); off < uint64(len(data)); off += 1 << 20 {
				r, err := c.nfs.Read(bg, blob, off, 1<<20)
				if err != nil || r.Status != nfs3.OK || !bytes.Equal(r.Data, data[off:min(off+1<<20, uint64(len(data)))]) {
					t.Errorf("stream %d at %d: wrong data (%v)", i, off, err)
					return
				}
			}
		}()
	}
	sw.Wait()
	// Pipelined calls on one connection: replies are batched.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 6; k++ {
				off := uint64((i*7 + k*131071) % len(data))
				r, err := c.nfs.Read(bg, blob, off, 100000+uint32(k))
				if err != nil || r.Status != nfs3.OK {
					t.Errorf("pipelined READ: %v %v", err, r.Status)
					return
				}
				end := min(off+100000+uint64(k), uint64(len(data)))
				if !bytes.Equal(r.Data, data[off:end]) {
					t.Errorf("pipelined READ %d: wrong data", off)
				}
			}
		}()
	}
	wg.Wait()
	// Over UDP.
	uc, err := client.Dial(context.Background(), "udp", fmt.Sprintf("127.0.0.1:%d", f.port), client.Options{UID: 0, GID: 0, MachineName: "test"})
	if err == nil {
		defer uc.Close()
		r, err := client.NFS{C: uc}.Read(bg, blob, 5, 50000)
		if err == nil && r.Status == nfs3.OK && !bytes.Equal(r.Data, data[5:50005]) {
			t.Errorf("READ over UDP: wrong data")
		}
	}
	// After a copy-up the diff's copy is read.
	if w, err := c.nfs.Write(bg, &nfs3.WriteArgs{File: blob, Offset: 70000, Stable: nfs3.FileSync, Data: []byte("changed")}); err != nil || w.Status != nfs3.OK {
		t.Fatal(err, w.Status)
	}
	copy(data[70000:], "changed")
	check(c, 0, 1<<20)
	if b, st := c.readAll(blob); st != nfs3.OK || !bytes.Equal(b, data) {
		t.Errorf("sequential read after copy-up: %d bytes %v", len(b), st)
	}
	check(c, 69999, 50000)
}
