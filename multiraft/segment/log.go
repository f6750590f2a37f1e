package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
)

// Config is a log's configuration. It must be the same on every replica of
// a partition: the roll decision depends on it.
type Config struct {
	// SegmentBytes is the size at which the active segment is rolled: a
	// batch that would take it past this starts a new segment (Kafka's
	// segment.bytes). Defaults to 64 MiB.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// SegmentMs, when positive, also rolls the active segment before a
	// batch whose newest timestamp is this much past the newest of the
	// segment's first batch (Kafka's segment.ms, by record time as Kafka
	// since KIP-33: the same on every replica).
	SegmentMs int64 `yaml:"-"`
	// IndexIntervalBytes is the data between sparse index entries. Defaults
	// to 4 KiB.
	IndexIntervalBytes int64 `yaml:"index_interval_bytes"`
	// CacheBytes is how much of the log's newest synced data a sync
	// leaves in the page cache; what is older is dropped from it once
	// it is on the disk (reads bring it back). Negative leaves it all to
	// the kernel. Defaults to 16 MiB. Local to a replica.
	CacheBytes int64 `yaml:"-"`
}

// DefaultSegmentBytes is the default roll size.
const DefaultSegmentBytes = 64 << 20

func (c *Config) setDefaults() {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
}

// DefaultCacheBytes is how much of a log's newest synced data stays
// in the page cache by default (Config.CacheBytes).
const DefaultCacheBytes = 16 << 20

// Log is one partition's log: a directory of segments, each a run of Kafka
// v2 record batches named <baseOffset:020d>.log with a sparse .index.
//
// Concurrency: Append, DeleteBefore, SetApplied, Flush and Sync are called
// by one goroutine (the state machine's Update/Sync); Read, Offsets and Wait
// may be called concurrently with them and with each other. New data becomes
// visible to readers at Flush.
type Log struct {
	fs  FS
	dir string
	cfg Config

	mu         sync.RWMutex
	segs       []*seg // by base offset; the last is active
	retired    []*seg // dropped by retention, deleted at the next Sync
	nextOffset int64  // next offset to assign
	visibleEnd int64  // high watermark: offsets below are readable
	logStart   int64
	applied    uint64
	prod       *producers
	newFiles   bool  // segment files created since the last directory sync
	failed     error // sticky: a write failed, the log must be reopened
	notify     chan struct{}
	// cmu is held by a compaction; cleanEnd is where the last one ended
	// (under mu); closed tells one in progress to stop.
	cmu      sync.Mutex
	cleanEnd int64
	closed   atomic.Bool
	// durableBase is the active segment's base in the last checkpoint
	// written: only the segments before it are sealed for a restart
	// (Open truncates the active one to its checkpointed size, and drops
	// those rolled after), and only they are compacted.
	durableBase int64
	// wbErr is the first error Writeback met, for Sync to fail with: an
	// fsync reports a failed writeback once per open file, so a Sync
	// after it would find the file clean and succeed.
	wbErr atomic.Pointer[error]
}

type seg struct {
	base       int64
	f          File
	idx        File
	size       int64 // bytes written to f
	end        int64 // offset after the last batch written or pending
	maxTs      int64
	firstTs    int64  // the newest timestamp of its first batch (active only, for SegmentMs)
	pending    []byte // frames appended but not yet written (active only)
	idxPending []byte
	entries    []indexEntry // in memory for the active segment only
	lastIdxPos int64
	dirty      bool
	resized    bool         // sealed, opened at another size than its checkpoint's: compacted
	dropped    atomic.Int64 // f's bytes before this were dropped from the page cache (drop)
}

func segName(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// ErrClosed is returned by a closed log.
var ErrClosed = errors.New("eddy: log closed")

func (s *seg) close() {
	if s.f != nil {
		s.f.Close()
	}
	if s.idx != nil {
		s.idx.Close()
	}
}

// Applied is the Raft index of the last entry the log reflects.
func (l *Log) Applied() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.applied
}

// SetApplied records that the entry at Raft index i has been applied (even
// if it appended nothing). Indexes may have gaps.
func (l *Log) SetApplied(i uint64) {
	l.mu.Lock()
	l.applied = i
	l.mu.Unlock()
}

// AppendResult is the outcome of one Append.
type AppendResult struct {
	BaseOffset int64
	Count      int64
	// Duplicate reports that the batch was a retry of one already appended;
	// BaseOffset is where it was appended then.
	Duplicate bool
	// Err, if set, is a deterministic refusal: the batch is invalid or out
	// of sequence, and nothing was appended.
	Err *eddy.Error
}

