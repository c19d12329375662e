package ext

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
)

// fuzzBase is a small real image (ext4 without journal, 1 KiB blocks,
// 256-byte inodes) made once per process, plus where its objects live.
type fuzzBase struct {
	img               []byte
	ext2              []byte // the same tree as ext2, for FuzzImage seeds
	inline            []byte
	fOff, dOff, dBlk  int64 // inode record of /f and /d, first block of /d
	fBlk              int64 // first data block of /f
	slowOff, xattrOff int64
}

var (
	fuzzOnce sync.Once
	fuzzImg  *fuzzBase
)

func fuzzSetup(f *testing.F) *fuzzBase {
	needTools(f, "mke2fs", "debugfs", "setfattr")
	fuzzOnce.Do(func() {
		dir := f.TempDir()
		os.MkdirAll(filepath.Join(dir, "d"), 0o755)
		os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("0123456789"), 1500), 0o644)
		for _, n := range []string{"g", "h", "name with space", strings.Repeat("L", 255)} {
			os.WriteFile(filepath.Join(dir, "d", n), []byte(n), 0o644)
		}
		os.Symlink(strings.Repeat("s", 80), filepath.Join(dir, "slow"))
		os.Symlink("fast", filepath.Join(dir, "fast"))
		os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
		sh(f, "setfattr", "-n", "user.a", "-v", "1", filepath.Join(dir, "x"))
		sh(f, "setfattr", "-n", "user.big", "-v", strings.Repeat("v", 300), filepath.Join(dir, "x"))
		build := func(args ...string) (string, []byte) {
			img := filepath.Join(f.TempDir(), "fuzz.img")
			sh(f, "mke2fs", append(append([]string{"-F", "-q"}, args...), "-N", "32", "-d", dir, img, "128K")...)
			b, err := os.ReadFile(img)
			if err != nil {
				f.Fatal(err)
			}
			return img, b
		}
		img, b := build("-t", "ext4", "-O", "^has_journal", "-b", "1024", "-I", "256")
		fb := &fuzzBase{img: b}
		fb.fOff = inodeOff(f, img, "/f", 1024)
		fb.dOff = inodeOff(f, img, "/d", 1024)
		fb.slowOff = inodeOff(f, img, "/slow", 1024)
		fb.xattrOff = inodeOff(f, img, "/x", 1024)
		fb.dBlk = blockOff(f, img, "/d", 0, 1024)
		fb.fBlk = blockOff(f, img, "/f", 0, 1024)
		_, fb.ext2 = build("-t", "ext2", "-b", "1024", "-I", "128")
		_, fb.inline = build("-t", "ext4", "-O", "^has_journal,inline_data", "-b", "1024")
		fuzzImg = fb
	})
	if fuzzImg == nil {
		f.Fatal("fuzz setup failed")
	}
	return fuzzImg
}

// exercise opens b and walks everything; it must not panic or hang.
func exercise(b []byte) {
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	f.Info()
	walkAll(f, 1<<20)
}

func FuzzSuperblock(f *testing.F) {
	fb := fuzzSetup(f)
	f.Add(fb.img[sbo : sbo+1024])
	f.Add(fb.ext2[sbo : sbo+1024])
	f.Fuzz(func(t *testing.T, sb []byte) {
		if _, err := disklayout.DecodeSuperblock(sb); err != nil && len(sb) >= 1024 && disklayout.HasMagic(append(make([]byte, 1024), sb...)) {
			t.Fatalf("decode failed with valid magic: %v", err)
		}
		img := append([]byte(nil), fb.img...)
		copy(img[sbo:sbo+1024], sb)
		exercise(img)
	})
}

func FuzzInode(f *testing.F) {
	fb := fuzzSetup(f)
	for _, off := range []int64{fb.fOff, fb.dOff, fb.slowOff, fb.xattrOff} {
		f.Add(fb.img[off : off+256])
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		img := append([]byte(nil), fb.img...)
		copy(img[fb.fOff:fb.fOff+256], rec)
		fs, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		ino, err := fs.Lookup(fs.Root(), "f")
		if err != nil {
			t.Fatal(err)
		}
		fs.Stat(ino)
		fs.ReadAt(ino, make([]byte, 64<<10), 0)
		fs.DataExtents(ino)
		fs.Readlink(ino)
		fs.ReadDir(ino)
		fs.Lookup(ino, "g")
		if names, err := fs.ListXattr(ino); err == nil {
			for _, n := range names {
				fs.GetXattr(ino, n)
			}
		}
	})
}

func FuzzExtentTree(f *testing.F) {
	fb := fuzzSetup(f)
	node := fb.img[fb.fOff+40 : fb.fOff+100]
	f.Add(append(append([]byte(nil), node...), fb.img[fb.fBlk:fb.fBlk+1024]...))
	// A depth-1 tree whose index points at block fBlk.
	idx := make([]byte, 60+1024)
	put16(idx[0:], disklayout.ExtentMagic)
	put16(idx[2:], 1)
	put16(idx[4:], 4)
	put16(idx[6:], 1)
	le32put(idx[16:], uint32(fb.fBlk/1024))
	copy(idx[60:], node)
	put16(idx[64:], 84)
	f.Add(idx)
	f.Fuzz(func(t *testing.T, data []byte) {
		img := append([]byte(nil), fb.img...)
		copy(img[fb.fOff+40:fb.fOff+100], data)
		if len(data) > 60 {
			copy(img[fb.fBlk:fb.fBlk+1024], data[60:])
		}
		fs, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		ino, _ := fs.Lookup(fs.Root(), "f")
		fs.DataExtents(ino)
		fs.ReadAt(ino, make([]byte, 64<<10), 0)
		fs.ReadAt(ino, make([]byte, 1000), 7777)
	})
}

func FuzzDirectory(f *testing.F) {
	fb := fuzzSetup(f)
	f.Add(fb.img[fb.dBlk:fb.dBlk+1024], false)
	f.Fuzz(func(t *testing.T, blk []byte, indexed bool) {
		img := append([]byte(nil), fb.img...)
		copy(img[fb.dBlk:fb.dBlk+1024], blk)
		if indexed { // make the block an htree root
			fl := le32(img[fb.dOff+32:]) | disklayout.InodeFlagIndex
			le32put(img[fb.dOff+32:], fl)
		}
		fs, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		d, err := fs.Lookup(fs.Root(), "d")
		if err != nil {
			t.Fatal(err)
		}
		ents, _ := fs.ReadDir(d)
		for _, e := range ents {
			fs.Lookup(d, e.Name)
		}
		fs.Lookup(d, "g")
		fs.Lookup(d, "..")
		fs.Lookup(d, "missing")
	})
}

func FuzzImage(f *testing.F) {
	fb := fuzzSetup(f)
	f.Add(fb.img)
	f.Add(fb.ext2)
	f.Add(fb.inline)
	f.Fuzz(func(t *testing.T, img []byte) {
		exercise(img)
	})
}
