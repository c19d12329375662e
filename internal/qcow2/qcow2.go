// Package qcow2 writes disks of any size as qcow2 images: version 3,
// 64 KiB clusters, 16-bit refcounts, no backing file (qemu
// docs/interop/qcow2.txt).
//
// Clusters that read as zeros are left unallocated. Data clusters are
// placed in the order the workers finish them, then come the L2 tables,
// the L1 table and the refcount structures; the header is written last.
// The L2 tables are kept in memory until then: 8 bytes per 64 KiB cluster
// of data (1/8192 of it).
package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/vmroot/vmroot/internal/atomicfile"
	"github.com/vmroot/vmroot/vmdk"
)

// chunkSize is the unit of work, as vmroot extract reads.
const chunkSize = 16 * cluster

// Options control Write. The zero value uses GOMAXPROCS workers and
// reports no progress.
type Options struct {
	// Workers is the number of goroutines reading and storing clusters.
	Workers int
	// Progress, if set, is called from one goroutine at a time with the
	// number of bytes of the disk done so far.
	Progress func(done int64)
}

// Write writes the first size bytes of src to dst as a qcow2 image, its
// virtual size rounded up to a whole sector. Clusters that read as zeros
// are not stored; if src implements vmdk.DataRanger its holes are skipped
// without being read. The image is written under a temporary name in dst's
// directory and renamed into place when complete; on error nothing is left.
func Write(dst string, r io.ReaderAt, size int64, opts Options) error {
	if size <= 0 {
		return fmt.Errorf("%s: cannot write a qcow2 image of %d bytes", dst, size)
	}
	tmp, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	if err := fill(tmp.File, r, size, opts); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return tmp.Commit()
}

func fill(f *os.File, r io.ReaderAt, size int64, opts Options) error {
	vsize := (size + 511) &^ 511
	l1Size := (vsize + cluster*l2Entries - 1) / (cluster * l2Entries)
	if l1Size > 1<<25 {
		return fmt.Errorf("disk of %d bytes is too large for qcow2 output", size)
	}
	l2 := make([][]uint64, l1Size) // nil: no cluster of that table stored
	var l2mu sync.Mutex
	var hostNext atomic.Int64 // next free host cluster; cluster 0 is the header
	hostNext.Store(1)
	ranger, _ := r.(vmdk.DataRanger)

	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	zero := make([]byte, cluster)
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var done int64
	var progMu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunkSize)
			for {
				off := next.Add(chunkSize) - chunkSize
				if off >= vsize {
					return
				}
				n := min(chunkSize, vsize-off)
				err := chunk(f, r, ranger, size, buf[:n], off, zero, l2, &l2mu, &hostNext)
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					next.Store(vsize)
					return
				}
				if opts.Progress != nil {
					progMu.Lock()
					done += n
					opts.Progress(min(done, size))
					progMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	// L2 tables, then L1, then refcounts: every cluster up to the end of
	// the file is used exactly once.
	host := hostNext.Load()
	l1 := make([]byte, l1Size*8)
	tb := make([]byte, cluster)
	for i, t := range l2 {
		if t == nil {
			continue
		}
		for j, v := range t {
			binary.BigEndian.PutUint64(tb[j*8:], v)
		}
		if _, err := f.WriteAt(tb, host*cluster); err != nil {
			return err
		}
		binary.BigEndian.PutUint64(l1[i*8:], uint64(host*cluster)|copied)
		host++
	}
	l1Off := host * cluster
	if _, err := f.WriteAt(l1, l1Off); err != nil {
		return err
	}
	host += (int64(len(l1)) + cluster - 1) / cluster
	// Refcount blocks and the table must count themselves too.
	rtClusters, blocks := int64(1), int64(1)
	for {
		total := host + rtClusters + blocks
		nb := (total + refsPerBlock - 1) / refsPerBlock
		nt := (nb*8 + cluster - 1) / cluster
		if nb <= blocks && nt <= rtClusters {
			break
		}
		blocks, rtClusters = max(nb, blocks), max(nt, rtClusters)
	}
	rtOff := host * cluster
	rbOff := rtOff + rtClusters*cluster
	total := host + rtClusters + blocks
	rt := make([]byte, rtClusters*cluster)
	for i := range blocks {
		binary.BigEndian.PutUint64(rt[i*8:], uint64(rbOff+i*cluster))
	}
	if _, err := f.WriteAt(rt, rtOff); err != nil {
		return err
	}
	rb := make([]byte, cluster)
	for i := range blocks {
		clear(rb)
		for c := i * refsPerBlock; c < min(total, (i+1)*refsPerBlock); c++ {
			binary.BigEndian.PutUint16(rb[(c-i*refsPerBlock)*2:], 1)
		}
		if _, err := f.WriteAt(rb, rbOff+i*cluster); err != nil {
			return err
		}
	}
	h := make([]byte, headerLen+8) // the header, then an empty extension list
	be := binary.BigEndian
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3) // version
	be.PutUint32(h[20:], clusterBits)
	be.PutUint64(h[24:], uint64(vsize))
	be.PutUint32(h[36:], uint32(l1Size))
	be.PutUint64(h[40:], uint64(l1Off))
	be.PutUint64(h[48:], uint64(rtOff))
	be.PutUint32(h[56:], uint32(rtClusters))
	be.PutUint32(h[96:], 4) // refcount_order: 16 bits
	be.PutUint32(h[100:], headerLen)
	if _, err := f.WriteAt(h, 0); err != nil {
		return err
	}
	return f.Truncate(total * cluster)
}

// chunk stores the non-zero clusters of the chunk at off.
func chunk(f *os.File, r io.ReaderAt, ranger vmdk.DataRanger, size int64, buf []byte, off int64, zero []byte, l2 [][]uint64, l2mu *sync.Mutex, hostNext *atomic.Int64) error {
	n := int64(len(buf))
	ranges := []vmdk.Range{{Off: off, Len: min(n, size-off)}}
	if ranger != nil {
		var err error
		if ranges, err = ranger.DataRanges(off, min(n, size-off)); err != nil {
			return err
		}
	}
	if len(ranges) == 0 {
		return nil
	}
	clear(buf)
	for _, rg := range ranges {
		b := buf[rg.Off-off : rg.End()-off]
		got, err := r.ReadAt(b, rg.Off)
		if got < len(b) {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("image ends early at %d of %d bytes", rg.Off+int64(got), size)
			}
			return err
		}
	}
	for c := int64(0); c < n; c += cluster {
		cl := buf[c:min(c+cluster, n)]
		if bytes.Equal(cl, zero[:len(cl)]) {
			continue
		}
		host := hostNext.Add(1) - 1
		if _, err := f.WriteAt(cl, host*cluster); err != nil {
			return err
		}
		g := (off + c) / cluster
		l2mu.Lock()
		t := l2[g/l2Entries]
		if t == nil {
			t = make([]uint64, l2Entries)
			l2[g/l2Entries] = t
		}
		t[g%l2Entries] = uint64(host*cluster) | copied
		l2mu.Unlock()
	}
	return nil
}