// Append validates one record batch and appends it at the next offset. The
// batch is copied. strict selects Kafka's idempotence rules (see producers).
// A refusal is reported in the result; a returned error is an I/O failure
// after which the log must be reopened.
func (l *Log) Append(b []byte, strict bool) (AppendResult, error) {
	return l.AppendFrom(b, strict, nil)
}

// Source is, for deduplication, the producer's batch a stored batch was
// made from when the two differ (a transform's output): its record count
// and CRC stand for the stored batch's, so a retry of the producer's
// batch is known whatever the transform makes of it.
type Source struct {
	Count int32
	CRC   uint32
}

// AppendFrom is Append of a batch made from src (nil: from itself).
func (l *Log) AppendFrom(b []byte, strict bool, src *Source) (AppendResult, error) {
	if l.failed != nil {
		return AppendResult{}, l.failed
	}
	h, err := batch.Check(b)
	if err != nil {
		return AppendResult{Err: eddy.AsError(err)}, nil
	}
	if len(b) != h.Size() {
		return AppendResult{Err: eddy.Errorf(eddy.CodeInvalid, "record batch: %d trailing bytes", len(b)-h.Size())}, nil
	}
	if !h.Dense() {
		return AppendResult{Err: eddy.Errorf(eddy.CodeInvalid, "record batch: %d records with last offset delta %d", h.NumRecords, h.LastOffsetDelta)}, nil
	}
	id := h // what deduplication sees
	if src != nil {
		id.NumRecords, id.CRC = src.Count, src.CRC
	}
	d, err := l.prod.check(&id, strict)
	if err != nil {
		return AppendResult{Err: eddy.AsError(err)}, nil
	}
	if d.duplicate {
		return AppendResult{BaseOffset: d.baseOffset, Count: h.Count(), Duplicate: true}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	act := l.segs[len(l.segs)-1]
	size := act.size + int64(len(act.pending))
	aged := l.cfg.SegmentMs > 0 && act.firstTs > 0 && h.MaxTimestamp-act.firstTs >= l.cfg.SegmentMs
	if size > 0 && (size+int64(len(b)) > l.cfg.SegmentBytes || l.nextOffset+h.Count()-act.base > 1<<31 || aged) {
		if err := l.rollLocked(); err != nil {
			return AppendResult{}, l.fail(err)
		}
		act = l.segs[len(l.segs)-1]
		size = 0
	}
	base := l.nextOffset
	if len(b) >= writeThroughBytes {
		if err := act.writePending(); err != nil {
			return AppendResult{}, l.fail(err)
		}
		if err := act.writeBatch(b, base); err != nil {
			return AppendResult{}, l.fail(err)
		}
	} else {
		start := len(act.pending)
		act.pending = append(act.pending, b...)
		batch.SetFirstOffset(act.pending[start:], base)
	}
	if size-act.lastIdxPos >= l.cfg.IndexIntervalBytes {
		e := indexEntry{rel: uint32(base - act.base), pos: uint32(size)}
		act.entries = append(act.entries, e)
		act.idxPending = appendIndexEntry(act.idxPending, e)
		act.lastIdxPos = size
	}
	act.maxTs = max(act.maxTs, h.MaxTimestamp)
	if size == 0 {
		act.firstTs = h.MaxTimestamp
	}
	l.nextOffset += h.Count()
	act.end = l.nextOffset
	l.prod.record(&id, base, strict, 0)
	return AppendResult{BaseOffset: base, Count: h.Count()}, nil
}

func (l *Log) fail(err error) error {
	l.failed = fmt.Errorf("partition log %s failed, reopen to recover: %w", l.dir, err)
	return l.failed
}

// rollLocked writes the active segment's pending data and starts a new
// segment at nextOffset.
func (l *Log) rollLocked() error {
	act := l.segs[len(l.segs)-1]
	if err := act.writePending(); err != nil {
		return err
	}
	act.entries = nil
	f, err := l.fs.Create(segName(l.dir, l.nextOffset, ".log"))
	if err != nil {
		return err
	}
	idx, err := l.fs.Create(segName(l.dir, l.nextOffset, ".index"))
	if err != nil {
		f.Close()
		return err
	}
	l.newFiles = true
	l.segs = append(l.segs, &seg{base: l.nextOffset, end: l.nextOffset, f: f, idx: idx,
		lastIdxPos: -l.cfg.IndexIntervalBytes, dirty: true})
	return nil
}

// writeThroughBytes: a batch this large is written as it is (writeBatch)
// rather than copied into pending. Smaller ones gather there, so a
// flush writes many with one syscall.
const writeThroughBytes = 64 << 10

// writeBatch writes b at the end of the segment with its first offset
// set to base, in a copy of its header: b itself is a Raft entry's, which
// dragonboat may still read, and the CRC does not cover the offset. A
// 1 MiB batch is so not copied, nor is a buffer grown to hold it.
func (s *seg) writeBatch(b []byte, base int64) error {
	var hdr [batch.HeaderLen]byte
	copy(hdr[:], b)
	batch.SetFirstOffset(hdr[:], base)
	if err := s.write(hdr[:]); err != nil {
		return err
	}
	return s.write(b[batch.HeaderLen:])
}

// write appends p to the segment's file.
func (s *seg) write(p []byte) error {
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("write segment %d: %w", s.base, err)
	}
	s.dirty = true
	return nil
}

