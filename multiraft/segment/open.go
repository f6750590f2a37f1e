package segment

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
)

// Opening a log: the checkpoint, recovery of what a crash tore, and
// each segment's index, rebuilt when missing or inconsistent.

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
	l.durableBase = cp.Segments[len(cp.Segments)-1].Base
	l.prod.load(cp.Producers)
	for i, m := range cp.Segments {
		active := i == len(cp.Segments)-1
		s, err := l.openSeg(m, active)
		if err != nil {
			return err
		}
		if n := len(l.segs); n > 0 && l.segs[n-1].resized && l.segs[n-1].end != s.base {
			s.close()
			return eddy.Errorf(eddy.CodeCorrupt, "%s: compacted segment %d ends at offset %d, the next begins at %d", l.dir, l.segs[n-1].base, l.segs[n-1].end, s.base)
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
	resized := false
	if size != m.Size && !active {
		// A sealed segment never changes but by compaction (Compact),
		// after the checkpoint here: scanned whole below, and recover
		// checks it ends where the next segment begins.
		if size < batch.HeaderLen {
			f.Close()
			return nil, eddy.Errorf(eddy.CodeCorrupt, "segment %s is %d bytes, checkpoint synced %d", name, size, m.Size)
		}
		m.Size, resized = size, true
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
	if !active && !resized {
		if b, err := readAll(l.fs, idxName); err == nil {
			entries, valid = parseIndex(b, s.size, 1<<32)
		}
	}
	s.resized = resized
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
		if pos == 0 {
			s.firstTs = h.MaxTimestamp
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
