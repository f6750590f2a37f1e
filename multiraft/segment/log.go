package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

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
	// IndexIntervalBytes is the data between sparse index entries. Defaults
	// to 4 KiB.
	IndexIntervalBytes int64 `yaml:"index_interval_bytes"`
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
}

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
}

type seg struct {
	base       int64
	f          File
	idx        File
	size       int64 // bytes written to f
	end        int64 // offset after the last batch written or pending
	maxTs      int64
	pending    []byte // frames appended but not yet written (active only)
	idxPending []byte
	entries    []indexEntry // in memory for the active segment only
	lastIdxPos int64
	dirty      bool
}

func segName(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// ErrClosed is returned by a closed log.
var ErrClosed = errors.New("eddy: log closed")

// Open opens the log in dir, creating it if needed, and recovers it: it
// loads the checkpoint, drops everything written after it (a crash may have
// torn it; dragonboat re-applies those entries from the Raft log), verifies
// the active segment's CRCs and rebuilds missing or inconsistent indexes.
// Applied tells the caller which Raft index the log reflects.
func Open(fsys FS, dir string, cfg Config) (*Log, error) {
	cfg.setDefaults()
	if err := finishRestore(fsys, dir); err != nil {
		return nil, err
	}
	if err := mkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	l := &Log{fs: fsys, dir: dir, cfg: cfg, prod: newProducers(), notify: make(chan struct{})}
	cp, err := l.loadCheckpoint()
	if err != nil {
		return nil, err
	}
	if err := l.recover(cp); err != nil {
		l.closeFiles()
		return nil, err
	}
	return l, nil
}

func (l *Log) loadCheckpoint() (*checkpoint, error) {
	b, err := readAll(l.fs, filepath.Join(l.dir, checkpointName))
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint in %s: %w", l.dir, err)
	}
	return decodeCheckpoint(b)
}

// recover makes the directory match the checkpoint.
func (l *Log) recover(cp *checkpoint) error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return err
	}
	if cp == nil {
		// Nothing was ever synced: start empty. Leftover files are from
		// before the first Sync and will be re-applied.
		cp = &checkpoint{Version: 1, Segments: []segMeta{{Base: 0}}}
	}
	keep := map[int64]segMeta{}
	for _, m := range cp.Segments {
		keep[m.Base] = m
	}
	for _, n := range names {
		base, ext, ok := parseSegName(n)
		if !ok {
			if strings.HasSuffix(n, ".tmp") {
				_ = l.fs.Remove(filepath.Join(l.dir, n))
			}
			continue
		}
		if _, ok := keep[base]; !ok {
			// Rolled after the checkpoint, or retired by retention.
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return fmt.Errorf("remove stale %s: %w", n, err)
			}
			continue
		}
		_ = ext
	}
	l.applied = cp.Applied
	l.logStart = cp.LogStart
	l.prod.load(cp.Producers)
	for i, m := range cp.Segments {
		active := i == len(cp.Segments)-1
		s, err := l.openSeg(m, active)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	act := l.segs[len(l.segs)-1]
	l.nextOffset = act.end
	l.visibleEnd = act.end
	if len(cp.Segments) > 1 || cp.Applied > 0 {
		if act.end != cp.NextOffset {
			return eddy.Errorf(eddy.CodeCorrupt, "%s: active segment ends at offset %d, checkpoint says %d", l.dir, act.end, cp.NextOffset)
		}
	}
	return nil
}

func parseSegName(n string) (int64, string, bool) {
	ext := filepath.Ext(n)
	if ext != ".log" && ext != ".index" {
		return 0, "", false
	}
	base, err := strconv.ParseInt(strings.TrimSuffix(n, ext), 10, 64)
	if err != nil || len(n)-len(ext) != 20 {
		return 0, "", false
	}
	return base, ext, true
}