func (s *seg) writePending() error {
	if len(s.pending) > 0 {
		if err := s.write(s.pending); err != nil {
			return err
		}
		s.pending = s.pending[:0]
	}
	if len(s.idxPending) > 0 {
		if _, err := s.idx.Write(s.idxPending); err != nil {
			return fmt.Errorf("write index %d: %w", s.base, err)
		}
		s.idxPending = s.idxPending[:0]
	}
	return nil
}

// Flush writes what Append buffered and makes it visible to readers,
// waking anyone blocked in Wait. It does not fsync: Sync does.
func (l *Log) Flush() error {
	if l.failed != nil {
		return l.failed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	act := l.segs[len(l.segs)-1]
	if err := act.writePending(); err != nil {
		return l.fail(err)
	}
	if cap(act.pending) > 4<<20 {
		act.pending = nil // do not pin a large buffer on an idle partition
	}
	if l.visibleEnd != l.nextOffset {
		l.visibleEnd = l.nextOffset
		close(l.notify)
		l.notify = make(chan struct{})
	}
	return nil
}

// Wait returns a channel closed the next time new records become visible.
func (l *Log) Wait() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.notify
}

// Offsets returns the log start offset and the high watermark (the offset
// the next visible record will get).
func (l *Log) Offsets() (start, end int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart, l.visibleEnd
}

// NextOffset is the offset the next appended record gets, counting records
// appended but not yet flushed.
func (l *Log) NextOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.nextOffset
}

// DeleteBefore advances the log start offset to off (clamped to the end of
// the log) and retires every segment whose records are all below it. The
// active segment is never retired. Retired files are deleted at the next
// Sync, after a checkpoint that no longer names them.
func (l *Log) DeleteBefore(off int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	off = min(off, l.nextOffset)
	if off <= l.logStart {
		return l.logStart
	}
	l.logStart = off
	for len(l.segs) > 1 && l.segs[1].base <= off {
		l.retired = append(l.retired, l.segs[0])
		l.segs = l.segs[1:]
	}
	return l.logStart
}

// SegmentInfo describes one live segment.
type SegmentInfo struct {
	Base         int64
	End          int64
	Size         int64
	MaxTimestamp int64
}

// Segments lists the live segments, oldest first (for retention decisions).
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Base: s.base, End: s.end, Size: s.size + int64(len(s.pending)), MaxTimestamp: s.maxTs}
	}
	return out
}

// Size is the bytes held by live segments.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range l.Segments() {
		n += s.Size
	}
	return n
}

// Sync makes everything applied so far durable: it fsyncs segment data and
// indexes, then the directory if files were created, then writes the
// checkpoint; only then are retired segments deleted. dragonboat compacts
// its Raft log only after Sync returns.
//
// Sync must not run concurrently with Append (dragonboat guarantees this);
// readers are not blocked by the fsyncs.
func (l *Log) Sync() error {
	if err := l.wbErr.Load(); err != nil {
		return l.fail(*err)
	}
	if err := l.Flush(); err != nil {
		return err
	}
	l.mu.RLock()
	dirty := l.dirtyLocked()
	cp := l.checkpointLocked()
	newFiles := l.newFiles
	retired := l.retired
	l.mu.RUnlock()

	for _, w := range dirty {
		s := w.s
		if err := s.f.Sync(); err != nil {
			return l.fail(fmt.Errorf("sync segment %d: %w", s.base, err))
		}
		if err := s.idx.Sync(); err != nil {
			return l.fail(fmt.Errorf("sync index %d: %w", s.base, err))
		}
	}
	if newFiles {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fail(fmt.Errorf("sync dir %s: %w", l.dir, err))
		}
	}
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, checkpointName), encodeCheckpoint(cp)); err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.durableBase = cp.Segments[len(cp.Segments)-1].Base
	for _, w := range dirty {
		w.s.dirty = false
	}
	l.newFiles = false
	l.retired = l.retired[len(retired):]
	l.mu.Unlock()
	l.mu.RLock() // readers go on; appends wait for Sync anyway
	l.dropCachedLocked()
	l.mu.RUnlock()
	for _, s := range retired {
		s.close()
		for _, ext := range []string{".log", ".index"} {
			if err := l.fs.Remove(segName(l.dir, s.base, ext)); err != nil && !isNotExist(err) {
				return l.fail(fmt.Errorf("remove retired segment: %w", err))
			}
		}
	}
	return nil
}

