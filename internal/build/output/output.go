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

	"github.com/vmroot/vmroot/internal/imgfmt"
)

// Formats lists the formats Write accepts.
var Formats = []imgfmt.Format{imgfmt.Raw, imgfmt.VMDK, imgfmt.QCOW2}

// CheckFormat reports a format Write does not produce.
func CheckFormat(f string) error {
	for _, ok := range Formats {
		if string(ok) == f {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q (want raw, vmdk or qcow2)", f)
}

// Write creates dest as a disk of size bytes in format f; fill writes the
// disk's content into a raw file that reads as zeros where nothing is
// written. vmdk and qcow2 are written by internal/imgfmt, which stores
// only non-zero blocks and accepts disks up to imgfmt.MaxSize.
func Write(dest string, f imgfmt.Format, size int64, fill func(*os.File) error) (err error) {
	if err := CheckFormat(string(f)); err != nil {
		return err
	}
	if f != imgfmt.Raw && size > imgfmt.MaxSize {
		return fmt.Errorf("%s: a %d-byte disk is larger than the %d bytes the %s writer handles; write raw and convert it", dest, size, int64(imgfmt.MaxSize), f)
	}
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
		if err != nil || f != imgfmt.Raw {
			os.Remove(raw.Name())
		}
	}()
	if err := raw.Truncate(size); err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	if err := fill(raw); err != nil {
		return err
	}
	if f == imgfmt.Raw {
		if err := raw.Sync(); err != nil {
			return err
		}
		if err := os.Chmod(raw.Name(), 0o644); err != nil {
			return err
		}
		return os.Rename(raw.Name(), dest)
	}
	out, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		out.Close()
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	if err := imgfmt.Write(out, f, raw, size, imgfmt.Options{Name: base}); err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(out.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(out.Name(), dest)
}
