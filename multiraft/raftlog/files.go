package raftlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eddy-broker/eddy/internal/fsutil"
	"golang.org/x/sys/unix"
)

// The log's files: NNNNNNNNNNNNNNNNNNNN.log, their sequence number in the
// name, each made once at FileSize of zeros (written, or allocated by a
// roll that found none made ahead) and synced, then reused. A
// file no replica needs any more is renamed free-N and waits to be the
// next one (a rename and a directory sync, no new blocks).

type file struct {
	f   *os.File
	seq uint64
}

func (s *Store) logName(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.log", seq))
}

// listFiles returns the sequence numbers of the log files, in order, and
// the names of free ones.
func listFiles(dir string) (seqs []uint64, free []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "free-"):
			free = append(free, filepath.Join(dir, name))
		case strings.HasSuffix(name, ".log"):
			seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("raftlog: unexpected file %s", name)
			}
			seqs = append(seqs, seq)
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(dir, name)) // a file being made when the node stopped
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, free, nil
}

// newFile makes the file of seq: a free one renamed, or a new one of
// zeros, synced before it is named (so no size change is ever synced
// with a record). With fill the zeros are written; without (a roll,
// under the writer lock) the file is only allocated.
func (s *Store) newFile(seq uint64, fill bool) (*file, error) {
	name := s.logName(seq)
	if n := len(s.free); n > 0 {
		fr := s.free[n-1]
		s.free = s.free[:n-1]
		if err := os.Rename(fr.name, name); err != nil {
			fr.f.Close()
			return nil, err
		}
		if err := fsutil.SyncDir(s.dir); err != nil {
			fr.f.Close()
			return nil, err
		}
		dropCache(fr.f) // again: a free file found at start may be cached in any folios
		return &file{fr.f, seq}, nil
	}
	// None is free. At a roll the preparer fell behind a growing log, and
	// the file is allocated, not filled: writing 8 MiB of zeros here held
	// every replica's saves on the node (a third of the writer lock's time
	// under RF 3 Kafka produce). Its first writes change its extents,
	// which the saves' syncs then commit, so a file that can be filled
	// (at Open) is.
	f, err := s.makeFile(name, true, fill)
	if err != nil {
		return nil, err
	}
	if !fill {
		s.allocated.Add(1)
	}
	return &file{f, seq}, nil
}

// makeFile makes a file of FileSize zeros, synced, under name (written
// as name.tmp and renamed, the directory synced): written as zeros with
// fill, else allocated (fallocate; zeros where the file system cannot).
// With reserve, a full disk may take the disk reserve (NoSpace).
func (s *Store) makeFile(name string, reserve, fill bool) (*os.File, error) {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if fill {
		err = s.zeros(f, s.opts.FileSize, reserve)
	} else {
		err = s.allocate(f, s.opts.FileSize, reserve)
	}
	if err == nil {
		err = syscall.Fdatasync(int(f.Fd()))
	}
	if err == nil {
		dropCache(f)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = fsutil.SyncDir(s.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// The next file is made ahead, as etcd's WAL does: a file is 8 MiB of
// zeros and an fdatasync (50-135 ms each on the development VM under
// RF 3 Kafka produce), and a roll that found no free file made it under
// the writer lock, so every partition's saves on the node waited. When a
// roll leaves no free file, the preparer makes one beside the writes and
// adds it to the free ones. An idle log makes none (a node's disk stays
// what its partitions need).

// wantFile asks the preparer for a file when none is free. The writer
// lock is held.
func (s *Store) wantFile() {
	if len(s.free) > 0 {
		return
	}
	select {
	case s.prepC <- struct{}{}:
	default:
	}
}

// preparer makes a free file each time it is asked, until the store
// stops.
func (s *Store) preparer() {
	defer close(s.preparerDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.prepC:
		}
		s.prepare()
	}
}

// prepare makes a free file if none is (without the disk reserve: a
// file made ahead is worth no write's room).
func (s *Store) prepare() {
	s.wmu.Lock()
	none := len(s.free) == 0
	s.wmu.Unlock()
	if !none {
		return
	}
	name := filepath.Join(s.dir, fmt.Sprintf("free-n%d", time.Now().UnixNano()))
	f, err := s.makeFile(name, false, true)
	if err != nil {
		return // a full disk, say: the next roll makes its file itself
	}
	s.prepared.Add(1)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.stop: // closing: the file stays free for the next start
		f.Close()
		return
	default:
	}
	s.free = append(s.free, freeFile{f, name})
	s.counted()
}

// dropCache drops f's pages from the page cache. Linux (6.x) caches a
// file in folios as large as the writes that filled it: after the 1 MiB
// writes of zeros, or a reused file's old records, each record written
// dirtied a whole large folio, and the disk wrote five to six times what
// the log did (write_bytes; 200 KiB records into a file filled in 1 MiB
// writes, synced after each: 478 MB for 78). Dropped, the pages come back
// in folios the size of the writes that touch them. (Filling the file a
// page at a time instead, cached in page-size folios, measured worse:
// Kafka to one partition 60k-66k records/s against 83k-92k.)
func dropCache(f *os.File) { fsutil.DropCache(f, 0, 0) }

// zeros writes size bytes of zeros to f (real blocks: an overwrite of
// them later changes no metadata, where fallocate's unwritten extents
// would); with reserve, a full disk may take the disk reserve.
func (s *Store) zeros(f *os.File, size int64, reserve bool) error {
	z := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n := min(int64(len(z)), size-off)
		var err error
		if reserve {
			err = s.writeAt(f, z[:n], off)
		} else {
			_, err = f.WriteAt(z[:n], off)
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// allocate gives f size bytes of allocated blocks that read as zeros,
// in one call; where the file system has no fallocate (vfat), it writes
// the zeros. With reserve, a full disk may take the disk reserve.
func (s *Store) allocate(f *os.File, size int64, reserve bool) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.ENOSPC) && reserve && s.opts.NoSpace != nil && s.opts.NoSpace() {
		err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	}
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return s.zeros(f, size, reserve)
	}
	return err
}

