package segment

import (
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// MemFS is an in-memory FS that can crash. It remembers what was made
// durable (File.Sync for contents, SyncDir for directory entries) and
// CrashClone returns the file system as a machine that lost power might find
// it: everything durable, plus a random part of what was not, possibly with a
// torn (garbage) tail. It also injects faults and a capacity limit (disk full).
//
// Like POSIX, a removed file stays readable through handles opened before.
// MemFS is safe for concurrent use.
type MemFS struct {
	mu       sync.Mutex
	files    map[string]*inode
	dirs     map[string]bool
	ops      []dirOp
	used     int64
	capacity int64
	fault    func(op, name string) error
}

type inode struct {
	data    []byte
	durable []byte
	drops   []Drop // File.DropCache's calls
}

// Drop is a range File.DropCache was called with, and how much of the
// file was durable then.
type Drop struct{ Off, N, Durable int64 }

// dirOp is a directory-entry change not yet known to be durable.
type dirOp struct {
	kind      string // create, remove, rename, mkdir, removeall
	path      string
	path2     string
	ino       *inode
	isDurable bool
}

// NewMemFS returns an empty MemFS with the root directory.
func NewMemFS() *MemFS {
	return &MemFS{files: map[string]*inode{}, dirs: map[string]bool{"/": true, ".": true}}
}

var _ FS = (*MemFS)(nil)

// SetCapacity limits the bytes all files may hold; 0 means unlimited. A write
// that does not fit is written in part and fails with ENOSPC, as a real disk.
func (m *MemFS) SetCapacity(n int64) {
	m.mu.Lock()
	m.capacity = n
	m.mu.Unlock()
}

// SetFault installs a function called before every operation (op is
// "create", "open", "write", "sync", "rename", "remove", "syncdir", ...);
// a non-nil error fails the operation. A failing write writes half its bytes.
// The function runs with the MemFS locked: it must not call MemFS methods
// other than CrashCloneInFault.
func (m *MemFS) SetFault(f func(op, name string) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

func (m *MemFS) check(op, name string) error {
	if m.fault != nil {
		if err := m.fault(op, name); err != nil {
			return &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	return nil
}

func clean(p string) string { return filepath.Clean(p) }

func (m *MemFS) dirExists(dir string) bool {
	return m.dirs[clean(dir)]
}

func (m *MemFS) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("create", name); err != nil {
		return nil, err
	}
	if !m.dirExists(filepath.Dir(name)) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	if old, ok := m.files[name]; ok {
		m.used -= int64(len(old.data))
	}
	ino := &inode{}
	m.files[name] = ino
	m.ops = append(m.ops, dirOp{kind: "create", path: name, ino: ino})
	return &memFile{fs: m, ino: ino, name: name, writable: true}, nil
}

func (m *MemFS) open(name string, writable bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("open", name); err != nil {
		return nil, err
	}
	ino, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, ino: ino, name: name, writable: writable}, nil
}

func (m *MemFS) OpenRW(name string) (File, error) { return m.open(name, true) }
func (m *MemFS) Open(name string) (File, error)   { return m.open(name, false) }

func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("remove", name); err != nil {
		return err
	}
	ino, ok := m.files[name]
	if !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	m.used -= int64(len(ino.data))
	delete(m.files, name)
	m.ops = append(m.ops, dirOp{kind: "remove", path: name})
	return nil
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func (m *MemFS) RemoveAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("removeall", dir); err != nil {
		return err
	}
	m.removeAllLocked(dir)
	m.ops = append(m.ops, dirOp{kind: "removeall", path: dir})
	return nil
}

func (m *MemFS) removeAllLocked(dir string) {
	for p, ino := range m.files {
		if under(p, dir) {
			m.used -= int64(len(ino.data))
			delete(m.files, p)
		}
	}
	for d := range m.dirs {
		if under(d, dir) {
			delete(m.dirs, d)
		}
	}
}

func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("rename", oldname); err != nil {
		return err
	}
	if err := renameIn(m.files, m.dirs, oldname, newname); err != nil {
		return err
	}
	m.ops = append(m.ops, dirOp{kind: "rename", path: oldname, path2: newname})
	return nil
}

// renameIn renames a file or a directory (with everything under it).
func renameIn(files map[string]*inode, dirs map[string]bool, oldname, newname string) error {
	if ino, ok := files[oldname]; ok {
		delete(files, oldname)
		files[newname] = ino
		return nil
	}
	if !dirs[oldname] {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	for p := range files {
		if under(p, newname) {
			delete(files, p)
		}
	}
	for d := range dirs {
		if under(d, newname) {
			delete(dirs, d)
		}
	}
	for p, ino := range files {
		if under(p, oldname) {
			delete(files, p)
			files[newname+p[len(oldname):]] = ino
		}
	}
	for d := range dirs {
		if under(d, oldname) {
			delete(dirs, d)
			dirs[newname+d[len(oldname):]] = true
		}
	}
	return nil
}

func (m *MemFS) MkdirAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("mkdir", dir); err != nil {
		return err
	}
	for d := dir; !m.dirs[d]; d = filepath.Dir(d) {
		m.dirs[d] = true
		m.ops = append(m.ops, dirOp{kind: "mkdir", path: d})
	}
	return nil
}

