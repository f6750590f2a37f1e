package segment

import (
	"errors"
	"fmt"
	"time"

	"github.com/eddy-broker/eddy/batch"
)

// Compaction keeps, of the sealed segments (sealed in the last checkpoint
// too: a restart truncates the active segment it names, and drops those
// rolled after it, to replay them from the Raft log), the newest record
// of each key
// (Kafka's cleanup.policy=compact). It runs beside the log's appends and
// reads, never in the Raft apply: it only drops records a newer one of
// the same key supersedes, so every replica converges on the same records
// whenever it compacts, and offsets never move. Each sealed segment is
// written again in full to <base>.log.compact.tmp (with its index), synced,
// and renamed over the old one under the log's lock; a crash leaves
// either file whole, and Open accepts a sealed segment of another size
// than its checkpoint says once it scans whole and ends where the next
// begins.

// CompactOptions bound one compaction.
type CompactOptions struct {
	// NowMs is the time tombstones are aged against.
	NowMs int64
	// DeleteRetentionMs is how long a tombstone (a null value) outlives
	// what it deleted: past it (by its batch's newest timestamp) the
	// tombstone goes too. Negative keeps tombstones.
	DeleteRetentionMs int64
	// MaxKeyBytes bounds the map of keys to their newest offset (Kafka's
	// log.cleaner.dedupe.buffer.size): the segments it could not map
	// wholly wait for the next compaction. At least 1 MiB.
	MaxKeyBytes int64
	// BytesPerSec paces the segments read; 0 does not.
	BytesPerSec int64
	// Before, when positive, leaves alone the segments that end after it
	// (what a link has not sent yet).
	Before int64
}

// CompactResult is what a compaction did.
type CompactResult struct {
	Segments    int   // rewritten
	BytesBefore int64 // of those segments
	BytesAfter  int64
	Dropped     int64 // records
	// CleanEnd is the offset up to which the log is now compacted.
	CleanEnd int64
	// MapFull reports that the key map filled before the sealed
	// segments ended.
	MapFull bool
}

// DirtyBytes is what the last compaction did not cover, and the size of
// the segments it may compact: their ratio is Kafka's dirty ratio.
func (l *Log) DirtyBytes() (dirty, sealed int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
		if s.end > l.durableBase {
			break
		}
		sealed += s.size
		if s.end > l.cleanEnd {
			dirty += s.size
		}
	}
	return dirty, sealed
}

type sealedSeg struct {
	base, end, size int64
	f               File
}

// Compact compacts the sealed segments. One compaction at a time per log;
// it may run concurrently with everything else, Close included (which it
// outlives only by the batch in hand).
func (l *Log) Compact(opt CompactOptions) (CompactResult, error) {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	opt.MaxKeyBytes = max(opt.MaxKeyBytes, 1<<20)
	segs, err := l.openSealed(opt.Before)
	// The keys are mapped from where the last compaction ended: before
	// it each key has one record at most, so only a newer one can
	// supersede it (as Kafka's cleaner maps the dirty part of a log).
	cleanEnd, dirty := l.cleanEndNow(), 0
	for dirty < len(segs) && segs[dirty].end <= cleanEnd {
		dirty++
	}
	defer func() {
		for _, s := range segs {
			s.f.Close()
		}
	}()
	if err != nil || dirty == len(segs) {
		return CompactResult{CleanEnd: cleanEnd}, err
	}
	p := pacer{rate: opt.BytesPerSec, start: time.Now()}
	keys, mapped, full, err := l.mapKeys(segs[dirty:], opt.MaxKeyBytes, &p)
	res := CompactResult{MapFull: full}
	if err != nil || mapped == 0 {
		return res, err
	}
	mapped += dirty
	for _, s := range segs[:mapped] {
		if l.closed.Load() {
			return res, ErrClosed
		}
		r, swapped, err := l.compactSeg(s, keys, opt, &p)
		if err != nil {
			return res, err
		}
		if swapped {
			res.Segments++
			res.BytesBefore += r.BytesBefore
			res.BytesAfter += r.BytesAfter
			res.Dropped += r.Dropped
		}
	}
	res.CleanEnd = segs[mapped-1].end
	l.mu.Lock()
	l.cleanEnd = max(l.cleanEnd, res.CleanEnd)
	l.mu.Unlock()
	return res, nil
}

func (l *Log) cleanEndNow() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cleanEnd
}

// openSealed opens its own handle on each sealed segment, so that
// retention removing one does not disturb the compaction.
func (l *Log) openSealed(before int64) ([]sealedSeg, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.failed != nil {
		return nil, l.failed
	}
	var out []sealedSeg
	for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
		if s.end > l.durableBase || (before > 0 && s.end > before) {
			break // not sealed in the checkpoint a restart reads, or not yet sent by a link
		}
		f, err := l.fs.Open(segName(l.dir, s.base, ".log"))
		if err != nil {
			return out, fmt.Errorf("compact: open segment %d: %w", s.base, err)
		}
		out = append(out, sealedSeg{base: s.base, end: s.end, size: s.size, f: f})
	}
	return out, nil
}

