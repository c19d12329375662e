// Package hybrid writes an ISO with isolinux as a BIOS-bootable disk: the
// ISO itself, padded to whole cylinders, behind an MBR whose boot code
// loads the boot file through isolinux's hybrid entry point and whose one
// partition covers the image (the layout syslinux's isohybrid makes). The
// boot code is not part of vmroot: it is read from a file such as Debian's
// /usr/lib/ISOLINUX/isohdpfx.bin, which fits any isolinux with a hybrid
// entry point (3.72 and later), the ISO's own version included.
package hybrid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

// DefaultMBR is where Debian's isolinux package installs the boot code.
const DefaultMBR = "/usr/lib/ISOLINUX/isohdpfx.bin"

// ErrNoBIOSBoot is returned for an ISO that has no BIOS boot image.
var ErrNoBIOSBoot = errors.New("no El Torito BIOS boot image (an ISOLINUX.BIN)")

// BootFile is an ISO's El Torito BIOS boot image as its directory holds it.
type BootFile struct {
	Name   string // its ISO9660 name; "" when no directory record names it
	Block  uint32 // first 2048-byte block
	Length uint32 // bytes; 0 when no directory record names it
}

// Write writes the ISO at iso as a BIOS-bootable disk at dest in format f,
// the boot code read from mbrFile. The boot file's boot info table is
// written into the disk (never into the ISO) when the ISO lacks a valid one.
func Write(iso, dest string, f imgfmt.Format, mbrFile string) error {
	if err := output.CheckFormat(string(f)); err != nil {
		return err
	}
	code, err := readCode(mbrFile)
	if err != nil {
		return err
	}
	in, err := os.Open(iso)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if di, err := os.Stat(dest); err == nil && os.SameFile(fi, di) {
		return fmt.Errorf("%s: is the input ISO; write the disk elsewhere", dest)
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() || size < (firstVD+2)*isoBlock {
		return fmt.Errorf("%s: not an ISO9660 image", iso)
	}
	bf, err := FindBootFile(in, size)
	if err != nil {
		return fmt.Errorf("%s: %w", iso, err)
	}
	table, err := infoTable(in, size, bf)
	if err != nil {
		return fmt.Errorf("%s: %w", iso, err)
	}
	pvd := make([]byte, isoBlock)
	if _, err := in.ReadAt(pvd, firstVD*isoBlock); err != nil {
		return fmt.Errorf("%s: %w", iso, err)
	}
	disk := (size + cylinder - 1) / cylinder * cylinder
	mbr := buildMBR(code, bf.Block, disk, crc32.ChecksumIEEE(pvd))
	return output.Write(dest, f, disk, func(w *os.File) error {
		if err := copySparse(w, in, size); err != nil {
			return fmt.Errorf("%s: %w", iso, err)
		}
		// The rest of the system area may hold another partitioning (a
		// GPT from xorriso) that would contradict this MBR.
		sys := make([]byte, firstVD*isoBlock)
		copy(sys, mbr)
		if _, err := w.WriteAt(sys, 0); err != nil {
			return err
		}
		if table != nil {
			_, err := w.WriteAt(table, int64(bf.Block)*isoBlock+infoOff)
			return err
		}
		return nil
	})
}

// readCode reads the MBR boot code: a 432-byte file, or a whole 512-byte
// sector whose code part is taken.
func readCode(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) && name == DefaultMBR {
		return nil, fmt.Errorf("%s: %w (install Debian package isolinux, or give --bios-mbr FILE)", name, err)
	}
	if err != nil {
		return nil, err
	}
	if len(b) != mbrCode && len(b) != 512 || len(bytes.Trim(b[:mbrCode], "\x00")) == 0 {
		return nil, fmt.Errorf("%s: not MBR boot code for an isolinux hybrid image (want 432 or 512 bytes, such as isohdpfx.bin, got %d)", name, len(b))
	}
	return b[:mbrCode], nil
}

