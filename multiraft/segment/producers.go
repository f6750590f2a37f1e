package segment

import (
	"sort"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
)

// Producer state makes retries safe. dragonboat has no client sessions for
// on-disk state machines, so a proposal that timed out may still commit; the
// proposer then retries the same batch (same producer id and sequence) and
// the log answers with the offsets it already assigned instead of appending
// twice. Kafka keeps the same state for the same reason.
//
// Two rules, chosen per batch by the proposer:
//
//   - Strict (Kafka idempotent producers): a producer's batches must arrive
//     with contiguous sequences; a gap is refused (out of order) and an
//     older epoch is fenced. The last 5 batches are remembered, as in Kafka.
//     A producer not remembered (new, or evicted) may start at any
//     sequence (KIP-360): a client whose state here expired is not made to
//     reset, which would cost it duplicates.
//   - Windowed (the node's own group-commit proposer, which keeps several
//     proposals in flight and may see one dropped while the next commits):
//     gaps are allowed; a sequence inside the remembered window of the last
//     windowSize batches is a duplicate if seen and new otherwise; older is
//     refused.
//
// Everything here is deterministic: replicas apply the same batches in the
// same order and reach the same state.

// DedupWindow is how many of a windowed producer's batches are
// remembered: the node's proposers keep fewer than that in flight.
const DedupWindow = windowSize

const (
	strictWindow = 5
	windowSize   = 16
	// MaxProducers bounds the producers remembered per partition. When full,
	// the one that appended least recently is forgotten (deterministically).
	MaxProducers = 4096
)

type seqBatch struct {
	BaseSeq    int32  `json:"s"`
	Count      int32  `json:"n"`
	BaseOffset int64  `json:"o"`           // -1: consumed, nothing appended
	CRC        uint32 `json:"c,omitempty"` // 0 in state written before it was kept
}

type producerState struct {
	ID         int64      `json:"id"`
	Epoch      int16      `json:"e"`
	LastOffset int64      `json:"l"` // last offset appended, for eviction order
	Batches    []seqBatch `json:"b"` // oldest first
}

type producers struct {
	m map[int64]*producerState
}

func newProducers() *producers { return &producers{m: map[int64]*producerState{}} }

// dedupResult is what check decided.
type dedupResult struct {
	duplicate  bool
	baseOffset int64 // for a duplicate: the offset first assigned
}

