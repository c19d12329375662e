// Package output writes a built disk to its destination atomically: the
// disk is filled in as a sparse raw temporary file next to the
// destination, converted when another format is asked for, and renamed
// into place only when everything succeeded, so a failed build leaves no
// partial file behind.
package output

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmroot/vmroot/internal/imgfmt"
	"github.com/vmroot/vmroot/internal/qcow2"
	"github.com/vmroot/vmroot/vmdk"
)

// Formats lists the formats Write accepts; vmdk may name a subformat
// ("vmdk:streamOptimized"), monolithicSparse by default.
var Formats = []imgfmt.Format{imgfmt.Raw, imgfmt.VMDK, imgfmt.QCOW2}

// split returns the kind and the VMDK subformat of f.
func split(f imgfmt.Format) (kind imgfmt.Format, sub string) {
	k, s, _ := strings.Cut(string(f), ":")
	return imgfmt.Format(k), s
}

// CheckFormat reports a format Write does not produce.
func CheckFormat(f string) error {
	kind, sub := split(imgfmt.Format(f))
	switch {
	case kind == imgfmt.VMDK && sub != "":
		// Split subformats write several files; one output path is promised.
		if sub != vmdk.MonolithicSparse && sub != vmdk.StreamOptimized {
			return fmt.Errorf("unsupported VMDK subformat %q (want %s or %s)", sub, vmdk.MonolithicSparse, vmdk.StreamOptimized)
		}
		return nil
	case sub == "" && slices.Contains(Formats, kind):
		return nil
	}
	return fmt.Errorf("unknown output format %q (want raw, vmdk[:subformat] or qcow2)", f)
}

// Write creates dest as a disk of size bytes in format f; fill writes the
// disk's content into a raw file that reads as zeros where nothing is
// written. vmdk and qcow2 outputs are converted from that file, skipping
// its holes and its all-zero blocks.
func Write(dest string, f imgfmt.Format, size int64, fill func(*os.File) error) (err error) {
	if err := CheckFormat(string(f)); err != nil {
		return err
	}
	kind, sub := split(f)
	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	raw, err := os.CreateTemp(dir, "."+base+".raw-*")
	if err != nil {
		return err
	}
	defer func() {
		raw.Close()
		if err != nil || kind != imgfmt.Raw {
			os.Remove(raw.Name())
		}
	}()
	if err := raw.Truncate(size); err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	if err := fill(raw); err != nil {
		return err
	}
	switch kind {
	case imgfmt.VMDK:
		return vmdk.Write(dest, sparseFile{raw}, size, vmdk.WriteOptions{Subformat: sub})
	case imgfmt.QCOW2:
		return qcow2.Write(dest, sparseFile{raw}, size, qcow2.Options{})
	}
	if err := raw.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(raw.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(raw.Name(), dest)
}

// sparseFile tells the converters where a host file's holes are, so that
// they are skipped without being read.
type sparseFile struct{ *os.File }

// DataRanges implements vmdk.DataRanger with SEEK_DATA/SEEK_HOLE; all of
// the range is data where the filesystem cannot tell.
func (s sparseFile) DataRanges(off, n int64) ([]vmdk.Range, error) {
	return vmdk.FileDataRanges(s.File, off, n)
}
