package ext

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
)

// smallTree is a little tree whose objects the corruption tests damage.
func smallTree(t testing.TB) string {
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755))
	data := make([]byte, 300<<10) // reaches the double-indirect map with 1 KiB blocks
	for i := range data {
		data[i] = byte(i*7 + i>>10)
	}
	must(os.WriteFile(filepath.Join(dir, "f"), data, 0o644))
	must(os.WriteFile(filepath.Join(dir, "d", "g"), []byte("hello"), 0o644))
	must(os.Symlink(strings.Repeat("s", 100), filepath.Join(dir, "slow")))
	must(os.Symlink("fast", filepath.Join(dir, "fast")))
	must(os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	sh(t, "setfattr", "-n", "user.big", "-v", strings.Repeat("v", 900), filepath.Join(dir, "x"))
	return dir
}

var reImap = regexp.MustCompile(`located at block (\d+), offset 0x([0-9a-f]+)`)

// inodeOff returns the byte offset of a path's inode record (debugfs imap).
func inodeOff(t testing.TB, img, path string, bs int64) int64 {
	t.Helper()
	m := reImap.FindStringSubmatch(sh(t, "debugfs", "-R", "imap "+path, img))
	if m == nil {
		t.Fatalf("debugfs imap %s: no answer", path)
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	off, _ := strconv.ParseInt(m[2], 16, 64)
	return blk*bs + off
}

// blockOff returns the byte offset of file block lblk of path (debugfs bmap).
func blockOff(t testing.TB, img, path string, lblk int, bs int64) int64 {
	t.Helper()
	out := strings.TrimSpace(sh(t, "debugfs", "-R", fmt.Sprintf("bmap %s %d", path, lblk), img))
	blk, err := strconv.ParseInt(out, 10, 64)
	if err != nil || blk == 0 {
		t.Fatalf("debugfs bmap %s %d: %q", path, lblk, out)
	}
	return blk * bs
}

type corruptCase struct {
	name  string
	patch func(b []byte)
	op    func(f *FS) error // nil: Open itself must fail
}

func runCorrupt(t *testing.T, img string, cases []corruptCase) {
	orig, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), orig...)
			c.patch(b)
			f, err := Open(bytes.NewReader(b), int64(len(b)))
			if c.op == nil {
				if err == nil {
					t.Fatal("Open accepted the corrupt image")
				}
				t.Logf("Open: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			err = c.op(f)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want an error wrapping ErrCorrupt", err)
			}
			t.Logf("%v", err)
		})
	}
}

func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }

const sbo = disklayout.SuperblockOffset

func TestCorruptSuperblock(t *testing.T) {
	img := mkfs(t, smallTree(t), "-t", "ext4", "-b", "1024")
	set32 := func(off int, v uint32) func([]byte) { return func(b []byte) { le32put(b[sbo+off:], v) } }
	runCorrupt(t, img, []corruptCase{
		{name: "magic", patch: func(b []byte) { put16(b[sbo+56:], 0x1234) }},
		{name: "blocks-count", patch: set32(4, 0xFFFFFFFF)},
		{name: "blocks-count-hi", patch: set32(336, 0xFFFF)},
		{name: "log-block-size", patch: set32(24, 20)},
		{name: "first-data-block", patch: set32(20, 0xFFFFFF)},
		{name: "blocks-per-group-0", patch: set32(32, 0)},
		{name: "blocks-per-group-huge", patch: set32(32, 1<<30)},
		{name: "inodes-per-group-0", patch: set32(40, 0)},
		{name: "inodes-count", patch: set32(0, 0xFFFFFFF0)},
		{name: "inode-size", patch: func(b []byte) { put16(b[sbo+88:], 3) }},
		{name: "inode-size-huge", patch: func(b []byte) { put16(b[sbo+88:], 8192) }},
		{name: "desc-size", patch: func(b []byte) { put16(b[sbo+254:], 7) }},
		{name: "inode-table-past-end", patch: func(b []byte) {
			// First group descriptor (block 2 with 1 KiB blocks): bg_inode_table.
			le32put(b[2*1024+8:], 0xFFFFFF)
		}},
	})
}

