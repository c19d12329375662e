package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
	"github.com/vmroot/vmroot/internal/fsys"
)

type variant struct {
	name     string
	args     []string
	fsck     bool   // run e2fsck -fyD afterwards (builds htree indexes)
	wantType string // Info().Type
	features []string
	inline   bool // expect inline files and directories
}

var variants = []variant{
	{name: "ext2-1k", args: []string{"-t", "ext2", "-b", "1024", "-I", "256"}, wantType: "ext2"},
	{name: "ext2-4k", args: []string{"-t", "ext2", "-b", "4096"}, wantType: "ext2"},
	{name: "ext2-nofiletype", args: []string{"-t", "ext2", "-b", "4096", "-O", "^filetype,^dir_index"}, wantType: "ext2"},
	{name: "ext3-1k", args: []string{"-t", "ext3", "-b", "1024"}, wantType: "ext3", features: []string{"has_journal"}},
	{name: "ext3-4k", args: []string{"-t", "ext3", "-b", "4096"}, wantType: "ext3"},
	{name: "ext4", args: []string{"-t", "ext4", "-b", "4096"}, wantType: "ext4", features: []string{"extent", "64bit", "flex_bg", "metadata_csum"}},
	{name: "ext4-1k", args: []string{"-t", "ext4", "-b", "1024"}, wantType: "ext4"},
	{name: "ext4-no64bit", args: []string{"-t", "ext4", "-b", "4096", "-O", "^64bit"}, wantType: "ext4"},
	{name: "ext4-nocsum", args: []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}, wantType: "ext4"},
	{name: "ext4-noflexbg", args: []string{"-t", "ext4", "-b", "4096", "-O", "^flex_bg"}, wantType: "ext4"},
	{name: "ext4-inline", args: []string{"-t", "ext4", "-b", "4096", "-O", "inline_data"}, wantType: "ext4", inline: true, features: []string{"inline_data"}},
	{name: "ext4-metabg", args: []string{"-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode"}, wantType: "ext4", features: []string{"meta_bg"}},
	{name: "ext4-128", args: []string{"-t", "ext4", "-b", "4096", "-I", "128"}, wantType: "ext4"},
	{name: "ext4-htree", args: []string{"-t", "ext4", "-b", "4096"}, fsck: true, wantType: "ext4"},
	{name: "ext2-1k-htree", args: []string{"-t", "ext2", "-b", "1024"}, fsck: true, wantType: "ext2"},
}

