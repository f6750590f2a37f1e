// The disk: writes are refused (storage_full) before the data directory's
// file system is full, and a reserve file keeps the headroom the stores
// need real, so that the Raft log store and the partition logs never meet
// ENOSPC mid-write (dragonboat panics on a failed write) even when another
// process fills the disk between two checks.

package multiraft

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/segment"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/vfs"
)

// partitionLogBytes is what a new partition replica's Raft log takes at
// once: tan preallocates its file; the pebble and eddy stores share their
// files.
func (h *Host) partitionLogBytes() uint64 {
	if h.logStore == "tan" {
		return 64 << 20
	}
	return 256 << 10
}

// freeBytes is the free space of the data directory's disk.
func (h *Host) freeBytes() (uint64, bool) {
	_, free, ok := h.statfs()
	return free, ok
}

// statfs is the size and free space of the data directory's disk.
func (h *Host) statfs() (total, free uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.cfg.Dir, &st); err != nil {
		return 0, 0, false
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), true
}

// Volume is the data directory (absolute), and the size and free space
// of its disk.
func (h *Host) Volume() (dir string, total, free uint64, ok bool) {
	dir, err := filepath.Abs(h.cfg.Dir)
	if err != nil {
		dir = h.cfg.Dir
	}
	total, free, ok = h.statfs()
	return dir, total, free, ok
}

// available is the disk's free space, the Raft log's spare files given
// back first when it is below want.
func (h *Host) available(want uint64) (uint64, bool) {
	free, ok := h.freeBytes()
	if ok && free < want {
		if st := h.raftLog.Load(); st != nil && st.Trim(0) > 0 {
			free, ok = h.freeBytes()
		}
	}
	return free, ok
}

// raftLogIdle is how long the Raft log goes without a new file before it
// gives back the spare files it kept while busy (raftlog.Store.Trim).
const raftLogIdle = time.Minute

// keepFree is the free space below which writes are refused: MinFreeBytes,
// plus the reserve's size while the reserve is not held (it must fit
// again before writes resume).
func (h *Host) keepFree() uint64 {
	if h.reserve.held.Load() {
		return h.cfg.MinFreeBytes
	}
	return h.cfg.MinFreeBytes + uint64(h.reserve.size)
}

// checkDisk sets diskFull: produce is refused while the disk has less than
// keepFree. A released reserve is taken again once it fits. It runs every
// second, and from produce after every 8 MiB admitted (noteWrite), so a
// fast producer cannot write through the margin between two ticks.
func (h *Host) checkDisk() {
	if st := h.raftLog.Load(); st != nil {
		st.Trim(raftLogIdle)
	}
	free, ok := h.available(h.keepFree())
	if !ok {
		return
	}
	h.sinceCheck.Store(0)
	if !h.reserve.held.Load() && free >= h.keepFree() {
		h.reserve.hold()
		free, _ = h.freeBytes()
	}
	full := free < h.keepFree()
	if full != h.diskFull.Swap(full) {
		if full {
			h.log.Error("disk nearly full: refusing writes", "free_bytes", free, "min_free_bytes", h.cfg.MinFreeBytes,
				"reserve_held", h.reserve.held.Load())
		} else {
			h.log.Info("disk space recovered: accepting writes", "free_bytes", free)
		}
	}
}

// noteWrite counts bytes admitted for writing and checks the disk again
// after every 8 MiB.
func (h *Host) noteWrite(n int) {
	if h.sinceCheck.Add(int64(n)) >= 8<<20 {
		h.checkDisk()
	}
}

// storageFull refuses a write while the disk is nearly full, or when need
// more bytes (new partitions' log files, a module) would take it there.
func (h *Host) storageFull(what string, need uint64) error {
	free, ok := h.available(h.keepFree() + need)
	if h.diskFull.Load() || (ok && free < h.keepFree()+need) {
		return &eddy.Error{Code: eddy.CodeStorageFull, RetryAfterMs: 5000,
			Message: fmt.Sprintf("the node's disk is nearly full (%d MiB free, %d MiB kept free, %d MiB needed for %s); nothing was written",
				free>>20, h.keepFree()>>20, need>>20, what)}
	}
	return nil
}

