// Package atomicfile writes an output file under a temporary name beside
// its destination and renames it into place once complete, so that nobody
// sees a half-written image and a failure leaves nothing behind (an
// existing file at the destination stays as it was until the rename).
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// File is an output file being written. Write to it through the embedded
// *os.File; then Commit, or Abort. Abort after Commit does nothing, so it
// can be deferred right after Create.
type File struct {
	*os.File
	dst  string
	done bool
}

// Create makes the temporary file in dst's directory (so the final rename
// stays within one filesystem) with permissions perm.
func Create(dst string, perm fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, err
	}
	// CreateTemp makes the file private; most outputs are not.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{File: f, dst: dst}, nil
}

// Dest is the name the file gets on Commit.
func (f *File) Dest() string { return f.dst }

// Commit closes the file and renames it to its destination. On error the
// temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return errors.New(f.dst + ": already committed or aborted")
	}
	f.done = true
	err := f.File.Close()
	if err == nil {
		err = os.Rename(f.Name(), f.dst)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Abort closes and removes the temporary file, unless it was committed.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}
