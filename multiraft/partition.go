package multiraft

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// Partition shard commands. The first byte is the op.
//
//	opAppend:       op | flags | [source count int32 | source CRC uint32] | one Kafka v2 RecordBatch
//	opDeleteBefore: op | offset int64
//	opConsume:      op | producer id int64 | epoch int16 | base sequence int32 | count int32 | CRC uint32
//	                (a producer's batch consumed whole on its way in: segment.Log.Consume)
const (
	opAppend       byte = 1
	opDeleteBefore byte = 2
	opConsume      byte = 3

	flagStrict byte = 1 // Kafka idempotence rules (see segment.producers)
	flagSource byte = 2 // the batch was made from another (segment.Source follows the flags)
)

// Result.Value of an entry: the base offset on success (for opConsume the
// base offset + 1: 0 when nothing was appended); resultRefused with the
// error in Data when the state machine refused the command.
const resultRefused = ^uint64(0)

func encodeAppend(dst []byte, strict bool) []byte {
	var flags byte
	if strict {
		flags |= flagStrict
	}
	return append(dst, opAppend, flags)
}

// encodeAppendFrom starts a non-strict append of a batch made from a
// producer's batch src identifies.
func encodeAppendFrom(dst []byte, src segment.Source) []byte {
	dst = append(dst, opAppend, flagSource)
	dst = binary.BigEndian.AppendUint32(dst, uint32(src.Count))
	return binary.BigEndian.AppendUint32(dst, src.CRC)
}

const consumeLen = 1 + 8 + 2 + 4 + 4 + 4

func encodeConsume(h batch.Header) []byte {
	b := append(make([]byte, 0, consumeLen), opConsume)
	b = binary.BigEndian.AppendUint64(b, uint64(h.ProducerID))
	b = binary.BigEndian.AppendUint16(b, uint16(h.ProducerEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(h.BaseSequence))
	b = binary.BigEndian.AppendUint32(b, uint32(h.NumRecords))
	return binary.BigEndian.AppendUint32(b, h.CRC)
}

func decodeConsume(b []byte) batch.Header {
	return batch.Header{ProducerID: int64(binary.BigEndian.Uint64(b[1:])), ProducerEpoch: int16(binary.BigEndian.Uint16(b[9:])),
		BaseSequence: int32(binary.BigEndian.Uint32(b[11:])), NumRecords: int32(binary.BigEndian.Uint32(b[15:])), CRC: binary.BigEndian.Uint32(b[19:])}
}

func encodeDeleteBefore(off int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{opDeleteBefore}, uint64(off))
}

// partitionSM is one partition replica: an IOnDiskStateMachine over a
// segment.Log. Update assigns offsets; everything else is the log's.
//
// Concurrency (dragonboat's contract): Update, Sync, PrepareSnapshot and
// RecoverFromSnapshot never run concurrently with each other; Lookup and
// SaveSnapshot may run concurrently with any of them. The read side here
// (log()) is used by fetches directly, without going through Lookup.
type partitionSM struct {
	fs      segment.FS
	dir     string
	cfg     segment.Config
	shardID uint64

	mu  sync.RWMutex
	lg  *segment.Log
	err error // set when the log could not be opened or recovered
	// pre is the log the host opened before starting the replica (a
	// restart); Open takes it instead of opening the directory again.
	pre *segment.Log

	// unsynced counts bytes applied since the last Sync; lastSync is when
	// that Sync ran, lastApply when entries were last applied (unix ns).
	// The host's sync policy reads them.
	unsynced        atomic.Int64
	unsyncedEntries atomic.Int64
	lastSync        atomic.Int64
	lastApply       atomic.Int64

	// onRestore is called after RecoverFromSnapshot replaced the log.
	onRestore func(lg *segment.Log, err error)

	// syncDue is called when an Update takes unsynced past a multiple of
	// syncBytes (so again when the sync it asked for was refused, one
	// being under way): the host syncs at once rather than at its next
	// tick, so the Raft log is compacted before the log store flushes it
	// to its tables (pebble drops entries a compaction deleted while they
	// were still in its memtable; after a flush it writes them twice
	// more). It must not block.
	syncBytes int64
	syncDue   func()
	onSync    func(time.Duration) // how long a Sync held the applies
}

var _ sm.IOnDiskStateMachine = (*partitionSM)(nil)

func (p *partitionSM) Open(stopc <-chan struct{}) (uint64, error) {
	p.lastSync.Store(time.Now().UnixNano())
	lg, err := p.pre, error(nil)
	p.pre = nil
	if lg == nil {
		lg, err = segment.Open(p.fs, p.dir, p.cfg)
	}
	if err != nil {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		return 0, err
	}
	p.mu.Lock()
	p.lg = lg
	p.mu.Unlock()
	return lg.Applied(), nil
}

// log returns the open log, or an unavailable error.
func (p *partitionSM) log() (*segment.Log, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.lg == nil {
		if p.err != nil {
			return nil, eddy.Errorf(eddy.CodeUnavailable, "partition log failed: %v", p.err)
		}
		return nil, eddy.Errorf(eddy.CodeUnavailable, "partition is starting")
	}
	return p.lg, nil
}