func (m *MemFS) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for p := range m.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir makes durable every directory operation so far that changed an
// entry of dir.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("syncdir", dir); err != nil {
		return err
	}
	for i := range m.ops {
		op := &m.ops[i]
		if filepath.Dir(op.path) == dir || (op.path2 != "" && filepath.Dir(op.path2) == dir) {
			op.isDurable = true
		}
	}
	return nil
}

// CrashClone returns what a crash at this instant could leave behind. rng
// picks which undurable directory operations survive (a prefix of them, plus
// the durable ones) and how much of each file's unsynced tail survives; with
// torn, a surviving unsynced tail may end in garbage.
func (m *MemFS) CrashClone(rng *rand.Rand, torn bool) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashCloneLocked(rng, torn)
}

// CrashCloneInFault is CrashClone for use inside a fault function, which
// runs with the MemFS locked.
func (m *MemFS) CrashCloneInFault(rng *rand.Rand, torn bool) *MemFS {
	return m.crashCloneLocked(rng, torn)
}

func (m *MemFS) crashCloneLocked(rng *rand.Rand, torn bool) *MemFS {
	// Replay directory operations onto the state at the last point where
	// everything was durable: we rebuild from an empty tree, keeping op i if
	// it is durable or before a random cut.
	cut := rng.IntN(len(m.ops) + 1)
	files := map[string]*inode{}
	dirs := map[string]bool{"/": true, ".": true}
	for i, op := range m.ops {
		if !op.isDurable && i >= cut {
			continue
		}
		switch op.kind {
		case "create":
			if dirs[filepath.Dir(op.path)] {
				files[op.path] = op.ino
			}
		case "remove":
			delete(files, op.path)
		case "rename":
			_ = renameIn(files, dirs, op.path, op.path2)
		case "mkdir":
			dirs[op.path] = true
		case "removeall":
			for p := range files {
				if under(p, op.path) {
					delete(files, p)
				}
			}
			for d := range dirs {
				if under(d, op.path) {
					delete(dirs, d)
				}
			}
		}
	}
	out := NewMemFS()
	out.dirs = dirs
	clones := map[*inode]*inode{}
	for p, ino := range files {
		c, ok := clones[ino]
		if !ok {
			c = &inode{data: crashContents(rng, ino, torn)}
			c.durable = append([]byte(nil), c.data...)
			clones[ino] = c
		}
		out.files[p] = c
		out.used += int64(len(c.data))
	}
	return out
}

func crashContents(rng *rand.Rand, ino *inode, torn bool) []byte {
	d := ino.durable
	cur := ino.data
	if len(cur) < len(d) || string(cur[:len(d)]) != string(d) {
		// Truncated since the last sync: either state may be on disk.
		if rng.IntN(2) == 0 {
			return append([]byte(nil), d...)
		}
		return append([]byte(nil), cur...)
	}
	extra := 0
	if n := len(cur) - len(d); n > 0 {
		extra = rng.IntN(n + 1)
	}
	out := append([]byte(nil), cur[:len(d)+extra]...)
	if torn && extra > 0 {
		g := 1 + rng.IntN(min(extra, 512))
		for i := len(out) - g; i < len(out); i++ {
			out[i] = byte(rng.Uint32())
		}
	}
	return out
}

type memFile struct {
	fs       *MemFS
	ino      *inode
	name     string
	writable bool
	closed   bool
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if err := f.fs.check("read", f.name); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if !f.writable {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	if err := f.fs.check("write", f.name); err != nil {
		half := p[:len(p)/2]
		f.ino.data = append(f.ino.data, half...)
		f.fs.used += int64(len(half))
		return len(half), err
	}
	if f.fs.capacity > 0 && f.fs.used+int64(len(p)) > f.fs.capacity {
		room := max(f.fs.capacity-f.fs.used, 0)
		f.ino.data = append(f.ino.data, p[:room]...)
		f.fs.used += room
		return int(room), &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	f.ino.data = append(f.ino.data, p...)
	f.fs.used += int64(len(p))
	return len(p), nil
}

// DropCache records the call (CacheDrops): there is no cache to drop.
func (f *memFile) DropCache(off, n int64) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.ino.drops = append(f.ino.drops, Drop{off, n, int64(len(f.ino.durable))})
}

// CacheDrops returns the ranges of name's file dropped from the cache
// (File.DropCache), in the order they were.
func (m *MemFS) CacheDrops(name string) []Drop {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ino := m.files[clean(name)]; ino != nil {
		return append([]Drop(nil), ino.drops...)
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.check("truncate", f.name); err != nil {
		return err
	}
	if size > int64(len(f.ino.data)) {
		f.fs.used += size - int64(len(f.ino.data))
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
		return nil
	}
	f.fs.used -= int64(len(f.ino.data)) - size
	f.ino.data = f.ino.data[:size:size]
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.check("sync", f.name); err != nil {
		return err
	}
	f.ino.durable = append(f.ino.durable[:0:0], f.ino.data...)
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}
