package dirfs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

func TestReadOnlyView(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "a/b"), 0o755)
	os.WriteFile(filepath.Join(d, "a/b/f"), []byte("hello"), 0o640)
	os.Symlink("b/f", filepath.Join(d, "a/l"))
	unix.Setxattr(filepath.Join(d, "a/b/f"), "user.k", []byte("v"), 0)
	var before unix.Stat_t
	unix.Stat(filepath.Join(d, "a/b/f"), &before)

	f, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Lookup(f.Root(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := f.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "b" || names[1] != "l" {
		t.Fatalf("ReadDir = %v", names)
	}
	b, _ := f.Lookup(a, "b")
	fi, err := f.Lookup(b, "f")
	if err != nil {
		t.Fatal(err)
	}
	at, err := f.Stat(fi)
	if err != nil || at.Size != 5 || at.Mode != fsys.S_IFREG|0o640 || at.Ino != before.Ino {
		t.Fatalf("Stat = %+v, %v", at, err)
	}
	buf := make([]byte, 10)
	n, err := f.ReadAt(fi, buf, 0)
	if n != 5 || err != io.EOF || string(buf[:n]) != "hello" {
		t.Fatalf("ReadAt = %d %v %q", n, err, buf[:n])
	}
	l, _ := f.Lookup(a, "l")
	if tg, err := f.Readlink(l); err != nil || tg != "b/f" {
		t.Fatalf("Readlink = %q %v", tg, err)
	}
	if v, err := f.GetXattr(fi, "user.k"); err != nil || string(v) != "v" {
		t.Fatalf("GetXattr = %q %v", v, err)
	}
	if _, err := f.GetXattr(fi, "user.none"); err != fsys.ErrNoAttr {
		t.Fatalf("missing xattr: %v", err)
	}
	if _, err := f.Lookup(a, "nope"); err != fsys.ErrNotExist {
		t.Fatalf("Lookup missing: %v", err)
	}
	if p, err := f.Lookup(b, ".."); err != nil || p != a {
		t.Fatalf(`Lookup("..") = %d, %v; want %d`, p, err, a)
	}
	// A fresh FS reaches an inode it never walked to by indexing once.
	g, _ := Open(d)
	defer g.Close()
	if at, err := g.Stat(before.Ino); err != nil || at.Size != 5 {
		t.Fatalf("Stat of an unwalked inode = %+v, %v", at, err)
	}
	var after unix.Stat_t
	unix.Stat(filepath.Join(d, "a/b/f"), &after)
	if after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		t.Fatal("the layer was modified")
	}
}

func TestCopyRange(t *testing.T) {
	src := t.TempDir()
	data := make([]byte, 3<<20+5)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ino, err := f.Lookup(f.Root(), "f")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(t.TempDir(), "copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	off := int64(1 << 20)
	for off < int64(len(data)) {
		k, err := f.CopyRange(ino, int(dst.Fd()), off, int64(len(data))-off)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			t.Fatal("CopyRange made no progress before end of file")
		}
		off += k
	}
	got, _ := os.ReadFile(dst.Name())
	if len(got) != len(data) || !bytes.Equal(got[1<<20:], data[1<<20:]) || bytes.Count(got[:1<<20], []byte{0}) != 1<<20 {
		t.Fatal("copied range differs")
	}
	if k, err := f.CopyRange(ino, int(dst.Fd()), int64(len(data)), 10); k != 0 || err != nil {
		t.Fatalf("at end of file: %d, %v", k, err)
	}
	after, _ := os.ReadFile(filepath.Join(src, "f"))
	if !bytes.Equal(after, data) {
		t.Fatal("source changed")
	}
}