func (p *partitionSM) Update(ents []sm.Entry) ([]sm.Entry, error) {
	lg, err := p.log()
	if err != nil {
		return nil, err
	}
	records, bytes, nudges := 0, 0, 0
	for i := range ents {
		e := &ents[i]
		cmd := e.Cmd
		switch {
		case len(cmd) >= 2 && cmd[0] == opAppend:
			body, src := cmd[2:], (*segment.Source)(nil)
			if cmd[1]&flagSource != 0 && len(body) >= 8 {
				src = &segment.Source{Count: int32(binary.BigEndian.Uint32(body)), CRC: binary.BigEndian.Uint32(body[4:])}
				body = body[8:]
			}
			res, err := lg.AppendFrom(body, cmd[1]&flagStrict != 0, src)
			if err != nil {
				return nil, err // I/O failure: dragonboat stops the node
			}
			if res.Err != nil {
				e.Result = refused(res.Err)
			} else {
				e.Result = sm.Result{Value: uint64(res.BaseOffset)}
				if !res.Duplicate {
					records += int(res.Count)
					bytes += len(cmd) - 2
				}
			}
		case len(cmd) == consumeLen && cmd[0] == opConsume:
			res, err := lg.Consume(decodeConsume(cmd))
			if err != nil {
				return nil, err
			}
			if res.Err != nil {
				e.Result = refused(res.Err)
			} else {
				e.Result = sm.Result{Value: uint64(res.BaseOffset + 1)}
			}
		case len(cmd) == 9 && cmd[0] == opDeleteBefore:
			off := int64(binary.BigEndian.Uint64(cmd[1:]))
			e.Result = sm.Result{Value: uint64(lg.DeleteBefore(off))}
			if off == 0 {
				nudges++ // nudgeIdle's no-op
			}
		default:
			e.Result = refused(eddy.Errorf(eddy.CodeInvalid, "partition: unknown command"))
		}
		lg.SetApplied(e.Index)
	}
	if err := lg.Flush(); err != nil {
		return nil, err
	}
	if n := p.unsynced.Add(int64(bytes)); p.syncDue != nil && n/p.syncBytes > (n-int64(bytes))/p.syncBytes {
		p.syncDue()
	}
	if nudges < len(ents) {
		// The host's no-op (nudgeIdle) is not activity: the partition
		// stays idle and syncs it at the next tick.
		p.lastApply.Store(time.Now().UnixNano())
	}
	p.unsyncedEntries.Add(int64(len(ents)))
	return ents, nil
}

func refused(e *eddy.Error) sm.Result {
	b, _ := json.Marshal(catalog.ResultErr{Code: e.Code, Message: e.Message})
	return sm.Result{Value: resultRefused, Data: b}
}

// resultError decodes a refused result.
func resultError(r sm.Result) error {
	var re catalog.ResultErr
	if err := json.Unmarshal(r.Data, &re); err != nil {
		return eddy.Errorf(eddy.CodeInternal, "undecodable refusal")
	}
	return &eddy.Error{Code: re.Code, Message: re.Message}
}

// offsetsQuery asks Lookup for [log start, high watermark].
type offsetsQuery struct{}

func (p *partitionSM) Lookup(q any) (any, error) {
	lg, err := p.log()
	if err != nil {
		return nil, err
	}
	switch q.(type) {
	case offsetsQuery:
		s, e := lg.Offsets()
		return [2]int64{s, e}, nil
	}
	return nil, errors.New("eddy: unknown partition query")
}

func (p *partitionSM) Sync() error {
	lg, err := p.log()
	if err != nil {
		return err
	}
	n, e := p.unsynced.Load(), p.unsyncedEntries.Load()
	start := time.Now()
	if err := lg.Sync(); err != nil {
		return err
	}
	if p.onSync != nil {
		p.onSync(time.Since(start))
	}
	p.unsynced.Add(-n)
	p.unsyncedEntries.Add(-e)
	p.lastSync.Store(time.Now().UnixNano())
	return nil
}

// writeback writes the segments' data back ahead of a Sync, beside the
// applies (segment.Log.Writeback); an error fails the next Sync.
func (p *partitionSM) writeback() {
	if lg, err := p.log(); err == nil {
		lg.Writeback()
	}
}

func (p *partitionSM) PrepareSnapshot() (any, error) {
	lg, err := p.log()
	if err != nil {
		return nil, err
	}
	return lg.Snapshot()
}

func (p *partitionSM) SaveSnapshot(ctx any, w io.Writer, stopc <-chan struct{}) error {
	snap := ctx.(*segment.Snapshot)
	defer snap.Close()
	_, err := snap.WriteTo(&stopWriter{w: w, stopc: stopc})
	return err
}

func (p *partitionSM) RecoverFromSnapshot(r io.Reader, stopc <-chan struct{}) error {
	// Readers get "unavailable" while the log is replaced, not a stall.
	p.mu.Lock()
	old := p.lg
	p.lg, p.err = nil, nil
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	lg, err := func() (*segment.Log, error) {
		if err := segment.Restore(p.fs, p.dir, r); err != nil {
			return nil, err
		}
		return segment.Open(p.fs, p.dir, p.cfg)
	}()
	p.mu.Lock()
	p.lg, p.err = lg, err
	p.mu.Unlock()
	p.lastSync.Store(time.Now().UnixNano())
	if p.onRestore != nil {
		p.onRestore(lg, err)
	}
	return err
}

func (p *partitionSM) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lg != nil {
		p.lg.Close()
	}
	p.err = segment.ErrClosed
	p.lg = nil
	return nil
}

// stopWriter aborts a snapshot stream when the node stops.
type stopWriter struct {
	w     io.Writer
	stopc <-chan struct{}
}

func (s *stopWriter) Write(b []byte) (int, error) {
	select {
	case <-s.stopc:
		return 0, sm.ErrSnapshotStopped
	default:
	}
	return s.w.Write(b)
}
