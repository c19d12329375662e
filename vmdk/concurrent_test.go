package vmdk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentReads has 16 goroutines read random ranges of freshly
// opened disks (cold caches, so table loads and grain inflation race)
// and compares each read with a serial read of the same disk. Run it
// under -race.
func TestConcurrentReads(t *testing.T) {
	needQemu(t)
	sd := newSmallDisk(t)
	_, _, _, delta2 := deltaChain(t)
	images := map[string]string{"delta chain": delta2}
	for _, sf := range []string{"streamOptimized", "monolithicSparse", "twoGbMaxExtentFlat"} {
		p := filepath.Join(sd.dir, sf+".vmdk")
		convert(t, sd.raw, p, sf)
		images[sf] = p
	}
	for name, path := range images {
		t.Run(name, func(t *testing.T) {
			serial := func() []byte {
				d, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				return readAll(t, d, 3*MiB+17)
			}()
			if name != "delta chain" {
				mustEqual(t, "serial read", serial, sd.want)
			}
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func(seed uint64) {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, 1))
					buf := make([]byte, 256*KiB)
					for i := 0; i < 80; i++ {
						off := rng.Int64N(d.Size())
						l := rng.IntN(len(buf)) + 1
						if rng.IntN(4) == 0 { // whole grains, the direct-inflate path
							off &^= 64*KiB - 1
							l = 64 * KiB
						}
						end := min(off+int64(l), d.Size())
						n, err := d.ReadAt(buf[:l], off)
						if int64(n) != end-off || (err != nil && end == off+int64(l)) {
							errs <- fmt.Errorf("ReadAt(%d, %d) = %d, %v", off, l, n, err)
							return
						}
						if !bytes.Equal(buf[:n], serial[off:end]) {
							errs <- fmt.Errorf("ReadAt(%d, %d) differs from the serial read", off, l)
							return
						}
					}
				}(uint64(g))
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
