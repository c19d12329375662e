package ext

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
)

// benchTree writes 10,000 small files (0-8 KiB, 100 directories).
func benchTree(b *testing.B) (string, int64) {
	dir := b.TempDir()
	r := rand.New(rand.NewSource(1))
	var total int64
	buf := make([]byte, 8192)
	r.Read(buf)
	for i := 0; i < 10000; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i%100))
		os.MkdirAll(d, 0o755)
		n := r.Intn(8193)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("file-%05d", i)), buf[:n], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(n)
	}
	return dir, total
}

func benchImage(b *testing.B) (string, int64) {
	needTools(b, "mke2fs")
	dir, total := benchTree(b)
	return mkfsSize(b, dir, "256M", "-t", "ext4", "-b", "4096", "-N", "12000"), total
}

// readTree walks the tree and reads every file; copyTo, when set,
// writes the tree out like debugfs rdump does.
func readTree(f *FS, copyTo string) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	type item struct {
		ino  uint64
		path string
	}
	stack := []item{{f.Root(), copyTo}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents, err := f.ReadDir(it.ino)
		if err != nil {
			return total, err
		}
		for _, e := range ents {
			a, err := f.Stat(e.Ino)
			if err != nil {
				return total, err
			}
			p := ""
			if copyTo != "" {
				p = filepath.Join(it.path, e.Name)
			}
			switch a.Mode & fsys.S_IFMT {
			case fsys.S_IFDIR:
				if p != "" {
					if err := os.Mkdir(p, 0o755); err != nil {
						return total, err
					}
				}
				stack = append(stack, item{e.Ino, p})
			case fsys.S_IFREG:
				var out *os.File
				if p != "" {
					if out, err = os.Create(p); err != nil {
						return total, err
					}
				}
				for off := int64(0); off < a.Size; {
					n, err := f.ReadAt(e.Ino, buf, off)
					if out != nil {
						out.Write(buf[:n])
					}
					off += int64(n)
					total += int64(n)
					if err == io.EOF {
						break
					}
					if err != nil {
						return total, err
					}
				}
				if out != nil {
					out.Close()
				}
			}
		}
	}
	return total, nil
}

func BenchmarkReadTree(b *testing.B) {
	img, total := benchImage(b)
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Open(fh, st.Size()) // cold caches every round
		if err != nil {
			b.Fatal(err)
		}
		n, err := readTree(f, "")
		if err != nil || n != total {
			b.Fatalf("read %d of %d bytes: %v", n, total, err)
		}
	}
}

// BenchmarkCopyTree writes the tree out, the same work as
// BenchmarkDebugfsRdump, so the two compare directly.
func BenchmarkCopyTree(b *testing.B) {
	img, total := benchImage(b)
	fh, _ := os.Open(img)
	defer fh.Close()
	st, _ := fh.Stat()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		out := filepath.Join(b.TempDir(), "out")
		os.Mkdir(out, 0o755)
		b.StartTimer()
		f, err := Open(fh, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		if n, err := readTree(f, out); err != nil || n != total {
			b.Fatalf("copied %d of %d bytes: %v", n, total, err)
		}
	}
}

func BenchmarkDebugfsRdump(b *testing.B) {
	img, total := benchImage(b)
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		out := b.TempDir()
		b.StartTimer()
		sh(b, "debugfs", "-R", "rdump / "+out, img)
	}
}

func BenchmarkLookupHtree(b *testing.B) {
	img, names := bigDirImage(b, 20000, "4096")
	f := openImage(b, img)
	dir := mustResolve(b, f, "/big")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Lookup(dir, names[(i*7919)%len(names)]); err != nil {
			b.Fatal(err)
		}
	}
}