// openSeg opens a segment named by the checkpoint. The active one is
// truncated to its checkpointed size and scanned; a sealed one is trusted
// (it was fsynced before the checkpoint) but its index is checked.
func (l *Log) openSeg(m segMeta, active bool) (*seg, error) {
	name := segName(l.dir, m.Base, ".log")
	var f File
	var err error
	if m.Size == 0 && active && !exists(l.fs, name) {
		f, err = l.fs.Create(name)
		l.newFiles = true
	} else {
		f, err = l.fs.OpenRW(name)
	}
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %s named by the checkpoint: %w", name, err)
	}
	s := &seg{base: m.Base, f: f, maxTs: m.MaxTs, end: m.Base}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	if size < m.Size {
		f.Close()
		return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %s is %d bytes, checkpoint synced %d", name, size, m.Size)
	}
	if size > m.Size {
		if err := f.Truncate(m.Size); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate %s: %w", name, err)
		}
		s.dirty = true
	}
	s.size = m.Size
	idxName := segName(l.dir, m.Base, ".index")
	var entries []indexEntry
	valid := false
	if !active {
		if b, err := readAll(l.fs, idxName); err == nil {
			entries, valid = parseIndex(b, s.size, 1<<32)
		}
	}
	if active || !valid {
		// Scan the segment: verify every frame and rebuild its index.
		entries, err = l.scan(s)
		if err != nil {
			f.Close()
			return nil, err
		}
		idx, err := l.fs.Create(idxName)
		if err != nil {
			f.Close()
			return nil, err
		}
		var buf []byte
		for _, e := range entries {
			buf = appendIndexEntry(buf, e)
		}
		if _, err := idx.Write(buf); err != nil {
			f.Close()
			idx.Close()
			return nil, err
		}
		s.idx = idx
		s.dirty = true
		l.newFiles = true
	} else {
		if s.idx, err = l.fs.OpenRW(idxName); err != nil {
			f.Close()
			return nil, err
		}
		s.end, err = l.endOfSealed(s, entries)
		if err != nil {
			s.close()
			return nil, err
		}
	}
	if active {
		s.entries = entries
	}
	if n := len(entries); n > 0 {
		s.lastIdxPos = int64(entries[n-1].pos)
	} else {
		s.lastIdxPos = -l.cfg.IndexIntervalBytes
	}
	return s, nil
}

// scan reads every frame of s up to s.size, checking CRCs, and returns the
// index entries. It sets s.end and s.maxTs.
func (l *Log) scan(s *seg) ([]indexEntry, error) {
	var entries []indexEntry
	lastIdx := -l.cfg.IndexIntervalBytes
	pos := int64(0)
	next := s.base
	buf := make([]byte, 0, 1<<20)
	for pos < s.size {
		hb := make([]byte, batch.HeaderLen)
		if _, err := s.f.ReadAt(hb, pos); err != nil {
			return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %d: header at %d: %v", s.base, pos, err)
		}
		h, err := batch.ParseHeader(hb)
		if err != nil || pos+int64(h.Size()) > s.size {
			return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %d: synced frame at position %d is damaged: %v", s.base, pos, err)
		}
		if cap(buf) < h.Size() {
			buf = make([]byte, h.Size())
		}
		buf = buf[:h.Size()]
		if _, err := s.f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return nil, err
		}
		if _, err := batch.Check(buf); err != nil {
			return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %d: synced frame at position %d: %v", s.base, pos, err)
		}
		if h.FirstOffset != next {
			return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %d: frame at position %d has offset %d, want %d", s.base, pos, h.FirstOffset, next)
		}
		if pos-lastIdx >= l.cfg.IndexIntervalBytes {
			entries = append(entries, indexEntry{rel: uint32(h.FirstOffset - s.base), pos: uint32(pos)})
			lastIdx = pos
		}
		s.maxTs = max(s.maxTs, h.MaxTimestamp)
		next = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	s.end = next
	return entries, nil
}