// FindBootFile finds the El Torito default entry, checks that it is a
// no-emulation x86 image with isolinux's hybrid entry point, and looks
// its name and length up in the directory tree.
func FindBootFile(r io.ReaderAt, size int64) (*BootFile, error) {
	vd := make([]byte, isoBlock)
	var cat uint32
	var root []byte
	for i := int64(firstVD); ; i++ {
		if i >= firstVD+maxVDs {
			return nil, errors.New("no volume descriptor set terminator")
		}
		if err := readFull(r, vd, i*isoBlock, size); err != nil {
			return nil, fmt.Errorf("volume descriptor %d: %w", i, err)
		}
		if string(vd[vdIDOff:vdIDOff+5]) != "CD001" {
			return nil, errors.New("not an ISO9660 image")
		}
		switch vd[0] {
		case vdBoot:
			if string(bytes.TrimRight(vd[bootSysOff:bootSysOff+32], "\x00")) == toritoID {
				cat = binary.LittleEndian.Uint32(vd[catLBAOff:])
			}
		case vdPrimary:
			if root == nil {
				root = bytes.Clone(vd[pvdRootRec : pvdRootRec+34])
			}
		}
		if vd[0] == vdEnd {
			break
		}
	}
	if root == nil {
		return nil, errors.New("no primary volume descriptor")
	}
	if cat == 0 {
		return nil, ErrNoBIOSBoot
	}
	c := vd // reuse: the descriptors are done with
	if err := readFull(r, c, int64(cat)*isoBlock, size); err != nil {
		return nil, fmt.Errorf("boot catalog: %w", err)
	}
	var sum uint16
	for i := 0; i < catEntry; i += 2 {
		sum += binary.LittleEndian.Uint16(c[i:])
	}
	if c[0] != valHeaderID || c[valKey] != 0x55 || c[valKey+1] != 0xaa || sum != 0 {
		return nil, errors.New("boot catalog has no valid validation entry")
	}
	def := c[catEntry : 2*catEntry]
	if c[valPlatform] != platformX86 || def[0] != defBootable || def[defMedia] != mediaNoEmul {
		return nil, ErrNoBIOSBoot
	}
	bf := &BootFile{Block: binary.LittleEndian.Uint32(def[defLBA:])}
	head := make([]byte, hybridOff+4)
	if err := readFull(r, head, int64(bf.Block)*isoBlock, size); err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	if err := findName(r, size, root, bf); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(head[hybridOff:]) != hybridMagic {
		name := bf.Name
		if name == "" {
			name = fmt.Sprintf("at block %d", bf.Block)
		}
		return nil, fmt.Errorf("boot image %s is not an isolinux.bin with a hybrid entry point (isolinux 3.72 or later)", name)
	}
	return bf, nil
}

// findName walks the directory tree for the file whose extent is the boot
// image's. A hidden boot file is not an error: its length then comes from
// the boot info table alone.
func findName(r io.ReaderAt, size int64, root []byte, bf *BootFile) error {
	type dir struct {
		path        string
		block, size uint32
	}
	todo := []dir{{"", binary.LittleEndian.Uint32(root[dirExtentOff:]), binary.LittleEndian.Uint32(root[dirSizeOff:])}}
	seen := map[uint32]bool{}
	walked := 0
	for len(todo) > 0 {
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[d.block] {
			continue
		}
		seen[d.block] = true
		if walked += int(d.size); walked > maxDirBytes {
			return errors.New("directory tree too large")
		}
		data := make([]byte, d.size)
		if err := readFull(r, data, int64(d.block)*isoBlock, size); err != nil {
			return fmt.Errorf("directory %s/: %w", d.path, err)
		}
		for off := 0; off < len(data); {
			n := int(data[off])
			if n == 0 { // records do not cross blocks: skip to the next
				off = (off/isoBlock + 1) * isoBlock
				continue
			}
			if off+n > len(data) || n < dirName+1 || dirName+int(data[off+dirNameLen]) > n {
				return fmt.Errorf("directory %s/: bad record at %d", d.path, off)
			}
			rec := data[off : off+n]
			off += n
			name := string(rec[dirName : dirName+int(rec[dirNameLen])])
			if name == "\x00" || name == "\x01" {
				continue
			}
			if i := strings.IndexByte(name, ';'); i >= 0 {
				name = strings.TrimSuffix(name[:i], ".")
			}
			block := binary.LittleEndian.Uint32(rec[dirExtentOff:])
			length := binary.LittleEndian.Uint32(rec[dirSizeOff:])
			if rec[dirFlagsOff]&flagDir != 0 {
				todo = append(todo, dir{d.path + "/" + name, block, length})
			} else if block == bf.Block {
				bf.Name, bf.Length = d.path+"/"+name, length
				return nil
			}
		}
	}
	return nil
}

