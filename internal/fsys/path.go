package fsys

import (
	"errors"
	"fmt"
	"strings"
)

// MaxSymlinkHops bounds symlink resolution, as Linux's MAXSYMLINKS does.
const MaxSymlinkHops = 40

// MaxDepth bounds directory recursion so a corrupt image can't exhaust the stack.
const MaxDepth = 4096

// PathError names the path inside the filesystem that an operation failed on.
type PathError struct {
	Op   string
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// Resolve returns the inode of path, interpreted from the filesystem's root
// (a leading "/" is optional). Symbolic links in intermediate components
// are followed, absolute targets relative to the filesystem root, never
// escaping it; the final component is followed only when follow is true.
func Resolve(f FS, path string, follow bool) (uint64, error) {
	hops := 0
	stack, err := resolve(f, []uint64{f.Root()}, path, follow, &hops)
	if err != nil {
		return 0, &PathError{Op: "resolve", Path: path, Err: err}
	}
	return stack[len(stack)-1], nil
}

// resolve walks path starting from the directory at the top of stack, which
// holds the chain of ancestors so ".." needs no parent pointers and never
// climbs above the root.
func resolve(f FS, stack []uint64, path string, follow bool, hops *int) ([]uint64, error) {
	if strings.HasPrefix(path, "/") {
		stack = []uint64{f.Root()}
	}
	parts := splitPath(path)
	for i, name := range parts {
		cur := stack[len(stack)-1]
		switch name {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		a, err := f.Stat(cur)
		if err != nil {
			return nil, err
		}
		if !a.IsDir() {
			return nil, ErrNotDir
		}
		next, err := f.Lookup(cur, name)
		if err != nil {
			return nil, err
		}
		if i < len(parts)-1 || follow {
			na, err := f.Stat(next)
			if err != nil {
				return nil, err
			}
			if na.IsSymlink() {
				*hops++
				if *hops > MaxSymlinkHops {
					return nil, ErrLoop
				}
				target, err := f.Readlink(next)
				if err != nil {
					return nil, err
				}
				stack, err = resolve(f, append([]uint64(nil), stack...), target, true, hops)
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		if len(stack) > MaxDepth {
			return nil, fmt.Errorf("deeper than %d levels", MaxDepth)
		}
		stack = append(stack, next)
	}
	return stack, nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// WalkFunc is called for every object under the walk's root, parents before
// children. path is slash-separated and relative to the walk's root ("" for
// the root itself). Returning SkipDir from a directory's call skips its
// contents.
type WalkFunc func(path string, ino uint64, attr Attr) error

// SkipDir tells Walk not to descend into a directory.
var SkipDir = errors.New("skip this directory")

// ErrDirLoop reports a directory that contains one of its own ancestors.
var ErrDirLoop = errors.New("directory loop")

// Walk visits the tree under ino depth-first in directory order. It detects
// directory loops (a corrupt image can link a directory under itself) and
// bounds the depth, so it terminates on any input.
func Walk(f FS, ino uint64, fn WalkFunc) error {
	a, err := f.Stat(ino)
	if err != nil {
		return err
	}
	onPath := map[uint64]bool{}
	return walk(f, "", ino, a, fn, onPath, 0)
}

func walk(f FS, path string, ino uint64, a Attr, fn WalkFunc, onPath map[uint64]bool, depth int) error {
	if err := fn(path, ino, a); err != nil {
		if err == SkipDir {
			return nil
		}
		return err
	}
	if !a.IsDir() {
		return nil
	}
	if depth >= MaxDepth {
		return &PathError{Op: "walk", Path: "/" + path, Err: fmt.Errorf("deeper than %d levels", MaxDepth)}
	}
	if onPath[ino] {
		return &PathError{Op: "walk", Path: "/" + path, Err: ErrDirLoop}
	}
	onPath[ino] = true
	defer delete(onPath, ino)
	ents, err := f.ReadDir(ino)
	if err != nil {
		return &PathError{Op: "readdir", Path: "/" + path, Err: err}
	}
	for _, e := range ents {
		p := e.Name
		if path != "" {
			p = path + "/" + e.Name
		}
		ca, err := f.Stat(e.Ino)
		if err != nil {
			return &PathError{Op: "stat", Path: "/" + p, Err: err}
		}
		if ca.IsDir() && onPath[e.Ino] {
			return &PathError{Op: "walk", Path: "/" + p, Err: ErrDirLoop}
		}
		if err := walk(f, p, e.Ino, ca, fn, onPath, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// ModeString formats a Unix mode like ls -l does ("drwxr-xr-x", "-rwsr-xr-x").
func ModeString(mode uint32) string {
	var b [10]byte
	switch mode & S_IFMT {
	case S_IFDIR:
		b[0] = 'd'
	case S_IFLNK:
		b[0] = 'l'
	case S_IFCHR:
		b[0] = 'c'
	case S_IFBLK:
		b[0] = 'b'
	case S_IFIFO:
		b[0] = 'p'
	case S_IFSOCK:
		b[0] = 's'
	default:
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if mode&(1<<uint(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(pos int, bit uint32, set, unset byte) {
		if mode&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(3, 0o4000, 's', 'S')
	special(6, 0o2000, 's', 'S')
	special(9, 0o1000, 't', 'T')
	return string(b[:])
}
