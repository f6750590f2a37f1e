package e2e

import (
	"os"
	"syscall"
)

// allocated is the disk a file's blocks take.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
