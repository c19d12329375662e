package part

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// Fuzz inputs describe a sparse in-memory disk: an 8-byte little-endian
// disk size, then records of a 4-byte LBA and 512 bytes of sector data.
// Sectors not listed read as zeros.

func decodeFuzzDisk(b []byte) *sparseReader {
	d := &sparseReader{size: 1 << 30, sectors: map[int64][]byte{}}
	if len(b) >= 8 {
		d.size = int64(binary.LittleEndian.Uint64(b) % (1 << 42))
		b = b[8:]
	}
	for len(b) >= 4+512 {
		d.sectors[int64(binary.LittleEndian.Uint32(b))] = b[4 : 4+512]
		b = b[4+512:]
	}
	return d
}

// encodeImage turns a disk image into a fuzz input, keeping non-zero sectors.
func encodeImage(t testing.TB, img string, size int64) []byte {
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(size))
	for lba := 0; lba*512 < len(data); lba++ {
		sec := data[lba*512 : lba*512+512]
		if isAllZero(sec) {
			continue
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(lba))
		out = append(out, sec...)
	}
	return out
}

func isAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// syntheticEBRChain is a seed that needs no tools: an extended partition with three logicals.
func syntheticEBRChain() []byte {
	out := binary.LittleEndian.AppendUint64(nil, 64<<20)
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	mbr[446+4] = 0x05
	binary.LittleEndian.PutUint32(mbr[446+8:], 2048)
	binary.LittleEndian.PutUint32(mbr[446+12:], 3*2048)
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = append(out, mbr...)
	for i := 0; i < 3; i++ {
		s := make([]byte, 512)
		s[510], s[511] = 0x55, 0xaa
		s[446+4] = 0x83
		binary.LittleEndian.PutUint32(s[446+8:], 63)
		binary.LittleEndian.PutUint32(s[446+12:], 1000)
		if i < 2 {
			s[446+16+4] = 0x05
			binary.LittleEndian.PutUint32(s[446+16+8:], uint32((i+1)*2048))
			binary.LittleEndian.PutUint32(s[446+16+12:], 2048)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(2048+i*2048))
		out = append(out, s...)
	}
	return out
}

func checkTable(t *testing.T, tab *Table, err error) {
	// A hung Read must fail the fuzzer, not stall it.
	if err != nil {
		return
	}
	if tab.SectorSize != 512 && tab.SectorSize != 4096 {
		t.Fatalf("sector size %d", tab.SectorSize)
	}
	seen := map[int]bool{}
	for _, p := range tab.Partitions {
		if seen[p.Number] || p.Number < 1 || p.Size <= 0 || p.Start < 0 {
			t.Fatalf("bad partition %+v", p)
		}
		seen[p.Number] = true
		if p.Logical && p.Number < 5 {
			t.Fatalf("logical partition numbered %d", p.Number)
		}
	}
	if len(tab.Partitions) > 4+4*MaxLogical && tab.Scheme == SchemeMBR {
		t.Fatalf("%d partitions", len(tab.Partitions))
	}
}

func watchdog() *time.Timer {
	return time.AfterFunc(10*time.Second, func() { panic("part.Read took more than 10 s") })
}

func FuzzMBR(f *testing.F) {
	f.Add(syntheticEBRChain())
	if _, err := os.Stat("/usr/sbin/sfdisk"); err == nil {
		img := sparseDisk(f, "seed.img", 64<<20)
		sfdiskScript(f, img, `label: dos
label-id: 0xdeadbeef
%s1 : start=2048, size=100000, type=f
%s4 : start=110000, size=8192, type=6, bootable
%s5 : start=4096, size=10000, type=6
%s6 : start=20480, size=20480, type=fc
%s7 : start=49152, size=10000, type=83
`)
		f.Add(encodeImage(f, img, 64<<20))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := decodeFuzzDisk(b)
		w := watchdog()
		defer w.Stop()
		tab, err := Read(d, d.size)
		checkTable(t, tab, err)
	})
}

func FuzzGPT(f *testing.F) {
	if _, err := os.Stat("/usr/sbin/sgdisk"); err == nil {
		img := gptDisk(f)
		f.Add(encodeImage(f, img, 64<<20))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := decodeFuzzDisk(b)
		// Always a protective MBR, so every input exercises the GPT code.
		pmbr := make([]byte, 512)
		pmbr[510], pmbr[511] = 0x55, 0xaa
		pmbr[446+4] = 0xee
		d.sectors[0] = pmbr
		w := watchdog()
		defer w.Stop()
		tab, err := Read(d, d.size)
		checkTable(t, tab, err)
	})
}
