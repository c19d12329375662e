// Package imgfmt writes a small virtual disk, given its content, as a disk
// image file in one of several formats: raw, qcow2 v3, VMDK
// monolithicSparse, VDI, VHD (dynamic and fixed) and an ISO9660 CD whose
// El Torito entry boots the content as an emulated 1.44 MB floppy.
//
// Each writer streams one image to an io.Writer in a single pass, reading
// the content through an io.ReaderAt. Sparse formats store only the
// clusters, grains or blocks that hold a non-zero byte, in the smallest
// unit that the format's specification and the common readers (qemu,
// VirtualBox) handle, so that tiny disks give tiny files. The writers keep
// their tables in memory and are meant for small disks: sizes above
// MaxSize are refused.
package imgfmt

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Format names an image format.
type Format string

// The formats this package writes.
const (
	Raw      Format = "raw"
	QCOW2    Format = "qcow2"
	VMDK     Format = "vmdk"
	VDI      Format = "vdi"
	VHD      Format = "vhd"       // dynamic VHD
	VHDFixed Format = "vhd-fixed" // fixed VHD: the data followed by a footer
	ISO      Format = "iso"
)

// Formats lists every format in a stable order.
var Formats = []Format{Raw, QCOW2, VMDK, VDI, VHD, VHDFixed, ISO}

// SectorSize is the disk sector size all formats here use.
const SectorSize = 512

// MaxSize is the largest content size the writers accept (4 GiB).
const MaxSize = 4 << 30

// ErrSize reports a content size a writer refuses.
var ErrSize = errors.New("imgfmt: unsupported disk size")

// Options carries what some formats record besides the disk content.
type Options struct {
	// Name is the base name the image file will have. A VMDK's embedded
	// descriptor names its own file; empty means "disk.vmdk".
	Name string
	// Time stamps VHD footers; zero means the current time.
	Time time.Time
	// Rand supplies the unique identifiers of VHD and VDI images; nil
	// means crypto/rand.
	Rand io.Reader
}

func (o Options) now() time.Time {
	if o.Time.IsZero() {
		return time.Now()
	}
	return o.Time
}

var randReader io.Reader = rand.Reader

// newUUID returns a random (version 4) UUID in RFC 4122 byte order.
func (o Options) newUUID() ([16]byte, error) {
	var u [16]byte
	if err := readRandom(o, u[:]); err != nil {
		return u, err
	}
	u[6] = u[6]&0x0F | 0x40
	u[8] = u[8]&0x3F | 0x80
	return u, nil
}

// Write writes the first size bytes of content to w as an image in format
// f. Content shorter than a whole sector is padded with zeros; formats
// whose disk size has a coarser granularity (VHD) round it up further and
// the added bytes read as zeros.
func Write(w io.Writer, f Format, content io.ReaderAt, size int64, opts Options) error {
	switch f {
	case Raw:
		return WriteRaw(w, content, size)
	case QCOW2:
		return WriteQCOW2(w, content, size)
	case VMDK:
		return WriteVMDK(w, content, size, opts)
	case VDI:
		return WriteVDI(w, content, size, opts)
	case VHD:
		return WriteVHD(w, content, size, opts)
	case VHDFixed:
		return WriteVHDFixed(w, content, size, opts)
	case ISO:
		return WriteISO(w, content, size, opts)
	}
	return fmt.Errorf("imgfmt: unknown format %q", f)
}

// WriteRaw writes the content padded with zeros to a whole sector.
func WriteRaw(w io.Writer, content io.ReaderAt, size int64) error {
	if err := checkSize(size, MaxSize); err != nil {
		return err
	}
	ow := &offsetWriter{w: w}
	if err := ow.copyFrom(content, size, 0, size); err != nil {
		return err
	}
	return ow.padTo(roundUp(size, SectorSize))
}

func checkSize(size, limit int64) error {
	if size <= 0 {
		return fmt.Errorf("%w: %d bytes (must be positive)", ErrSize, size)
	}
	if size > limit {
		return fmt.Errorf("%w: %d bytes (the limit is %d)", ErrSize, size, limit)
	}
	return nil
}

func roundUp(n, unit int64) int64 { return (n + unit - 1) / unit * unit }
func divRoundUp(n, d int64) int64 { return (n + d - 1) / d }

// readChunk fills buf with content[off:off+len(buf)], zeros past size.
func readChunk(content io.ReaderAt, size, off int64, buf []byte) error {
	n := int64(len(buf))
	if off >= size {
		n = 0
	} else if size-off < n {
		n = size - off
	}
	clear(buf[n:])
	if n == 0 {
		return nil
	}
	got, err := content.ReadAt(buf[:n], off)
	if int64(got) == n {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("imgfmt: read content at %d: %w", off, err)
}

// allocation reports which unit-sized chunks of the content hold a
// non-zero byte; only those are stored by the sparse formats.
func allocation(content io.ReaderAt, size, unit int64) ([]bool, error) {
	n := divRoundUp(size, unit)
	used := make([]bool, n)
	buf := make([]byte, min(unit, 1<<20))
	for i := range n {
		for off := i * unit; off < (i+1)*unit && off < size; off += int64(len(buf)) {
			if err := readChunk(content, size, off, buf); err != nil {
				return nil, err
			}
			if !isZero(buf) {
				used[i] = true
				break
			}
		}
	}
	return used, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// offsetWriter tracks the output position so that each writer can place
// its structures at the offsets its layout computed, and fails instead of
// writing out of order.
type offsetWriter struct {
	w   io.Writer
	pos int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.pos += int64(n)
	return n, err
}

// at checks that the output has reached off exactly.
func (o *offsetWriter) at(off int64) error {
	if o.pos != off {
		return fmt.Errorf("imgfmt: internal layout error: at offset %d, expected %d", o.pos, off)
	}
	return nil
}

// writeAt writes p at off, zero-filling any gap before it.
func (o *offsetWriter) writeAt(off int64, p []byte) error {
	if err := o.padTo(off); err != nil {
		return err
	}
	_, err := o.Write(p)
	return err
}

var zeros [64 << 10]byte

// padTo writes zeros up to off.
func (o *offsetWriter) padTo(off int64) error {
	if off < o.pos {
		return fmt.Errorf("imgfmt: internal layout error: pad to %d from %d", off, o.pos)
	}
	for o.pos < off {
		n := min(off-o.pos, int64(len(zeros)))
		if _, err := o.Write(zeros[:n]); err != nil {
			return err
		}
	}
	return nil
}

// copyFrom writes n bytes of content starting at src (zeros past size).
func (o *offsetWriter) copyFrom(content io.ReaderAt, size, src, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		if err := readChunk(content, size, src, b); err != nil {
			return err
		}
		if _, err := o.Write(b); err != nil {
			return err
		}
		src += int64(len(b))
		n -= int64(len(b))
	}
	return nil
}
