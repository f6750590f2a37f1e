package segment

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"path/filepath"

	"github.com/eddy-broker/eddy"
)

// A snapshot stream is the whole partition log:
//
//	"EDSN" | u32 meta length | meta (checkpoint JSON) | each segment's bytes,
//	oldest first, exactly meta.Segments[i].Size each | u32 CRC-32C of all
//	that precedes it.
//
// Indexes are not sent; the receiver rebuilds them.
const snapshotMagic = "EDSN"

// Snapshot is a point-in-time view of a log that can be streamed while the
// log keeps appending: segments are append-only and the snapshot reads them
// through its own handles, so retention deleting a file does not disturb it.
type Snapshot struct {
	meta  checkpoint
	files []File
}

// Snapshot captures the log's current state. It must not run concurrently
// with Append (dragonboat calls PrepareSnapshot between Updates). Close the
// snapshot when done.
func (l *Log) Snapshot() (*Snapshot, error) {
	if err := l.Flush(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	snap := &Snapshot{meta: *l.checkpointLocked()}
	for _, s := range l.segs {
		f, err := l.fs.Open(segName(l.dir, s.base, ".log"))
		if err != nil {
			snap.Close()
			return nil, fmt.Errorf("snapshot: open segment %d: %w", s.base, err)
		}
		snap.files = append(snap.files, f)
	}
	return snap, nil
}

// Applied is the Raft index the snapshot reflects.
func (s *Snapshot) Applied() uint64 { return s.meta.Applied }

// Close releases the snapshot's file handles.
func (s *Snapshot) Close() error {
	for _, f := range s.files {
		f.Close()
	}
	s.files = nil
	return nil
}

// WriteTo streams the snapshot to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	crc := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	meta, _ := json.Marshal(&s.meta)
	hdr := append([]byte(snapshotMagic), binary.BigEndian.AppendUint32(nil, uint32(len(meta)))...)
	if _, err := cw.Write(append(hdr, meta...)); err != nil {
		return cw.n, err
	}
	buf := make([]byte, 256<<10)
	for i, f := range s.files {
		size := s.meta.Segments[i].Size
		for off := int64(0); off < size; {
			n := min(int64(len(buf)), size-off)
			if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
				return cw.n, fmt.Errorf("snapshot: read segment %d: %w", s.meta.Segments[i].Base, err)
			}
			if _, err := cw.Write(buf[:n]); err != nil {
				return cw.n, err
			}
			off += n
		}
	}
	n, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return cw.n + int64(n), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type crcReader struct {
	r   io.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

// Restore replaces the log in dir with the snapshot read from r. It builds
// the new log beside the old one (dir + ".restore"), makes it durable, then
// swaps it in; a crash at any point leaves either the old log or the new one
// (Open finishes an interrupted swap). The log in dir must be closed.
func Restore(fsys FS, dir string, r io.Reader) error {
	tmp := dir + ".restore"
	parent := filepath.Dir(dir)
	if err := mkdirAllDurable(fsys, parent); err != nil {
		return err
	}
	if err := fsys.RemoveAll(tmp); err != nil {
		return err
	}
	if err := fsys.MkdirAll(tmp); err != nil {
		return err
	}
	cr := &crcReader{r: r, crc: crc32.New(castagnoli)}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(cr, hdr); err != nil {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: header: %w", err)
	}
	if string(hdr[:4]) != snapshotMagic {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: bad magic %q", hdr[:4])
	}
	metaLen := binary.BigEndian.Uint32(hdr[4:])
	if metaLen > 64<<20 {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: meta length %d", metaLen)
	}
	metaB := make([]byte, metaLen)
	if _, err := io.ReadFull(cr, metaB); err != nil {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: meta: %w", err)
	}
	var meta checkpoint
	if err := json.Unmarshal(metaB, &meta); err != nil || meta.Version != 1 || len(meta.Segments) == 0 {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: bad meta (%v)", err)
	}
	for _, m := range meta.Segments {
		f, err := fsys.Create(segName(tmp, m.Base, ".log"))
		if err != nil {
			return err
		}
		if _, err := io.CopyN(fileWriter{f}, cr, m.Size); err != nil {
			f.Close()
			return eddy.Errorf(eddy.CodeCorrupt, "snapshot: segment %d: %w", m.Base, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
	want := cr.crc.Sum32()
	tail := make([]byte, 4)
	if _, err := io.ReadFull(r, tail); err != nil {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: trailer: %w", err)
	}
	if binary.BigEndian.Uint32(tail) != want {
		return eddy.Errorf(eddy.CodeCorrupt, "snapshot: CRC mismatch")
	}
	// The checkpoint in tmp marks the new log complete.
	if err := writeFileAtomic(fsys, filepath.Join(tmp, checkpointName), encodeCheckpoint(&meta)); err != nil {
		return err
	}
	if err := fsys.SyncDir(parent); err != nil {
		return err
	}
	return finishRestore(fsys, dir)
}

// finishRestore completes a swap that Restore started: a complete
// dir.restore replaces dir; an incomplete one is discarded.
func finishRestore(fsys FS, dir string) error {
	tmp := dir + ".restore"
	if !exists(fsys, tmp) {
		return nil
	}
	if !exists(fsys, filepath.Join(tmp, checkpointName)) {
		return fsys.RemoveAll(tmp)
	}
	if err := fsys.RemoveAll(dir); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, dir); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(dir))
}

type fileWriter struct{ f File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }
