package imgfmt

import (
	"encoding/binary"
	"io"
)

// qcow2ClusterBits is the smallest cluster size the format allows (512
// bytes). Every metadata table occupies at least one cluster, so for a
// small disk the smallest clusters give the smallest file.
const qcow2ClusterBits = 9

// qcow2Layout places every cluster of the image. The order is: header,
// L1 table, refcount table, refcount blocks, L2 tables, data clusters.
type qcow2Layout struct {
	clusterSize             int64
	l1Size                  int64  // L1 entries
	l2Used                  []bool // by L1 index: an L2 table is stored
	dataUsed                []bool // by guest cluster: the cluster is stored
	l1Off, rtOff, rbOff     int64
	l2Off, dataOff          int64
	l1Clusters, rtClusters  int64
	rbCount, l2Count, nData int64
	total                   int64 // clusters in the file
}

func planQCOW2(used []bool, clusterBits uint) qcow2Layout {
	cs := int64(1) << clusterBits
	l2Entries := cs / 8
	l := qcow2Layout{clusterSize: cs, dataUsed: used}
	l.l1Size = divRoundUp(int64(len(used)), l2Entries)
	l.l2Used = make([]bool, l.l1Size)
	for i, u := range used {
		if u {
			if !l.l2Used[int64(i)/l2Entries] {
				l.l2Used[int64(i)/l2Entries] = true
				l.l2Count++
			}
			l.nData++
		}
	}
	l.l1Clusters = divRoundUp(l.l1Size*8, cs)
	// The refcount blocks must count themselves and the refcount table:
	// grow both until they cover every cluster of the file.
	refsPerBlock := cs * 8 / (1 << qcow2RefcountOrder)
	l.rbCount, l.rtClusters = 1, 1
	for {
		l.total = 1 + l.l1Clusters + l.rtClusters + l.rbCount + l.l2Count + l.nData
		rb := divRoundUp(l.total, refsPerBlock)
		rt := divRoundUp(rb*8, cs)
		if rb <= l.rbCount && rt <= l.rtClusters {
			break
		}
		l.rbCount, l.rtClusters = max(rb, l.rbCount), max(rt, l.rtClusters)
	}
	l.l1Off = cs
	l.rtOff = l.l1Off + l.l1Clusters*cs
	l.rbOff = l.rtOff + l.rtClusters*cs
	l.l2Off = l.rbOff + l.rbCount*cs
	l.dataOff = l.l2Off + l.l2Count*cs
	return l
}

// WriteQCOW2 writes a qcow2 version 3 image with 512-byte clusters,
// 16-bit refcounts, no backing file and no snapshots. Clusters that are
// all zero are left unallocated. The result passes qemu-img check with no
// errors and no leaks.
func WriteQCOW2(w io.Writer, content io.ReaderAt, size int64) error {
	if err := checkSize(size, MaxSize); err != nil {
		return err
	}
	vsize := roundUp(size, SectorSize)
	used, err := allocation(content, size, 1<<qcow2ClusterBits)
	if err != nil {
		return err
	}
	l := planQCOW2(used, qcow2ClusterBits)
	cs := l.clusterSize

	h := qcow2Header{
		Magic:                 qcow2Magic,
		Version:               qcow2Version,
		ClusterBits:           qcow2ClusterBits,
		Size:                  uint64(vsize),
		L1Size:                uint32(l.l1Size),
		L1TableOffset:         uint64(l.l1Off),
		RefcountTableOffset:   uint64(l.rtOff),
		RefcountTableClusters: uint32(l.rtClusters),
		RefcountOrder:         qcow2RefcountOrder,
		HeaderLength:          qcow2HeaderLen,
	}
	ow := &offsetWriter{w: w}
	if err := ow.writeAt(0, h.encode()); err != nil {
		return err
	}

	// L1: each stored L2 table, in L1 order.
	l1 := make([]byte, l.l1Clusters*cs)
	next := l.l2Off
	for i, u := range l.l2Used {
		if u {
			binary.BigEndian.PutUint64(l1[i*8:], uint64(next)|qcow2Copied)
			next += cs
		}
	}
	if err := ow.writeAt(l.l1Off, l1); err != nil {
		return err
	}

	rt := make([]byte, l.rtClusters*cs)
	for i := range l.rbCount {
		binary.BigEndian.PutUint64(rt[i*8:], uint64(l.rbOff+i*cs))
	}
	if err := ow.writeAt(l.rtOff, rt); err != nil {
		return err
	}

	// Every cluster of the file is referenced exactly once.
	rb := make([]byte, l.rbCount*cs)
	for i := range l.total {
		binary.BigEndian.PutUint16(rb[i*2:], 1)
	}
	if err := ow.writeAt(l.rbOff, rb); err != nil {
		return err
	}

	l2Entries := cs / 8
	l2 := make([]byte, cs)
	data := l.dataOff
	for t, u := range l.l2Used {
		if !u {
			continue
		}
		clear(l2)
		for e := range l2Entries {
			g := int64(t)*l2Entries + e
			if g < int64(len(used)) && used[g] {
				binary.BigEndian.PutUint64(l2[e*8:], uint64(data)|qcow2Copied)
				data += cs
			}
		}
		if _, err := ow.Write(l2); err != nil {
			return err
		}
	}

	if err := ow.at(l.dataOff); err != nil {
		return err
	}
	for g, u := range used {
		if u {
			if err := ow.copyFrom(content, size, int64(g)*cs, cs); err != nil {
				return err
			}
		}
	}
	return ow.at(l.total * cs)
}
