package imgfmt

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// failingReader fails every read at or past offset failAt.
type failingReader struct {
	size, failAt int64
}

var errInjected = errors.New("injected read error")

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.failAt {
		return 0, errInjected
	}
	for i := range p {
		p[i] = 1
	}
	return len(p), nil
}

// zeroReader is a content of any size whose bytes are all zero.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

func TestRejectsBadSizes(t *testing.T) {
	for _, f := range Formats {
		for _, size := range []int64{0, -1, -1 << 62, MaxSize + 1, 1 << 62} {
			err := Write(io.Discard, f, zeroReader{}, size, Options{})
			if !errors.Is(err, ErrSize) {
				t.Errorf("%s, size %d: got %v, want ErrSize", f, size, err)
			}
		}
	}
	if err := WriteISO(io.Discard, zeroReader{}, floppy144Size+1, Options{}); !errors.Is(err, ErrSize) {
		t.Errorf("ISO with content over 1.44 MB: got %v, want ErrSize", err)
	}
	if err := Write(io.Discard, "floppy", zeroReader{}, 512, Options{}); err == nil || !strings.Contains(err.Error(), "floppy") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestVMDKRejectsBadName(t *testing.T) {
	for _, name := range []string{`a"b.vmdk`, "a\nb.vmdk", "dir/a.vmdk"} {
		if err := WriteVMDK(io.Discard, zeroReader{}, 512, Options{Name: name}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

// TestReadErrors checks that a failing content reader fails the write
// with the reader's error, whichever pass of the writer hits it.
func TestReadErrors(t *testing.T) {
	for _, f := range Formats {
		for _, failAt := range []int64{0, 512} {
			err := Write(io.Discard, f, failingReader{size: 4096, failAt: failAt}, 4096, Options{})
			if !errors.Is(err, errInjected) {
				t.Errorf("%s, failing at %d: got %v", f, failAt, err)
			}
		}
	}
}

// TestShortContent checks that a reader returning fewer bytes than the
// declared size is an error, not silent zeros.
func TestShortContent(t *testing.T) {
	for _, f := range Formats {
		err := Write(io.Discard, f, bytes.NewReader(make([]byte, 100)), 4096, Options{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: got %v, want io.ErrUnexpectedEOF", f, err)
		}
	}
}

// TestWriteErrors checks that an output error is returned.
func TestWriteErrors(t *testing.T) {
	for _, f := range Formats {
		err := Write(failingWriter{}, f, bytes.NewReader(make([]byte, 512)), 512, Options{})
		if !errors.Is(err, errInjected) {
			t.Errorf("%s: got %v", f, err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errInjected }

// TestAllZeroContent checks that sparse formats store no data for a disk
// that is all zeros, and the sizes that leaves.
func TestAllZeroContent(t *testing.T) {
	for f, want := range map[Format]int64{
		QCOW2: 4 * 512,                       // header, L1, refcount table, refcount block
		VMDK:  (1 + 1 + 1 + 4 + 1 + 4) * 512, // header, descriptor, RGD, RGT, GD, GT
		VDI:   1024,                          // header, block map
		VHD:   512 + 1024 + 512 + 512,        // footer copy, header, BAT, footer
	} {
		var buf bytes.Buffer
		if err := Write(&buf, f, zeroReader{}, 512, Options{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if int64(buf.Len()) != want {
			t.Errorf("%s of an all-zero sector: %d bytes, want %d", f, buf.Len(), want)
		}
	}
}
