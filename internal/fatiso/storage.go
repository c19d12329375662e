package fatiso

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"sync"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// Bounds on what one call into go-diskfs may read. go-diskfs follows
// on-disk pointers (Rock Ridge continuation areas, directory extents)
// without loop or size checks; the storage cuts such walks off.
const (
	maxSingleRead = 64 << 20
	readBudget    = 512 << 20
	readCallLimit = 1 << 17
)

var errReadOnly = errors.New("fatiso: read-only storage")

// storage is a read-only backend.Storage over an io.ReaderAt, so that
// go-diskfs can read a filesystem inside a partition or a VMDK. It
// refuses writes, reads past the end and, per guarded call, reading more
// than readBudget bytes or more than readCallLimit times.
type storage struct {
	r    io.ReaderAt
	size int64

	mu     sync.Mutex // guards pos and the budget
	pos    int64
	bytes  int64
	calls  int
	failed error
}

var _ backend.Storage = (*storage)(nil)

func newStorage(r io.ReaderAt, size int64) *storage { return &storage{r: r, size: size} }

func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.calls++
	s.bytes += int64(len(p))
	switch {
	case s.calls > readCallLimit || s.bytes > readBudget:
		s.failed = fmt.Errorf("more than %d reads or %d MiB read in one operation (corrupt image with looping pointers?)",
			readCallLimit, readBudget>>20)
	case len(p) > maxSingleRead:
		s.failed = fmt.Errorf("a single read of %d bytes (more than %d MiB) at offset %d", len(p), maxSingleRead>>20, off)
	}
	err := s.failed
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > s.size-off {
		want = want[:s.size-off]
	}
	n, err := s.r.ReadAt(want, off)
	if n == len(want) && len(want) < len(p) {
		return n, io.EOF
	}
	if err == nil && n < len(want) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (s *storage) Read(p []byte) (int, error) {
	s.mu.Lock()
	pos := s.pos
	s.mu.Unlock()
	n, err := s.ReadAt(p, pos)
	s.mu.Lock()
	s.pos += int64(n)
	s.mu.Unlock()
	return n, err
}

func (s *storage) Seek(offset int64, whence int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p int64
	switch whence {
	case io.SeekStart:
		p = offset
	case io.SeekCurrent:
		p = s.pos + offset
	case io.SeekEnd:
		p = s.size + offset
	default:
		return s.pos, fmt.Errorf("fatiso: bad whence %d", whence)
	}
	if p < 0 {
		return s.pos, fmt.Errorf("fatiso: seek to negative offset %d", p)
	}
	s.pos = p
	return p, nil
}

func (s *storage) Stat() (iofs.FileInfo, error)            { return storageInfo{s.size}, nil }
func (s *storage) Close() error                            { return nil }
func (s *storage) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error) { return nil, errReadOnly }
func (s *storage) Path() string                            { return "" }

// guard runs f, a call into go-diskfs, with a fresh read budget, turning
// a panic or an exhausted budget into an error.
func (s *storage) guard(what string, f func() error) (err error) {
	s.mu.Lock()
	s.bytes, s.calls, s.failed = 0, 0, nil
	s.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-diskfs failed on corrupt data: %v", r)
		}
		s.mu.Lock()
		if s.failed != nil && err != nil {
			err = fmt.Errorf("%w (go-diskfs: %v)", s.failed, err)
		}
		s.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}()
	return f()
}

type storageInfo struct{ size int64 }

func (i storageInfo) Name() string        { return "image" }
func (i storageInfo) Size() int64         { return i.size }
func (i storageInfo) Mode() iofs.FileMode { return 0o444 }
func (i storageInfo) ModTime() time.Time  { return time.Time{} }
func (i storageInfo) IsDir() bool         { return false }
func (i storageInfo) Sys() any            { return nil }
