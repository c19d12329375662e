package vmdk

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// benchSource is 64 MiB of alternating random and text data in 4 MiB runs,
// with every fourth run a hole, held in memory.
func benchSource() *bytes.Reader {
	rng := rand.New(rand.NewPCG(3, 4))
	const size = 64 * MiB
	b := make([]byte, size)
	for off := int64(0); off < size; off += 4 * MiB {
		switch (off / (4 * MiB)) % 4 {
		case 0:
			copy(b[off:], randBytes(rng, 4*MiB))
		case 1, 2:
			copy(b[off:], textBytes(rng, 4*MiB))
		}
	}
	return bytes.NewReader(b)
}

func benchWrite(b *testing.B, opts WriteOptions) {
	src := benchSource()
	path := filepath.Join(b.TempDir(), "bench.vmdk")
	b.SetBytes(src.Size())
	b.ResetTimer()
	for range b.N {
		if err := Write(path, src, src.Size(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteStreamOptimized(b *testing.B) {
	benchWrite(b, WriteOptions{Subformat: StreamOptimized})
}

func BenchmarkWriteStreamOptimizedLevel6(b *testing.B) {
	benchWrite(b, WriteOptions{Subformat: StreamOptimized, CompressionLevel: 6})
}

func BenchmarkWriteStreamOptimized1Worker(b *testing.B) {
	benchWrite(b, WriteOptions{Subformat: StreamOptimized, Workers: 1})
}

func BenchmarkWriteSparse(b *testing.B) {
	benchWrite(b, WriteOptions{Subformat: MonolithicSparse})
}

func BenchmarkWriteFlat(b *testing.B) {
	benchWrite(b, WriteOptions{Subformat: TwoGbMaxExtentFlat})
}
