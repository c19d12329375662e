package fatiso

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/fsys"
)

func makeISO(t testing.TB, src string, flags ...string) string {
	need(t, "xorriso", "xorriso")
	img := filepath.Join(t.TempDir(), "img.iso")
	args := append([]string{"-as", "mkisofs", "-quiet", "-V", "VMROOT_ISO", "-o", img}, flags...)
	run(t, "xorriso", append(args, src)...)
	return img
}

func openISO(t testing.TB, img string) fsys.FS {
	r, size := openFile(t, img)
	fs, err := OpenISO(r, size)
	if err != nil {
		t.Fatalf("OpenISO: %v", err)
	}
	return fs
}

func checkISOInfo(t *testing.T, fs fsys.FS, img string, features string) {
	bl := blkid(t, img)
	info := fs.Info()
	if info.Type != bl["TYPE"] || info.Label != bl["LABEL"] || info.UUID != bl["UUID"] || info.UUID == "" {
		t.Errorf("Info %+v, blkid %v", info, bl)
	}
	if strings.Join(info.Features, ",") != features {
		t.Errorf("features %q, want %q", info.Features, features)
	}
	st, _ := os.Stat(img)
	if info.Size() != st.Size() {
		t.Errorf("Info size %d, image %d", info.Size(), st.Size())
	}
}

func TestISORockRidge(t *testing.T) {
	src := makeTree(t, true)
	img := makeISO(t, src, "-R", "-J")
	fs := openISO(t, img)
	compareTree(t, fs, src, compareOpts{
		mtimeTol: time.Second,
		dirMtime: true,
		checkMode: func(t *testing.T, rel string, fi os.FileInfo, a fsys.Attr) {
			st := fi.Sys().(*syscall.Stat_t)
			if a.Mode != st.Mode || a.Uid != st.Uid || a.Gid != st.Gid {
				t.Errorf("%q: mode %o uid %d gid %d, source %o %d %d", rel, a.Mode, a.Uid, a.Gid, st.Mode, st.Uid, st.Gid)
			}
		},
	})
	checkISOInfo(t, fs, img, "rockridge,joliet")
	var st syscall.Stat_t
	syscall.Stat(src, &st)
	if a, _ := fs.Stat(fs.Root()); a.Mode != st.Mode || a.Uid != st.Uid {
		t.Errorf("root mode %o uid %d, source %o %d", a.Mode, a.Uid, st.Mode, st.Uid)
	}
	checkCommonErrors(t, fs)
	// The Lookup of a Rock Ridge name is case-sensitive.
	if _, err := fs.Lookup(fs.Root(), "HELLO.TXT"); err == nil {
		t.Error("case-insensitive lookup on Rock Ridge")
	}
}

func TestISOJoliet(t *testing.T) {
	src := makeTree(t, false)
	img := makeISO(t, src, "-J", "--norock")
	fs := openISO(t, img)
	compareTree(t, fs, src, compareOpts{
		mtimeTol: time.Second,
		dirMtime: true,
		checkMode: func(t *testing.T, rel string, fi os.FileInfo, a fsys.Attr) {
			if a.Mode&0o7777 != 0o555 || a.Uid != 0 {
				t.Errorf("%q: mode %o uid %d, want 0555 0", rel, a.Mode, a.Uid)
			}
		},
	})
	checkISOInfo(t, fs, img, "joliet")
}

// TestISOPlain compares a plain ISO9660 image with what xorriso extracts
// from its ISO9660 tree (-read_fs norock: no Rock Ridge, no Joliet), names
// lower-cased as Linux's map=normal shows them.
func TestISOPlain(t *testing.T) {
	src := makeTree(t, false)
	img := makeISO(t, src, "--norock") // xorriso writes Rock Ridge unless told not to
	fs := openISO(t, img)
	out := filepath.Join(t.TempDir(), "extracted")
	run(t, "xorriso", "-osirrox", "on", "-read_fs", "norock", "-indev", img, "-extract", "/", out)
	compareTree(t, fs, out, compareOpts{
		nameMap:  strings.ToLower,
		mtimeTol: time.Second,
		checkMode: func(t *testing.T, rel string, fi os.FileInfo, a fsys.Attr) {
			if a.Mode&0o7777 != 0o555 {
				t.Errorf("%q: mode %o, want 0555", rel, a.Mode)
			}
			if rel != strings.ToUpper(rel) {
				t.Errorf("extracted name %q is not an upper-case ISO9660 name", rel)
			}
		},
	})
	// The file contents still match the source (names are mangled).
	ino := lookupPath(t, fs, "big.bin")
	want, _ := os.ReadFile(filepath.Join(src, "big.bin"))
	got, err := readAll(fs, ino, 1<<20)
	if err != nil || string(got) != string(want) {
		t.Errorf("big.bin: %d bytes, %v", len(got), err)
	}
	checkISOInfo(t, fs, img, "")
}
