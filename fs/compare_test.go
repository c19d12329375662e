package fs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/image"
	"golang.org/x/sys/unix"
)

// The table of operations below runs twice: in a native ext4 directory
// holding the starting tree, and on a vmroot mount whose base holds the
// same tree. Every result, errno included, must be the same.

// buildStart makes the starting tree in root.
func buildStart(t testing.TB, root string) {
	t.Helper()
	writeTree(t, root, map[string]string{
		"etc/motd":             "welcome\n",
		"etc/passwd":           "root:x:0:0::/root:/bin/sh\n",
		"etc/empty/":           "",
		"usr/bin/tool":         "#!/bin/sh\necho hi\n",
		"usr/lib/a/b/c/deep":   "deep file",
		"usr/lib/a/b/other":    "other",
		"usr/share/doc/README": strings.Repeat("doc ", 1000),
		"var/log/messages":     "log line\n",
		"var/empty/":           "",
		"home/user/notes":      "notes",
		"data/big":             strings.Repeat("0123456789abcdef", 1<<14),
		"dirs/full/x":          "x",
		"dirs/empty/":          "",
		"dirs/other/y":         "y",
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("../etc/motd", filepath.Join(root, "usr/motdlink")))
	must(os.Symlink("/nonexistent", filepath.Join(root, "usr/dangling")))
	must(os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/passwd.hard")))
	must(os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "home/passwd.hard")))
	must(unix.Mkfifo(filepath.Join(root, "var/fifo"), 0o640))
	must(unix.Mknod(filepath.Join(root, "var/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(filepath.Join(root, "usr/bin/tool"), 0o4755))
	must(os.Chown(filepath.Join(root, "home/user"), 1000, 1000))
	must(os.Chown(filepath.Join(root, "home/user/notes"), 1000, 1000))
	must(unix.Setxattr(filepath.Join(root, "etc/motd"), "user.origin", []byte("base"), 0))
	must(unix.Setxattr(filepath.Join(root, "etc/motd"), "trusted.t", []byte("tv"), 0))
	f, err := os.Create(filepath.Join(root, "data/sparse"))
	must(err)
	must(f.Truncate(10 << 20))
	_, err = f.WriteAt([]byte("middle"), 5<<20)
	must(err)
	f.Close()
	must(os.Chmod(filepath.Join(root, "var"), 0o2775))
}

type op struct {
	name string
	fn   func(r string) string
}

func e(err error) string {
	if err == nil {
		return "ok"
	}
	var en syscall.Errno
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	if le, ok := err.(*os.LinkError); ok {
		err = le.Err
	}
	if se, ok := err.(*os.SyscallError); ok {
		err = se.Err
	}
	if x, ok := err.(syscall.Errno); ok {
		en = x
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func st(p string) string {
	var s unix.Stat_t
	if err := unix.Lstat(p, &s); err != nil {
		return e(err)
	}
	return fmt.Sprintf("mode=%o nlink=%d uid=%d gid=%d size=%d rdev=%d", s.Mode, s.Nlink, s.Uid, s.Gid, s.Size, s.Rdev)
}

func cat(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return e(err)
	}
	if len(b) > 64 {
		return fmt.Sprintf("%d bytes sha256 %x", len(b), sha256.Sum256(b))
	}
	return fmt.Sprintf("%q", b)
}

func ls(p string) string {
	ents, err := os.ReadDir(p)
	if err != nil {
		return e(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func xattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return e(err)
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var out []string
	for _, nm := range names {
		if nm == "" || strings.HasPrefix(nm, "security.") {
			continue
		}
		v := make([]byte, 256)
		k, err := unix.Lgetxattr(p, nm, v)
		if err != nil {
			out = append(out, nm+"="+e(err))
			continue
		}
		out = append(out, nm+"="+string(v[:k]))
	}
	return strings.Join(out, ";")
}

var long = strings.Repeat("n", 256)

// run runs a command and reports its exit status (its output names
// paths, which differ between the two trees).
func run(name string, args ...string) string {
	err := exec.Command(name, args...).Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Sprintf("exit %d ", ee.ExitCode())
	}
	return e(err) + " "
}

// acl is an object's ACL as getfacl prints it, without the header.
func acl(p string) string {
	out, err := exec.Command("getfacl", "-cp", p).CombinedOutput()
	if err != nil {
		return e(err)
	}
	return strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", ",") + " "
}

// asUser runs a shell script with $1 = arg as uid (and gid) id and
// reports its exit status and output.
func asUser(id uint32, script, arg string) string {
	cmd := exec.Command("sh", "-c", script, "sh", arg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id, Gid: id}}
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return e(err)
	}
	return fmt.Sprintf("exit %d %q", code, out)
}

var ops = []op{
	{"stat lower file", func(r string) string { return st(r+"/etc/motd") + " " + cat(r+"/etc/motd") }},
	{"stat setuid", func(r string) string { return st(r + "/usr/bin/tool") }},
	{"stat symlink", func(r string) string {
		t, err := os.Readlink(r + "/usr/motdlink")
		return st(r+"/usr/motdlink") + t + e(err)
	}},
	{"follow symlink", func(r string) string { return cat(r + "/usr/motdlink") }},
	{"dangling", func(r string) string { return cat(r + "/usr/dangling") }},
	{"fifo and dev", func(r string) string { return st(r+"/var/fifo") + " | " + st(r+"/var/null") }},
	{"hardlink nlink", func(r string) string { return st(r+"/etc/passwd") + " | " + st(r+"/home/passwd.hard") }},
	{"xattrs lower", func(r string) string { return xattrs(r + "/etc/motd") }},
	{"dir nlink", func(r string) string { return st(r+"/usr") + " | " + st(r+"/usr/lib/a") }},
	{"readdir", func(r string) string { return ls(r) + " | " + ls(r+"/etc") + " | " + ls(r+"/usr") }},
	{"sparse read", func(r string) string { return cat(r+"/data/sparse") + " " + st(r+"/data/sparse") }},
	{"long name stat", func(r string) string { return st(r + "/etc/" + long) }},
	{"long name create", func(r string) string { return e(os.WriteFile(r+"/etc/"+long, nil, 0o644)) }},
	{"long name mkdir", func(r string) string { return e(os.Mkdir(r+"/"+long, 0o755)) }},
	{"append lower", func(r string) string {
		f, err := os.OpenFile(r+"/etc/motd", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return e(err)
		}
		f.Write([]byte("more\n"))
		f.Close()
		return cat(r+"/etc/motd") + st(r+"/etc/motd") + xattrs(r+"/etc/motd")
	}},
	{"O_TRUNC lower", func(r string) string {
		return e(os.WriteFile(r+"/var/log/messages", []byte("new"), 0o600)) + cat(r+"/var/log/messages") + st(r+"/var/log/messages")
	}},
	{"truncate grow", func(r string) string {
		return e(os.Truncate(r+"/usr/lib/a/b/other", 100000)) + st(r+"/usr/lib/a/b/other") + cat(r+"/usr/lib/a/b/other")
	}},
	{"truncate shrink", func(r string) string {
		return e(os.Truncate(r+"/usr/share/doc/README", 10)) + cat(r+"/usr/share/doc/README")
	}},
	{"sparse write", func(r string) string {
		f, err := os.OpenFile(r+"/data/big", os.O_RDWR, 0)
		if err != nil {
			return e(err)
		}
		_, err = f.WriteAt([]byte("XYZ"), 3<<20)
		f.Close()
		return e(err) + st(r+"/data/big") + cat(r+"/data/big")
	}},
	{"chmod lower", func(r string) string {
		return e(os.Chmod(r+"/usr/lib/a/b/c/deep", 0o600)) + st(r+"/usr/lib/a/b/c/deep") + cat(r+"/usr/lib/a/b/c/deep")
	}},
	{"chown lower", func(r string) string {
		return e(os.Lchown(r+"/home/user/notes", 2000, 3000)) + st(r+"/home/user/notes")
	}},
	{"chown symlink", func(r string) string { return e(os.Lchown(r+"/usr/motdlink", 5, 6)) + st(r+"/usr/motdlink") }},
	{"utimes", func(r string) string {
		err := unix.UtimesNano(r+"/etc/passwd", []unix.Timespec{{Sec: 1000}, {Sec: 2000}})
		var s unix.Stat_t
		unix.Stat(r+"/etc/passwd", &s)
		return e(err) + fmt.Sprint(s.Atim.Sec, s.Mtim.Sec)
	}},
	{"hardlink after chmod", func(r string) string {
		return st(r+"/etc/passwd") + " | " + st(r+"/etc/passwd.hard") + " | " + st(r+"/home/passwd.hard")
	}},
	{"hardlink write through one", func(r string) string {
		f, err := os.OpenFile(r+"/etc/passwd.hard", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return e(err)
		}
		f.Write([]byte("extra\n"))
		f.Close()
		return cat(r+"/etc/passwd") + cat(r+"/home/passwd.hard") + st(r+"/home/passwd.hard")
	}},
	{"hardlink unlink one", func(r string) string {
		return e(os.Remove(r+"/etc/passwd.hard")) + st(r+"/etc/passwd") + st(r+"/home/passwd.hard")
	}},
	{"setxattr", func(r string) string {
		return e(unix.Setxattr(r+"/etc/passwd", "user.new", []byte("v"), 0)) + xattrs(r+"/etc/passwd")
	}},
	{"setxattr create exists", func(r string) string {
		return e(unix.Setxattr(r+"/etc/motd", "user.origin", []byte("v"), unix.XATTR_CREATE))
	}},
	{"removexattr", func(r string) string {
		return e(unix.Removexattr(r+"/etc/motd", "user.origin")) + e(unix.Removexattr(r+"/etc/motd", "user.none")) + xattrs(r+"/etc/motd")
	}},
	{"trusted xattr", func(r string) string {
		return e(unix.Setxattr(r+"/var/log", "trusted.a", []byte("1"), 0)) + xattrs(r+"/var/log")
	}},
	{"unlink lower", func(r string) string {
		return e(os.Remove(r+"/home/user/notes")) + st(r+"/home/user/notes") + ls(r+"/home/user")
	}},
	{"recreate", func(r string) string {
		return e(os.WriteFile(r+"/home/user/notes", []byte("again"), 0o640)) + cat(r+"/home/user/notes") + st(r+"/home/user/notes")
	}},
	{"unlink dir", func(r string) string { return e(unix.Unlink(r + "/etc/empty")) }},
	{"rmdir file", func(r string) string { return e(unix.Rmdir(r + "/etc/motd")) }},
	{"rmdir nonempty", func(r string) string { return e(unix.Rmdir(r + "/usr/lib")) }},
	{"rmdir lower empty", func(r string) string { return e(unix.Rmdir(r+"/etc/empty")) + ls(r+"/etc") }},
	{"rmdir emptied", func(r string) string {
		return e(os.Remove(r+"/dirs/other/y")) + e(unix.Rmdir(r+"/dirs/other")) + ls(r+"/dirs")
	}},
	{"mkdir over removed", func(r string) string {
		return e(os.Mkdir(r+"/dirs/other", 0o700)) + ls(r+"/dirs/other") + st(r+"/dirs/other")
	}},
	{"mkdir exists", func(r string) string { return e(os.Mkdir(r+"/usr", 0o755)) }},
	{"create excl exists", func(r string) string {
		_, err := os.OpenFile(r+"/etc/motd", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		return e(err)
	}},
	{"setgid inherit", func(r string) string {
		return e(os.Mkdir(r+"/var/sub", 0o755)) + st(r+"/var/sub") + e(os.WriteFile(r+"/var/f", nil, 0o644)) + st(r+"/var/f")
	}},
	{"rename lower file", func(r string) string {
		return e(os.Rename(r+"/usr/bin/tool", r+"/usr/bin/tool2")) + ls(r+"/usr/bin") + st(r+"/usr/bin/tool2") + cat(r+"/usr/bin/tool2")
	}},
	{"rename over lower", func(r string) string {
		return e(os.Rename(r+"/usr/bin/tool2", r+"/etc/motd")) + ls(r+"/etc") + cat(r+"/etc/motd")
	}},
	{"rename lower dir", func(r string) string {
		return e(os.Rename(r+"/usr/lib", r+"/usr/lib2")) + ls(r+"/usr") + ls(r+"/usr/lib2/a/b") + cat(r+"/usr/lib2/a/b/c/deep") + st(r+"/usr/lib2/a/b/c/deep")
	}},
	{"rename dir nonempty target", func(r string) string { return e(os.Rename(r+"/usr/lib2", r+"/dirs/full")) }},
	{"rename dir onto empty", func(r string) string {
		return e(os.Rename(r+"/usr/lib2", r+"/dirs/empty")) + ls(r+"/dirs") + ls(r+"/dirs/empty/a/b")
	}},
	{"rename dir into itself", func(r string) string { return e(os.Rename(r+"/dirs/empty", r+"/dirs/empty/a/x")) }},
	{"rename file onto dir", func(r string) string { return e(os.Rename(r+"/etc/motd", r+"/dirs/full")) }},
	{"rename dir onto file", func(r string) string { return e(os.Rename(r+"/dirs/full", r+"/etc/motd")) }},
	{"rename noreplace", func(r string) string {
		return e(unix.Renameat2(unix.AT_FDCWD, r+"/etc/passwd", unix.AT_FDCWD, r+"/home/passwd.hard", unix.RENAME_NOREPLACE))
	}},
	{"rename exchange", func(r string) string {
		return e(unix.Renameat2(unix.AT_FDCWD, r+"/var/log", unix.AT_FDCWD, r+"/data/sparse", unix.RENAME_EXCHANGE)) +
			st(r+"/var/log") + st(r+"/data/sparse") + ls(r+"/data/sparse")
	}},
	{"rename hardlinks same inode", func(r string) string {
		os.Link(r+"/etc/passwd", r+"/etc/pl")
		return e(os.Rename(r+"/etc/passwd", r+"/etc/pl")) + ls(r+"/etc")
	}},
	{"link lower", func(r string) string {
		return e(os.Link(r+"/var/log/messages", r+"/var/msglink")) + st(r+"/var/msglink") + cat(r+"/var/msglink")
	}},
	{"link dir", func(r string) string { return e(os.Link(r+"/usr", r+"/usr3")) }},
	{"symlink", func(r string) string {
		t, err := os.Readlink(r + "/lnk")
		return e(os.Symlink("some/where", r+"/lnk")) + t + e(err) + func() string { t, _ := os.Readlink(r + "/lnk"); return t }()
	}},
	{"mknod", func(r string) string {
		return e(unix.Mkfifo(r+"/ff", 0o600)) + st(r+"/ff") + e(unix.Mknod(r+"/cdev", unix.S_IFCHR|0o600, int(unix.Mkdev(4, 5)))) + st(r+"/cdev") +
			e(unix.Mknod(r+"/sock", unix.S_IFSOCK|0o600, 0)) + st(r+"/sock")
	}},
	{"unlinked open file", func(r string) string {
		f, err := os.Open(r + "/dirs/full/x")
		if err != nil {
			return e(err)
		}
		defer f.Close()
		rm := e(os.Remove(r + "/dirs/full/x"))
		var s unix.Stat_t
		unix.Fstat(int(f.Fd()), &s)
		b := make([]byte, 10)
		n, _ := f.ReadAt(b, 0)
		return rm + fmt.Sprintf(" nlink=%d %q", s.Nlink, b[:n])
	}},
	{"unlinked open written file", func(r string) string {
		f, err := os.Create(r + "/tmpfile")
		if err != nil {
			return e(err)
		}
		defer f.Close()
		f.Write([]byte("data"))
		rm := e(os.Remove(r + "/tmpfile"))
		var s unix.Stat_t
		unix.Fstat(int(f.Fd()), &s)
		b := make([]byte, 10)
		n, _ := f.ReadAt(b, 0)
		return rm + fmt.Sprintf(" nlink=%d size=%d %q", s.Nlink, s.Size, b[:n])
	}},
	{"fallocate", func(r string) string {
		f, err := os.OpenFile(r+"/home/user/notes", os.O_RDWR, 0)
		if err != nil {
			return e(err)
		}
		defer f.Close()
		return e(unix.Fallocate(int(f.Fd()), 0, 0, 1<<20)) + st(r+"/home/user/notes")
	}},
	{"statfs namelen", func(r string) string {
		var s unix.Statfs_t
		err := unix.Statfs(r, &s)
		return e(err) + fmt.Sprint(s.Namelen)
	}},
	{"reserved name", func(r string) string { return st(r + "/.wh..wh.plnk") }},
	{"setfacl lower file", func(r string) string {
		return run("setfacl", "-m", "u:1000:rw,g:1001:r,m::rw", r+"/etc/passwd") + acl(r+"/etc/passwd") + st(r+"/etc/passwd")
	}},
	{"acl named user may write", func(r string) string { return asUser(1000, "echo acl >> \"$1\"", r+"/etc/passwd") }},
	{"acl other may not read", func(r string) string { return asUser(1002, "cat \"$1\"", r+"/etc/passwd") }},
	{"acl hard link sees it", func(r string) string { return acl(r+"/home/passwd.hard") + cat(r+"/home/passwd.hard") }},
	{"chmod updates acl mask", func(r string) string {
		return e(os.Chmod(r+"/etc/passwd", 0o640)) + acl(r+"/etc/passwd") + asUser(1000, "echo no >> \"$1\"", r+"/etc/passwd")
	}},
	{"default acl inherited", func(r string) string {
		out := run("setfacl", "-d", "-m", "u:1000:rwx", r+"/var/empty")
		// Modes the test's umask (022) leaves alone: the kernel applies
		// the umask before a FUSE server sees the mode, so under a default
		// ACL (where ext4 ignores the umask) modes it strips differ; see
		// the package documentation.
		f, err := os.OpenFile(r+"/var/empty/new", os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
		}
		return out + e(err) + acl(r+"/var/empty") + acl(r+"/var/empty/new") + st(r+"/var/empty/new") + e(os.Mkdir(r+"/var/empty/sub", 0o755)) + acl(r+"/var/empty/sub")
	}},
	{"remove acl", func(r string) string {
		return run("setfacl", "-b", r+"/etc/passwd") + acl(r+"/etc/passwd") + st(r+"/etc/passwd")
	}},
	{"sticky dir: other's file", func(r string) string {
		os.Mkdir(r+"/var/sticky", 0o777)
		unix.Chmod(r+"/var/sticky", 0o1777)
		os.WriteFile(r+"/var/sticky/roots", []byte("r"), 0o666)
		return asUser(1000, "rm -f \"$1/roots\" 2>/dev/null; echo $?; mv \"$1/roots\" \"$1/mine\" 2>/dev/null; echo $?; echo mine > \"$1/own\"; rm \"$1/own\"; echo $?", r+"/var/sticky") + ls(r+"/var/sticky")
	}},
	{"rm -rf lower tree", func(r string) string { return e(os.RemoveAll(r+"/usr")) + ls(r) }},
	{"mkdir after rm -rf", func(r string) string {
		return e(os.MkdirAll(r+"/usr/share/doc", 0o755)) + ls(r+"/usr") + ls(r+"/usr/share/doc")
	}},
	{"final dir nlink", func(r string) string { return st(r) + st(r+"/dirs") + st(r+"/var") }},
}

// snapshot describes a whole tree: names, types, modes, owners, sizes,
// link counts, contents, link targets, xattrs.
func snapshot(root string) string {
	var b bytes.Buffer
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		if err != nil {
			fmt.Fprintf(&b, "%s: %s\n", rel, e(err))
			return nil
		}
		fmt.Fprintf(&b, "%s: %s", rel, st(p))
		if d.Type().IsRegular() {
			b.WriteString(" " + cat(p))
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			b.WriteString(" -> " + t)
		}
		b.WriteString(" " + xattrs(p) + "\n")
		return nil
	})
	return b.String()
}

func runOps(root string) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.fn(root))
	}
	return out
}