// diskReserve is a file of preallocated space in the data directory. The
// first write that meets ENOSPC removes it and tries again, so what the
// stores had in flight when the disk filled (a memtable flush, a log
// roll, a batch being applied) completes; writes are refused from then
// until the reserve fits again. Its size covers the largest single burst
// a store writes: a tan log file's preallocation, three pebble memtables.
type diskReserve struct {
	path string
	size int64
	log  *slog.Logger
	held atomic.Bool
	mu   sync.Mutex
	// onRelease runs after the reserve was given up (it marks the disk
	// full, so produce is refused at once rather than at the next check).
	onRelease func()
}

// hold creates the reserve file if the disk has room for it; without room
// it stays released (and the node refuses writes until there is).
func (r *diskReserve) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held.Load() || r.size <= 0 {
		return
	}
	f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = allocate(f, r.size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(r.path)
		r.log.Warn("cannot hold the disk reserve; writes are refused until the disk has room for it", "bytes", r.size, logkey.Err, err)
		return
	}
	r.held.Store(true)
}

// allocate gives f size bytes of disk: fallocate where the file system
// has it, zeros where it has not.
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// release removes the reserve, once; it reports whether the reserve is
// released now (by this call or an earlier one).
func (r *diskReserve) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held.Load() {
		if err := os.Remove(r.path); err != nil {
			return false
		}
		r.held.Store(false)
		r.log.Error("the disk filled: the disk reserve was released so that writes in flight complete; refusing writes until it fits again",
			"bytes", r.size)
		if r.onRelease != nil {
			r.onRelease()
		}
	}
	return true
}

// retry completes a write that met ENOSPC after n bytes: it releases the
// reserve and writes the rest once more.
func (r *diskReserve) retry(n int, err error, p []byte, write func([]byte) (int, error)) (int, error) {
	if errors.Is(err, syscall.ENOSPC) && r.release() {
		m, err := write(p[n:])
		return n + m, err
	}
	return n, err
}

// segmentFS is the partition logs' file system with the reserve behind
// their writes.
type segmentFS struct {
	segment.FS
	r *diskReserve
}

func (fs segmentFS) Create(name string) (segment.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return segmentFile{f, fs.r}, nil
}

func (fs segmentFS) OpenRW(name string) (segment.File, error) {
	f, err := fs.FS.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return segmentFile{f, fs.r}, nil
}

type segmentFile struct {
	segment.File
	r *diskReserve
}

func (f segmentFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return f.r.retry(n, err, p, f.File.Write)
}

// raftFS is the file system for dragonboat. Its pebble log store accepts
// only its default FS or a fault-injecting wrapper (any other panics), so
// the reserve goes inside a wrapper that injects nothing.
func (r *diskReserve) raftFS() config.IFS {
	return vfs.Wrap(raftFS{vfs.Default, r}, noFaults{})
}

type noFaults struct{}

func (noFaults) MaybeError(vfs.Op) error { return nil }

// raftFS is dragonboat's file system (its log store, snapshots and
// metadata) with the reserve behind its writes.
type raftFS struct {
	config.IFS
	r *diskReserve
}

func (fs raftFS) Create(name string) (vfs.File, error) {
	return fs.wrap(fs.IFS.Create(name))
}

func (fs raftFS) OpenForAppend(name string) (vfs.File, error) {
	return fs.wrap(fs.IFS.OpenForAppend(name))
}

func (fs raftFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	return fs.wrap(fs.IFS.ReuseForWrite(oldname, newname))
}

func (fs raftFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return raftFile{f, fs.r}, nil
}

type raftFile struct {
	vfs.File
	r *diskReserve
}

func (f raftFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return f.r.retry(n, err, p, f.File.Write)
}

func (f raftFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return f.r.retry(n, err, p, func(rest []byte) (int, error) { return f.File.WriteAt(rest, off+int64(n)) })
}

// Fd lets pebble reach the descriptor (for sync_file_range and fadvise),
// as it would without the wrapper.
func (f raftFile) Fd() uintptr {
	if fd, ok := f.File.(interface{ Fd() uintptr }); ok {
		return fd.Fd()
	}
	return ^uintptr(0)
}

var _ io.WriterAt = raftFile{}

// fullDisk is an append's refusal while the disk is nearly full.
func (h *Host) fullDisk() error {
	if !h.diskFull.Load() {
		return nil
	}
	return &eddy.Error{Code: eddy.CodeStorageFull, RetryAfterMs: 5000,
		Message: "the node's disk is nearly full; nothing was appended"}
}
