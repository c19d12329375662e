package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/schollz/progressbar/v3"
	"github.com/vmroot/vmroot/vmdk"
)

// qcow2 output for disks of any size: version 3, 64 KiB clusters, 16-bit
// refcounts, no backing file (qemu docs/interop/qcow2.txt). Clusters that
// read as zeros are left unallocated. Data clusters are placed in the order
// the workers finish them, then come the L2 tables, the L1 table and the
// refcount structures; the header is written last. The L2 tables are kept
// in memory until then: 8 bytes per 64 KiB cluster of data (1/8192 of it).
const (
	q2ClusterBits = 16
	q2Cluster     = 1 << q2ClusterBits
	q2L2Entries   = q2Cluster / 8
	q2Copied      = uint64(1) << 63 // refcount is exactly 1
	q2RefsPerBlk  = q2Cluster / 2   // 16-bit refcounts
	q2HeaderLen   = 104
	q2Chunk       = 16 * q2Cluster // unit of work, as extract reads
)

func writeQCOW2(out string, r io.ReaderAt, size int64, bar *progressbar.ProgressBar) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := qcow2Fill(tmp, r, size, bar); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	ok = true
	return nil
}

func qcow2Fill(f *os.File, r io.ReaderAt, size int64, bar *progressbar.ProgressBar) error {
	vsize := (size + 511) &^ 511
	l1Size := (vsize + q2Cluster*q2L2Entries - 1) / (q2Cluster * q2L2Entries)
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
	zero := make([]byte, q2Cluster)
	for range extractWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, q2Chunk)
			for {
				off := next.Add(q2Chunk) - q2Chunk
				if off >= vsize {
					return
				}
				n := min(q2Chunk, vsize-off)
				err := qcow2Chunk(f, r, ranger, size, buf[:n], off, zero, l2, &l2mu, &hostNext)
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					next.Store(vsize)
					return
				}
				if bar != nil {
					bar.Add64(n)
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
	tb := make([]byte, q2Cluster)
	for i, t := range l2 {
		if t == nil {
			continue
		}
		for j, v := range t {
			binary.BigEndian.PutUint64(tb[j*8:], v)
		}
		if _, err := f.WriteAt(tb, host*q2Cluster); err != nil {
			return err
		}
		binary.BigEndian.PutUint64(l1[i*8:], uint64(host*q2Cluster)|q2Copied)
		host++
	}
	l1Off := host * q2Cluster
	if _, err := f.WriteAt(l1, l1Off); err != nil {
		return err
	}
	host += (int64(len(l1)) + q2Cluster - 1) / q2Cluster
	// Refcount blocks and the table must count themselves too.
	rtClusters, blocks := int64(1), int64(1)
	for {
		total := host + rtClusters + blocks
		nb := (total + q2RefsPerBlk - 1) / q2RefsPerBlk
		nt := (nb*8 + q2Cluster - 1) / q2Cluster
		if nb <= blocks && nt <= rtClusters {
			break
		}
		blocks, rtClusters = max(nb, blocks), max(nt, rtClusters)
	}
	rtOff := host * q2Cluster
	rbOff := rtOff + rtClusters*q2Cluster
	total := host + rtClusters + blocks
	rt := make([]byte, rtClusters*q2Cluster)
	for i := range blocks {
		binary.BigEndian.PutUint64(rt[i*8:], uint64(rbOff+i*q2Cluster))
	}
	if _, err := f.WriteAt(rt, rtOff); err != nil {
		return err
	}
	rb := make([]byte, q2Cluster)
	for i := range blocks {
		clear(rb)
		for c := i * q2RefsPerBlk; c < min(total, (i+1)*q2RefsPerBlk); c++ {
			binary.BigEndian.PutUint16(rb[(c-i*q2RefsPerBlk)*2:], 1)
		}
		if _, err := f.WriteAt(rb, rbOff+i*q2Cluster); err != nil {
			return err
		}
	}
	h := make([]byte, q2HeaderLen+8) // the header, then an empty extension list
	be := binary.BigEndian
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], 3) // version
	be.PutUint32(h[20:], q2ClusterBits)
	be.PutUint64(h[24:], uint64(vsize))
	be.PutUint32(h[36:], uint32(l1Size))
	be.PutUint64(h[40:], uint64(l1Off))
	be.PutUint64(h[48:], uint64(rtOff))
	be.PutUint32(h[56:], uint32(rtClusters))
	be.PutUint32(h[96:], 4) // refcount_order: 16 bits
	be.PutUint32(h[100:], q2HeaderLen)
	if _, err := f.WriteAt(h, 0); err != nil {
		return err
	}
	return f.Truncate(total * q2Cluster)
}

// qcow2Chunk stores the non-zero clusters of the chunk at off.
func qcow2Chunk(f *os.File, r io.ReaderAt, ranger vmdk.DataRanger, size int64, buf []byte, off int64, zero []byte, l2 [][]uint64, l2mu *sync.Mutex, hostNext *atomic.Int64) error {
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
	for c := int64(0); c < n; c += q2Cluster {
		cl := buf[c:min(c+q2Cluster, n)]
		if bytes.Equal(cl, zero[:len(cl)]) {
			continue
		}
		host := hostNext.Add(1) - 1
		if _, err := f.WriteAt(cl, host*q2Cluster); err != nil {
			return err
		}
		g := (off + c) / q2Cluster
		l2mu.Lock()
		t := l2[g/q2L2Entries]
		if t == nil {
			t = make([]uint64, q2L2Entries)
			l2[g/q2L2Entries] = t
		}
		t[g%q2L2Entries] = uint64(host*q2Cluster) | q2Copied
		l2mu.Unlock()
	}
	return nil
}
