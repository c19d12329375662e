package overlay

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

func mkLower(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	files := map[string]string{
		"a/f":       "lower f",
		"a/g":       "lower g",
		"a/sub/h":   "lower h",
		"b/x":       "x",
		"c/deep/er": "deep",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(d, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(d, "big"), bytes.Repeat([]byte("B"), 64<<20), 0o644)
	if err := os.Link(filepath.Join(d, "a/f"), filepath.Join(d, "b/f.link")); err != nil {
		t.Fatal(err)
	}
	return d
}

func open(t testing.TB, diff string, lowers ...string) *FS {
	t.Helper()
	var ls []fsys.FS
	for _, l := range lowers {
		f, err := dirfs.Open(l)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, f)
	}
	o, err := New(Config{Diff: diff, Lowers: ls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func at(t testing.TB, o *FS, p string) *Node {
	t.Helper()
	n, err := o.walk(o.root, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return n
}

func read(t testing.TB, o *FS, p string) string {
	t.Helper()
	h, err := o.Open(at(t, o, p), os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	b := make([]byte, 1<<10)
	k, err := h.ReadAt(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:k])
}

// diffEntries lists the diff's entries (reserved staging dir excluded),
// with types.
func diffEntries(t testing.TB, diff string) string {
	var out []string
	filepath.WalkDir(diff, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(diff, p)
		if rel == "." || strings.HasPrefix(rel, workDir) || strings.HasPrefix(rel, plnkDir) || rel == whBase {
			return nil
		}
		k := "f"
		switch {
		case d.IsDir():
			k = "d"
		case d.Type()&fs.ModeSymlink != 0:
			k = "l"
		}
		out = append(out, k+" "+rel)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func treeSum(t testing.TB, root string) string {
	h := sha256.New()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		info, _ := d.Info()
		fmt.Fprintf(h, "%s %v %d %v\n", p, info.Mode(), info.Size(), info.ModTime())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestDiffFormatIsAufs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs")
	}
	lower := mkLower(t)
	sum := treeSum(t, lower)
	cases := []struct {
		name string
		do   func(o *FS) error
		want string
	}{
		{"unlink lower", func(o *FS) error { return o.Unlink(at(t, o, "a"), "f") },
			"d a\nf a/.wh.f"},
		{"rmdir lower", func(o *FS) error {
			if err := o.Unlink(at(t, o, "c/deep"), "er"); err != nil {
				return err
			}
			return o.Rmdir(at(t, o, "c"), "deep")
		}, "d c\nf c/.wh.deep"},
		{"mkdir over whiteout is opaque", func(o *FS) error {
			if err := o.Rmdir(at(t, o, "a"), "sub"); err != syscall.ENOTEMPTY {
				return fmt.Errorf("rmdir non-empty: %v", err)
			}
			o.Unlink(at(t, o, "a/sub"), "h")
			if err := o.Rmdir(at(t, o, "a"), "sub"); err != nil {
				return err
			}
			_, err := o.Mkdir(at(t, o, "a"), "sub", 0o755, Root)
			return err
		}, "d a\nd a/sub\nf a/sub/.wh..wh..opq"},
		{"create", func(o *FS) error {
			_, h, err := o.Create(at(t, o, "b"), "new", os.O_WRONLY, 0o644, Root)
			if err == nil {
				h.Release()
			}
			return err
		}, "d b\nf b/new"},
		{"chmod is metadata-only", func(o *FS) error {
			m := uint32(0o600)
			_, err := o.Setattr(at(t, o, "big"), nil, SetAttrIn{Mode: &m})
			return err
		}, "f big"},
		{"rename lower file", func(o *FS) error { return o.Rename(at(t, o, "b"), "x", at(t, o, "b"), "y", 0) },
			"d b\nf b/.wh.x\nf b/y"},
		{"rename lower dir", func(o *FS) error { return o.Rename(o.root, "c", o.root, "c2", 0) },
			"d c2\nd c2/deep\nf .wh.c\nf c2/.wh..wh..opq\nf c2/deep/.wh..wh..opq\nf c2/deep/er"},
		{"symlink", func(o *FS) error { _, err := o.Symlink(o.root, "s", "target", Root); return err },
			"l s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diff := t.TempDir()
			o := open(t, diff, lower)
			if err := c.do(o); err != nil {
				t.Fatal(err)
			}
			if got := diffEntries(t, diff); got != c.want {
				t.Errorf("diff holds\n%s\nwant\n%s", got, c.want)
			}
		})
	}
	// chmod of a 64 MiB file did not copy its data.
	diff := t.TempDir()
	o := open(t, diff, lower)
	m := uint32(0o600)
	if _, err := o.Setattr(at(t, o, "big"), nil, SetAttrIn{Mode: &m}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(diff, "big"), &st)
	if st.Size != 64<<20 || st.Blocks > 8 {
		t.Errorf("chmod copied data: size %d blocks %d", st.Size, st.Blocks)
	}
	if got := read(t, o, "big"); got != strings.Repeat("B", 1024) {
		t.Errorf("meta copy reads %q...", got[:16])
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

func TestIdentityAcrossRemount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs and open_by_handle_at")
	}
	lower := mkLower(t)
	sum := treeSum(t, lower)
	diff := t.TempDir()
	o := open(t, diff, lower)
	paths := []string{"a", "a/f", "a/g", "a/sub", "a/sub/h", "b/f.link", "c/deep/er"}
	inos := map[string]uint64{}
	ids := map[string][]byte{}
	for _, p := range paths {
		n := at(t, o, p)
		inos[p] = n.ino
		id, err := o.ID(n)
		if err != nil || len(id) > MaxIDLen {
			t.Fatalf("ID %s: %v (%d bytes)", p, err, len(id))
		}
		ids[p] = id
	}
	if inos["a/f"] != inos["b/f.link"] {
		t.Fatal("hard links of one lower inode differ")
	}
	// Modify: write through one hard link, rename a dir and a file, create.
	h, err := o.Open(at(t, o, "a/f"), os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteAt([]byte("+more"), 7)
	h.Release()
	if err := o.Rename(at(t, o, "a"), "sub", o.root, "moved", 0); err != nil {
		t.Fatal(err)
	}
	if err := o.Rename(at(t, o, "a"), "g", at(t, o, "b"), "g2", 0); err != nil {
		t.Fatal(err)
	}
	nn, hh, err := o.Create(at(t, o, "b"), "fresh", os.O_RDWR, 0o644, Root)
	if err != nil {
		t.Fatal(err)
	}
	hh.Release()
	freshIno := nn.ino
	freshID, _ := o.ID(nn)
	moved := map[string]string{"a/sub": "moved", "a/sub/h": "moved/h", "a/g": "b/g2"}
	o.Close()

	// A new FS over the same diff: no in-memory state survives.
	o2 := open(t, diff, lower)
	for _, p := range paths {
		np := p
		if m, ok := moved[p]; ok {
			np = m
		}
		n := at(t, o2, np)
		if n.ino != inos[p] {
			t.Errorf("%s: st_ino %d after remount, was %d", np, n.ino, inos[p])
		}
		r, err := o2.Resolve(ids[p])
		if err != nil || r != n {
			t.Errorf("Resolve(%s) = %v, %v", p, r, err)
		}
	}
	if got := read(t, o2, "b/f.link"); got != "lower f+more" {
		t.Errorf("other hard link reads %q after remount", got)
	}
	a, _ := o2.Getattr(at(t, o2, "b/f.link"))
	if a.Nlink != 2 {
		t.Errorf("hard link nlink %d, want 2", a.Nlink)
	}
	if n := at(t, o2, "b/fresh"); n.ino != freshIno {
		t.Errorf("upper file st_ino changed: %d vs %d", n.ino, freshIno)
	} else if r, err := o2.Resolve(freshID); err != nil || r != n {
		t.Errorf("Resolve(upper file) = %v, %v", r, err)
	}
	// Gone objects do not resolve.
	if err := o2.Unlink(at(t, o2, "a"), "f"); err != nil {
		t.Fatal(err)
	}
	if err := o2.Unlink(at(t, o2, "b"), "f.link"); err != nil {
		t.Fatal(err)
	}
	o2.Close()
	o3 := open(t, diff, lower)
	if _, err := o3.Resolve(ids["a/f"]); err != syscall.ESTALE {
		t.Errorf("Resolve of a deleted file: %v, want ESTALE", err)
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

// TestKillDuringCopyUp kills a process in the middle of copying up a
// big file and checks that after reopening the file is wholly old or
// wholly new and no staging junk is visible.
func TestKillDuringCopyUp(t *testing.T) {
	if os.Getenv("VMROOT_COPYUP_CHILD") != "" {
		o := open(t, os.Getenv("VMROOT_DIFF"), os.Getenv("VMROOT_LOWER"))
		os.WriteFile(os.Getenv("VMROOT_DIFF")+".ready", nil, 0o644)
		for i := 0; ; i++ {
			h, err := o.Open(at(t, o, "big"), os.O_WRONLY|os.O_APPEND)
			if err != nil {
				t.Fatal(err)
			}
			h.WriteAt([]byte("tail"), 64<<20)
			h.Release()
			o.Rename(o.root, "big", o.root, "big2", 0)
			o.Rename(o.root, "big2", o.root, "big", 0)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs")
	}
	lower := mkLower(t)
	sum := treeSum(t, lower)
	old := bytes.Repeat([]byte("B"), 64<<20)
	for round := 0; round < 4; round++ {
		diff := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=TestKillDuringCopyUp$")
		cmd.Env = append(os.Environ(), "VMROOT_COPYUP_CHILD=1", "VMROOT_DIFF="+diff, "VMROOT_LOWER="+lower)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(diff + ".ready"); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(20+round*40) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		o := open(t, diff, lower)
		n, err := o.Lookup(o.root, "big")
		if err != nil {
			n, err = o.Lookup(o.root, "big2")
		}
		if err != nil {
			t.Fatalf("round %d: neither name visible: %v", round, err)
		}
		h, err := o.Open(n, os.O_RDONLY)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := h.Getattr()
		buf := make([]byte, a.Size)
		k, _ := h.ReadAt(buf, 0)
		h.Release()
		buf = buf[:k]
		switch {
		case bytes.Equal(buf, old):
		case bytes.HasPrefix(buf, old) && bytes.Count(buf[len(old):], []byte("tail")) == (len(buf)-len(old))/4 && (len(buf)-len(old))%4 == 0:
		default:
			t.Errorf("round %d: file is neither old nor new (%d bytes)", round, len(buf))
		}
		ents, _ := o.ReadDir(o.root)
		for _, e := range ents {
			if strings.HasPrefix(e.Name, ".wh.") {
				t.Errorf("reserved name visible: %s", e.Name)
			}
		}
		if names, _ := os.ReadDir(filepath.Join(diff, workDir)); len(names) != 0 {
			t.Errorf("staging directory not emptied at mount: %d entries", len(names))
		}
		o.Close()
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}