// Writeback writes to the disk what appends left in the page cache,
// without holding the log: appends go on meanwhile. Sync still syncs
// everything; Writeback lets the Sync after it, which dragonboat runs
// under the state machine's lock against Update, find little left to
// write. (A replica's applies waited out each Sync: 0.1-0.8 s for the
// 40-75 MB that three nodes producing to one disk left unsynced, while
// its unapplied Raft log grew toward raft_max_unapplied_bytes.) An error
// is kept for the next Sync to fail with.
func (l *Log) Writeback() error {
	if err := l.wbErr.Load(); err != nil {
		return *err
	}
	l.mu.RLock()
	dirty := l.dirtyLocked()
	l.mu.RUnlock()
written:
	for _, w := range dirty {
		for _, f := range []File{w.s.f, w.s.idx} {
			if err := f.Sync(); err != nil {
				if errors.Is(err, os.ErrClosed) {
					continue written // retired by a Sync, or the log closed, meanwhile
				}
				err = fmt.Errorf("writeback: %w", err)
				l.wbErr.CompareAndSwap(nil, &err)
				return err
			}
		}
		if l.cfg.CacheBytes >= 0 {
			w.s.drop(w.size - l.cfg.CacheBytes)
		}
	}
	return nil
}

// dropCachedLocked drops from the page cache all of the log but its
// newest cfg.CacheBytes, once a Sync has put it all on the disk (l.mu
// held at least for reading). What a
// consumer at the log's end reads stays cached; what is older is read
// from the disk again if anyone wants it. Left to the kernel, a log's
// pages stay cached until memory runs short and are then reclaimed one
// by one, after pushing out what else was cached; dropped here they go
// back at once to be the pages the next appends fill. (On this project's
// VM a page the guest has not used lately costs a fault in the host: a
// 4 GB Kafka produce took 25% less of the node's CPU, docs/figures.md.)
func (l *Log) dropCachedLocked() {
	if l.cfg.CacheBytes < 0 {
		return
	}
	keep := l.cfg.CacheBytes
	for i := len(l.segs) - 1; i >= 0; i-- {
		s := l.segs[i]
		if keep <= 0 && s.dropped.Load() >= s.size {
			return // and so are the older ones
		}
		s.drop(s.size - max(keep, 0))
		keep -= s.size
	}
}

// drop drops s's bytes before to from the page cache, once to is past
// where it dropped before (Writeback and Sync may both call it).
func (s *seg) drop(to int64) {
	for {
		from := s.dropped.Load()
		if to <= from {
			return
		}
		if s.dropped.CompareAndSwap(from, to) {
			// From the file's start: the kernel drops a page, or a large
			// folio (up to 2 MiB here), only when the range holds all of
			// it, so one the last drop ended in would stay otherwise;
			// what is no longer cached costs little to walk again.
			s.f.DropCache(0, to)
			return
		}
	}
}

// dirtySeg is a segment written since its last sync, and its size then.
type dirtySeg struct {
	s    *seg
	size int64
}

// dirtyLocked returns the segments written since their last sync.
func (l *Log) dirtyLocked() []dirtySeg {
	dirty := make([]dirtySeg, 0, 2)
	for _, s := range l.segs {
		if s.dirty {
			dirty = append(dirty, dirtySeg{s, s.size})
		}
	}
	return dirty
}

func (l *Log) checkpointLocked() *checkpoint {
	cp := &checkpoint{Version: 1, Applied: l.applied, NextOffset: l.nextOffset, LogStart: l.logStart,
		Producers: l.prod.list()}
	for _, s := range l.segs {
		cp.Segments = append(cp.Segments, segMeta{Base: s.base, MaxTs: s.maxTs, Size: s.size})
	}
	return cp
}

// Close releases the log's files without syncing (the Raft log holds what
// was not synced).
func (l *Log) Close() error {
	l.closed.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFiles()
	if l.failed == nil {
		l.failed = ErrClosed
	}
	return nil
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		s.close()
	}
	for _, s := range l.retired {
		s.close()
	}
	l.segs, l.retired = nil, nil
}
