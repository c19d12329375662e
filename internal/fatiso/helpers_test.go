package fatiso

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
)

func need(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not found: apt-get install -y --no-install-recommends %s", tool, pkg)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "MTOOLS_SKIP_CHECK=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.String(), errb.String())
	}
	return out.String()
}

// srcFile describes one object of the test tree.
type srcFile struct {
	path  string // slash-separated; a trailing slash marks a directory
	size  int
	mtime time.Time
}

var testTree = []srcFile{
	{path: "hello.txt", size: 13},
	{path: "Name With Spaces.txt", size: 100},
	{path: "a very long file name that exceeds eight dot three.data", size: 5000},
	{path: "UTF8-ünïcødé-日本語.txt", size: 42},
	{path: "UPPER.TXT", size: 7},
	{path: "lower.txt", size: 8},
	{path: "empty", size: 0},
	{path: "empty dir/"},
	{path: "big.bin", size: 3 << 20},
	{path: "d1/"},
	{path: "d1/d2/"},
	{path: "d1/d2/d3/"},
	{path: "d1/d2/d3/deep.txt", size: 4097},
	{path: "d1/sibling with a long name.md", size: 1},
	{path: "readonly.txt", size: 9},
}

// makeTree writes testTree under a new temp dir with fixed mtimes and
// random contents, and returns its root. With unixExtras it adds what only
// Rock Ridge can carry: a symlink, a dot file and unusual modes.
func makeTree(t testing.TB, unixExtras bool) string {
	root := filepath.Join(t.TempDir(), "src")
	rng := rand.New(rand.NewSource(1))
	base := time.Date(2019, 6, 15, 12, 30, 0, 0, time.UTC)
	var dirs []string
	for i, f := range testTree {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		mt := base.Add(time.Duration(i) * 36 * time.Hour).Add(time.Duration(i) * time.Second)
		if strings.HasSuffix(f.path, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		data := make([]byte, f.size)
		rng.Read(data)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mt, mt)
	}
	if unixExtras {
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.Symlink("hello.txt", filepath.Join(root, "link-to-hello")))
		must(os.Symlink("../../../big.bin", filepath.Join(root, "d1/d2/d3/up-link")))
		must(os.WriteFile(filepath.Join(root, ".profile"), []byte("export A=1\n"), 0o600))
		must(os.WriteFile(filepath.Join(root, "d1/script.sh"), []byte("#!/bin/sh\n"), 0o755))
		must(os.Chmod(filepath.Join(root, "empty dir"), 0o700))
		for _, p := range []string{".profile", "d1/script.sh"} {
			os.Chtimes(filepath.Join(root, p), base, base)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first: writing a file changes its dir's mtime
		mt := base.Add(-time.Duration(i+1) * 24 * time.Hour)
		os.Chtimes(dirs[i], mt, mt)
	}
	return root
}

func openFile(t testing.TB, p string) (*os.File, int64) {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return f, st.Size()
}

// lookupPath resolves a slash path from the root.
func lookupPath(t testing.TB, fs fsys.FS, p string) uint64 {
	t.Helper()
	ino := fs.Root()
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		var err error
		ino, err = fs.Lookup(ino, c)
		if err != nil {
			t.Fatalf("lookup %q in %q: %v", c, p, err)
		}
	}
	return ino
}

// readAll reads a file through ReadAt in chunks of the given size.
func readAll(fs fsys.FS, ino uint64, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for off := int64(0); ; {
		n, err := fs.ReadAt(ino, buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, errors.New("ReadAt returned 0 bytes and no error")
		}
	}
}

type compareOpts struct {
	nameMap   func(string) string // source name -> expected name in the image
	mtimeTol  time.Duration
	checkMode func(t *testing.T, rel string, src os.FileInfo, a fsys.Attr)
	dirMtime  bool
}

// compareTree checks that fs holds exactly the tree at src: names, types,
// sizes, contents (read in 64 KiB chunks) and mtimes.
func compareTree(t *testing.T, fs fsys.FS, src string, o compareOpts) {
	t.Helper()
	if o.nameMap == nil {
		o.nameMap = func(s string) string { return s }
	}
	var walk func(dir string, ino uint64)
	walk = func(rel string, ino uint64) {
		ents, err := os.ReadDir(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadDir(ino)
		if err != nil {
			t.Fatalf("ReadDir %q: %v", rel, err)
		}
		gotNames := map[string]fsys.DirEntry{}
		for _, g := range got {
			gotNames[g.Name] = g
		}
		if len(got) != len(ents) {
			var names []string
			for _, g := range got {
				names = append(names, g.Name)
			}
			t.Errorf("dir %q: image lists %q, source has %d entries", rel, names, len(ents))
		}
		for _, e := range ents {
			name := o.nameMap(e.Name())
			p := filepath.Join(rel, e.Name())
			g, ok := gotNames[name]
			if !ok {
				t.Errorf("%q missing from the image (as %q)", p, name)
				continue
			}
			if l, err := fs.Lookup(ino, name); err != nil || l != g.Ino {
				t.Errorf("Lookup %q = %d, %v; ReadDir says %d", p, l, err, g.Ino)
			}
			a, err := fs.Stat(g.Ino)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := e.Info()
			if a.Ino != g.Ino || a.Mode&fsys.S_IFMT != g.Type {
				t.Errorf("%q: Stat ino/type %d/%o, ReadDir %d/%o", p, a.Ino, a.Mode&fsys.S_IFMT, g.Ino, g.Type)
			}
			if o.checkMode != nil {
				o.checkMode(t, p, fi, a)
			}
			if e.IsDir() != a.IsDir() {
				t.Errorf("%q: dir %v, image %v", p, e.IsDir(), a.IsDir())
				continue
			}
			// The image may round down by up to mtimeTol, never up.
			if d := fi.ModTime().Sub(a.Mtime); (!e.IsDir() || o.dirMtime) && (d < 0 || d >= o.mtimeTol) {
				t.Errorf("%q: mtime %v, source %v", p, a.Mtime, fi.ModTime())
			}
			if e.IsDir() {
				walk(p, g.Ino)
				continue
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				want, _ := os.Readlink(filepath.Join(src, p))
				got, err := fs.Readlink(g.Ino)
				if !a.IsSymlink() || err != nil || got != want || a.Size != int64(len(want)) {
					t.Errorf("%q: symlink to %q (size %d), got %q, %v (mode %o size %d)", p, want, len(want), got, err, a.Mode, a.Size)
				}
				continue
			}
			if a.Size != fi.Size() {
				t.Errorf("%q: size %d, source %d", p, a.Size, fi.Size())
			}
			want, _ := os.ReadFile(filepath.Join(src, p))
			data, err := readAll(fs, g.Ino, 64<<10)
			if err != nil || !bytes.Equal(data, want) {
				t.Errorf("%q: contents differ (%d bytes read, %d expected, err %v)", p, len(data), len(want), err)
			}
		}
	}
	walk("", fs.Root())
}

// blkid returns the blkid -p key/value export for an image.
func blkid(t testing.TB, img string) map[string]string {
	need(t, "blkid", "util-linux")
	out := run(t, "blkid", "-p", "-o", "export", img)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = strings.ReplaceAll(v, `\ `, " ")
		}
	}
	return m
}
