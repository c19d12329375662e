package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
)

// Tiny images assembled from the layout encoders, for fuzz seeds and for
// COWD, which no available tool writes. Real tools make every other test
// image.

// grainsOf splits data into grains of gb bytes; all-zero grains are nil.
func grainsOf(data []byte, gb int) [][]byte {
	var out [][]byte
	for off := 0; off < len(data); off += gb {
		g := make([]byte, gb)
		copy(g, data[off:])
		if bytes.Equal(g, make([]byte, gb)) {
			g = nil
		}
		out = append(out, g)
	}
	return out
}

func pad(b []byte) []byte {
	for len(b)%SectorSize != 0 {
		b = append(b, 0)
	}
	return b
}

func putGT(entries []uint32) []byte {
	b := make([]byte, 4*len(entries))
	for i, e := range entries {
		binary.LittleEndian.PutUint32(b[4*i:], e)
	}
	return pad(b)
}

// buildHosted writes a hosted sparse extent (uncompressed grains, no
// redundant GD) of data with the given geometry; zeroed lists grains
// to mark with the zeroed-grain GTE.
func buildHosted(data []byte, grainSectors, gtes int, zeroed map[int]bool) []byte {
	gb := grainSectors * SectorSize
	grains := grainsOf(data, gb)
	nGT := (len(grains) + gtes - 1) / gtes
	gtSectors := (gtes*4 + SectorSize - 1) / SectorSize
	gdSectors := (nGT*4 + SectorSize - 1) / SectorSize
	gdOff := 1
	gtOff := gdOff + gdSectors
	over := gtOff + nGT*gtSectors
	h := SparseHeader{
		Version: 1, Flags: FlagNewlineTest, Capacity: uint64(len(data) / SectorSize),
		GrainSize: uint64(grainSectors), NumGTEsPerGT: uint32(gtes), GDOffset: uint64(gdOff),
		OverHead: uint64(over), Newline: newlineBytes,
	}
	if len(zeroed) > 0 {
		h.Version, h.Flags = 2, h.Flags|FlagZeroedGrain
	}
	gd := make([]uint32, nGT)
	gt := make([]uint32, nGT*gtes)
	var body []byte
	next := over
	for i, g := range grains {
		switch {
		case zeroed[i]:
			gt[i] = GTEZeroed
		case g != nil:
			gt[i] = uint32(next)
			body = append(body, g...)
			next += grainSectors
		}
	}
	out := make([]byte, SectorSize)
	h.Encode(out)
	for i := range gd {
		gd[i] = uint32(gtOff + i*gtSectors)
	}
	out = append(out, putGT(gd)...)
	for i := 0; i < nGT; i++ {
		out = append(out, putGT(gt[i*gtes:(i+1)*gtes])...)
	}
	return append(out, body...)
}

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// buildStreamVMware writes a streamOptimized extent in VMware's layout:
// header with GDAtEnd, grain markers, GT and GD markers, footer, EOS.
func buildStreamVMware(data []byte, grainSectors, gtes int) []byte {
	gb := grainSectors * SectorSize
	grains := grainsOf(data, gb)
	nGT := (len(grains) + gtes - 1) / gtes
	h := SparseHeader{
		Version: 3, Flags: FlagNewlineTest | FlagCompressed | FlagHasMarkers,
		Capacity: uint64(len(data) / SectorSize), GrainSize: uint64(grainSectors),
		NumGTEsPerGT: uint32(gtes), GDOffset: GDAtEnd, OverHead: 1, Newline: newlineBytes,
		CompressAlgorithm: CompressDeflate,
	}
	out := make([]byte, SectorSize)
	h.Encode(out)
	gt := make([]uint32, nGT*gtes)
	for i, g := range grains {
		if g == nil {
			continue
		}
		gt[i] = uint32(len(out) / SectorSize)
		z := zlibBytes(g)
		m := make([]byte, GrainMarkerSize)
		Marker{Val: uint64(i * grainSectors), Size: uint32(len(z))}.Encode(m)
		out = append(out, pad(append(m, z...))...)
	}
	meta := func(typ uint32, body []byte) int {
		m := make([]byte, SectorSize)
		Marker{Val: uint64(len(body) / SectorSize), Type: typ}.Encode(m)
		out = append(out, m...)
		at := len(out) / SectorSize
		out = append(out, body...)
		return at
	}
	gd := make([]uint32, nGT)
	for i := range gd {
		gd[i] = uint32(meta(MarkerGT, putGT(gt[i*gtes:(i+1)*gtes])))
	}
	h.GDOffset = uint64(meta(MarkerGD, putGT(gd)))
	foot := make([]byte, SectorSize)
	h.Encode(foot)
	meta(MarkerFooter, foot)
	eos := make([]byte, SectorSize)
	Marker{Type: MarkerEOS}.Encode(eos)
	return append(out, eos...)
}

// buildCOWD writes an ESX vmfsSparse extent of data.
func buildCOWD(data []byte, grainSectors int) []byte {
	gb := grainSectors * SectorSize
	grains := grainsOf(data, gb)
	nGT := (len(grains) + COWDGTEsPerGT - 1) / COWDGTEsPerGT
	const hdrSectors = 4
	gdSectors := (nGT*4 + SectorSize - 1) / SectorSize
	gtOff := hdrSectors + gdSectors
	next := gtOff + nGT*COWDGTEsPerGT*4/SectorSize
	h := COWDHeader{Version: 1, Flags: 3, NumSectors: uint32(len(data) / SectorSize), GrainSize: uint32(grainSectors), GDOffset: hdrSectors, NumGDEntries: uint32(nGT)}
	gd := make([]uint32, nGT)
	gt := make([]uint32, nGT*COWDGTEsPerGT)
	var body []byte
	for i, g := range grains {
		if g != nil {
			gt[i] = uint32(next)
			body = append(body, g...)
			next += grainSectors
		}
	}
	h.FreeSector = uint32(next)
	out := make([]byte, hdrSectors*SectorSize)
	h.Encode(out)
	for i := range gd {
		gd[i] = uint32(gtOff + i*COWDGTEsPerGT*4/SectorSize)
	}
	out = append(out, putGT(gd)...)
	out = append(out, putGT(gt)...)
	return append(out, body...)
}

// tinyData is a small disk image with data, zero and text grains.
func tinyData(sectors int) []byte {
	b := make([]byte, sectors*SectorSize)
	for i := range b {
		switch (i / 2048) % 4 {
		case 0:
			b[i] = byte(i*7 + i>>8)
		case 2:
			b[i] = "vmroot tiny "[i%12]
		}
	}
	return b
}
