package prepare

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Limits bound what reading an initramfs may cost, whatever its bytes.
type Limits struct {
	MaxEntries  int   // entries in all archives together
	MaxBytes    int64 // decompressed bytes read in all
	MaxKeepFile int64 // largest file whose content is kept (see Entry.Data)
}

// DefaultLimits fit any real initramfs (Debian's are 30-80 MB unpacked).
var DefaultLimits = Limits{MaxEntries: 200_000, MaxBytes: 1 << 30, MaxKeepFile: 1 << 20}

// Entry is one member of a newc/crc cpio archive.
type Entry struct {
	Name string
	Mode uint32
	Size int64
	// Data is the content of small regular files and symlinks the caller
	// asked for (keep returned true), else nil.
	Data []byte
}

const (
	newcHeaderLen = 110
	maxNameLen    = 4096
	trailer       = "TRAILER!!!"
)

// ErrLimit is returned when an archive exceeds Limits.
var ErrLimit = errors.New("initramfs exceeds the reader's limits")

// countingReader enforces Limits.MaxBytes over everything read through it.
type countingReader struct {
	r    io.Reader
	n    int64
	left *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.left <= 0 {
		return 0, ErrLimit
	}
	if int64(len(p)) > *c.left {
		p = p[:*c.left]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	*c.left -= int64(n)
	return n, err
}

// Walk reads an initramfs image as the kernel does: a sequence of cpio
// archives, each either uncompressed (such as an early microcode archive)
// or compressed with gzip, zstd, xz, lzma, bzip2 or lz4, padded with
// zeros between them. fn is called for every entry; keep says whether
// the entry's content should be read into Entry.Data (bounded by
// MaxKeepFile). Walk never allocates more than the limits allow.
func Walk(ra io.ReaderAt, size int64, lim Limits, keep func(name string) bool, fn func(Entry) error) error {
	left := lim.MaxBytes
	entries := 0
	raw := &countingReader{r: io.NewSectionReader(ra, 0, size), left: &left}
	br := bufio.NewReaderSize(raw, 64<<10)
	for {
		// Skip the zero padding between archives.
		skipZeros(br)
		magic, err := br.Peek(6)
		if len(magic) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if bytes.HasPrefix(magic, []byte("07070")) {
			if err := readArchive(br, lim, &entries, keep, fn); err != nil {
				return err
			}
			continue
		}
		if bytes.HasPrefix(magic, xzMagic) {
			// xz takes its dictionary size from each block header: check
			// them all before the decoder allocates.
			if err := checkXZ(ra, raw.n-int64(br.Buffered()), size); err != nil {
				return err
			}
		}
		dec, err := decompressor(br, magic)
		if err != nil {
			return err
		}
		// The rest of the image is one compressed stream, which may itself
		// hold several archives back to back.
		dbr := bufio.NewReaderSize(&countingReader{r: dec, left: &left}, 64<<10)
		for {
			skipZeros(dbr)
			if _, err := dbr.Peek(1); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if err := readArchive(dbr, lim, &entries, keep, fn); err != nil {
				return err
			}
		}
	}
}

func skipZeros(br *bufio.Reader) {
	for {
		b, err := br.Peek(1)
		if err != nil || b[0] != 0 {
			return
		}
		br.Discard(1)
	}
}

func decompressor(r io.Reader, magic []byte) (io.Reader, error) {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxDict), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return z.IOReadCloser(), nil
	case bytes.HasPrefix(magic, xzMagic):
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(magic, []byte{0x5d, 0, 0}):
		z, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("lzma: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(r), nil
	case bytes.HasPrefix(magic, []byte{0x02, 0x21, 0x4c, 0x18}), bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}):
		return lz4.NewReader(r), nil
	}
	return nil, fmt.Errorf("not a cpio archive and no known compression (starts %x)", magic)
}

// readArchive reads one newc ("070701") or crc ("070702") archive up to
// and including its trailer.
func readArchive(r io.Reader, lim Limits, entries *int, keep func(string) bool, fn func(Entry) error) error {
	var hdr [newcHeaderLen]byte
	var off int64
	pad := func() error {
		if p := (4 - off%4) % 4; p > 0 {
			if _, err := io.ReadFull(r, hdr[:p]); err != nil {
				return err
			}
			off += p
		}
		return nil
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("cpio header: %w", unexpected(err))
		}
		off += newcHeaderLen
		if string(hdr[:6]) != "070701" && string(hdr[:6]) != "070702" {
			return fmt.Errorf("cpio: bad magic %q (only newc archives are supported)", hdr[:6])
		}
		var f [13]uint64
		for i := range f {
			v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return fmt.Errorf("cpio: bad header field %q", hdr[6+8*i:14+8*i])
			}
			f[i] = v
		}
		mode, size, namesize := uint32(f[1]), int64(f[6]), int64(f[11])
		if namesize < 1 || namesize > maxNameLen {
			return fmt.Errorf("cpio: name length %d out of range", namesize)
		}
		name := make([]byte, namesize)
		if _, err := io.ReadFull(r, name); err != nil {
			return fmt.Errorf("cpio name: %w", unexpected(err))
		}
		off += namesize
		if err := pad(); err != nil {
			return unexpected(err)
		}
		n := string(bytes.TrimRight(name, "\x00"))
		if n == trailer {
			return nil
		}
		*entries++
		if *entries > lim.MaxEntries {
			return ErrLimit
		}
		e := Entry{Name: n, Mode: mode, Size: size}
		if size > 0 && size <= lim.MaxKeepFile && keep != nil && keep(cleanName(n)) {
			e.Data = make([]byte, size)
			if _, err := io.ReadFull(r, e.Data); err != nil {
				return fmt.Errorf("cpio data of %s: %w", n, unexpected(err))
			}
		} else if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return fmt.Errorf("cpio data of %s: %w", n, unexpected(err))
		}
		off += size
		if err := pad(); err != nil {
			return unexpected(err)
		}
		e.Name = cleanName(n)
		if err := fn(e); err != nil {
			return err
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// cleanName strips the "./" and "/" prefixes archivers put on names.
func cleanName(n string) string {
	for {
		switch {
		case len(n) >= 2 && n[:2] == "./":
			n = n[2:]
		case len(n) >= 1 && n[0] == '/':
			n = n[1:]
		default:
			return n
		}
	}
}
