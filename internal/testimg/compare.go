package testimg

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// CompareOpts says which metadata a copy is expected to keep.
type CompareOpts struct {
	Owners bool // uid/gid and every xattr namespace (root)
	Atime  bool
	// Extra lists paths (relative to dst) that only the copy has, such as lost+found.
	Extra []string
	// Mke2fsTimes expects mtimes as mke2fs -d 1.47 stores them: the low 32
	// bits of the seconds and no nanoseconds, except for the paths in
	// ExactTimes, whose full times were restored into the image (RestoreTimes).
	Mke2fsTimes bool
	ExactTimes  []string
	// IgnoreTimes lists paths whose mtime the image builder sets itself
	// (mke2fs gives the root the time it adds lost+found).
	IgnoreTimes []string
}

// CompareTrees checks that dst is a faithful copy of src: the same names,
// types, modes, sizes, mtimes (ns), symlink targets, device numbers,
// contents, hard-link groups and xattrs, and that sparse files stayed sparse.
func CompareTrees(t testing.TB, src, dst string, o CompareOpts) {
	t.Helper()
	srcIno := map[uint64]string{} // source inode -> first path
	dstIno := map[uint64]string{}
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		var ss, ds unix.Stat_t
		if err := unix.Lstat(p, &ss); err != nil {
			return err
		}
		if err := unix.Lstat(q, &ds); err != nil {
			t.Errorf("%s: missing in copy: %v", rel, err)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		n++
		if ss.Mode != ds.Mode {
			t.Errorf("%s: mode %o, want %o", rel, ds.Mode, ss.Mode)
		}
		if o.Owners && (ss.Uid != ds.Uid || ss.Gid != ds.Gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, ds.Uid, ds.Gid, ss.Uid, ss.Gid)
		}
		want := ss.Mtim
		if o.Mke2fsTimes && !contains(o.ExactTimes, rel) {
			want = unix.Timespec{Sec: int64(int32(want.Sec))}
		}
		if want != ds.Mtim && !contains(o.IgnoreTimes, rel) {
			t.Errorf("%s: mtime %v, want %v", rel, ds.Mtim, want)
		}
		if o.Atime && ss.Atim != ds.Atim {
			t.Errorf("%s: atime %v, want %v", rel, ds.Atim, ss.Atim)
		}
		switch ss.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if ss.Size != ds.Size {
				t.Errorf("%s: size %d, want %d", rel, ds.Size, ss.Size)
			} else if !SameBytes(t, p, q) {
				t.Errorf("%s: contents differ", rel)
			}
			// Sparse files stay sparse: allow a little metadata slack.
			if ds.Blocks > ss.Blocks+64 {
				t.Errorf("%s: copy allocates %d blocks, source %d: holes were filled", rel, ds.Blocks, ss.Blocks)
			}
			if ss.Nlink > 1 {
				if first, ok := srcIno[ss.Ino]; ok {
					var fs unix.Stat_t
					unix.Lstat(filepath.Join(dst, first), &fs)
					if fs.Ino != ds.Ino {
						t.Errorf("%s: not hard-linked to %s in the copy", rel, first)
					}
				} else {
					srcIno[ss.Ino] = rel
					if other, ok := dstIno[ds.Ino]; ok {
						t.Errorf("%s: hard-linked to %s in the copy but not in the source", rel, other)
					}
				}
			}
			dstIno[ds.Ino] = rel
		case unix.S_IFLNK:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(q)
			if a != b {
				t.Errorf("%s: link target %q, want %q", rel, b, a)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if ss.Rdev != ds.Rdev {
				t.Errorf("%s: rdev %x, want %x", rel, ds.Rdev, ss.Rdev)
			}
		}
		compareXattrs(t, rel, p, q, o.Owners)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing extra in the copy.
	m := 0
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dst, p)
		for _, x := range o.Extra {
			if rel == x {
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		m++
		return nil
	})
	if m != n {
		t.Errorf("copy has %d objects, source %d", m, n)
	}
}

func fileHash(t testing.TB, p string) [32]byte {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func xattrs(p string, all bool) map[string][]byte {
	out := map[string][]byte{}
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return out
	}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 || (!all && !bytes.HasPrefix(name, []byte("user."))) {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, string(name), v)
		if err == nil {
			out[string(name)] = v[:m]
		}
	}
	return out
}

func compareXattrs(t testing.TB, rel, p, q string, all bool) {
	a, b := xattrs(p, all), xattrs(q, all)
	var names []string
	for k := range a {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s: xattr %s = %q, want %q", rel, k, b[k], a[k])
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: extra xattr %s", rel, k)
		}
	}
}

// FileSHA256 returns a file's sha256.
func FileSHA256(t testing.TB, p string) [32]byte { return fileHash(t, p) }

// SameBytes reports whether two files hold the same bytes, reading only
// their data segments (SEEK_DATA/SEEK_HOLE), so multi-GiB sparse disks
// compare in the time their data takes. Sizes must match too.
func SameBytes(t testing.TB, a, b string) bool {
	t.Helper()
	return sizeOf(t, a) == sizeOf(t, b) && dataMatches(t, a, b) && dataMatches(t, b, a)
}

func sizeOf(t testing.TB, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// dataMatches checks every data segment of a against the same range of b.
func dataMatches(t testing.TB, a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	size := sizeOf(t, a)
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < size; {
		start, err := unix.Seek(int(fa.Fd()), off, unix.SEEK_DATA)
		if err != nil { // ENXIO: no data after off
			return true
		}
		end, err := unix.Seek(int(fa.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		for p := start; p < end; {
			n := int(min(int64(len(ba)), end-p))
			if _, err := fa.ReadAt(ba[:n], p); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			m, err := fb.ReadAt(bb[:n], p)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if m < n || !bytes.Equal(ba[:n], bb[:n]) {
				return false
			}
			p += int64(n)
		}
		off = end
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
