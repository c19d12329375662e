//go:build unix

package vmdk

import (
	"os"
	"syscall"
)

// allocated returns the host allocation of f (st_blocks*512).
func allocated(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}