// endOfSealed finds the offset after the last batch of a sealed segment by
// scanning headers from its last index entry.
func (l *Log) endOfSealed(s *seg, entries []indexEntry) (int64, error) {
	pos := floorPos(entries, ^uint32(0))
	end := s.base
	hb := make([]byte, batch.HeaderLen)
	for pos < s.size {
		if _, err := s.f.ReadAt(hb, pos); err != nil {
			return 0, eddy.Errorf(eddy.CodeCorrupt, "segment %d: header at %d: %v", s.base, pos, err)
		}
		h, err := batch.ParseHeader(hb)
		if err != nil {
			return 0, eddy.Errorf(eddy.CodeCorrupt, "segment %d: header at %d: %v", s.base, pos, err)
		}
		end = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	return end, nil
}

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
	if size > 0 && (size+int64(len(b)) > l.cfg.SegmentBytes || l.nextOffset+h.Count()-act.base > 1<<31) {
		if err := l.rollLocked(); err != nil {
			return AppendResult{}, l.fail(err)
		}
		act = l.segs[len(l.segs)-1]
		size = 0
	}
	base := l.nextOffset
	start := len(act.pending)
	act.pending = append(act.pending, b...)
	batch.SetFirstOffset(act.pending[start:], base)
	if size-act.lastIdxPos >= l.cfg.IndexIntervalBytes {
		e := indexEntry{rel: uint32(base - act.base), pos: uint32(size)}
		act.entries = append(act.entries, e)
		act.idxPending = appendIndexEntry(act.idxPending, e)
		act.lastIdxPos = size
	}
	act.maxTs = max(act.maxTs, h.MaxTimestamp)
	l.nextOffset += h.Count()
	act.end = l.nextOffset
	l.prod.record(&id, base, strict)
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

func (s *seg) writePending() error {
	if len(s.pending) > 0 {
		n, err := s.f.Write(s.pending)
		s.size += int64(n)
		if err != nil {
			return fmt.Errorf("write segment %d: %w", s.base, err)
		}
		s.pending = s.pending[:0]
		s.dirty = true
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
	if err := l.Flush(); err != nil {
		return err
	}
	l.mu.RLock()
	dirty := make([]*seg, 0, 2)
	for _, s := range l.segs {
		if s.dirty {
			dirty = append(dirty, s)
		}
	}
	cp := l.checkpointLocked()
	newFiles := l.newFiles
	retired := l.retired
	l.mu.RUnlock()

	for _, s := range dirty {
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
	for _, s := range dirty {
		s.dirty = false
	}
	l.newFiles = false
	l.retired = l.retired[len(retired):]
	l.mu.Unlock()
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

// Read returns whole batches starting with the one that holds off, up to
// about maxBytes (at least one batch, however large), from one segment.
// Reading at the high watermark returns no batches; outside [log start,
// high watermark] is CodeOffsetOutOfRange.
func (l *Log) Read(off int64, maxBytes int) (eddy.FetchedBatches, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	res := eddy.FetchedBatches{LogStart: l.logStart, HighWatermark: l.visibleEnd}
	if l.segs == nil {
		return res, ErrClosed
	}
	if off < l.logStart || off > l.visibleEnd {
		return res, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is outside [%d, %d]", off, l.logStart, l.visibleEnd)
	}
	if off == l.visibleEnd {
		return res, nil
	}
	i := len(l.segs) - 1
	for i > 0 && l.segs[i].base > off {
		i--
	}
	s := l.segs[i]
	pos, err := s.lookup(off)
	if err != nil {
		return res, err
	}
	hb := make([]byte, batch.HeaderLen)
	for {
		if pos >= s.size {
			return res, eddy.Errorf(eddy.CodeCorrupt, "segment %d: offset %d not found", s.base, off)
		}
		if _, err := s.f.ReadAt(hb, pos); err != nil {
			return res, eddy.Errorf(eddy.CodeCorrupt, "segment %d: read header at %d: %v", s.base, pos, err)
		}
		h, err := batch.ParseHeader(hb)
		if err != nil {
			return res, eddy.Errorf(eddy.CodeCorrupt, "segment %d at %d: %v", s.base, pos, err)
		}
		if h.LastOffset() >= off {
			maxBytes = max(maxBytes, h.Size())
			break
		}
		pos += int64(h.Size())
	}
	n := min(int64(maxBytes), s.size-pos)
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, pos); err != nil && err != io.EOF {
		return res, fmt.Errorf("read segment %d: %w", s.base, err)
	}
	// Keep whole batches below the high watermark, each checked. A damaged
	// batch ends the answer: the good batches before it are returned, and
	// a read that starts at it is refused, saying where it is and where
	// the next batch starts, so a consumer can decide to skip it.
	keep := 0
	for keep+batch.HeaderLen <= len(buf) {
		h, err := batch.ParseHeader(buf[keep:])
		if err != nil {
			if keep > 0 {
				break
			}
			return res, eddy.Errorf(eddy.CodeCorrupt, "the batch holding offset %d is damaged (segment %d at position %d: %v)", off, s.base, pos, err)
		}
		if h.FirstOffset >= l.visibleEnd {
			break
		}
		if keep+h.Size() > len(buf) {
			if keep == 0 { // buf holds the rest of the segment, or h.Size()
				return res, eddy.Errorf(eddy.CodeCorrupt, "the batch of offsets %d to %d is damaged (its length runs past its segment); the next batch starts at offset %d",
					h.FirstOffset, h.LastOffset(), h.LastOffset()+1)
			}
			break
		}
		if _, err := batch.Check(buf[keep:]); err != nil {
			if keep > 0 {
				break
			}
			return res, eddy.Errorf(eddy.CodeCorrupt, "the batch of offsets %d to %d fails its checksum (%v); the next batch starts at offset %d",
				h.FirstOffset, h.LastOffset(), err, h.LastOffset()+1)
		}
		keep += h.Size()
	}
	res.Batches = buf[:keep]
	return res, nil
}

// lookup returns the file position to start scanning for off.
func (s *seg) lookup(off int64) (int64, error) {
	rel := uint32(off - s.base)
	if s.entries != nil {
		return floorPos(s.entries, rel), nil
	}
	// Sealed: binary search the index file.
	size, err := s.idx.Size()
	if err != nil {
		return 0, err
	}
	n := int(size / indexEntryLen)
	lo, hi := 0, n // find the first entry with rel > target
	var b [indexEntryLen]byte
	for lo < hi {
		mid := (lo + hi) / 2
		if _, err := s.idx.ReadAt(b[:], int64(mid)*indexEntryLen); err != nil {
			return 0, fmt.Errorf("read index %d: %w", s.base, err)
		}
		if binary.BigEndian.Uint32(b[:]) > rel {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return 0, nil
	}
	if _, err := s.idx.ReadAt(b[:], int64(lo-1)*indexEntryLen); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint32(b[4:])), nil
}
