//go:build !unix

package vmdk

import "os"

// allocated returns the size of f where the host cannot report blocks.
func allocated(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}