// keyOverhead is what a map entry costs beside its key's bytes.
const keyOverhead = 48

// mapKeys maps each key of the sealed segments to its newest offset, up
// to maxBytes of map; mapped is how many segments it covered wholly (the
// keys of the one it stopped in are kept: they are newer still).
func (l *Log) mapKeys(segs []sealedSeg, maxBytes int64, p *pacer) (keys map[string]int64, mapped int, full bool, err error) {
	keys = map[string]int64{}
	var used int64
	for i, s := range segs {
		err := eachBatch(s, p, func(_ batch.Header, b []byte) error {
			_, _, _, err := batch.Filter(nil, b, func(off int64, key []byte, _ bool) bool {
				if key == nil {
					return true
				}
				if _, ok := keys[string(key)]; !ok {
					used += int64(len(key)) + keyOverhead
				}
				keys[string(key)] = off
				return true
			})
			if used > maxBytes {
				return errMapFull
			}
			return err
		})
		if err == errMapFull {
			return keys, i, true, nil
		}
		if err != nil {
			return nil, 0, false, err
		}
		if l.closed.Load() {
			return nil, 0, false, ErrClosed
		}
	}
	return keys, len(segs), false, nil
}

var errMapFull = errors.New("key map full")

// compactSeg writes s again without its superseded records, and swaps it
// in if it came out smaller.
func (l *Log) compactSeg(s sealedSeg, keys map[string]int64, opt CompactOptions, p *pacer) (res CompactResult, swapped bool, err error) {
	res.BytesBefore = s.size
	tmpLog := segName(l.dir, s.base, ".log.compact.tmp")
	tmpIdx := segName(l.dir, s.base, ".index.compact.tmp")
	w, err := newSegWriter(l.fs, tmpLog, tmpIdx, s.base, l.cfg.IndexIntervalBytes)
	if err != nil {
		return res, false, err
	}
	defer w.abort()
	var run emptyRun
	err = eachBatch(s, p, func(h batch.Header, b []byte) error {
		tombstoneExpired := opt.DeleteRetentionMs >= 0 && h.MaxTimestamp < opt.NowMs-opt.DeleteRetentionMs
		out, kept, dropped, err := batch.Filter(w.buf[:0], b, func(off int64, key []byte, tomb bool) bool {
			if key == nil {
				return true
			}
			if keys[string(key)] > off {
				return false
			}
			return !(tomb && tombstoneExpired)
		})
		if err != nil {
			return err
		}
		if dropped {
			res.Dropped += int64(h.NumRecords) - int64(kept)
		}
		if kept == 0 {
			return run.add(w, h)
		}
		if err := run.flush(w); err != nil {
			return err
		}
		if dropped {
			w.buf = out
			return w.write(h.FirstOffset, out)
		}
		return w.write(h.FirstOffset, b)
	})
	if err == nil {
		err = run.flush(w)
	}
	if err != nil {
		return res, false, err
	}
	res.BytesAfter = w.size
	if res.Dropped == 0 && w.size >= s.size {
		res.BytesAfter = s.size
		return res, false, nil // unchanged: the segment stays as it is
	}
	// Swapped in whenever a record went, even if it came out no smaller
	// (a compressed batch of fewer records, pathologically): a superseded
	// value left beside a tombstone dropped later would come back.
	if err := w.finish(); err != nil {
		return res, false, err
	}
	if swapped, err = l.swap(s, w, tmpLog, tmpIdx); !swapped {
		res.BytesAfter = s.size
	}
	return res, swapped, err
}

// swap renames the compacted segment over s, if s is still live and
// unchanged.
func (l *Log) swap(s sealedSeg, w *segWriter, tmpLog, tmpIdx string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return false, l.failed
	}
	at := -1
	for i, ls := range l.segs[:len(l.segs)-1] {
		if ls.base == s.base && ls.size == s.size {
			at = i
		}
	}
	if at < 0 {
		return false, nil // retention took it meanwhile
	}
	live := l.segs[at]
	if err := l.fs.Rename(tmpLog, segName(l.dir, s.base, ".log")); err != nil {
		return false, fmt.Errorf("compact: %w", err)
	}
	// From here the file is the compacted one; a failure leaves the log
	// to be reopened, which scans a sealed segment of another size than its checkpoint says.
	// The directory is synced between the renames so that no crash finds
	// the new index beside the old segment.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return false, l.fail(fmt.Errorf("compact: %w", err))
	}
	if err := l.fs.Rename(tmpIdx, segName(l.dir, s.base, ".index")); err != nil {
		return false, l.fail(fmt.Errorf("compact: %w", err))
	}
	f, err := l.fs.OpenRW(segName(l.dir, s.base, ".log"))
	if err != nil {
		return false, l.fail(fmt.Errorf("compact: %w", err))
	}
	idx, err := l.fs.OpenRW(segName(l.dir, s.base, ".index"))
	if err != nil {
		f.Close()
		return false, l.fail(fmt.Errorf("compact: %w", err))
	}
	// A new seg, not the old one changed: a Writeback may hold the old
	// one (and finds its files closed, as a retired segment's).
	ns := &seg{base: live.base, f: f, idx: idx, size: w.size, end: live.end, maxTs: live.maxTs, lastIdxPos: live.lastIdxPos}
	ns.drop(w.size) // written and synced: nobody reads it soon
	l.segs[at] = ns
	live.close()
	l.newFiles = true // the renames: the next Sync syncs the directory
	w.done = true
	return true, nil
}

