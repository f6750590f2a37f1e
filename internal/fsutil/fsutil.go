// Package fsutil holds the file system steps Eddy's stores share.
package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// SyncDir makes the entries of dir durable: the files created, renamed
// or removed in it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// DropCache drops [off, off+n) of f from the page cache where it is
// clean (n 0: to the file's end); a page being written stays. Only whole
// pages (or large folios) the range holds are dropped.
func DropCache(f *os.File, off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
