package vmdk

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// benchDisk converts a 64 MiB raw disk of mixed random and text data to
// subformat and opens it.
func benchDisk(b *testing.B, subformat string) *Disk {
	b.Helper()
	needQemu(b)
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	const size = 64 * MiB
	var regs []region
	for off := int64(0); off < size; off += 4 * MiB {
		if (off/(4*MiB))%2 == 0 {
			regs = append(regs, region{off, randBytes(rng, 4*MiB)})
		} else {
			regs = append(regs, region{off, textBytes(rng, 4*MiB)})
		}
	}
	raw := filepath.Join(dir, "b.raw")
	writeRaw(b, raw, size, regs)
	path := filepath.Join(dir, "b.vmdk")
	convert(b, raw, path, subformat)
	d, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// benchSequential reads the disk sequentially in 1 MiB reads.
func benchSequential(b *testing.B, d *Disk) {
	buf := make([]byte, MiB)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		if off >= d.Size() {
			off = 0
		}
		if _, err := d.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
}

func BenchmarkReadFlat(b *testing.B)   { benchSequential(b, benchDisk(b, "monolithicFlat")) }
func BenchmarkReadSparse(b *testing.B) { benchSequential(b, benchDisk(b, "monolithicSparse")) }
func BenchmarkReadStreamOptimized(b *testing.B) {
	benchSequential(b, benchDisk(b, "streamOptimized"))
}

// BenchmarkReadStreamOptimized4K reads 4 KiB blocks, as a filesystem on
// top does: it measures the inflated-grain cache.
func BenchmarkReadStreamOptimized4K(b *testing.B) {
	d := benchDisk(b, "streamOptimized")
	buf := make([]byte, 4*KiB)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		if off >= d.Size() {
			off = 0
		}
		if _, err := d.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
}

// BenchmarkReadSparseParallel reads random 64 KiB blocks from all CPUs.
func BenchmarkReadSparseParallel(b *testing.B) {
	d := benchDisk(b, "monolithicSparse")
	b.SetBytes(64 * KiB)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64*KiB)
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			off := rng.Int64N(d.Size()/int64(len(buf))) * int64(len(buf))
			if _, err := d.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	})
}