// eachBatch calls fn with each batch of s, checked, in order.
func eachBatch(s sealedSeg, p *pacer, fn func(batch.Header, []byte) error) error {
	buf := make([]byte, 0, 64<<10)
	var hb [batch.HeaderLen]byte
	for pos := int64(0); pos < s.size; {
		if _, err := s.f.ReadAt(hb[:], pos); err != nil {
			return fmt.Errorf("compact: segment %d at %d: %w", s.base, pos, err)
		}
		h, err := batch.ParseHeader(hb[:])
		if err != nil {
			return fmt.Errorf("compact: segment %d at %d: %w", s.base, pos, err)
		}
		if cap(buf) < h.Size() {
			buf = make([]byte, h.Size())
		}
		b := buf[:h.Size()]
		if n, err := s.f.ReadAt(b, pos); n < len(b) {
			return fmt.Errorf("compact: segment %d at %d: %w", s.base, pos, err)
		}
		if _, err := batch.Check(b); err != nil {
			return fmt.Errorf("compact: segment %d at %d: %w", s.base, pos, err)
		}
		if err := fn(h, b); err != nil {
			return err
		}
		pos += int64(h.Size())
		p.wait(int64(h.Size()))
		if pos&(8<<20-1) < int64(h.Size()) {
			s.f.DropCache(0, pos) // read once: leave the page cache to the live data
		}
	}
	return nil
}

// emptyRun is a run of batches left with no records, to be written as
// one empty batch.
type emptyRun struct {
	n              int
	first, last    int64
	firstTs, maxTs int64
}

func (r *emptyRun) add(w *segWriter, h batch.Header) error {
	if r.n > 0 && h.LastOffset()-r.first > 1<<30 {
		if err := r.flush(w); err != nil {
			return err
		}
	}
	if r.n == 0 {
		r.first, r.firstTs, r.maxTs = h.FirstOffset, h.FirstTimestamp, h.MaxTimestamp
	}
	r.n++
	r.last = h.LastOffset()
	r.maxTs = max(r.maxTs, h.MaxTimestamp)
	return nil
}

func (r *emptyRun) flush(w *segWriter) error {
	if r.n == 0 {
		return nil
	}
	r.n = 0
	var b [batch.HeaderLen]byte
	return w.write(r.first, batch.AppendEmpty(b[:0], r.first, r.last, r.firstTs, r.maxTs))
}

// segWriter writes a segment and its sparse index to temporary files.
type segWriter struct {
	fs                FS
	logName, idxName  string
	f, idx            File
	base, size        int64
	interval, lastIdx int64
	pending, idxBuf   []byte
	buf               []byte
	done              bool
}

func newSegWriter(fsys FS, logName, idxName string, base, interval int64) (*segWriter, error) {
	f, err := fsys.Create(logName)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	idx, err := fsys.Create(idxName)
	if err != nil {
		f.Close()
		fsys.Remove(logName)
		return nil, fmt.Errorf("compact: %w", err)
	}
	return &segWriter{fs: fsys, logName: logName, idxName: idxName, f: f, idx: idx, base: base,
		interval: interval, lastIdx: -interval}, nil
}

func (w *segWriter) write(first int64, b []byte) error {
	if w.size-w.lastIdx >= w.interval {
		w.idxBuf = appendIndexEntry(w.idxBuf, indexEntry{rel: uint32(first - w.base), pos: uint32(w.size)})
		w.lastIdx = w.size
	}
	w.pending = append(w.pending, b...)
	w.size += int64(len(b))
	if len(w.pending) >= 256<<10 {
		return w.writePending()
	}
	return nil
}

func (w *segWriter) writePending() error {
	if _, err := w.f.Write(w.pending); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	w.pending = w.pending[:0]
	return nil
}

// finish writes and syncs both files.
func (w *segWriter) finish() error {
	if err := w.writePending(); err != nil {
		return err
	}
	if _, err := w.idx.Write(w.idxBuf); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := w.idx.Sync(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}

// abort closes the files and, unless they were swapped in, removes them.
func (w *segWriter) abort() {
	w.f.Close()
	w.idx.Close()
	if !w.done {
		w.fs.Remove(w.logName)
		w.fs.Remove(w.idxName)
	}
}

// pacer holds a compaction to rate bytes a second.
type pacer struct {
	rate  int64
	start time.Time
	n     int64
}

func (p *pacer) wait(n int64) {
	if p.rate <= 0 {
		return
	}
	p.n += n
	if ahead := time.Duration(p.n*int64(time.Second)/p.rate) - time.Since(p.start); ahead > time.Millisecond {
		time.Sleep(ahead)
	}
}
