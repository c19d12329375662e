package overlay

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// gcUntil runs the collector until cond holds or a deadline passes
// (cleanups run on their own goroutine after a cycle).
func gcUntil(cond func() bool) bool {
	for i := 0; i < 200; i++ {
		runtime.GC()
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func TestDroppedNodesKeepIdentity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs and open_by_handle_at")
	}
	lower := t.TempDir()
	const dirs, per = 40, 250
	for d := 0; d < dirs; d++ {
		dp := filepath.Join(lower, fmt.Sprintf("d%02d", d))
		os.Mkdir(dp, 0o755)
		for f := 0; f < per; f++ {
			if err := os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%03d", f)), []byte(fmt.Sprint(d, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum := treeSum(t, lower)
	o := open(t, t.TempDir(), lower)
	// One copied-up file and one created file among them.
	h, err := o.Open(at(t, o, "d01/f001"), os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteAt([]byte("+"), 4)
	h.Release()
	_, h, err = o.Create(at(t, o, "d02"), "new", os.O_WRONLY, 0o640, Root)
	if err != nil {
		t.Fatal(err)
	}
	h.WriteAt([]byte("new"), 0)
	h.Release()
	h = nil

	type rec struct {
		ino uint64
		id  []byte
	}
	want := map[string]rec{}
	for d := 0; d < dirs; d++ {
		dn := fmt.Sprintf("d%02d", d)
		ents, err := o.ReadDir(at(t, o, dn))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			n := at(t, o, dn+"/"+e.Name)
			id, err := o.ID(n)
			if err != nil {
				t.Fatal(err)
			}
			want[dn+"/"+e.Name] = rec{n.Ino(), id}
		}
	}
	if len(want) != dirs*per+1 {
		t.Fatalf("walked %d objects, want %d", len(want), dirs*per+1)
	}
	if !gcUntil(func() bool { return o.LiveNodes() < 10 }) {
		t.Fatalf("%d nodes still held after the walk; want only the root's", o.LiveNodes())
	}
	for p, r := range want {
		n, err := o.Resolve(r.id)
		if err != nil {
			t.Fatalf("%s: resolve after drop: %v", p, err)
		}
		if n.Ino() != r.ino {
			t.Fatalf("%s: resolved ino %#x, want %#x", p, n.Ino(), r.ino)
		}
		if m := at(t, o, p); m != n || m.Ino() != r.ino {
			t.Fatalf("%s: lookup after drop gives another node or ino", p)
		}
	}
	if got := read(t, o, "d01/f001"); got != "1 1+" {
		t.Errorf("copied-up file reads %q after drop", got)
	}
	if got := read(t, o, "d02/new"); got != "new" {
		t.Errorf("created file reads %q after drop", got)
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

func TestCreateOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files for other owners")
	}
	lower := t.TempDir()
	os.Mkdir(filepath.Join(lower, "sg"), 0o775)
	os.Chown(filepath.Join(lower, "sg"), 0, 50)
	unix.Chmod(filepath.Join(lower, "sg"), 0o2775)
	diff := t.TempDir()
	o := open(t, diff, lower)
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	for _, c := range []struct {
		dir, name string
		mode      uint32
		cred      *Cred
		wantMode  uint32
		uid, gid  uint32
	}{
		{"", "root644", 0o644, Root, 0o644, 0, 0},
		{"", "user600", 0o600, &Cred{Uid: 1000, Gid: 1000}, 0o600, 1000, 1000},
		{"", "suid", 0o4755, &Cred{Uid: 1000, Gid: 1000}, 0o4755, 1000, 1000},
		{"sg", "ingroup", 0o664, &Cred{Uid: 1000, Gid: 1000}, 0o664, 1000, 50},
		{"sg", "rootin", 0o666, Root, 0o666, 0, 50},
	} {
		dir := o.Root()
		if c.dir != "" {
			dir = at(t, o, c.dir)
		}
		n, h, err := o.Create(dir, c.name, os.O_WRONLY, c.mode, c.cred)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h.Release()
		a, err := o.Getattr(n)
		if err != nil {
			t.Fatal(err)
		}
		if a.Mode&0o7777 != c.wantMode || a.Uid != c.uid || a.Gid != c.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", c.name, a.Mode&0o7777, a.Uid, a.Gid, c.wantMode, c.uid, c.gid)
		}
		var st unix.Stat_t
		unix.Lstat(filepath.Join(diff, c.dir, c.name), &st)
		if st.Ino|upperTag != n.Ino() {
			t.Errorf("%s: ino %#x, host %#x", c.name, n.Ino(), st.Ino)
		}
	}
	d, err := o.Mkdir(at(t, o, "sg"), "sub", 0o750, &Cred{Uid: 1000, Gid: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Getattr(d); a.Mode&0o7777 != 0o2750 || a.Uid != 1000 || a.Gid != 50 {
		t.Errorf("mkdir in setgid dir: mode %o uid %d gid %d", a.Mode&0o7777, a.Uid, a.Gid)
	}
	l, err := o.Symlink(o.Root(), "lnk", "target", &Cred{Uid: 7, Gid: 8})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := o.Getattr(l); a.Uid != 7 || a.Gid != 8 {
		t.Errorf("symlink owner %d:%d", a.Uid, a.Gid)
	}
}

func TestAccessACLAndSticky(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners")
	}
	lower := t.TempDir()
	os.WriteFile(filepath.Join(lower, "f"), []byte("x"), 0o640)
	os.Mkdir(filepath.Join(lower, "tmp"), 0o777)
	unix.Chmod(filepath.Join(lower, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(lower, "tmp/roots"), nil, 0o666)
	os.WriteFile(filepath.Join(lower, "tmp/users"), nil, 0o666)
	os.Chown(filepath.Join(lower, "tmp/users"), 1000, 1000)
	o := open(t, t.TempDir(), lower)
	f := at(t, o, "f")
	u1000, u1001 := &Cred{Uid: 1000, Gid: 1000}, &Cred{Uid: 1001, Gid: 1001}
	if err := o.Access(f, u1000, unix.R_OK); err != syscall.EACCES {
		t.Fatalf("before ACL: %v", err)
	}
	// user:1000:rw-, mask rw-, other ---
	acl := []byte{2, 0, 0, 0}
	for _, e := range [][3]uint32{{aclUserObj, 6, 0xffffffff}, {aclUser, 6, 1000}, {aclGroupObj, 4, 0xffffffff}, {aclMask, 6, 0xffffffff}, {aclOther, 0, 0xffffffff}} {
		acl = append(acl, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8), byte(e[2]), byte(e[2]>>8), byte(e[2]>>16), byte(e[2]>>24))
	}
	if err := o.SetXattr(f, aclAccess, acl, 0); err != nil {
		t.Fatal(err)
	}
	if err := o.Access(f, u1000, unix.R_OK|unix.W_OK); err != nil {
		t.Errorf("named user entry: %v", err)
	}
	if err := o.Access(f, u1000, unix.X_OK); err != syscall.EACCES {
		t.Errorf("named user x: %v", err)
	}
	if err := o.Access(f, u1001, unix.R_OK); err != syscall.EACCES {
		t.Errorf("other: %v", err)
	}
	tmp := at(t, o, "tmp")
	if err := o.MayDelete(tmp, "roots", u1000); err != syscall.EPERM {
		t.Errorf("sticky dir, other's file: %v, want EPERM", err)
	}
	if err := o.MayDelete(tmp, "users", u1000); err != nil {
		t.Errorf("sticky dir, own file: %v", err)
	}
	if err := o.MayDelete(tmp, "roots", Root); err != nil {
		t.Errorf("sticky dir, root: %v", err)
	}
	if err := o.MayDelete(o.Root(), "f", u1000); err != syscall.EACCES {
		t.Errorf("unwritable dir: %v", err)
	}
}

// TestENOSPC fills a small diff: errors reach the caller as ENOSPC and
// a reopened union shows every file wholly old or as written.
func TestENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	lower := mkLower(t)
	sum := treeSum(t, lower)
	diff := t.TempDir()
	if err := unix.Mount("tmpfs", diff, "tmpfs", 0, "size=8m,nr_inodes=60"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(diff, unix.MNT_DETACH)
	o, err := New(Config{Diff: diff, Lowers: open(t, "", lower).lowers})
	if err != nil {
		t.Fatal(err)
	}
	// A 64 MiB copy-up cannot fit.
	if _, err := o.Open(at(t, o, "big"), os.O_WRONLY|os.O_APPEND); err != syscall.ENOSPC {
		t.Fatalf("copy-up of 64 MiB into 8 MiB: %v, want ENOSPC", err)
	}
	// Writes into a new file until the diff is full.
	_, h, err := o.Create(o.Root(), "fill", os.O_WRONLY, 0o644, Root)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("z"), 1<<20)
	var written int64
	for i := 0; i < 16; i++ {
		k, err := h.WriteAt(chunk, written)
		written += int64(k)
		if err != nil {
			if err != syscall.ENOSPC {
				t.Fatalf("write: %v, want ENOSPC", err)
			}
			break
		}
		if i == 15 {
			t.Fatal("wrote 16 MiB into an 8 MiB diff")
		}
	}
	h.Release()
	// Namespace changes on a full diff fail cleanly or succeed.
	var createErr error
	for i := 0; i < 10000 && createErr == nil; i++ {
		_, createErr = o.Mkdir(o.Root(), fmt.Sprintf("dir%d", i), 0o755, Root)
	}
	if createErr != syscall.ENOSPC {
		t.Errorf("mkdir on a full diff: %v, want ENOSPC", createErr)
	}
	renameErr := o.Rename(at(t, o, "a"), "g", at(t, o, "b"), "g2", 0)
	o.Close()

	o2 := open(t, diff, lower)
	if got := read(t, o2, "a/f"); got != "lower f" {
		t.Errorf("a/f reads %q", got)
	}
	n := at(t, o2, "big")
	a, _ := o2.Getattr(n)
	if a.Size != 64<<20 {
		t.Errorf("big has size %d after the failed copy-up", a.Size)
	}
	bh, _ := o2.Open(n, os.O_RDONLY)
	buf := make([]byte, 64<<20)
	k, _ := bh.ReadAt(buf, 0)
	bh.Release()
	if k != len(buf) || bytes.Count(buf, []byte("B")) != len(buf) {
		t.Errorf("big is not its old content after the failed copy-up")
	}
	fa, err := o2.Getattr(at(t, o2, "fill"))
	if err != nil || fa.Size != written {
		t.Errorf("fill: size %d err %v, want %d", fa.Size, err, written)
	}
	_, gErr := o2.Lookup(at(t, o2, "a"), "g")
	_, g2Err := o2.Lookup(at(t, o2, "b"), "g2")
	if (gErr == nil) == (g2Err == nil) || (renameErr == nil) != (g2Err == nil) {
		t.Errorf("rename on a full diff (%v): old name %v, new name %v", renameErr, gErr, g2Err)
	}
	ents, _ := os.ReadDir(filepath.Join(diff, workDir))
	if len(ents) != 0 {
		t.Errorf("staging dir not empty after reopen")
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

// TestCrashAtEveryStep runs a sequence of renames of lower and upper
// files, a directory rename, a data copy-up and an unlink in a child
// process that kills itself (SIGKILL) at the k-th step of the diff's
// multi-step changes, for every k. After each crash the reopened union
// shows every file under exactly one of its names, wholly old or wholly
// new.
func TestCrashAtEveryStep(t *testing.T) {
	const files = 3
	if k := os.Getenv("VMROOT_CRASH_AT"); k != "" {
		var crashAt, n int
		fmt.Sscan(k, &crashAt)
		testStep = func() {
			if n++; n == crashAt {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		o := open(t, os.Getenv("VMROOT_DIFF"), os.Getenv("VMROOT_LOWER"))
		must := func(err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
		for i := 0; i < files; i++ {
			must(o.Rename(o.root, fmt.Sprintf("r%d", i), o.root, fmt.Sprintf("s%d", i), 0))
		}
		must(o.Rename(o.root, "s0", o.root, "r0", 0))
		must(o.Rename(o.root, "r0", o.root, "s1", 0)) // replaces s1: r1's content is gone
		must(o.Rename(o.root, "d", o.root, "e", 0))
		h, err := o.Open(at(t, o, "big"), os.O_WRONLY|os.O_APPEND)
		must(err)
		_, err = h.WriteAt([]byte("tail"), 64<<20)
		must(err)
		h.Release()
		must(o.Unlink(o.root, "s2"))
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs")
	}
	lower := mkLower(t)
	for i := 0; i < files; i++ {
		os.WriteFile(filepath.Join(lower, fmt.Sprintf("r%d", i)), []byte(fmt.Sprintf("content %d", i)), 0o644)
	}
	os.MkdirAll(filepath.Join(lower, "d/sub"), 0o755)
	os.WriteFile(filepath.Join(lower, "d/sub/f"), []byte("in d"), 0o644)
	sum := treeSum(t, lower)
	old := bytes.Repeat([]byte("B"), 64<<20)
	// one of names shows content, the others nothing
	oneOf := func(o *FS, content string, names ...string) string {
		var seen []string
		for _, nm := range names {
			n, err := o.walk(o.root, nm)
			if err != nil {
				continue
			}
			seen = append(seen, nm)
			if n.Mode() == unix.S_IFREG {
				if got := read(t, o, nm); got != content {
					return fmt.Sprintf("%s reads %q, want %q", nm, got, content)
				}
			}
		}
		if len(seen) != 1 {
			return fmt.Sprintf("visible as %v, want exactly one of %v", seen, names)
		}
		return ""
	}
	for k := 1; ; k++ {
		if k > 200 {
			t.Fatal("the child never finished")
		}
		diff := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=TestCrashAtEveryStep$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("VMROOT_CRASH_AT=%d", k), "VMROOT_DIFF="+diff, "VMROOT_LOWER="+lower)
		out, err := cmd.CombinedOutput()
		finished := err == nil
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL) {
			t.Fatalf("step %d: child failed: %v\n%s", k, err, out)
		}
		o := open(t, diff, lower)
		var problems []string
		where := map[string][]string{} // content -> names showing it
		for _, nm := range []string{"r0", "r1", "r2", "s0", "s1", "s2"} {
			if _, err := o.Lookup(o.root, nm); err == nil {
				c := read(t, o, nm)
				where[c] = append(where[c], nm)
			}
		}
		if len(where["content 0"]) != 1 {
			problems = append(problems, fmt.Sprintf("content 0 under %v", where["content 0"]))
		}
		if want := 1; len(where["content 1"]) != want && !(len(where["content 1"]) == 0 && slices.Equal(where["content 0"], []string{"s1"})) {
			problems = append(problems, fmt.Sprintf("content 1 under %v", where["content 1"]))
		}
		// s2 is unlinked last: before that it shows, after it does not.
		if len(where["content 2"]) > 1 || len(where["content 2"]) == 1 && finished {
			problems = append(problems, fmt.Sprintf("content 2 under %v", where["content 2"]))
		}
		if p := oneOf(o, "in d", "d/sub/f", "e/sub/f"); p != "" {
			problems = append(problems, p)
		}
		bh, err := o.Open(at(t, o, "big"), os.O_RDONLY)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<20+8)
		n, _ := bh.ReadAt(buf, 0)
		bh.Release()
		if got := buf[:n]; !bytes.Equal(got, old) && !bytes.Equal(got, append(old, "tail"...)) {
			problems = append(problems, fmt.Sprintf("big is neither old nor new (%d bytes)", n))
		}
		ents, _ := o.ReadDir(o.root)
		for _, e := range ents {
			if strings.HasPrefix(e.Name, ".wh.") {
				problems = append(problems, "reserved name visible: "+e.Name)
			}
		}
		o.Close()
		if len(problems) > 0 {
			t.Errorf("crash at step %d:\n  %s", k, strings.Join(problems, "\n  "))
		}
		if finished {
			if k < 10 {
				t.Fatalf("only %d steps: the hook is not wired", k)
			}
			t.Logf("crashed at each of %d steps", k-1)
			break
		}
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

// plainFS hides the optional interfaces of a layer (CopyRange,
// DataExtents), so copy-up takes its generic read-and-write path.
type plainFS struct{ fsys.FS }

func TestCopyUpPaths(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.* xattrs")
	}
	lower := t.TempDir()
	want := make([]byte, 11<<20+123) // several copy buffers and a tail
	for i := range want {
		want[i] = byte(i * 7 >> 3)
	}
	clear(want[2<<20 : 5<<20]) // a hole in the sparse file
	f, _ := os.Create(filepath.Join(lower, "data"))
	f.WriteAt(want[:2<<20], 0)
	f.WriteAt(want[5<<20:], 5<<20)
	f.Close()
	sum := treeSum(t, lower)
	for _, c := range []struct {
		name  string
		plain bool
	}{{"in-kernel range copy", false}, {"read and write", true}} {
		t.Run(c.name, func(t *testing.T) {
			l, err := dirfs.Open(lower)
			if err != nil {
				t.Fatal(err)
			}
			var lfs fsys.FS = l
			if c.plain {
				lfs = plainFS{l}
			}
			o, err := New(Config{Diff: t.TempDir(), Lowers: []fsys.FS{lfs}})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			n := at(t, o, "data")
			h, err := o.Open(n, os.O_RDWR)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			got := make([]byte, len(want)+10)
			k, err := h.ReadAt(got, 0)
			if err != nil || k != len(want) || !bytes.Equal(got[:k], want) {
				t.Fatalf("copied-up data differs (%d bytes, %v)", k, err)
			}
		})
	}
	if treeSum(t, lower) != sum {
		t.Fatal("lower layer changed")
	}
}

// A merged directory's link count (2 + subdirectories) is cached and kept
// across changes to its non-directories: after each change it must match
// what a listing counts.
func TestMergedDirNlinkKept(t *testing.T) {
	lower := mkLower(t)
	diff := t.TempDir()
	o := open(t, diff, lower)
	a, err := o.Lookup(o.Root(), "a")
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		got, err := o.Getattr(a)
		if err != nil {
			t.Fatal(step, err)
		}
		ents, err := o.ReadDir(a)
		if err != nil {
			t.Fatal(step, err)
		}
		want := uint32(2)
		for _, e := range ents {
			if e.Mode == fsys.S_IFDIR {
				want++
			}
		}
		if got.Nlink != want {
			t.Errorf("%s: nlink %d, listing counts %d", step, got.Nlink, want)
		}
	}
	check("start")
	_, h, err := o.Create(a, "new", unix.O_WRONLY, 0o644, Root)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	check("create")
	if err := o.Unlink(a, "f"); err != nil {
		t.Fatal(err)
	}
	check("unlink lower file")
	if _, err := o.Symlink(a, "ln", "new", Root); err != nil {
		t.Fatal(err)
	}
	check("symlink")
	g, err := o.Lookup(a, "g")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Link(g, a, "g2"); err != nil {
		t.Fatal(err)
	}
	check("link")
	if _, err := o.Mkdir(a, "d2", 0o755, Root); err != nil {
		t.Fatal(err)
	}
	check("mkdir")
	sub, err := o.Lookup(a, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Unlink(sub, "h"); err != nil {
		t.Fatal(err)
	}
	if err := o.Rmdir(a, "sub"); err != nil {
		t.Fatal(err)
	}
	check("rmdir lower dir")
	if err := o.Rename(a, "d2", o.Root(), "moved", 0); err != nil {
		t.Fatal(err)
	}
	check("rename dir out")
	if err := o.Rename(a, "new", a, "new2", 0); err != nil {
		t.Fatal(err)
	}
	check("rename file")
}
