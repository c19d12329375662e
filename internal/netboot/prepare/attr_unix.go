package prepare

import (
	"os"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// applyAttr gives a layer file the image's mode bits and, when running as
// root, its owner and modification time.
func applyAttr(host string, a fsys.Attr) error {
	if err := os.Chmod(host, os.FileMode(a.Mode&0o777)|modeExtra(a.Mode)); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(host, int(a.Uid), int(a.Gid)); err != nil {
			return err
		}
		// chown clears setuid/setgid: set the mode again.
		if err := os.Chmod(host, os.FileMode(a.Mode&0o777)|modeExtra(a.Mode)); err != nil {
			return err
		}
	}
	if !a.Mtime.IsZero() && a.Mode&fsys.S_IFMT == fsys.S_IFDIR {
		ts := []unix.Timespec{unix.NsecToTimespec(a.Atime.UnixNano()), unix.NsecToTimespec(a.Mtime.UnixNano())}
		return unix.UtimesNano(host, ts)
	}
	return nil
}

func modeExtra(m uint32) os.FileMode {
	var f os.FileMode
	if m&0o4000 != 0 {
		f |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		f |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		f |= os.ModeSticky
	}
	return f
}
