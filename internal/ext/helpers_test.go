package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmroot/vmroot/internal/fsys"
)

// Tools the tests drive, and the Debian packages that ship them.
var toolPackages = map[string]string{
	"mke2fs": "e2fsprogs", "debugfs": "e2fsprogs", "e2fsck": "e2fsprogs", "dumpe2fs": "e2fsprogs",
	"python3": "python3", "setfacl": "acl", "setfattr": "attr", "bash": "bash",
}

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package %s)", tool, toolPackages[tool])
		}
	}
}

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// The standard tree (testdata/mktree.sh) is built once per test binary.
var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
	treeTmp  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if treeTmp != "" {
		os.RemoveAll(treeTmp)
	}
	os.Exit(code)
}

func stdTree(t testing.TB) string {
	t.Helper()
	needTools(t, "bash", "python3", "setfacl", "setfattr")
	treeOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "mktree.sh")
		treeTmp, treeErr = os.MkdirTemp("", "ext-tree-")
		if treeErr != nil {
			return
		}
		treeDir = filepath.Join(treeTmp, "tree")
		out, err := exec.Command("bash", script, treeDir).CombinedOutput()
		if err != nil {
			treeErr = fmt.Errorf("mktree.sh: %v\n%s", err, out)
		}
	})
	if treeErr != nil {
		t.Fatal(treeErr)
	}
	return treeDir
}

// mkfs builds an image of the standard tree (or dir) with mke2fs -d.
func mkfs(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return mkfsSize(t, dir, "64M", args...)
}

func mkfsSize(t testing.TB, dir, size string, args ...string) string {
	t.Helper()
	needTools(t, "mke2fs")
	img := filepath.Join(t.TempDir(), "fs.img")
	a := append([]string{"-F", "-q"}, args...)
	a = append(a, "-d", dir, img, size)
	sh(t, "mke2fs", a...)
	return img
}

func openImage(t testing.TB, img string) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open(%s): %v", img, err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// resolve looks a slash path up from the root, without following links.
func resolve(fs *FS, p string) (uint64, error) {
	ino := fs.Root()
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		next, err := fs.Lookup(ino, c)
		if err != nil {
			return 0, err
		}
		ino = next
	}
	return ino, nil
}

func mustResolve(t testing.TB, fs *FS, p string) uint64 {
	t.Helper()
	ino, err := resolve(fs, p)
	if err != nil {
		t.Fatalf("resolve %q: %v", p, err)
	}
	return ino
}

// dbgInode is what debugfs "stat" reports about one inode.
type dbgInode struct {
	generation uint64
	links      uint64
	blockcount uint64
	flags      uint64
	uid, gid   uint64
	size       uint64
	times      map[string][2]uint64 // name -> raw seconds field, extra field
	hasExtra   map[string]bool
	blockMap   []fsys.Extent // logical block ranges from EXTENTS:/BLOCKS:
}

