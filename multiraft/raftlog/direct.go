package raftlog

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Saves are written around the page cache (O_DIRECT) where the file
// system allows it: a Raft log is written once and read back rarely (a
// follower far behind, a compaction's term), so a copy of every byte into
// the page cache, and the kernel's writeback of it, is work for nothing,
// and the cache it fills is memory a small box wants for the segments
// that consumers read. writePages already writes whole pages from a page
// boundary, as direct I/O asks; what it lacks is a page-aligned buffer,
// so a save is copied into one (a copy in user space, where the page
// cache's was a copy plus a page to find, lock, dirty and write back).
// Three local nodes taking Kafka batches at RF 3 spent 3-19% less CPU
// (docs/raft-log-store.md). A file system without direct I/O (tmpfs
// before Linux 6.6) refuses the open and the store writes through the
// page cache, as it does after any write the file system refuses with
// EINVAL.

// directWriter writes to the file being written (the tail) with
// O_DIRECT. It is used under the writer lock.
type directWriter struct {
	name func(seq uint64) string // a file's path (Store.logName)
	f    *os.File                // the tail, opened O_DIRECT, or nil
	seq  uint64                  // f's file
	off  bool                    // no direct I/O here: write through the page cache
	buf  []byte                  // page-aligned; grown as saves need, to maxDirectChunk
	// copyOnly writes every save from a copy in buf (writeWhole declines):
	// for tests of that path.
	copyOnly bool
}

// maxDirectChunk is the most a direct write copies and writes at once: a
// Kafka batch of 1 MiB and its record's framing in one write.
const maxDirectChunk = 2 << 20

// file returns the file of seq opened for direct I/O, or nil when the
// file system has none.
func (d *directWriter) file(seq uint64) *os.File {
	if d.off {
		return nil
	}
	if d.f != nil && d.seq == seq {
		return d.f
	}
	d.close()
	f, err := os.OpenFile(d.name(seq), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		d.off = true
		return nil
	}
	d.f, d.seq = f, seq
	return f
}

// write writes iovs, total bytes, at start (both whole pages) of the file
// of seq. ok is false when it wrote nothing and the caller is
// to write through the page cache (no direct I/O here, or the file
// system refused it); else n bytes were written, and err says why not
// all.
func (d *directWriter) write(seq uint64, iovs [][]byte, total int, start int64) (n int, ok bool, err error) {
	if total%int(pageSize) != 0 || start%pageSize != 0 {
		return 0, false, nil
	}
	f := d.file(seq)
	if f == nil {
		return 0, false, nil
	}
	d.grow(total)
	i, j := 0, 0 // iovs[i][j:] is what is left to copy
	for n < total {
		c := 0
		for c < len(d.buf) && i < len(iovs) {
			m := copy(d.buf[c:], iovs[i][j:])
			c += m
			j += m
			if j == len(iovs[i]) {
				i, j = i+1, 0
			}
		}
		m, err := unix.Pwrite(int(f.Fd()), d.buf[:c], start+int64(n))
		n += max(m, 0)
		if errors.Is(err, syscall.EINVAL) {
			d.off = true
			d.close()
			if n == 0 {
				return 0, false, nil
			}
		}
		if err != nil {
			return n, true, err
		}
		if m < c {
			return n, true, io.ErrShortWrite
		}
	}
	return n, true, nil
}

// writeWhole writes p (whole pages, from a page boundary in memory) at
// start of the file of seq, as it is. ok is false when it wrote nothing
// and the caller is to write a copy (write): no direct I/O here, p not
// aligned, or the file system refused it (a refusal write meets again
// turns direct I/O off).
func (d *directWriter) writeWhole(seq uint64, p []byte, start int64) (n int, ok bool, err error) {
	if d.copyOnly || len(p)%int(pageSize) != 0 || start%pageSize != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%uintptr(pageSize) != 0 {
		return 0, false, nil
	}
	f := d.file(seq)
	if f == nil {
		return 0, false, nil
	}
	n, err = unix.Pwrite(int(f.Fd()), p, start)
	n = max(n, 0)
	if errors.Is(err, syscall.EINVAL) && n == 0 {
		return 0, false, nil
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, true, err
}

// grow makes the buffer hold total bytes, or maxDirectChunk.
func (d *directWriter) grow(total int) {
	want := min(maxDirectChunk, (total+64<<10-1)&^(64<<10-1))
	if len(d.buf) >= want {
		return
	}
	raw := make([]byte, want+int(pageSize))
	a := int(-uintptr(unsafe.Pointer(&raw[0])) & uintptr(pageSize-1))
	d.buf = raw[a : a+want]
}

// idle lets go of a buffer grown for large saves.
func (d *directWriter) idle() {
	if len(d.buf) > 64<<10 {
		d.buf = nil
	}
}

func (d *directWriter) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