func TestCompareWithExt4(t *testing.T) {
	needFuse(t)
	native := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(native, &sfs); err != nil || sfs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("%s is not on ext4; the reference must be a native ext4 directory", native)
	}
	buildStart(t, native)
	want := runOps(native)
	wantSnap := snapshot(native)

	lower := t.TempDir()
	buildStart(t, lower)
	before := snapshot(lower)
	diff := t.TempDir()
	m := mountDirs(t, diff, lower)
	got := runOps(m.dir)
	for i, o := range ops {
		if got[i] != want[i] {
			t.Errorf("%s:\n ext4:   %s\n vmroot: %s", o.name, want[i], got[i])
		}
	}
	gotSnap := snapshot(m.dir)
	if gotSnap != wantSnap {
		t.Errorf("final trees differ:\n%s", lineDiff(wantSnap, gotSnap))
	}
	m.unmount()
	if after := snapshot(lower); after != before {
		t.Errorf("lower layer changed:\n%s", lineDiff(before, after))
	}
	// The diff read again gives the same view.
	m2 := mountDirs(t, diff, lower)
	if again := snapshot(m2.dir); again != gotSnap {
		t.Errorf("view after remount differs:\n%s", lineDiff(gotSnap, again))
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	inB := map[string]bool{}
	for _, l := range bl {
		inB[l] = true
	}
	inA := map[string]bool{}
	for _, l := range al {
		inA[l] = true
	}
	var out []string
	for _, l := range al {
		if !inB[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !inA[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCompareWithExt4Image runs the same table with the base read in
// place from an ext4 image built by mke2fs -d from the starting tree.
func TestCompareWithExt4Image(t *testing.T) {
	needFuse(t)
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs not installed")
	}
	native := t.TempDir()
	buildStart(t, native)
	want := runOps(native)
	wantSnap := snapshot(native)

	tree := t.TempDir()
	buildStart(t, tree)
	img := filepath.Join(t.TempDir(), "base.img")
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-b", "4096", "-d", tree, img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	sum := fileSum(t, img)
	m, err := image.OpenFS(img, image.Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// mke2fs adds lost+found: hide it with a whiteout in a read-only
	// aufs-style layer between diff and base, which also exercises layers.
	mid := t.TempDir()
	if err := os.WriteFile(filepath.Join(mid, ".wh.lost+found"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	midFS, err := dirfs.Open(mid)
	if err != nil {
		t.Fatal(err)
	}
	diff := t.TempDir()
	tm := mountFS(t, diff, midFS, m.FS)
	got := runOps(tm.dir)
	for i, o := range ops {
		if got[i] != want[i] {
			t.Errorf("%s:\n ext4:   %s\n vmroot: %s", o.name, want[i], got[i])
		}
	}
	gotSnap := snapshot(tm.dir)
	if gotSnap != wantSnap {
		t.Errorf("final trees differ:\n%s", lineDiff(wantSnap, gotSnap))
	}
	tm.unmount()
	if fileSum(t, img) != sum {
		t.Fatal("the base image changed")
	}
}

func fileSum(t testing.TB, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}
