package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

// debugfsW runs write-mode debugfs commands on an image.
func debugfsW(t testing.TB, img string, cmds ...string) {
	t.Helper()
	cf := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(cf, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := sh(t, "debugfs", "-w", "-f", cf, img)
	if strings.Contains(out, "Usage") || strings.Contains(out, "not found") {
		t.Fatalf("debugfs: %s", out)
	}
}

func copyFile(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.img")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestTimes restores what mke2fs -d drops (nanoseconds, epoch bits) with
// debugfs and checks every time against the host tree exactly.
func TestTimes(t *testing.T) {
	tree := stdTree(t)
	for _, isize := range []string{"256", "128"} {
		t.Run("inode"+isize, func(t *testing.T) {
			img := mkfs(t, tree, "-t", "ext4", "-b", "4096", "-I", isize, "-N", "8192")
			var cmds []string
			paths := []string{"/times/ns", "/times/y2040", "/times/y1960", "/times/dir", "/files/text"}
			for _, p := range paths {
				st, err := os.Lstat(filepath.Join(tree, p))
				if err != nil {
					t.Fatal(err)
				}
				s, ns := st.ModTime().Unix(), int64(st.ModTime().Nanosecond())
				epoch := (s - int64(int32(s))) >> 32
				if isize == "256" {
					cmds = append(cmds, fmt.Sprintf("sif %s mtime_extra %d", p, ns<<2|epoch&3))
				}
			}
			if len(cmds) > 0 {
				debugfsW(t, img, cmds...)
			}
			fs := openImage(t, img)
			for _, p := range paths {
				st, _ := os.Lstat(filepath.Join(tree, p))
				a, err := fs.Stat(mustResolve(t, fs, p))
				if err != nil {
					t.Fatal(err)
				}
				want := st.ModTime()
				if isize == "128" {
					// No extra fields: whole seconds in a signed 32-bit field.
					want = timeUnix(int64(int32(want.Unix())), 0)
					if !a.Crtime.IsZero() {
						t.Errorf("%s: crtime %v in a 128-byte inode", p, a.Crtime)
					}
				} else if a.Crtime.IsZero() {
					t.Errorf("%s: no crtime in a 256-byte inode", p)
				}
				if !a.Mtime.Equal(want) {
					t.Errorf("%s: mtime %v, want %v", p, a.Mtime.UTC(), want.UTC())
				}
			}
		})
	}
}

func TestGenerationAndHugeFile(t *testing.T) {
	img := mkfs(t, stdTree(t), "-t", "ext4", "-b", "4096", "-N", "8192")
	debugfsW(t, img,
		"sif /files/text generation 0xdeadbeef",
		"sif /files/size-1 generation 7",
		// huge_file: i_blocks counts filesystem blocks when the flag is set.
		"sif /files/size-4097 flags 0xc0000",
		"sif /files/size-4097 blocks 2",
	)
	fs := openImage(t, img)
	for p, want := range map[string]uint32{"/files/text": 0xdeadbeef, "/files/size-1": 7} {
		a, err := fs.Stat(mustResolve(t, fs, p))
		if err != nil || a.Generation != want {
			t.Errorf("%s: generation %d, %v; want %d", p, a.Generation, err, want)
		}
	}
	a, err := fs.Stat(mustResolve(t, fs, "/files/size-4097"))
	if err != nil || a.Blocks != 2*4096/512 {
		t.Errorf("huge_file inode: Blocks %d, %v; want %d", a.Blocks, err, 2*4096/512)
	}
}

func TestNeedsRecovery(t *testing.T) {
	img := mkfs(t, stdTree(t), "-t", "ext4", "-b", "4096", "-N", "8192")
	if openImage(t, img).Info().NeedsRecovery {
		t.Fatal("fresh filesystem reports NeedsRecovery")
	}
	dirty := copyFile(t, img)
	debugfsW(t, dirty, "feature needs_recovery")
	fs := openImage(t, dirty)
	if info := fs.Info(); !info.NeedsRecovery || !contains(info.Features, "needs_recovery") {
		t.Fatalf("Info = %+v, want NeedsRecovery", info)
	}
	if _, err := fs.Stat(mustResolve(t, fs, "/files/text")); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownIncompat(t *testing.T) {
	img := mkfs(t, stdTree(t), "-t", "ext4", "-b", "4096", "-N", "8192")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for bits, want := range map[uint32]string{1 << 19: "FEATURE_I19", disklayout.IncompatCompression: "compression", disklayout.IncompatDirData: "dirdata"} {
		c := append([]byte(nil), b...)
		off := disklayout.SuperblockOffset + 96
		le32put(c[off:], le32(c[off:])|bits)
		_, err := Open(bytes.NewReader(c), int64(len(c)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("incompat %#x: Open error %v, want one naming %s", bits, err, want)
		}
	}
}

func le32put(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

var reHash = regexp.MustCompile(`Hash of .* is 0x([0-9a-f]+)`)

// TestDxHash checks the directory hash functions against debugfs dx_hash.
func TestDxHash(t *testing.T) {
	needTools(t, "debugfs")
	names := []string{"a", "hello", "f00042", "ütf-8 ✓ 日本", strings.Repeat("x", 15), strings.Repeat("y", 16),
		strings.Repeat("z", 17), strings.Repeat("q", 31), strings.Repeat("r", 32), strings.Repeat("s", 33),
		strings.Repeat("\xe9\xff\x80", 85), "with space"}
	seeds := map[string][4]uint32{"": {}, "00112233-4455-6677-8899-aabbccddeeff": {0x33221100, 0x77665544, 0xbbaa9988, 0xffeeddcc}}
	var cmds []string
	type job struct {
		name    string
		version uint8
		seed    [4]uint32
	}
	var jobs []job
	for _, n := range names {
		for v := uint8(0); v <= 5; v++ {
			for s, seed := range seeds {
				arg := ""
				if s != "" {
					arg = "-s " + s + " "
				}
				// debugfs parses its command line: quote the name.
				cmds = append(cmds, fmt.Sprintf("dx_hash -h %d %s\"%s\"", v, arg, n))
				jobs = append(jobs, job{n, v, seed})
			}
		}
	}
	cf := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(cf, []byte(strings.Join(cmds, "\n")+"\n"), 0o644)
	out := sh(t, "debugfs", "-f", cf)
	got := reHash.FindAllStringSubmatch(out, -1)
	if len(got) != len(jobs) {
		t.Fatalf("debugfs gave %d hashes for %d commands:\n%s", len(got), len(jobs), out)
	}
	for i, j := range jobs {
		want, _ := strconv.ParseUint(got[i][1], 16, 32)
		h, ok := dxHash([]byte(j.name), j.version, &j.seed)
		if !ok || h != uint32(want)&^1 {
			t.Errorf("hash %d of %q seed %x: %#x, debugfs %#x", j.version, j.name, j.seed, h, want)
		}
	}
}

// bigDirImage makes an ext4 image with one directory of n long names,
// indexed by e2fsck -D, and returns it with the names.
func bigDirImage(t testing.TB, n int, bs string) (string, []string) {
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(dir, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%06d-%s", i, strings.Repeat("long-name-", 5))
		names = append(names, name)
		if err := os.WriteFile(filepath.Join(dir, "big", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := mkfs(t, dir, "-t", "ext4", "-b", bs, "-N", strconv.Itoa(n+100))
	needTools(t, "e2fsck")
	cmd := exec_("e2fsck", "-fyD", img)
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	return img, names
}

func TestHtreeTwoLevels(t *testing.T) {
	img, names := bigDirImage(t, 3000, "1024")
	fs := openImage(t, img)
	dir := mustResolve(t, fs, "/big")
	in, err := fs.getInode(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := fs.dirBlock(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !in.flag(disklayout.InodeFlagIndex) || disklayout.DecodeDxRootInfo(root).IndirectLevels != 1 {
		t.Fatalf("want a two-level htree, got flags %#x levels %d", in.Flags, disklayout.DecodeDxRootInfo(root).IndirectLevels)
	}
	ents, err := fs.ReadDir(dir)
	if err != nil || len(ents) != len(names) {
		t.Fatalf("ReadDir: %d entries, %v", len(ents), err)
	}
	byName := map[string]uint64{}
	for _, e := range ents {
		byName[e.Name] = e.Ino
	}
	for _, n := range names {
		ino, ok, err := fs.htreeLookup(in, []byte(n))
		if err != nil || !ok || uint64(ino) != byName[n] {
			t.Fatalf("htreeLookup(%q) = %d, %v, %v; ReadDir says %d", n, ino, ok, err, byName[n])
		}
	}
	if _, ok, err := fs.htreeLookup(in, []byte("missing")); ok || err != nil {
		t.Fatalf("htreeLookup(missing) = %v, %v", ok, err)
	}
}

func TestAPIErrors(t *testing.T) {
	img := mkfs(t, stdTree(t), "-t", "ext4", "-b", "4096", "-N", "8192")
	f := openImage(t, img)
	file := mustResolve(t, f, "/files/size-4097")
	dir := mustResolve(t, f, "/files")
	if _, err := f.ReadAt(dir, make([]byte, 1), 0); !errors.Is(err, fsys.ErrIsDir) {
		t.Errorf("ReadAt(dir): %v", err)
	}
	if _, err := f.ReadDir(file); !errors.Is(err, fsys.ErrNotDir) {
		t.Errorf("ReadDir(file): %v", err)
	}
	if _, err := f.Lookup(file, "x"); !errors.Is(err, fsys.ErrNotDir) {
		t.Errorf("Lookup(file): %v", err)
	}
	if _, err := f.Readlink(file); !errors.Is(err, fsys.ErrNotLink) {
		t.Errorf("Readlink(file): %v", err)
	}
	if _, err := f.GetXattr(file, "user.none"); !errors.Is(err, fsys.ErrNoAttr) {
		t.Errorf("GetXattr(missing): %v", err)
	}
	if _, err := f.GetXattr(mustResolve(t, f, "/xattr/user"), "user.nonexistent"); !errors.Is(err, fsys.ErrNoAttr) {
		t.Errorf("GetXattr(missing): %v", err)
	}
	for _, ino := range []uint64{0, f.Info().Inodes + 1, 1 << 40, f.Info().Inodes} {
		if _, err := f.Stat(ino); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%d): %v", ino, err)
		}
	}
	if _, err := f.Lookup(dir, strings.Repeat("n", 256)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup(256 bytes): %v", err)
	}
	if _, err := f.ReadAt(file, make([]byte, 1), -1); err == nil {
		t.Error("ReadAt(-1) succeeded")
	}
	if n, err := f.ReadAt(file, make([]byte, 10), 4097); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(EOF) = %d, %v", n, err)
	}
	if n, err := f.ReadAt(file, make([]byte, 10), 4090); n != 7 || err != io.EOF {
		t.Errorf("ReadAt(across EOF) = %d, %v", n, err)
	}
}

// walkAll visits every object reachable from the root once (inode
// numbers are remembered, so directory loops end), reading everything.
func walkAll(f *FS, maxRead int64) (objects int, err error) {
	seen := map[uint64]bool{f.Root(): true}
	queue := []uint64{f.Root()}
	buf := make([]byte, 64<<10)
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		objects++
		a, err := f.Stat(ino)
		if err != nil {
			return objects, err
		}
		if _, err := f.ListXattr(ino); err != nil {
			return objects, err
		}
		switch a.Mode & fsys.S_IFMT {
		case fsys.S_IFDIR:
			ents, err := f.ReadDir(ino)
			if err != nil {
				return objects, err
			}
			for _, e := range ents {
				if _, err := f.Lookup(ino, e.Name); err != nil {
					return objects, err
				}
				if !seen[e.Ino] {
					seen[e.Ino] = true
					queue = append(queue, e.Ino)
				}
			}
		case fsys.S_IFLNK:
			if _, err := f.Readlink(ino); err != nil {
				return objects, err
			}
		case fsys.S_IFREG:
			if _, err := f.DataExtents(ino); err != nil {
				return objects, err
			}
			for off := int64(0); off < min(a.Size, maxRead); off += int64(len(buf)) {
				if _, err := f.ReadAt(ino, buf, off); err != nil && err != io.EOF {
					return objects, err
				}
			}
		}
	}
	return objects, nil
}

type fileResult struct {
	attr  fsys.Attr
	data  []byte
	names []string
	link  string
}

func TestConcurrentReads(t *testing.T) {
	for _, args := range [][]string{{"-t", "ext4", "-b", "4096"}, {"-t", "ext2", "-b", "1024"}} {
		t.Run(args[1], func(t *testing.T) {
			img := mkfs(t, stdTree(t), append(args, "-N", "8192")...)
			f := openImage(t, img)
			var inos []uint64
			var visit func(uint64)
			visit = func(dir uint64) {
				ents, err := f.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					inos = append(inos, e.Ino)
					if e.Type == fsys.S_IFDIR {
						visit(e.Ino)
					}
				}
			}
			visit(f.Root())
			read := func(f *FS, ino uint64) fileResult {
				var r fileResult
				r.attr, _ = f.Stat(ino)
				r.names, _ = f.ListXattr(ino)
				switch r.attr.Mode & fsys.S_IFMT {
				case fsys.S_IFREG:
					if r.attr.Size < 16<<20 {
						r.data, _ = readAll(f, ino, r.attr.Size)
					}
				case fsys.S_IFLNK:
					r.link, _ = f.Readlink(ino)
				}
				return r
			}
			serial := map[uint64]fileResult{}
			fresh := openImage(t, img)
			for _, ino := range inos {
				serial[ino] = read(fresh, ino)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := range inos {
						ino := inos[(i*7+g*131)%len(inos)]
						r := read(f, ino)
						w := serial[ino]
						if !r.attr.Mtime.Equal(w.attr.Mtime) || r.attr.Size != w.attr.Size || !bytes.Equal(r.data, w.data) ||
							r.link != w.link || strings.Join(r.names, ",") != strings.Join(w.names, ",") {
							errs <- fmt.Errorf("goroutine %d: inode %d differs from the serial read", g, ino)
							return
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestEAInode: values in their own inode (ea_inode), set with debugfs.
func TestEAInode(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	img := mkfs(t, dir, "-t", "ext4", "-b", "4096", "-O", "ea_inode")
	// 4 KiB: more than fits in the xattr block (debugfs ea_set -f reads at
	// most one block).
	val := bytes.Repeat([]byte("0123456789abcdef"), 256)
	vf := filepath.Join(t.TempDir(), "val")
	os.WriteFile(vf, val, 0o644)
	debugfsW(t, img, "ea_set -f "+vf+" /f user.huge")
	fs := openImage(t, img)
	ino := mustResolve(t, fs, "/f")
	in, _ := fs.getInode(ino)
	usesInode := false
	fs.walkXattrs(in, func(e *disklayout.XattrEntry, _ func() ([]byte, error)) error {
		usesInode = usesInode || e.ValueInum != 0
		return nil
	})
	if !usesInode {
		t.Fatal("debugfs did not store the value in an EA inode")
	}
	got, err := fs.GetXattr(ino, "user.huge")
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("GetXattr = %d bytes, %v; want %d bytes", len(got), err, len(val))
	}
}
