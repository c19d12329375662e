// Package prepare builds a read-only customisation layer that makes an
// appliance image bootable with its root on NFS, without touching the
// image: the layer directory (used with --layer) holds only the files
// that change. It does what the classic nfsroot setup did by hand:
//
//   - /etc/fstab with the local-disk lines commented out (the root and
//     swap lines, and any other mount of a local disk, which would hang
//     the boot waiting for a disk the VM does not have); proc, tmpfs, nfs
//     and other non-disk lines stay;
//   - optionally /etc/resolv.conf, /etc/timezone with /etc/localtime, and
//     /etc/apt/sources.list;
//
// and it inspects the image's initramfs (CheckInitramfs) to say whether
// it can mount an NFS root and, if not, what to do.
//
// Directories created in the layer carry the image's mode, owner and
// times, so the union shows the image's directories unchanged.
package prepare

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/netboot"
)

// Options say what to set besides fstab.
type Options struct {
	Nameservers []netip.Addr
	Timezone    string // "Europe/Berlin"; must exist under /usr/share/zoneinfo in the image
	AptSources  []byte // content of /etc/apt/sources.list
	Limits      Limits // for the initramfs; zero means DefaultLimits
}

// Result says what Prepare wrote and found.
type Result struct {
	Written   []string // paths written in the layer
	Commented []string // fstab lines commented out
	Initramfs *InitramfsReport
	// InitramfsErr is why the initramfs could not be checked (nil if it was).
	InitramfsErr error
}

const maxConfigFile = 1 << 20