// pageSize is the unit writePages writes in.
var pageSize = int64(os.Getpagesize())

// writePages writes p at off, where the log ends in f, as whole pages:
// from the start of the page off lies in (s.head, the bytes before off
// in it, written again) to the end of the page p ends in (zeros after p;
// a scan stops at them as at the end of any file's records). Writing
// part of a page that is not cached, the kernel reads the page from the
// disk first, and the log's pages are not cached (dropCache): a lone
// client's 1 KiB records, each its own save, waited for a read at every
// new page (5.9 MB read from the disk for 5,000 records). Where the file
// system allows, the pages are written around the page cache (direct.go),
// from b's own buffer where its records were encoded after room for the
// head (batch), else from a copy. The writer lock is held.
func (s *Store) writePages(f *os.File, seq uint64, b *batch, off int64) error {
	head, p := s.head, b.buf
	end := off + int64(len(p))
	pad := -end & (pageSize - 1)
	if end+pad > s.opts.FileSize {
		pad = max(0, s.opts.FileSize-end) // a file's last page, or a batch larger than a file
	}
	iovs := [][]byte{head, p, s.zeroPage[:pad]}
	start := off - int64(len(head))
	total := len(head) + len(p) + int(pad)
	n, direct, err := 0, false, error(nil)
	if b.lead == len(head) && total <= cap(b.back) {
		whole := b.back[:total]
		copy(whole, head)
		clear(whole[len(head)+len(p):])
		n, direct, err = s.dio.writeWhole(seq, whole, start)
	}
	if !direct {
		n, direct, err = s.dio.write(seq, iovs, total, start)
	}
	if !direct {
		n, err = unix.Pwritev(int(f.Fd()), iovs, start)
	}
	if err == nil && n < total {
		err = io.ErrShortWrite
	}
	if err != nil { // a full disk, or a short write: the rest, once more
		rest := slices.Concat(iovs...)[max(n, 0):]
		if err = s.writeAt(f, rest, start+int64(max(n, 0))); err != nil {
			return err
		}
	}
	// The new head: the bytes of [end rounded down to a page, end).
	if m := int(end & (pageSize - 1)); m <= len(p) {
		s.head = append(s.head[:0], p[len(p)-m:]...)
	} else {
		s.head = append(s.head, p...)
	}
	return nil
}

// writeAt writes p at off; a full disk gets one more try after NoSpace
// freed room.
func (s *Store) writeAt(f *os.File, p []byte, off int64) error {
	n, err := f.WriteAt(p, off)
	if err != nil && errors.Is(err, syscall.ENOSPC) && s.opts.NoSpace != nil && s.opts.NoSpace() {
		_, err = f.WriteAt(p[n:], off+int64(n))
	}
	return err
}

// retire renames the file of seq free-seq (or removes it when enough are
// free); the caller syncs the directory.
func (s *Store) retire(fl *file) {
	if len(s.free) >= s.keepFree {
		fl.f.Close()
		os.Remove(s.logName(fl.seq))
		return
	}
	dropCache(fl.f) // synced: every file before the one rolled from is
	name := filepath.Join(s.dir, fmt.Sprintf("free-%d", fl.seq))
	if err := os.Rename(s.logName(fl.seq), name); err != nil {
		fl.f.Close()
		os.Remove(s.logName(fl.seq))
		return
	}
	s.free = append(s.free, freeFile{fl.f, name})
}

type freeFile struct {
	f    *os.File
	name string
}

// replay reads the records of the file of seq into the index, up to the
// end of what its last use wrote.
func (s *Store) replay(f *os.File, seq uint64) error {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return err
	}
	for off := 0; off < len(data); {
		o, payload, n := parse(data[off:], seq)
		if n == 0 {
			break
		}
		if err := o.decode(payload); err != nil {
			return fmt.Errorf("raftlog: file %d at %d: %w", seq, off, err)
		}
		s.apply(&o, loc{seq: seq, off: int64(off), n: uint32(n)})
		off += n
	}
	return nil
}