var (
	reInode = regexp.MustCompile(`^Inode: (\d+)\s+Type: .*Flags: 0x([0-9a-f]+)`)
	reGen   = regexp.MustCompile(`Generation: (\d+)`)
	reUser  = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)`)
	reLinks = regexp.MustCompile(`Links: (\d+)\s+Blockcount: (\d+)`)
	reRange = regexp.MustCompile(`\((\d+)(?:-(\d+))?\):`)
	reTime  = regexp.MustCompile(`^\s*(atime|ctime|mtime|crtime): 0x([0-9a-f]+)(?::([0-9a-f]+))? --`)
)

// debugfsStat runs one debugfs process stating all inos.
func debugfsStat(t testing.TB, img string, inos []uint64) map[uint64]*dbgInode {
	t.Helper()
	needTools(t, "debugfs")
	var cmds strings.Builder
	for _, ino := range inos {
		fmt.Fprintf(&cmds, "stat <%d>\n", ino)
	}
	cf := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(cf, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := sh(t, "debugfs", "-f", cf, img)
	res := map[uint64]*dbgInode{}
	var cur *dbgInode
	inMap := false
	for _, line := range strings.Split(out, "\n") {
		if inMap && cur != nil && !strings.HasPrefix(line, "Inode:") {
			for _, m := range reRange.FindAllStringSubmatch(line, -1) {
				lo, _ := strconv.ParseInt(m[1], 10, 64)
				hi := lo
				if m[2] != "" {
					hi, _ = strconv.ParseInt(m[2], 10, 64)
				}
				if k := len(cur.blockMap) - 1; k >= 0 && cur.blockMap[k].Off+cur.blockMap[k].Len == lo {
					cur.blockMap[k].Len += hi - lo + 1
				} else {
					cur.blockMap = append(cur.blockMap, fsys.Extent{Off: lo, Len: hi - lo + 1})
				}
			}
			continue
		}
		inMap = line == "EXTENTS:" || line == "BLOCKS:"
		if inMap {
			continue
		}
		if m := reInode.FindStringSubmatch(line); m != nil {
			ino, _ := strconv.ParseUint(m[1], 10, 64)
			fl, _ := strconv.ParseUint(m[2], 16, 64)
			cur = &dbgInode{flags: fl, times: map[string][2]uint64{}, hasExtra: map[string]bool{}}
			res[ino] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := reGen.FindStringSubmatch(line); m != nil {
			cur.generation, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if m := reUser.FindStringSubmatch(line); m != nil {
			cur.uid, _ = strconv.ParseUint(m[1], 10, 64)
			cur.gid, _ = strconv.ParseUint(m[2], 10, 64)
			cur.size, _ = strconv.ParseUint(m[3], 10, 64)
		}
		if m := reLinks.FindStringSubmatch(line); m != nil {
			cur.links, _ = strconv.ParseUint(m[1], 10, 64)
			cur.blockcount, _ = strconv.ParseUint(m[2], 10, 64)
		}
		if m := reTime.FindStringSubmatch(line); m != nil {
			s, _ := strconv.ParseUint(m[2], 16, 64)
			var x uint64
			if m[3] != "" {
				x, _ = strconv.ParseUint(m[3], 16, 64)
				cur.hasExtra[m[1]] = true
			}
			cur.times[m[1]] = [2]uint64{s, x}
		}
	}
	return res
}

// hostData returns the data segments of a host file (SEEK_DATA/SEEK_HOLE).
func hostData(t testing.TB, path string, size int64) []fsys.Extent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fsys.Extent
	for off := int64(0); off < size; {
		d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no more data
		}
		h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fsys.Extent{Off: d, Len: h - d})
		off = h
	}
	return out
}

func hostXattrs(t testing.TB, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		return out
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		vs, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]byte, vs)
		vs, err = unix.Lgetxattr(path, name, v)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = v[:vs]
	}
	return out
}

// readAll reads a file through ReadAt in chunks of an awkward size.
func readAll(fs *FS, ino uint64, size int64) ([]byte, error) {
	out := make([]byte, size)
	const chunk = 100_003
	for off := int64(0); off < size; off += chunk {
		end := min(off+chunk, size)
		n, err := fs.ReadAt(ino, out[off:end], off)
		if n != int(end-off) {
			return nil, fmt.Errorf("ReadAt(%d, %d bytes at %d) = %d, %v", ino, end-off, off, n, err)
		}
		if err != nil && !(errors.Is(err, io.EOF) && end == size) {
			return nil, err
		}
	}
	n, err := fs.ReadAt(ino, make([]byte, 1), size)
	if n != 0 || err != io.EOF {
		return nil, fmt.Errorf("ReadAt at EOF = %d, %v; want 0, EOF", n, err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

type fsysTime = time.Time

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func exec_(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// debugfsDump extracts a file's content with debugfs.
func debugfsDump(t testing.TB, img string, ino uint64) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump")
	sh(t, "debugfs", "-R", fmt.Sprintf("dump <%d> %s", ino, out), img)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func timeUnix(s, ns int64) time.Time { return time.Unix(s, ns) }