func TestCorruptBlockMap(t *testing.T) {
	img := mkfs(t, smallTree(t), "-t", "ext2", "-b", "1024")
	const bs = 1024
	fino := inodeOff(t, img, "/f", bs)
	dirBlk := blockOff(t, img, "/d", 0, bs)
	readF := func(off int64) func(*FS) error {
		return func(f *FS) error {
			ino, err := resolve(f, "/f")
			if err != nil {
				return err
			}
			_, err = f.ReadAt(ino, make([]byte, 4096), off)
			return err
		}
	}
	readDir := func(f *FS) error {
		ino, err := resolve(f, "/d")
		if err != nil {
			return err
		}
		_, err = f.ReadDir(ino)
		return err
	}
	runCorrupt(t, img, []corruptCase{
		{name: "direct-past-end", patch: func(b []byte) { le32put(b[fino+40:], 0xFFFFFF00) }, op: readF(0)},
		{name: "indirect-past-end", patch: func(b []byte) { le32put(b[fino+40+12*4:], 0xFFFFFF00) }, op: readF(12 * bs)},
		{name: "dindirect-past-end", patch: func(b []byte) { le32put(b[fino+40+13*4:], 0x7FFFFFFF) }, op: readF((12 + 256) * bs)},
		{name: "data-extents", patch: func(b []byte) { le32put(b[fino+40+13*4:], 0x7FFFFFFF) }, op: func(f *FS) error {
			ino, _ := resolve(f, "/f")
			_, err := f.DataExtents(ino)
			return err
		}},
		{name: "bad-mode", patch: func(b []byte) { put16(b[fino:], 0xF1A4) }, op: readF(0)},
		{name: "size-absurd", patch: func(b []byte) { le32put(b[fino+108:], 0xFFFFFFFF) }, op: readF(0)},
		{name: "rec-len-0", patch: func(b []byte) { put16(b[dirBlk+4:], 0) }, op: readDir},
		{name: "rec-len-odd", patch: func(b []byte) { put16(b[dirBlk+4:], 13) }, op: readDir},
		{name: "rec-len-past-block", patch: func(b []byte) { put16(b[dirBlk+12+4:], 2000) }, op: readDir},
		{name: "name-len-past-rec", patch: func(b []byte) { b[dirBlk+6] = 200 }, op: readDir},
		{name: "dirent-inode-range", patch: func(b []byte) { le32put(b[dirBlk+24:], 0xFFFFFF) }, op: readDir},
		{name: "lookup-rec-len-0", patch: func(b []byte) { put16(b[dirBlk+4:], 0) }, op: func(f *FS) error {
			ino, err := resolve(f, "/d")
			if err != nil {
				return err
			}
			_, err = f.Lookup(ino, "nothing")
			return err
		}},
	})
}

func TestCorruptSymlinkAndXattr(t *testing.T) {
	img := mkfs(t, smallTree(t), "-t", "ext2", "-b", "1024", "-I", "128")
	const bs = 1024
	slow := inodeOff(t, img, "/slow", bs)
	fast := inodeOff(t, img, "/fast", bs)
	x := inodeOff(t, img, "/x", bs)
	xblk := int64(0)
	{
		orig, _ := os.ReadFile(img)
		xblk = int64(le32(orig[x+104:])) * bs
		if xblk == 0 {
			t.Fatal("/x has no xattr block")
		}
	}
	link := func(p string) func(*FS) error {
		return func(f *FS) error {
			ino, err := resolve(f, p)
			if err != nil {
				return err
			}
			_, err = f.Readlink(ino)
			return err
		}
	}
	xattr := func(f *FS) error {
		ino, err := resolve(f, "/x")
		if err != nil {
			return err
		}
		_, err = f.GetXattr(ino, "user.big")
		return err
	}
	runCorrupt(t, img, []corruptCase{
		{name: "symlink-too-long", patch: func(b []byte) { le32put(b[slow+4:], 5000) }, op: link("/slow")},
		{name: "symlink-longer-than-block", patch: func(b []byte) { le32put(b[slow+4:], 2000) }, op: link("/slow")},
		{name: "symlink-empty", patch: func(b []byte) { le32put(b[fast+4:], 0) }, op: link("/fast")},
		{name: "slow-symlink-block-past-end", patch: func(b []byte) { le32put(b[slow+40:], 0xFFFFFF) }, op: link("/slow")},
		{name: "xattr-magic", patch: func(b []byte) { le32put(b[xblk:], 0) }, op: xattr},
		{name: "xattr-value-offset", patch: func(b []byte) { put16(b[xblk+32+2:], 0xFFF0) }, op: xattr},
		{name: "xattr-value-size", patch: func(b []byte) { le32put(b[xblk+32+8:], 0xFFFFFFF) }, op: xattr},
		{name: "xattr-name-len", patch: func(b []byte) { b[xblk+32] = 255; le32put(b[xblk+bs-4:], 1) }, op: xattr},
		{name: "xattr-block-past-end", patch: func(b []byte) { le32put(b[x+104:], 0xFFFFFF) }, op: xattr},
	})
}

