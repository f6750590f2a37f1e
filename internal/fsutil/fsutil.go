// Package fsutil holds the file system steps Eddy's stores share.
package fsutil

import "os"

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