func buildVariant(t *testing.T, v variant) string {
	tree := stdTree(t)
	img := mkfs(t, tree, append(v.args, "-N", "8192", "-L", "vmroot-"+v.name)...)
	if v.fsck {
		needTools(t, "e2fsck")
		cmd := exec_("e2fsck", "-fyD", img)
		// Exit 1 means "errors corrected" (the rebuilt directories).
		if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	return img
}

func TestVariants(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := buildVariant(t, v)
			fs := openImage(t, img)
			info := fs.Info()
			if info.Type != v.wantType {
				t.Errorf("Type = %q, want %q", info.Type, v.wantType)
			}
			if want := "vmroot-" + v.name; info.Label != want[:min(len(want), 16)] {
				t.Errorf("Label = %q", info.Label)
			}
			for _, f := range v.features {
				if !contains(info.Features, f) {
					t.Errorf("Features %v lack %s", info.Features, f)
				}
			}
			checkInfoAgainstDumpe2fs(t, img, info)
			before := xattrsCompared.Load()
			compareTree(t, fs, img, stdTree(t), v)
			if n := xattrsCompared.Load() - before; n < 8 {
				t.Errorf("compared only %d xattrs", n)
			}
			if v.fsck {
				// The test must really exercise the hash tree.
				ino := mustResolve(t, fs, "/bigdir")
				in, _ := fs.getInode(ino)
				if !in.flag(disklayout.InodeFlagIndex) {
					t.Fatalf("e2fsck -D left /bigdir without an htree index")
				}
			}
			if v.inline {
				in, _ := fs.getInode(mustResolve(t, fs, "/files/text"))
				dir, _ := fs.getInode(mustResolve(t, fs, "/emptydir"))
				if !in.flag(disklayout.InodeFlagInlineData) || !dir.flag(disklayout.InodeFlagInlineData) {
					t.Fatalf("mke2fs made no inline file or directory; the variant tests nothing")
				}
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

// checkInfoAgainstDumpe2fs compares Info with dumpe2fs -h.
func checkInfoAgainstDumpe2fs(t *testing.T, img string, info fsys.Info) {
	needTools(t, "dumpe2fs")
	out := sh(t, "dumpe2fs", "-h", img)
	field := func(name string) string {
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && k == name {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("dumpe2fs has no %q", name)
		return ""
	}
	if got, want := strings.Join(info.Features, " "), field("Filesystem features"); got != want {
		t.Errorf("Features = %q, dumpe2fs says %q", got, want)
	}
	if info.UUID != field("Filesystem UUID") {
		t.Errorf("UUID = %q, dumpe2fs says %q", info.UUID, field("Filesystem UUID"))
	}
	for name, got := range map[string]uint64{
		"Block count": info.Blocks, "Free blocks": info.FreeBlocks,
		"Inode count": info.Inodes, "Free inodes": info.FreeInodes, "Block size": uint64(info.BlockSize),
	} {
		if want := field(name); want != itoa(got) {
			t.Errorf("%s = %d, dumpe2fs says %s", name, got, want)
		}
	}
}

// compareTree checks every object of the image against the host tree
// and against debugfs.
func compareTree(t *testing.T, fs *FS, img, tree string, v variant) {
	type hostKey struct{ dev, ino uint64 }
	links := map[hostKey]uint64{}
	var inos []uint64
	hostStat := map[uint64]unix.Stat_t{}
	objects := 0
	err := filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		rel = "/" + filepath.ToSlash(rel)
		if rel == "/." {
			rel = "/"
		}
		ino := mustResolve(t, fs, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		objects++
		a, err := fs.Stat(ino)
		if err != nil {
			t.Errorf("%s: Stat: %v", rel, err)
			return nil
		}
		hk := hostKey{st.Dev, st.Ino}
		if prev, ok := links[hk]; ok {
			if prev != ino {
				t.Errorf("%s: hard link has inode %d, another name has %d", rel, ino, prev)
			}
			return nil
		}
		links[hk] = ino
		inos = append(inos, ino)
		hostStat[ino] = st
		compareObject(t, fs, img, rel, p, ino, a, &st, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if objects < 5000 {
		t.Fatalf("walked only %d objects", objects)
	}
	// debugfs is the oracle for what the host cannot tell: generation,
	// raw times (mke2fs -d does not copy nanoseconds), i_blocks.
	dbg := debugfsStat(t, img, inos)
	mapped := 0
	for _, ino := range inos {
		d := dbg[ino]
		if d == nil {
			t.Fatalf("debugfs did not report inode %d", ino)
		}
		a, _ := fs.Stat(ino)
		if uint64(a.Generation) != d.generation || uint64(a.Nlink) != d.links ||
			uint64(a.Uid) != d.uid || uint64(a.Gid) != d.gid || uint64(a.Size) != d.size {
			t.Errorf("inode %d: gen %d nlink %d uid %d gid %d size %d; debugfs: %+v", ino, a.Generation, a.Nlink, a.Uid, a.Gid, a.Size, *d)
		}
		if hs := hostStat[ino]; hs.Mode&unix.S_IFMT == unix.S_IFREG && d.flags&disklayout.InodeFlagInlineData == 0 {
			// DataExtents must list exactly the mapped blocks debugfs lists.
			bs := fs.Info().BlockSize
			var want []fsys.Extent
			for _, r := range d.blockMap {
				off, l := r.Off*bs, min(r.Len*bs, a.Size-r.Off*bs)
				if l > 0 {
					want = append(want, fsys.Extent{Off: off, Len: l})
				}
			}
			if len(want) > 0 {
				mapped++
			}
			got, err := fs.DataExtents(ino)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("inode %d: DataExtents = %v, %v; debugfs %v", ino, got, err, want)
			}
		}
		if d.flags&disklayout.InodeFlagHugeFile == 0 && uint64(a.Blocks) != d.blockcount {
			t.Errorf("inode %d: Blocks %d, debugfs Blockcount %d", ino, a.Blocks, d.blockcount)
		}
		for name, got := range map[string]fsysTime{"atime": a.Atime, "mtime": a.Mtime, "ctime": a.Ctime, "crtime": a.Crtime} {
			raw, ok := d.times[name]
			if !ok {
				if name == "crtime" && !got.IsZero() {
					t.Errorf("inode %d: crtime %v but debugfs shows none", ino, got)
				}
				continue
			}
			ts := disklayout.Timestamp{Sec: uint32(raw[0]), Extra: uint32(raw[1]), HasExtra: d.hasExtra[name]}
			s, ns := ts.Unix()
			if got.Unix() != s || int64(got.Nanosecond()) != ns {
				t.Errorf("inode %d: %s = %v, debugfs %#x:%#x", ino, name, got, raw[0], raw[1])
			}
		}
	}
	if mapped < 50 {
		t.Fatalf("debugfs listed blocks for only %d files", mapped)
	}
}

// xattrsCompared counts compared attributes, so a test that silently
// compared none fails.
var xattrsCompared atomic.Int64

func compareObject(t *testing.T, fs *FS, img, rel, p string, ino uint64, a fsys.Attr, st *unix.Stat_t, v variant) {
	if a.Ino != ino {
		t.Errorf("%s: Attr.Ino %d, want %d", rel, a.Ino, ino)
	}
	if a.Mode != st.Mode {
		t.Errorf("%s: mode %#o, host %#o", rel, a.Mode, st.Mode)
	}
	if a.Uid != st.Uid || a.Gid != st.Gid {
		t.Errorf("%s: owner %d:%d, host %d:%d", rel, a.Uid, a.Gid, st.Uid, st.Gid)
	}
	// mke2fs -d stores only the low 32 bits of the seconds (no epoch
	// bits, no nanoseconds); TestTimes covers those with debugfs.
	// The root's mtime changes when mke2fs adds lost+found.
	if got, want := a.Mtime.Unix(), int64(int32(st.Mtim.Sec)); got != want && rel != "/" {
		t.Errorf("%s: mtime %d, host %d", rel, got, want)
	}
	wantNlink := uint64(st.Nlink)
	if rel == "/" {
		wantNlink++ // lost+found
	}
	if uint64(a.Nlink) != wantNlink {
		t.Errorf("%s: nlink %d, want %d", rel, a.Nlink, wantNlink)
	}
	if mt := st.Mode & unix.S_IFMT; mt == unix.S_IFCHR || mt == unix.S_IFBLK {
		if a.Rdev != st.Rdev {
			t.Errorf("%s: rdev %#x, host %#x", rel, a.Rdev, st.Rdev)
		}
	}
	// mke2fs 1.47.0 with inline_data loses the tail hole of a sparse
	// file; debugfs confirms the image's size in compareTree.
	quirk := v.inline && a.Mode&fsys.S_IFMT == fsys.S_IFREG && strings.HasPrefix(rel, "/sparse/")
	if a.Mode&fsys.S_IFMT != fsys.S_IFDIR && a.Size != st.Size && !quirk {
		t.Errorf("%s: size %d, host %d", rel, a.Size, st.Size)
	}
	hx := hostXattrs(t, p)
	names, err := fs.ListXattr(ino)
	if err != nil {
		t.Errorf("%s: ListXattr: %v", rel, err)
	}
	sort.Strings(names)
	if got, want := strings.Join(names, ","), strings.Join(sortedKeys(hx), ","); got != want {
		t.Errorf("%s: xattrs [%s], host [%s]", rel, got, want)
	}
	for name, want := range hx {
		xattrsCompared.Add(1)
		got, err := fs.GetXattr(ino, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: xattr %s = %x, %v; host %x", rel, name, got, err, want)
		}
	}
	switch a.Mode & fsys.S_IFMT {
	case fsys.S_IFDIR:
		compareDir(t, fs, rel, p, ino, v)
	case fsys.S_IFLNK:
		want, _ := os.Readlink(p)
		got, err := fs.Readlink(ino)
		if err != nil || got != want {
			t.Errorf("%s: Readlink = %q, %v; want %q", rel, got, err, want)
		}
	case fsys.S_IFREG:
		compareFile(t, fs, img, rel, p, ino, a.Size, st.Size != a.Size, v)
	}
}

func compareDir(t *testing.T, fs *FS, rel, p string, ino uint64, v variant) {
	ents, err := fs.ReadDir(ino)
	if err != nil {
		t.Errorf("%s: ReadDir: %v", rel, err)
		return
	}
	host, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, h := range host {
		want[h.Name()] = true
	}
	if rel == "/" {
		want["lost+found"] = true
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if !want[e.Name] || seen[e.Name] {
			t.Errorf("%s: unexpected or repeated entry %q", rel, e.Name)
		}
		seen[e.Name] = true
		a, err := fs.Stat(e.Ino)
		if err != nil {
			t.Errorf("%s/%s: %v", rel, e.Name, err)
			continue
		}
		if v.name == "ext2-nofiletype" {
			if e.Type != 0 {
				t.Errorf("%s/%s: Type %#o without the filetype feature", rel, e.Name, e.Type)
			}
		} else if e.Type != a.Mode&fsys.S_IFMT {
			t.Errorf("%s/%s: Type %#o, inode mode %#o", rel, e.Name, e.Type, a.Mode)
		}
		if got, err := fs.Lookup(ino, e.Name); err != nil || got != e.Ino {
			t.Errorf("%s: Lookup(%q) = %d, %v; ReadDir says %d", rel, e.Name, got, err, e.Ino)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%s: %d entries, host has %d", rel, len(seen), len(want))
	}
	if _, err := fs.Lookup(ino, "no such name"); !errors.Is(err, fs_ErrNotExist) {
		t.Errorf("%s: Lookup of a missing name: %v", rel, err)
	}
	if got, err := fs.Lookup(ino, "."); err != nil || got != ino {
		t.Errorf("%s: Lookup(.) = %d, %v", rel, got, err)
	}
	if parent, err := fs.Lookup(ino, ".."); err != nil {
		t.Errorf("%s: Lookup(..): %v", rel, err)
	} else if want := mustResolve(t, fs, filepath.Dir(rel)); parent != want {
		t.Errorf("%s: Lookup(..) = %d, want %d", rel, parent, want)
	}
}

// compareFile compares content and data extents with the host file.
func compareFile(t *testing.T, fs *FS, img, rel, p string, ino uint64, size int64, quirk bool, v variant) {
	bs := fs.Info().BlockSize
	ext, err := fs.DataExtents(ino)
	if err != nil {
		t.Errorf("%s: DataExtents: %v", rel, err)
		return
	}
	host := hostData(t, p, size)
	var prevEnd int64
	for _, e := range ext {
		if e.Len <= 0 || e.Off < prevEnd || e.Off%bs != 0 || e.Off+e.Len > size {
			t.Errorf("%s: bad extent list %v (size %d)", rel, ext, size)
			break
		}
		prevEnd = e.Off + e.Len
		// mke2fs copies only data blocks, so every image extent lies
		// within host data rounded out to whole image blocks: holes stay holes.
		// (Not with inline_data: mke2fs 1.47.0 then stores a zero block
		// at the start of /sparse/hole-start.)
		inside := v.inline
		for _, h := range host {
			lo, hi := h.Off/bs*bs, (h.Off+h.Len+bs-1)/bs*bs
			if e.Off >= lo && e.Off+e.Len <= min(hi, size) {
				inside = true
			}
		}
		if !inside {
			t.Errorf("%s: extent %v is not host data %v", rel, e, host)
		}
	}
	hf, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if size <= 16<<20 {
		got, err := readAll(fs, ino, size)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		want, _ := os.ReadFile(p)
		if quirk {
			want = debugfsDump(t, img, ino)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", rel)
		}
		return
	}
	// Big sparse file: compare every host data segment and image extent,
	// plus windows in the holes and across their edges.
	var ranges []fsys.Extent
	ranges = append(ranges, host...)
	ranges = append(ranges, ext...)
	for _, h := range host {
		ranges = append(ranges, fsys.Extent{Off: max(h.Off-5000, 0), Len: 10000}, fsys.Extent{Off: h.Off + h.Len - 5000, Len: 10000})
	}
	ranges = append(ranges, fsys.Extent{Off: size / 3, Len: 1 << 20}, fsys.Extent{Off: size - 1, Len: 1})
	for _, r := range ranges {
		r.Off = max(r.Off, 0)
		r.Len = min(r.Len, size-r.Off)
		got := make([]byte, r.Len)
		want := make([]byte, r.Len)
		n, err := fs.ReadAt(ino, got, r.Off)
		if int64(n) != r.Len || (err != nil && r.Off+r.Len != size) {
			t.Errorf("%s: ReadAt %v = %d, %v", rel, r, n, err)
		}
		if _, err := hf.ReadAt(want, r.Off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: bytes differ in %v", rel, r)
		}
	}
}

var fs_ErrNotExist = fs.ErrNotExist
