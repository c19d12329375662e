// Package image opens disk images of any supported kind by content (a VMDK
// in any layout, a raw disk with an MBR or GPT, or a bare filesystem image),
// finds the partition to read and opens the filesystem inside it. Nothing is
// ever opened for writing.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vmroot/vmroot/internal/ext"
	"github.com/vmroot/vmroot/internal/fatiso"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/part"
	"github.com/vmroot/vmroot/vmdk"
)

// Image is a virtual disk: a concurrency-safe io.ReaderAt of Size bytes.
type Image struct {
	Path   string
	Format string // "vmdk" or "raw"
	VMDK   *vmdk.Disk
	r      io.ReaderAt
	size   int64
	closer io.Closer
}

func (im *Image) ReadAt(p []byte, off int64) (int, error) { return im.r.ReadAt(p, off) }
func (im *Image) Size() int64                             { return im.size }
func (im *Image) Close() error                            { return im.closer.Close() }

// foreign lists formats vmroot recognises but does not read, so the error
// can say what the file is instead of "no filesystem found".
var foreign = []struct {
	magic []byte
	off   int
	name  string
}{
	{[]byte("QFI\xfb"), 0, "qcow2"},
	{[]byte("<<< Oracle VM VirtualBox Disk Image >>>"), 0, "VDI"},
	{[]byte("<<< Sun VirtualBox Disk Image >>>"), 0, "VDI"},
	{[]byte("conectix"), 0, "VHD"},
	{[]byte("vhdxfile"), 0, "VHDX"},
}

// Open opens path read-only and probes its format by content.
func Open(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not an image", path)
	}
	head := make([]byte, 4096)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	if vmdk.Detect(head) {
		f.Close()
		d, err := vmdk.Open(path)
		if err != nil {
			return nil, err
		}
		return &Image{Path: path, Format: "vmdk", VMDK: d, r: d, size: d.Size(), closer: d}, nil
	}
	for _, fm := range foreign {
		if bytes.HasPrefix(head[min(fm.off, len(head)):], fm.magic) {
			f.Close()
			return nil, fmt.Errorf("%s: %s images are not supported; convert it first (qemu-img convert -O vmdk)", path, fm.name)
		}
	}
	// The VHD footer of a fixed VHD sits at the end of the file.
	if st.Size() >= 512 {
		tail := make([]byte, 8)
		if _, err := f.ReadAt(tail, st.Size()-512); err == nil && string(tail) == "conectix" {
			f.Close()
			return nil, fmt.Errorf("%s: VHD images are not supported; convert it first (qemu-img convert -O vmdk)", path)
		}
	}
	return &Image{Path: path, Format: "raw", r: f, size: st.Size(), closer: f}, nil
}

// Partitions reads the image's partition table.
func (im *Image) Partitions() (*part.Table, error) {
	t, err := part.Read(im, im.size)
	if err != nil {
		return nil, fmt.Errorf("%s: partition table: %w", im.Path, err)
	}
	return t, nil
}

// FSType probes the filesystem at the start of r by content: "ext", "vfat",
// "iso9660", or "" when none is recognised.
func FSType(r io.ReaderAt, size int64) string {
	head := make([]byte, 2048)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case n >= 2048 && ext.Probe(head):
		return "ext"
	case fatiso.ProbeISO(r):
		return "iso9660"
	case n >= 512 && fatiso.ProbeFAT(head[:512]):
		return "vfat"
	}
	return ""
}

// OpenFilesystem opens the filesystem at the start of r, choosing the reader by content.
func OpenFilesystem(r io.ReaderAt, size int64) (fsys.FS, error) {
	switch FSType(r, size) {
	case "ext":
		return ext.Open(r, size)
	case "iso9660":
		return fatiso.OpenISO(r, size)
	case "vfat":
		return fatiso.OpenFAT(r, size)
	}
	return nil, errors.New("no supported filesystem found (ext2/3/4, FAT, ISO9660)")
}

// Mounted is a filesystem opened inside an image.
type Mounted struct {
	Image     *Image
	Table     *part.Table
	Partition *part.Partition // nil when the filesystem spans the whole disk
	FS        fsys.FS
}

// Close closes the filesystem and the image.
func (m *Mounted) Close() error {
	err := m.FS.Close()
	if cerr := m.Image.Close(); err == nil {
		err = cerr
	}
	return err
}

// Where names the filesystem's location for messages ("disk.vmdk partition 2").
func (m *Mounted) Where() string {
	if m.Partition == nil {
		return m.Image.Path
	}
	return fmt.Sprintf("%s partition %d", m.Image.Path, m.Partition.Number)
}

// Auto asks OpenFS to choose the partition.
const Auto = -1

// OpenFS opens the image at path and the filesystem in partition number
// partNum (0 = the whole disk, Auto = the only partition holding a Linux
// filesystem).
func OpenFS(path string, partNum int) (*Mounted, error) {
	im, err := Open(path)
	if err != nil {
		return nil, err
	}
	m, err := openIn(im, partNum)
	if err != nil {
		im.Close()
		return nil, err
	}
	return m, nil
}

func openIn(im *Image, partNum int) (*Mounted, error) {
	t, err := im.Partitions()
	if err != nil {
		return nil, err
	}
	m := &Mounted{Image: im, Table: t}
	var r io.ReaderAt = im
	size := im.size
	if m.Partition, err = Choose(im, t, partNum); err != nil {
		return nil, err
	}
	if m.Partition != nil {
		r = m.Partition.Reader(im)
		size = m.Partition.Size
	}
	f, err := OpenFilesystem(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Where(), err)
	}
	m.FS = f
	return m, nil
}

// Choose returns partition partNum of t, nil for the whole disk (partNum 0,
// or Auto on a disk without a partition table), or for Auto the only
// partition holding a Linux filesystem, else the only one holding any
// filesystem vmroot reads.
func Choose(im *Image, t *part.Table, partNum int) (*part.Partition, error) {
	if partNum == 0 {
		return nil, nil
	}
	if partNum != Auto {
		for i := range t.Partitions {
			if p := &t.Partitions[i]; p.Number == partNum {
				if p.Extended {
					return nil, fmt.Errorf("%s: partition %d is an extended partition; it holds logical partitions, not a filesystem", im.Path, partNum)
				}
				return p, nil
			}
		}
		return nil, fmt.Errorf("%s: no partition %d (%s)", im.Path, partNum, listParts(t))
	}
	if len(t.Partitions) == 0 {
		return nil, nil
	}
	var linux, any []*part.Partition
	var desc []string
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Extended {
			continue
		}
		kind := FSType(p.Reader(im), p.Size)
		if kind == "" {
			continue
		}
		desc = append(desc, fmt.Sprintf("%d (%s)", p.Number, kind))
		any = append(any, p)
		if kind == "ext" {
			linux = append(linux, p)
		}
	}
	switch {
	case len(linux) == 1:
		return linux[0], nil
	case len(linux) == 0 && len(any) == 1:
		return any[0], nil
	case len(any) == 0:
		return nil, fmt.Errorf("%s: no partition holds a filesystem vmroot reads (%s)", im.Path, listParts(t))
	}
	return nil, fmt.Errorf("%s: several partitions hold filesystems; choose one with -p: %s", im.Path, strings.Join(desc, ", "))
}

func listParts(t *part.Table) string {
	if len(t.Partitions) == 0 {
		return "the disk has no partition table; use -p 0"
	}
	var s []string
	for _, p := range t.Partitions {
		s = append(s, fmt.Sprintf("%d", p.Number))
	}
	return "partitions: " + strings.Join(s, ", ")
}
