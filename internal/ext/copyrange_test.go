package ext

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// hostFile is a disk stored as-is in a host file.
type hostFile struct{ *os.File }

func (h hostFile) HostRange(off, length int64) (int, int64, int64, bool) {
	return int(h.Fd()), off, length, true
}

// holeyTree is a tree with a 640,000-byte file, a hole after it and
// data ending mid-block ("holey"), and a 4-byte file ("small").
func holeyTree(t *testing.T) string {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	f, _ := os.Create(filepath.Join(dir, "holey"))
	f.Write(data)
	f.WriteAt(data[:5000], 3<<20)
	f.Close()
	os.WriteFile(filepath.Join(dir, "small"), []byte("tiny"), 0o644)
	return dir
}

// hostImage makes an image of dir with mke2fs args and opens it twice:
// plainly, and as a disk stored as-is in a host file.
func hostImage(t *testing.T, dir string, args ...string) (plain, host *FS) {
	img := mkfs(t, dir, args...)
	plain = openImage(t, img)
	hf, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	st, _ := hf.Stat()
	if host, err = Open(hostFile{hf}, st.Size()); err != nil {
		t.Fatal(err)
	}
	return plain, host
}

// CopyRange copies a file's data runs inside the kernel and reports 0
// where it cannot (holes, inline data, a disk without host ranges), so
// that a caller filling the rest by reading gets the same bytes.
func TestCopyRangeMatchesRead(t *testing.T) {
	dir := holeyTree(t)
	for _, args := range [][]string{{"-t", "ext4"}, {"-t", "ext4", "-O", "inline_data"}, {"-t", "ext2"}} {
		plain, fs := hostImage(t, dir, args...)
		for _, name := range []string{"holey", "small"} {
			ino := mustResolve(t, fs, "/"+name)
			a, _ := fs.Stat(ino)
			want, err := readAll(plain, ino, a.Size)
			if err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			out.Truncate(a.Size)
			// Copy in odd-sized steps; read what CopyRange leaves.
			for off := int64(0); off < a.Size; {
				k, err := fs.CopyRange(ino, int(out.Fd()), off, 100000)
				if err != nil {
					t.Fatalf("%v %s: CopyRange at %d: %v", args, name, off, err)
				}
				if k == 0 {
					b := make([]byte, min(4096, a.Size-off))
					m, _ := fs.ReadAt(ino, b, off)
					unix.Pwrite(int(out.Fd()), b[:m], off)
					k = int64(m)
				}
				off += k
			}
			got, _ := os.ReadFile(out.Name())
			out.Close()
			if !bytes.Equal(got, want) {
				t.Errorf("%v %s: copied data differs from read data", args, name)
			}
		}
		// Without host ranges nothing is copied.
		if k, err := plain.CopyRange(mustResolve(t, plain, "/holey"), 1, 0, 100); k != 0 || err != nil {
			t.Errorf("plain reader: CopyRange = %d, %v; want 0, nil", k, err)
		}
	}
}

// HostRange answers only for a range that is all in one stored run: the
// host bytes it points at are then the file's bytes; a hole, inline data
// or a disk without host ranges gives !ok, and the end of the file ok
// with nothing to read.
func TestHostRangeMatchesRead(t *testing.T) {
	dir := holeyTree(t)
	for _, args := range [][]string{{"-t", "ext4"}, {"-t", "ext4", "-O", "inline_data"}, {"-t", "ext3"}} {
		plain, fs := hostImage(t, dir, args...)
		hits := 0
		for _, name := range []string{"holey", "small"} {
			ino := mustResolve(t, fs, "/"+name)
			a, _ := fs.Stat(ino)
			want, err := readAll(plain, ino, a.Size)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range [][2]int64{{0, 131072}, {4000, 200000}, {600000, 131072}, {640000 - 100, 4096},
				{1 << 20, 131072}, {3<<20 + 1000, 1 << 20}, {a.Size, 4096}, {0, 1 << 20}} {
				fd, hoff, n, ok := fs.HostRange(ino, r[0], r[1])
				if !ok {
					continue
				}
				if r[0] >= a.Size {
					if n != 0 {
						t.Errorf("%v %s: HostRange at the end gives %d bytes", args, name, n)
					}
					continue
				}
				if w := min(r[1], a.Size-r[0]); n != w {
					t.Fatalf("%v %s %v: ok with %d bytes, want %d", args, name, r, n, w)
				}
				got := make([]byte, n)
				if k, err := unix.Pread(fd, got, hoff); err != nil || int64(k) != n {
					t.Fatalf("pread: %d, %v", k, err)
				}
				if !bytes.Equal(got, want[r[0]:r[0]+n]) {
					t.Errorf("%v %s %v: host bytes differ from the file's", args, name, r)
				}
				hits++
			}
			if _, _, _, ok := fs.HostRange(ino, 1<<20, 4096); ok && name == "holey" {
				t.Errorf("%v: HostRange of a hole is ok", args)
			}
		}
		if hits < 3 {
			t.Errorf("%v: HostRange answered only %d ranges", args, hits)
		}
		if _, _, _, ok := plain.HostRange(mustResolve(t, plain, "/holey"), 0, 100); ok {
			t.Errorf("plain reader: HostRange is ok")
		}
	}
}