// Prepare reads img and writes the layer into dir (created if needed).
func Prepare(img fsys.FS, dir string, o Options) (*Result, error) {
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	res := &Result{}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// fstab
	fstab, attr, err := readSmall(img, "/etc/fstab")
	switch {
	case errors.Is(err, fsys.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("/etc/fstab: %w", err)
	default:
		out, commented := CommentLocalDisks(fstab)
		res.Commented = commented
		if len(commented) > 0 {
			if err := writeFile(img, dir, "/etc/fstab", out, attr); err != nil {
				return nil, err
			}
			res.Written = append(res.Written, "/etc/fstab")
		}
	}
	rootAttr := fsys.Attr{Mode: fsys.S_IFREG | 0o644}
	if len(o.Nameservers) > 0 {
		var b strings.Builder
		b.WriteString("# written by vmroot prepare-nfsroot\n")
		for _, a := range o.Nameservers {
			fmt.Fprintf(&b, "nameserver %s\n", a)
		}
		if err := writeFile(img, dir, "/etc/resolv.conf", []byte(b.String()), rootAttr); err != nil {
			return nil, err
		}
		res.Written = append(res.Written, "/etc/resolv.conf")
	}
	if o.Timezone != "" {
		if !validTZ(o.Timezone) {
			return nil, fmt.Errorf("timezone %q: want a name like Europe/Berlin", o.Timezone)
		}
		zone := "/usr/share/zoneinfo/" + o.Timezone
		ino, err := fsys.Resolve(img, zone, true)
		if err == nil {
			var a fsys.Attr
			if a, err = img.Stat(ino); err == nil && !a.IsRegular() {
				err = errors.New("not a zoneinfo file")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("timezone %s: %s not usable in the image (is tzdata installed?): %w", o.Timezone, zone, err)
		}
		if err := writeFile(img, dir, "/etc/timezone", []byte(o.Timezone+"\n"), rootAttr); err != nil {
			return nil, err
		}
		if err := writeSymlink(img, dir, "/etc/localtime", zone); err != nil {
			return nil, err
		}
		res.Written = append(res.Written, "/etc/timezone", "/etc/localtime")
	}
	if o.AptSources != nil {
		if err := writeFile(img, dir, "/etc/apt/sources.list", o.AptSources, rootAttr); err != nil {
			return nil, err
		}
		res.Written = append(res.Written, "/etc/apt/sources.list")
	}
	if err := syncDirAttrs(img, dir); err != nil {
		return nil, err
	}
	// The initramfs check never fails the layer: report it instead.
	_, initrd, err := netboot.FindBootFiles(img, &netboot.Host{})
	if err != nil {
		res.InitramfsErr = err
		return res, nil
	}
	f, err := netboot.Open(img, initrd)
	if err != nil {
		res.InitramfsErr = err
		return res, nil
	}
	res.Initramfs, res.InitramfsErr = CheckInitramfs(f, f.Size(), initrd, o.Limits)
	return res, nil
}

// CommentLocalDisks comments out the fstab lines that mount a local disk
// (by UUID=, LABEL=, PARTUUID=, PARTLABEL= or a /dev/ block device path),
// swap included, and returns the new file and the lines commented out.
func CommentLocalDisks(fstab []byte) ([]byte, []string) {
	var out bytes.Buffer
	var commented []string
	sc := bufio.NewScanner(bytes.NewReader(fstab))
	sc.Buffer(make([]byte, 64<<10), maxConfigFile)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && localDisk(f[0]) {
			out.WriteString("# vmroot prepare-nfsroot (root on NFS): " + line + "\n")
			commented = append(commented, line)
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), commented
}

func localDisk(spec string) bool {
	for _, p := range []string{"UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/"} {
		if strings.HasPrefix(spec, p) {
			// /dev/shm and friends are not disks.
			return !strings.HasPrefix(spec, "/dev/shm") && !strings.HasPrefix(spec, "/dev/pts")
		}
	}
	return false
}

func validTZ(tz string) bool {
	if len(tz) > 64 || strings.HasPrefix(tz, "/") {
		return false
	}
	for _, c := range strings.Split(tz, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	for _, r := range tz {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_-+", r)) {
			return false
		}
	}
	return true
}

// readSmall reads a regular file of at most maxConfigFile bytes (symlinks
// followed inside the image).
func readSmall(img fsys.FS, p string) ([]byte, fsys.Attr, error) {
	ino, err := fsys.Resolve(img, p, true)
	if err != nil {
		return nil, fsys.Attr{}, err
	}
	a, err := img.Stat(ino)
	if err != nil {
		return nil, a, err
	}
	if !a.IsRegular() || a.Size > maxConfigFile {
		return nil, a, fmt.Errorf("not a regular file of at most %d bytes", maxConfigFile)
	}
	b := make([]byte, a.Size)
	n, err := img.ReadAt(ino, b, 0)
	if err != nil && err != io.EOF {
		return nil, a, err
	}
	return b[:n], a, nil
}

// mkParents creates the parents of p in dir with the image's attributes.
func mkParents(img fsys.FS, dir, p string) error {
	parts := strings.Split(strings.Trim(filepath.Dir(p), "/"), "/")
	cur := ""
	for _, c := range parts {
		if c == "" {
			continue
		}
		cur += "/" + c
		host := filepath.Join(dir, cur)
		if st, err := os.Lstat(host); err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s exists and is not a directory", host)
			}
			continue
		}
		a := fsys.Attr{Mode: fsys.S_IFDIR | 0o755}
		if ino, err := fsys.Resolve(img, cur, false); err == nil {
			if ia, err := img.Stat(ino); err == nil && ia.IsDir() {
				a = ia
			}
		}
		if err := os.Mkdir(host, os.FileMode(a.Mode&0o777)); err != nil {
			return err
		}
		if err := applyAttr(host, a); err != nil {
			return err
		}
	}
	return nil
}

// syncDirAttrs gives every directory of the layer that also exists in the
// image the image's attributes, after the writes that changed their times.
func syncDirAttrs(img fsys.FS, dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		ino, err := fsys.Resolve(img, "/"+filepath.ToSlash(rel), false)
		if err != nil {
			return nil
		}
		a, err := img.Stat(ino)
		if err != nil || !a.IsDir() {
			return nil
		}
		return applyAttr(p, a)
	})
}

func writeFile(img fsys.FS, dir, p string, data []byte, a fsys.Attr) error {
	if err := mkParents(img, dir, p); err != nil {
		return err
	}
	host := filepath.Join(dir, p)
	os.Remove(host) // replace a symlink left by an earlier run instead of following it
	if err := os.WriteFile(host, data, os.FileMode(a.Mode&0o777)); err != nil {
		return err
	}
	return applyAttr(host, a)
}

func writeSymlink(img fsys.FS, dir, p, target string) error {
	if err := mkParents(img, dir, p); err != nil {
		return err
	}
	host := filepath.Join(dir, p)
	os.Remove(host)
	return os.Symlink(target, host)
}
