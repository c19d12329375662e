package overlay

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/vmroot/vmroot/internal/fsys"
	"golang.org/x/sys/unix"
)

// Change is one entry of a diff, as DiffList reports it.
type Change struct {
	Kind byte   // 'A' added, 'C' changed (replaces a lower object), 'M' metadata only, 'D' deleted, 'O' opaque directory (hides the lower one's contents)
	Path string // union path
}

func lockDiff(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("diff %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("diff %s: in use by a vmroot mount", dir)
	}
	return fd, nil
}

// DiffList lists the changes a diff directory holds. With base, an upper
// object is "changed" when base has something at its path; without it,
// when vmroot recorded an origin for it.
func DiffList(dir string, base fsys.FS) ([]Change, error) {
	var out []Change
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := fi.Name()
		up := "/" + filepath.ToSlash(filepath.Dir(rel))
		up = strings.TrimSuffix(up, "/.")
		if strings.HasPrefix(name, whPrefix+whPrefix) {
			if name == opqName {
				out = append(out, Change{'O', up})
			}
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, whPrefix) {
			out = append(out, Change{'D', filepath.Join(up, name[len(whPrefix):])})
			return nil
		}
		u := "/" + filepath.ToSlash(rel)
		kind := byte('A')
		var meta bool
		var b [64]byte
		_, oerr := unix.Lgetxattr(p, "trusted.vmroot.origin", b[:])
		if oerr != nil {
			_, oerr = unix.Lgetxattr(p, "user.vmroot.origin", b[:])
		}
		if _, err := unix.Lgetxattr(p, "trusted.vmroot.meta", nil); err == nil {
			meta = true
		} else if _, err := unix.Lgetxattr(p, "user.vmroot.meta", nil); err == nil {
			meta = true
		}
		if base != nil {
			if _, err := fsys.Resolve(base, u, false); err == nil {
				kind = 'C'
			}
		} else if oerr == nil {
			kind = 'C'
		}
		if fi.IsDir() && kind == 'C' {
			return nil // a directory that only holds changes
		}
		if meta && kind == 'C' {
			kind = 'M'
		}
		out = append(out, Change{kind, u})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// Usage is a diff's disk usage.
type Usage struct {
	Bytes     int64 // allocated bytes
	Files     int   // objects other than whiteouts
	Whiteouts int
}

// DiffUsage measures a diff directory.
func DiffUsage(dir string) (Usage, error) {
	var u Usage
	seen := map[uint64]bool{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscallStat)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			u.Bytes += st.Blocks * 512
		}
		if p == dir {
			return nil
		}
		name := fi.Name()
		switch {
		case strings.HasPrefix(name, whPrefix+whPrefix):
		case strings.HasPrefix(name, whPrefix):
			u.Whiteouts++
		default:
			u.Files++
		}
		return nil
	})
	return u, err
}

// DiffReset empties a diff directory (the union shows the lower layers
// unchanged again). It refuses while a vmroot mount uses the diff.
func DiffReset(dir string) error {
	fd, err := lockDiff(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return removeAllAt(fd, ".", false)
}

type syscallStat = syscall.Stat_t
