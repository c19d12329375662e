package qcow2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
	"github.com/vmroot/vmroot/vmdk"
)

// holey is a disk whose declared holes must never be read.
type holey struct {
	io.ReaderAt
	data []vmdk.Range
}

func (h holey) ReadAt(b []byte, off int64) (int, error) {
	for _, r := range h.data {
		if off >= r.Off && off+int64(len(b)) <= r.End() {
			return h.ReaderAt.ReadAt(b, off)
		}
	}
	return 0, fmt.Errorf("read of a hole at %d (%d bytes)", off, len(b))
}

func (h holey) DataRanges(off, n int64) ([]vmdk.Range, error) {
	var out []vmdk.Range
	for _, r := range h.data {
		s, e := max(r.Off, off), min(r.End(), off+n)
		if s < e {
			out = append(out, vmdk.Range{Off: s, Len: e - s})
		}
	}
	return out, nil
}

// TestWrite checks images against qemu-img: sizes that are not whole
// clusters or sectors, more than one L2 table, all-zero clusters inside
// data, holes that must not be read, and progress reaching the size.
func TestWrite(t *testing.T) {
	testimg.Need(t, "qemu-img")
	dir := t.TempDir()
	for _, size := range []int64{1000, 3 << 20, 600<<20 + 1536} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// A sparse raw file: the large case spans more than one L2
			// table without writing hundreds of MiB.
			raw := filepath.Join(dir, "src.raw")
			f, err := os.Create(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			var data []vmdk.Range
			for _, off := range []int64{0, 65536 * 5, 1 << 20, 513 << 20, size - 100} {
				if off < 0 || off >= size {
					continue
				}
				n := min(200000, size-off)
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(i*7 + 1)
				}
				clear(b[n/2 : n/2+min(n/2, 65536*2)]) // zeros inside data
				if _, err := f.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
				start := off &^ 511
				data = append(data, vmdk.Range{Off: start, Len: min(off+n, size) - start})
			}
			content := io.NewSectionReader(f, 0, size)
			out := filepath.Join(dir, "out.qcow2")
			var last int64
			opts := Options{Workers: 3, Progress: func(d int64) {
				if d < last {
					t.Errorf("progress went back from %d to %d", last, d)
				}
				last = d
			}}
			if err := Write(out, holey{content, data}, size, opts); err != nil {
				t.Fatal(err)
			}
			if last != size {
				t.Errorf("progress ended at %d of %d", last, size)
			}
			testimg.Run(t, "qemu-img", "check", "-q", out)
			info := testimg.Run(t, "qemu-img", "info", out)
			if want := fmt.Sprintf("(%d bytes)", (size+511)&^511); !strings.Contains(info, want) {
				t.Errorf("virtual size: want %s in\n%s", want, info)
			}
			if size%512 == 0 {
				testimg.Run(t, "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", out, raw)
			} else {
				testimg.Run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", out, raw+".back")
				back, _ := os.ReadFile(raw + ".back")
				want, _ := os.ReadFile(raw)
				if !bytes.Equal(back[:size], want) || len(bytes.Trim(back[size:], "\x00")) != 0 {
					t.Errorf("content differs")
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.qcow2")
	short := io.NewSectionReader(bytes.NewReader(make([]byte, 1000)), 0, 1000)
	if err := Write(out, short, 1<<20, Options{}); err == nil || !strings.Contains(err.Error(), "ends early") || !strings.Contains(err.Error(), out) {
		t.Errorf("short source: %v", err)
	}
	boom := errors.New("boom")
	if err := Write(out, failing{boom}, 1<<20, Options{}); !errors.Is(err, boom) {
		t.Errorf("failing source: %v", err)
	}
	if err := Write(out, short, 0, Options{}); err == nil {
		t.Error("empty disk accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
}

type failing struct{ err error }

func (f failing) ReadAt([]byte, int64) (int, error) { return 0, f.err }