// infoTable returns the boot info table to write into the boot file, or
// nil when the ISO already holds a valid one.
func infoTable(r io.ReaderAt, size int64, bf *BootFile) ([]byte, error) {
	have := make([]byte, 16)
	if err := readFull(r, have, int64(bf.Block)*isoBlock+infoOff, size); err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	length := bf.Length
	if length == 0 { // hidden: trust the table's length if it checks out
		length = binary.LittleEndian.Uint32(have[8:])
	}
	if length < infoSumFrom || int64(bf.Block)*isoBlock+int64(length) > size {
		return nil, fmt.Errorf("boot image %s: no usable length (%d bytes)", bf.Name, length)
	}
	file := make([]byte, (length+3)&^3) // the sum runs over whole words
	if err := readFull(r, file[:length], int64(bf.Block)*isoBlock, size); err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	var sum uint32
	for i := infoSumFrom; i < len(file); i += 4 {
		sum += binary.LittleEndian.Uint32(file[i:])
	}
	want := make([]byte, 16)
	le := binary.LittleEndian
	le.PutUint32(want[0:], firstVD)
	le.PutUint32(want[4:], bf.Block)
	le.PutUint32(want[8:], length)
	le.PutUint32(want[12:], sum)
	if bytes.Equal(have, want) {
		return nil, nil
	}
	if bf.Length == 0 {
		return nil, fmt.Errorf("boot image at block %d is in no directory and has no valid boot info table", bf.Block)
	}
	return want, nil
}

// buildMBR lays out the MBR: boot code, the boot file's 512-byte sector,
// the disk signature, and one active partition over the whole disk.
func buildMBR(code []byte, block uint32, disk int64, id uint32) []byte {
	m := make([]byte, 512)
	copy(m, code)
	le := binary.LittleEndian
	le.PutUint64(m[mbrFileLBA:], uint64(block)*isoBlock/512)
	le.PutUint32(m[mbrDiskID:], max(id, 1))
	p := m[mbrPartTab : mbrPartTab+16]
	cyls := disk / cylinder
	last := min(cyls-1, maxCylinder)
	p[0] = partActive
	p[1], p[2], p[3] = 0, 1, 0 // CHS 0/0/1
	p[4] = partType
	p[5] = heads - 1
	p[6] = byte(sectors | (last>>8)<<6)
	p[7] = byte(last)
	le.PutUint32(p[8:], 0)
	le.PutUint32(p[12:], uint32(disk/512))
	m[mbrSigOff], m[mbrSigOff+1] = 0x55, 0xaa
	return m
}

// copySparse copies the ISO into the raw disk, leaving holes where it
// holds whole zero blocks.
func copySparse(w io.WriterAt, r io.ReaderAt, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), size-off)]
		if err := readFull(r, b, off, size); err != nil {
			return err
		}
		if len(bytes.Trim(b, "\x00")) == 0 {
			continue
		}
		if _, err := w.WriteAt(b, off); err != nil {
			return err
		}
	}
	return nil
}

func readFull(r io.ReaderAt, b []byte, off, size int64) error {
	if off < 0 || off+int64(len(b)) > size {
		return fmt.Errorf("%d bytes at %d lie beyond the image's %d bytes", len(b), off, size)
	}
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