func TestCorruptExtents(t *testing.T) {
	img := mkfs(t, smallTree(t), "-t", "ext4", "-b", "1024")
	const bs = 1024
	fino := inodeOff(t, img, "/f", bs)
	orig, _ := os.ReadFile(img)
	if le32(orig[fino+32:])&disklayout.InodeFlagExtents == 0 {
		t.Fatal("/f is not extent-mapped")
	}
	dataBlk := blockOff(t, img, "/f", 0, bs)
	root := fino + 40
	header := func(b []byte, entries, max, depth uint16) {
		put16(b[0:], disklayout.ExtentMagic)
		put16(b[2:], entries)
		put16(b[4:], max)
		put16(b[6:], depth)
	}
	read := func(f *FS) error {
		ino, err := resolve(f, "/f")
		if err != nil {
			return err
		}
		_, err = f.ReadAt(ino, make([]byte, 4096), 0)
		return err
	}
	runCorrupt(t, img, []corruptCase{
		{name: "magic", patch: func(b []byte) { put16(b[root:], 0xBEEF) }, op: read},
		{name: "too-deep", patch: func(b []byte) { put16(b[root+6:], 7) }, op: read},
		{name: "entries-over-max", patch: func(b []byte) { put16(b[root+2:], 9) }, op: read},
		{name: "max-past-inode", patch: func(b []byte) { put16(b[root+4:], 9); put16(b[root+2:], 9) }, op: read},
		{name: "start-past-end", patch: func(b []byte) { le32put(b[root+12+8:], 0xFFFFFF) }, op: read},
		{name: "loop", patch: func(b []byte) {
			// Root: one index entry to block B; B: a node claiming depth 1
			// again (instead of 0) that points back at itself.
			blk := uint32(dataBlk / bs)
			header(b[root:], 1, 4, 1)
			le32put(b[root+12:], 0)
			le32put(b[root+16:], blk)
			put16(b[root+20:], 0)
			header(b[dataBlk:], 1, (bs-12)/12, 1)
			le32put(b[dataBlk+12:], 0)
			le32put(b[dataBlk+16:], blk)
			put16(b[dataBlk+20:], 0)
		}, op: read},
	})
}

func TestCorruptInodeAndHtree(t *testing.T) {
	img, names := bigDirImage(t, 500, "1024")
	const bs = 1024
	dino := inodeOff(t, img, "/big", bs)
	rootBlk := blockOff(t, img, "/big", 0, bs)
	lookup := func(f *FS) error {
		ino, err := resolve(f, "/big")
		if err != nil {
			return err
		}
		_, err = f.Lookup(ino, names[77])
		return err
	}
	runCorrupt(t, img, []corruptCase{
		{name: "extra-isize", patch: func(b []byte) { put16(b[dino+128:], 0x82) }, op: lookup},
		{name: "extra-isize-huge", patch: func(b []byte) { put16(b[dino+128:], 0x400) }, op: lookup},
		{name: "dx-count-over-limit", patch: func(b []byte) { put16(b[rootBlk+32+2:], 0xFFFF) }, op: lookup},
		{name: "dx-levels", patch: func(b []byte) { b[rootBlk+24+6] = 5 }, op: lookup},
		{name: "dx-block-past-dir", patch: func(b []byte) {
			for i := 0; i < 200; i++ { // every root entry
				le32put(b[rootBlk+32+4+int64(i)*8:], 0xFFFFFF)
			}
		}, op: lookup},
	})
}

// TestDirectoryLoop: a hard-linked directory loop (made with debugfs)
// must not hang or blow up anything here; nothing in the package recurses.
func TestDirectoryLoop(t *testing.T) {
	img := mkfs(t, smallTree(t), "-t", "ext2", "-b", "1024")
	debugfsW(t, img, "link /d /d/sub/loop")
	f := openImage(t, img)
	d := mustResolve(t, f, "/d")
	if got := mustResolve(t, f, "/d/sub/loop/sub/loop/sub/loop"); got != d {
		t.Fatalf("loop resolves to %d, want %d", got, d)
	}
	n, err := walkAll(f, 1<<20)
	if err != nil || n < 5 {
		t.Fatalf("walkAll = %d, %v", n, err)
	}
}
