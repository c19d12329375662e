package prepare

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vmroot/vmroot/internal/dirfs"
)

const fstab = `# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=0a3f-root  /               ext3    errors=remount-ro 0       1
/dev/sda5       none            swap    sw              0       0
LABEL=data      /srv/data       ext4    defaults        0       2
proc            /proc           proc    defaults        0       0
tmpfs           /tmp            tmpfs   nosuid,nodev    0       0
192.0.2.1:/shared /mnt/shared   nfs     vers=3,tcp      0       0
/dev/shm        /run/shm        none    bind            0       0
`

func TestCommentLocalDisks(t *testing.T) {
	out, commented := CommentLocalDisks([]byte(fstab))
	want := strings.NewReplacer(
		"UUID=0a3f-root", "# vmroot prepare-nfsroot (root on NFS): UUID=0a3f-root",
		"/dev/sda5", "# vmroot prepare-nfsroot (root on NFS): /dev/sda5",
		"LABEL=data", "# vmroot prepare-nfsroot (root on NFS): LABEL=data").Replace(fstab)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if len(commented) != 3 || !strings.HasPrefix(commented[1], "/dev/sda5") {
		t.Errorf("commented: %q", commented)
	}
	// Idempotent: a second pass changes nothing.
	if again, c := CommentLocalDisks(out); string(again) != string(out) || len(c) != 0 {
		t.Errorf("second pass changed the file: %q", c)
	}
}

// image writes a small Debian-like root with an initramfs under a temp dir.
func image(t *testing.T, initrd []byte) string {
	d := tree(t, map[string]string{
		"etc/fstab":                      fstab,
		"etc/resolv.conf":                "->../run/systemd/resolve/stub-resolv.conf",
		"etc/hostname":                   "appliance\n",
		"usr/share/zoneinfo/Europe/Oslo": "TZif2 oslo",
		"usr/share/zoneinfo/UTC":         "TZif2 utc",
		"boot/vmlinuz-" + kv:             "kernel",
		"vmlinuz":                        "->boot/vmlinuz-" + kv,
		"initrd.img":                     "->boot/initrd.img-" + kv,
	})
	os.WriteFile(filepath.Join(d, "boot/initrd.img-"+kv), initrd, 0o644)
	os.Chmod(filepath.Join(d, "etc"), 0o750)
	return d
}

// digest hashes every path, mode, link target and content under dir.
func digest(t *testing.T, dir string) string {
	h := sha256.New()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Lstat(p)
		s := fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), st.Mode(), st.ModTime().UnixNano())
		if st.Mode()&fs.ModeSymlink != 0 {
			tgt, _ := os.Readlink(p)
			s += " -> " + tgt
		} else if st.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			s += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, s)
		return nil
	})
	sort.Strings(lines)
	fmt.Fprint(h, strings.Join(lines, "\n"))
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestPrepare(t *testing.T) {
	initrd := compress(t, newc(t, tree(t, debianTree(nil)), false), "zstd", "-q", "-c")
	src := image(t, initrd)
	before := digest(t, src)
	img, err := dirfs.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	layer := filepath.Join(t.TempDir(), "layer")
	apt := []byte("deb http://deb.debian.org/debian bookworm main\n")
	res, err := Prepare(img, layer, Options{
		Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("198.51.100.53")},
		Timezone:    "Europe/Oslo", AptSources: apt})
	if err != nil {
		t.Fatal(err)
	}
	if got := digest(t, src); got != before {
		t.Error("the image changed")
	}
	if strings.Join(res.Written, " ") != "/etc/fstab /etc/resolv.conf /etc/timezone /etc/localtime /etc/apt/sources.list" || len(res.Commented) != 3 {
		t.Errorf("result: %+v", res)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(layer, p))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	if got, want := read("etc/fstab"), func() string { o, _ := CommentLocalDisks([]byte(fstab)); return string(o) }(); got != want {
		t.Errorf("fstab:\n%s", got)
	}
	if got := read("etc/resolv.conf"); got != "# written by vmroot prepare-nfsroot\nnameserver 192.0.2.53\nnameserver 198.51.100.53\n" {
		t.Errorf("resolv.conf: %q", got)
	}
	if st, err := os.Lstat(filepath.Join(layer, "etc/resolv.conf")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("resolv.conf should replace the image's symlink with a file: %v", st.Mode())
	}
	if got := read("etc/timezone"); got != "Europe/Oslo\n" {
		t.Errorf("timezone: %q", got)
	}
	if tgt, err := os.Readlink(filepath.Join(layer, "etc/localtime")); err != nil || tgt != "/usr/share/zoneinfo/Europe/Oslo" {
		t.Errorf("localtime -> %q %v", tgt, err)
	}
	if got := read("etc/apt/sources.list"); got != string(apt) {
		t.Errorf("sources.list: %q", got)
	}
	// Only what was asked for is in the layer.
	var names []string
	filepath.WalkDir(layer, func(p string, d fs.DirEntry, err error) error {
		names = append(names, strings.TrimPrefix(p, layer))
		return nil
	})
	if strings.Join(names, " ") != " /etc /etc/apt /etc/apt/sources.list /etc/fstab /etc/localtime /etc/resolv.conf /etc/timezone" {
		t.Errorf("layer holds %q", names)
	}
	// The layer's /etc looks like the image's.
	is, _ := os.Stat(filepath.Join(src, "etc"))
	ls, _ := os.Stat(filepath.Join(layer, "etc"))
	if is.Mode() != ls.Mode() || (os.Geteuid() == 0 && !is.ModTime().Equal(ls.ModTime())) {
		t.Errorf("layer /etc %v %v, image /etc %v %v", ls.Mode(), ls.ModTime(), is.Mode(), is.ModTime())
	}
	if os.Geteuid() == 0 {
		if st := ls.Sys().(*syscall.Stat_t); st.Uid != is.Sys().(*syscall.Stat_t).Uid {
			t.Errorf("owner of /etc: %d", st.Uid)
		}
	}
	// The initramfs was found through /initrd.img and checked.
	if res.InitramfsErr != nil || res.Initramfs == nil || res.Initramfs.Path != "/initrd.img" || !res.Initramfs.OK() {
		t.Errorf("initramfs: %+v %v", res.Initramfs, res.InitramfsErr)
	}
	// Run again over the same layer: same result.
	if _, err := Prepare(img, layer, Options{Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Timezone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if tgt, _ := os.Readlink(filepath.Join(layer, "etc/localtime")); tgt != "/usr/share/zoneinfo/UTC" {
		t.Errorf("second run: localtime -> %s", tgt)
	}
}

func TestPrepareRefusals(t *testing.T) {
	src := image(t, []byte("not an initramfs"))
	img, _ := dirfs.Open(src)
	defer img.Close()
	for _, tz := range []string{"../../etc/passwd", "/etc/passwd", "Europe/Nowhere", "Europe//Oslo", "a b"} {
		if _, err := Prepare(img, t.TempDir(), Options{Timezone: tz}); err == nil {
			t.Errorf("timezone %q accepted", tz)
		}
	}
	res, err := Prepare(img, t.TempDir(), Options{})
	if err != nil || res.InitramfsErr == nil || !strings.Contains(res.InitramfsErr.Error(), "no known compression") {
		t.Errorf("bad initramfs: %+v %v", res, err)
	}
	// A layer path that is a file is an error, not a partial layer.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Prepare(img, f, Options{}); err == nil {
		t.Error("layer path that is a file accepted")
	}
}
