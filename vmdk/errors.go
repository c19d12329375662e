package vmdk

import (
	"errors"
	"fmt"
	"io/fs"
)

// Kinds of error, for errors.Is. Every error returned by Open and ReadAt
// (other than io.EOF) is an *Error carrying one of them.
var (
	ErrCorrupt     = errors.New("corrupt VMDK")
	ErrUnsupported = errors.New("unsupported VMDK feature")
	ErrNoAccess    = errors.New("extent is NOACCESS")
	ErrParent      = errors.New("bad parent chain")
	ErrIO          = errors.New("I/O error")
)

// Error describes a problem with one file of a VMDK.
type Error struct {
	Path   string // the file concerned
	Offset int64  // byte offset in Path the problem is at, or -1
	Msg    string // what is wrong
	Kind   error  // ErrCorrupt, ErrUnsupported, ErrNoAccess, ErrParent or ErrIO
	Err    error  // underlying error, if any
}

func (e *Error) Error() string {
	s := e.Path + ": "
	if e.Offset >= 0 {
		s += fmt.Sprintf("at byte %d: ", e.Offset)
	}
	s += e.Msg
	if e.Err != nil {
		inner := e.Err
		var pe *fs.PathError
		if errors.As(inner, &pe) && pe.Path == e.Path {
			inner = pe.Err // the path is already in front
		}
		s += ": " + inner.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

func errf(kind error, path string, off int64, format string, args ...any) *Error {
	return &Error{Path: path, Offset: off, Msg: fmt.Sprintf(format, args...), Kind: kind}
}

func wrapErr(kind error, path string, off int64, err error, format string, args ...any) *Error {
	return &Error{Path: path, Offset: off, Msg: fmt.Sprintf(format, args...), Kind: kind, Err: err}
}
