package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/atomicfile"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/vmdk"
)

func init() {
	var partNum int
	var out string
	c := &cobra.Command{
		Use:   "extract [-p N] IMAGE -o OUT",
		Short: "Write the raw bytes of a partition (or the whole disk with -p 0) to a file",
		Long: "Write the raw bytes of partition N, or of the whole virtual disk with -p 0, to OUT.\n" +
			"OUT is written sparse (zero blocks become holes), through a temporary file renamed\n" +
			"into place at the end. A progress bar is shown when stderr is a terminal.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("extract: -o OUT is required")}
			}
			im, err := image.Open(args[0])
			if err != nil {
				return err
			}
			defer im.Close()
			start, size := int64(0), im.Size()
			what := im.Path
			if partNum != 0 {
				t, err := im.Partitions()
				if err != nil {
					return err
				}
				p, err := image.Choose(im, t, partNum)
				if err != nil {
					return err
				}
				if p != nil {
					start, size = p.Start, p.Size
					what = fmt.Sprintf("%s partition %d", im.Path, p.Number)
				}
			}
			if err := refuseInput(out, inputFiles(im)); err != nil {
				return err
			}
			src, err := newSource(im, start, size)
			if err != nil {
				return err
			}
			defer src.Close()
			// Private: the filesystem may hold the appliance's secrets (/etc/shadow).
			if err := extractTo(src, size, out, 0o600, progressBar(size, "extracting")); err != nil {
				return fmt.Errorf("%s -> %s: %w", what, out, err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output file")
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}

// Eight 1 MiB reads in flight copied a 1 GiB partition fastest here (cold
// cache): a deeper device queue, as qemu-img convert's eight parallel
// requests give it, beat three 4 MiB reads by about a third.
const (
	chunk          = 1 << 20
	extractWorkers = 8
)

// extractTo copies size bytes of r into out, leaving holes for zero chunks.
// Chunks are read by several goroutines, since reads of sparse or
// compressed extents cost CPU and flat extents benefit from readahead depth.
// If r can tell where its data is, only that is read.
func extractTo(r io.ReaderAt, size int64, out string, perm os.FileMode, bar *progressbar.ProgressBar) error {
	ranger, _ := r.(vmdk.DataRanger)
	tmp, err := atomicfile.Create(out, perm)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	zero := make([]byte, chunk)
	workers := extractWorkers
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			for {
				off := next.Add(chunk) - chunk
				if off >= size {
					return
				}
				n := int(min(chunk, size-off))
				ranges := []vmdk.Range{{Off: off, Len: int64(n)}}
				var err error
				if ranger != nil {
					ranges, err = ranger.DataRanges(off, int64(n))
				}
				for _, rg := range ranges {
					if err != nil {
						break
					}
					b := buf[:rg.Len]
					var got int
					got, err = r.ReadAt(b, rg.Off)
					if err == io.EOF && got == len(b) {
						err = nil
					} else if err == io.EOF {
						err = fmt.Errorf("image ends early at %d of %d bytes", rg.Off+int64(got), size)
					}
					if err == nil && !bytes.Equal(b, zero[:len(b)]) {
						_, err = tmp.WriteAt(b, rg.Off)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(size)
					return
				}
				if bar != nil {
					bar.Add(n)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := tmp.Truncate(size); err != nil {
		return err
	}
	return tmp.Commit()
}