// check decides whether a batch from h's producer is new, a duplicate, or
// refused. It changes nothing.
func (p *producers) check(h *batch.Header, strict bool) (dedupResult, error) {
	if h.ProducerID < 0 {
		return dedupResult{}, nil
	}
	st, ok := p.m[h.ProducerID]
	if !ok {
		return dedupResult{}, nil
	}
	if h.ProducerEpoch < st.Epoch {
		return dedupResult{}, eddy.Errorf(eddy.CodeProducerFenced, "producer %d: epoch %d is fenced by epoch %d", h.ProducerID, h.ProducerEpoch, st.Epoch)
	}
	if h.ProducerEpoch > st.Epoch {
		if strict && h.BaseSequence != 0 {
			return dedupResult{}, eddy.Errorf(eddy.CodeOutOfOrderSequence, "producer %d: new epoch %d must start at sequence 0, got %d", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return dedupResult{}, nil
	}
	for _, b := range st.Batches {
		if b.BaseSeq == h.BaseSequence {
			if b.Count != h.NumRecords {
				return dedupResult{}, eddy.Errorf(eddy.CodeConflict, "producer %d: sequence %d was %d records, retry has %d", h.ProducerID, h.BaseSequence, b.Count, h.NumRecords)
			}
			// A retry resends the same bytes. Different content under a
			// used sequence is a producer bug (a reused sequence), and
			// answering it with the earlier offset would acknowledge a
			// write that is not stored.
			if b.CRC != 0 && b.CRC != h.CRC {
				return dedupResult{}, eddy.Errorf(eddy.CodeConflict, "producer %d: sequence %d was already used by a different batch; a retry must resend the same batch", h.ProducerID, h.BaseSequence)
			}
			return dedupResult{duplicate: true, baseOffset: b.BaseOffset}, nil
		}
	}
	if len(st.Batches) == 0 {
		return dedupResult{}, nil
	}
	last := st.Batches[len(st.Batches)-1]
	next := last.BaseSeq + last.Count
	if strict {
		if h.BaseSequence != next {
			return dedupResult{}, eddy.Errorf(eddy.CodeOutOfOrderSequence, "producer %d: out of order sequence %d, expected %d", h.ProducerID, h.BaseSequence, next)
		}
		return dedupResult{}, nil
	}
	if len(st.Batches) == windowSize && h.BaseSequence < st.Batches[0].BaseSeq {
		return dedupResult{}, eddy.Errorf(eddy.CodeConflict, "producer %d: sequence %d is older than the dedup window", h.ProducerID, h.BaseSequence)
	}
	return dedupResult{}, nil
}

// record remembers an appended batch, or (baseOffset -1) one consumed
// whole with the log ending at last.
func (p *producers) record(h *batch.Header, baseOffset int64, strict bool, last int64) {
	if h.ProducerID < 0 {
		return
	}
	st, ok := p.m[h.ProducerID]
	if !ok {
		if len(p.m) >= MaxProducers {
			p.evict()
		}
		st = &producerState{ID: h.ProducerID, Epoch: h.ProducerEpoch}
		p.m[h.ProducerID] = st
	}
	if h.ProducerEpoch > st.Epoch {
		st.Epoch = h.ProducerEpoch
		st.Batches = st.Batches[:0]
	}
	limit := windowSize
	if strict {
		limit = strictWindow
	}
	b := seqBatch{BaseSeq: h.BaseSequence, Count: h.NumRecords, BaseOffset: baseOffset, CRC: h.CRC}
	// Keep the window sorted by sequence: a windowed retry may fill a gap.
	i := sort.Search(len(st.Batches), func(i int) bool { return st.Batches[i].BaseSeq > b.BaseSeq })
	st.Batches = append(st.Batches, seqBatch{})
	copy(st.Batches[i+1:], st.Batches[i:])
	st.Batches[i] = b
	if len(st.Batches) > limit {
		st.Batches = append(st.Batches[:0], st.Batches[len(st.Batches)-limit:]...)
	}
	st.LastOffset = baseOffset + int64(h.NumRecords) - 1
	if baseOffset < 0 { // consumed: nothing appended (see Log.Consume)
		st.LastOffset = last
	}
}

func (p *producers) evict() {
	var victim *producerState
	for _, st := range p.m {
		if victim == nil || st.LastOffset < victim.LastOffset ||
			(st.LastOffset == victim.LastOffset && st.ID < victim.ID) {
			victim = st
		}
	}
	if victim != nil {
		delete(p.m, victim.ID)
	}
}

// list returns the state sorted by producer id (for checkpoints and
// snapshots, which must be byte-identical across replicas).
func (p *producers) list() []producerState {
	out := make([]producerState, 0, len(p.m))
	for _, st := range p.m {
		c := *st
		c.Batches = append([]seqBatch(nil), st.Batches...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (p *producers) load(l []producerState) {
	p.m = make(map[int64]*producerState, len(l))
	for i := range l {
		st := l[i]
		p.m[st.ID] = &st
	}
}

// A producer's batch that a transform consumed whole (every record
// dropped, or sent to its dead-letter topic) appends nothing, yet a retry
// of it must be known as well as one of a batch that was appended: the
// transform would run again and may decide otherwise (a failure that was
// dead-lettered now passes, and the records are stored after all).

// Consume remembers that the batch h identifies was consumed on its way
// in, under the windowed rules: nothing is appended. A retry of a batch
// already remembered is a duplicate with its first base offset (-1 when
// that one was consumed too).
func (l *Log) Consume(h batch.Header) (AppendResult, error) {
	if l.failed != nil {
		return AppendResult{}, l.failed
	}
	d, err := l.prod.check(&h, false)
	if err != nil {
		return AppendResult{Err: eddy.AsError(err)}, nil
	}
	if d.duplicate {
		return AppendResult{BaseOffset: d.baseOffset, Duplicate: true}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prod.record(&h, -1, false, l.nextOffset-1)
	return AppendResult{BaseOffset: -1}, nil
}

// Seen reports whether the log remembers the batch h identifies (a
// retry): its base offset then, -1 if it was consumed. It is what this
// replica has applied, so a retry racing its first attempt's commit may
// be missed; the append's own check still holds for it.
func (l *Log) Seen(h batch.Header) (int64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	d, err := l.prod.check(&h, false)
	return d.baseOffset, err == nil && d.duplicate
}
