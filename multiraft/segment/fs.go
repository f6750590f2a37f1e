package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/eddy-broker/eddy/internal/fsutil"
)

// FS is the file system a Log works through. It is small on purpose: a
// crashable in-memory implementation (MemFS) stands in for it in tests.
//
// Files are append-only from the Log's point of view: it writes at the end,
// reads anywhere, truncates only during recovery.
type FS interface {
	// Create creates or truncates name for reading and appending.
	Create(name string) (File, error)
	// OpenRW opens an existing file for reading and appending at its end.
	OpenRW(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	Remove(name string) error
	RemoveAll(dir string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// List returns the names (not paths) in dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes the directory's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
}

// File is an open file.
type File interface {
	io.ReaderAt
	// Write appends to the end of the file.
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Size() (int64, error)
	Sync() error
	Close() error
	// DropCache hints that [off, off+n), synced, need not stay in memory.
	DropCache(off, n int64)
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) OpenRW(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

func (OSFS) Remove(name string) error             { return os.Remove(name) }
func (OSFS) RemoveAll(dir string) error           { return os.RemoveAll(dir) }
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (OSFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (OSFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (OSFS) SyncDir(dir string) error { return fsutil.SyncDir(dir) }

type osFile struct{ f *os.File }

func (o *osFile) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *osFile) Write(p []byte) (int, error)             { return o.f.Write(p) }
func (o *osFile) Sync() error                             { return o.f.Sync() }
func (o *osFile) Close() error                            { return o.f.Close() }

func (o *osFile) DropCache(off, n int64) { fsutil.DropCache(o.f, off, n) }

func (o *osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (o *osFile) Truncate(size int64) error {
	if err := o.f.Truncate(size); err != nil {
		return err
	}
	_, err := o.f.Seek(size, io.SeekStart)
	return err
}

// exists reports whether name exists in fsys.
func exists(fsys FS, name string) bool {
	names, err := fsys.List(filepath.Dir(name))
	if err != nil {
		return false
	}
	base := filepath.Base(name)
	i := sort.SearchStrings(names, base)
	return i < len(names) && names[i] == base
}

// mkdirAllDurable creates dir and any missing parents, and syncs the parent
// of each directory it created so a crash cannot lose it.
func mkdirAllDurable(fsys FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); d != filepath.Dir(d) && !exists(fsys, d); d = filepath.Dir(d) {
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return fmt.Errorf("sync dir %s: %w", filepath.Dir(missing[i]), err)
		}
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
