package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/overlay"
)

func needFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a FUSE mount with allow_other and mknod")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

type testMount struct {
	dir, diff string
	lowers    []fsys.FS
	o         *overlay.FS
	unmount   func()
}

// mountDirs mounts a union of diff (may be "") over host directories
// lowerDirs (top to bottom).
func mountDirs(t testing.TB, diff string, lowerDirs ...string) *testMount {
	t.Helper()
	needFuse(t)
	var lowers []fsys.FS
	for _, d := range lowerDirs {
		l, err := dirfs.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	return mountFS(t, diff, lowers...)
}

func mountFS(t testing.TB, diff string, lowers ...fsys.FS) *testMount {
	t.Helper()
	needFuse(t)
	o, err := overlay.New(overlay.Config{Diff: diff, Lowers: lowers})
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	srv, err := Mount(mnt, o, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	m := &testMount{dir: mnt, diff: diff, lowers: lowers, o: o}
	m.unmount = func() {
		if done {
			return
		}
		done = true
		if err := srv.Unmount(); err != nil {
			// Busy after a failed test left a file open: detach, or
			// Wait would block for good.
			t.Errorf("unmount: %v", err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
		srv.Wait()
		o.Close()
	}
	t.Cleanup(m.unmount)
	return m
}

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(root, n)
		if n[len(n)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPosixReadWrite(t *testing.T) {
	needFuse(t)
	for name, fn := range posixtest.All {
		if name == "FcntlFlockLocksFile" {
			// Expects two descriptors of one process to conflict; native
			// ext4 says no too (POSIX locks belong to the process), and so
			// does vmroot, which leaves locks to the kernel.
			continue
		}
		t.Run(name, func(t *testing.T) {
			lower := t.TempDir()
			writeTree(t, lower, map[string]string{"base/file": "lower data", "base/dir/": ""})
			m := mountDirs(t, t.TempDir(), lower)
			fn(t, filepath.Join(m.dir, "base/dir"))
		})
	}
}

// testOptions are the options `vmroot mount` uses as root.
var testOptions = Options{EntryTimeout: time.Second, AttrTimeout: time.Second, AllowOther: true, DefaultPermissions: true, Passthrough: true}

// TestPassthroughMixedOpens: with passthrough on, a file opened from the
// lower layer and then opened for writing (a copy-up) used to fail with
// EIO: the kernel refuses a passthrough open of an inode that has a
// cached open, and the reverse.
func TestPassthroughMixedOpens(t *testing.T) {
	lower := t.TempDir()
	writeTree(t, lower, map[string]string{"f": "lower data", "g": "other"})
	m := mountDirs(t, t.TempDir(), lower)
	p := filepath.Join(m.dir, "f")
	r, err := os.Open(p) // lower data: a cached open
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	if k, _ := r.ReadAt(buf, 0); string(buf[:k]) != "lower data" {
		t.Fatalf("read %q", buf[:k])
	}
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open for write while open from the lower layer: %v", err)
	}
	if _, err := w.Write([]byte("+more")); err != nil {
		t.Fatalf("write: %v", err)
	}
	r2, err := os.Open(p) // a third open while both are open
	if err != nil {
		t.Fatalf("third open: %v", err)
	}
	for _, f := range []*os.File{r, r2} {
		if k, _ := f.ReadAt(buf, 0); string(buf[:k]) != "lower data+more" {
			t.Errorf("%s reads %q", f.Name(), buf[:k])
		}
	}
	w.Close()
	r.Close()
	r2.Close()
	// Now the data is in the diff: opens are passthrough ones; mixing a
	// reader and a writer on it, and mmap, must work too.
	w, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("LOWER"), 0); err != nil {
		t.Fatal(err)
	}
	r, err = os.Open(p)
	if err != nil {
		t.Fatalf("read-only open beside a passthrough writer: %v", err)
	}
	defer r.Close()
	if k, _ := r.ReadAt(buf, 0); string(buf[:k]) != "LOWER data+more" {
		t.Errorf("reads %q", buf[:k])
	}
	mm, err := unix.Mmap(int(r.Fd()), 0, 15, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	if string(mm) != "LOWER data+more" {
		t.Errorf("mmap reads %q", mm)
	}
	unix.Munmap(mm)
	// Writer first, then a reader, on a file still in the lower layer.
	q := filepath.Join(m.dir, "g")
	w2, err := os.OpenFile(q, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	w2.Write([]byte("!"))
	if b, err := os.ReadFile(q); err != nil || string(b) != "other!" {
		t.Errorf("g: %q %v", b, err)
	}
}

// TestForgetDropsNodes: when the kernel forgets inodes (here: dropping
// the dentry and inode caches), the engine lets their nodes go; looking
// them up again gives the same inode numbers.
func TestForgetDropsNodes(t *testing.T) {
	lower := t.TempDir()
	files := map[string]string{}
	for d := 0; d < 20; d++ {
		for f := 0; f < 100; f++ {
			files[fmt.Sprintf("d%02d/f%03d", d, f)] = "x"
		}
	}
	writeTree(t, lower, files)
	m := mountDirs(t, t.TempDir(), lower)
	inos := map[string]uint64{}
	for p := range files {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(m.dir, p), &st); err != nil {
			t.Fatal(err)
		}
		inos[p] = st.Ino
	}
	if n := m.o.LiveNodes(); n < len(files) {
		t.Fatalf("only %d live nodes after looking up %d files", n, len(files))
	}
	ok := false
	for i := 0; i < 100 && !ok; i++ {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Skipf("cannot drop the kernel's inode cache: %v", err)
		}
		runtime.GC()
		ok = m.o.LiveNodes() < len(files)/10
		time.Sleep(20 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("%d nodes still live after the kernel forgot them", m.o.LiveNodes())
	}
	for p, ino := range inos {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(m.dir, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino != ino {
			t.Fatalf("%s: ino %d after forget, was %d", p, st.Ino, ino)
		}
	}
}

// TestCachedListings: directory listings are cached by the kernel across
// opens; every change made through the mount must show in the next one.
func TestCachedListings(t *testing.T) {
	lower := t.TempDir()
	writeTree(t, lower, map[string]string{"d/a": "a", "d/b": "b", "e/c": "c"})
	m := mountDirs(t, t.TempDir(), lower)
	d := filepath.Join(m.dir, "d")
	list := func() string {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return fmt.Sprint(names)
	}
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return nil }, "[a b]"},
		{func() error { return os.WriteFile(d+"/new", nil, 0o644) }, "[a b new]"},
		{func() error { return os.Remove(d + "/a") }, "[b new]"},
		{func() error { return os.Rename(m.dir+"/e/c", d+"/c") }, "[b c new]"},
		{func() error { return os.Rename(d+"/b", m.dir+"/e/b") }, "[c new]"},
		{func() error { return os.Mkdir(d+"/sub", 0o755) }, "[c new sub]"},
		{func() error { return os.Link(d+"/c", d+"/c2") }, "[c c2 new sub]"},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		list() // twice: the second listing comes from the kernel's cache
		if got := list(); got != s.want {
			t.Errorf("step %d: listing %s, want %s", i, got, s.want)
		}
	}
}

// TestReaddirWhileChanging: a listing read in several requests while
// entries are removed and added returns every unchanged entry exactly
// once, and a seek to a told position resumes after the same entry.
func TestReaddirWhileChanging(t *testing.T) {
	lower := t.TempDir()
	files := map[string]string{}
	for i := 0; i < 400; i++ {
		files[fmt.Sprintf("d/lower-file-with-a-long-name-%03d", i)] = ""
	}
	writeTree(t, lower, files)
	m := mountDirs(t, t.TempDir(), lower)
	d := filepath.Join(m.dir, "d")
	for i := 0; i < 100; i++ {
		if err := os.WriteFile(fmt.Sprintf("%s/upper-%03d", d, i), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	first, err := f.Readdirnames(50)
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for _, n := range first {
		seen[n]++
	}
	// Remove names already read and names not yet read; add new ones.
	// The names come from the test, not from a listing through the
	// mount, which would fill the kernel's cache of the directory.
	var all []string
	for i := 0; i < 400; i++ {
		all = append(all, fmt.Sprintf("lower-file-with-a-long-name-%03d", i))
	}
	for i := 0; i < 100; i++ {
		all = append(all, fmt.Sprintf("upper-%03d", i))
	}
	for i, n := range all {
		if i%3 == 0 {
			if err := os.Remove(filepath.Join(d, n)); err != nil {
				t.Fatal(err)
			}
			removed[n] = true
		}
	}
	for i := 0; i < 50; i++ {
		if err := os.WriteFile(fmt.Sprintf("%s/added-%03d", d, i), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rest {
		seen[n]++
	}
	for _, n := range all {
		if c := seen[n]; c > 1 || c == 0 && !removed[n] {
			t.Errorf("%s seen %d times", n, c)
		}
	}

	// telldir/seekdir through the raw syscalls.
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	names := func(buf []byte) []string {
		var out []string
		_, _, out = unix.ParseDirent(buf, -1, nil)
		return out
	}
	buf := make([]byte, 2048)
	k, err := unix.Getdents(fd, buf)
	if err != nil || k == 0 {
		t.Fatalf("getdents: %d %v", k, err)
	}
	pos, err := unix.Seek(fd, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := unix.Getdents(fd, buf)
	if err != nil || k2 == 0 {
		t.Fatalf("getdents: %d %v", k2, err)
	}
	want := names(buf[:k2])
	if _, err := unix.Seek(fd, pos, 0); err != nil {
		t.Fatal(err)
	}
	k3, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(buf[:k3]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after seekdir: %v, want %v", got, want)
	}
}
