package multiraft

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
)

// proposer is a partition's group-commit accumulator. Produce requests queue
// here; one goroutine packs queued requests into a single record batch (one
// Raft proposal), with up to MaxInFlight proposals outstanding. By default
// (Linger 0) the commit is adaptive: the queue is proposed at once when
// nothing is in flight, and otherwise when a proposal finishes or the
// queue fills a batch (see adapt). With a Linger, a batch that is not full
// waits that long since its oldest request. Either way load itself makes
// batches larger: the cost is per proposal (a Raft round and an fsync), not
// per byte.
//
// Every batch carries the node's producer id and a per-partition sequence. A
// proposal whose outcome is unknown (timeout, dropped) is retried with the
// same bytes; the state machine recognises the sequence and answers with
// the offsets it assigned the first time, so a retry never duplicates.
//
// The queue is bounded by records and bytes; a request that does not fit is
// refused at once with CodeBackpressure (HTTP 429), never dropped silently.
type proposer struct {
	h             *Host
	shardID       uint64
	logAppendTime bool

	mu       sync.Mutex
	q        []*produceReq
	qRecords int
	qBytes   int
	seq      int32
	closed   bool
	wake     chan struct{} // cap 1: a request was queued
	freed    chan struct{} // cap 1: a proposal finished
	slots    chan struct{} // in-flight proposals
	chainMu  sync.Mutex
	settled  chan struct{} // closed when the last proposal made freed its slot
	stop     chan struct{}
	done     chan struct{}
	inflight sync.WaitGroup

	// The last cohort (see regroup), under mu.
	returning int       // of the requests answered together, those not yet followed by a new one
	regroupBy time.Time // when the proposer stops waiting for them
}

type produceReq struct {
	recs    []eddy.Record
	bytes   int
	base    int64
	err     error
	done    chan struct{}
	enqueue time.Time
}

func newProposer(h *Host, shardID uint64, logAppendTime bool) *proposer {
	p := &proposer{
		h: h, shardID: shardID, logAppendTime: logAppendTime,
		wake:  make(chan struct{}, 1),
		freed: make(chan struct{}, 1),
		slots: make(chan struct{}, h.cfg.MaxInFlight),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	// Sequences continue where an earlier proposer for this shard in this
	// process stopped (a replica moved away and back, or restarted as a
	// voter): the producer id is the node's for its whole life, and the
	// state machine would take a repeated sequence for a retry and answer
	// it with the earlier batch's offset without appending it.
	p.seq = h.lastSeq(shardID)
	go p.run()
	return p
}

// reserve admits a request of n records and b bytes, or refuses it.
func (p *proposer) reserve(n, b int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return eddy.Errorf(eddy.CodeUnavailable, "partition is shutting down")
	}
	cfg := &p.h.cfg
	if p.qRecords > 0 && (p.qRecords+n > cfg.QueueRecords || p.qBytes+b > cfg.QueueBytes) {
		return &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 100,
			Message: "partition produce queue is full, retry"}
	}
	p.qRecords += n
	p.qBytes += b
	return nil
}

// unreserve returns capacity reserved for a request that will not be
// enqueued (another partition of the same produce refused it).
func (p *proposer) unreserve(n, b int) {
	p.mu.Lock()
	p.qRecords -= n
	p.qBytes -= b
	p.mu.Unlock()
}

// enqueue adds a reserved request.
func (p *proposer) enqueue(r *produceReq) {
	r.done = make(chan struct{})
	r.enqueue = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		r.err = eddy.Errorf(eddy.CodeUnavailable, "partition is shutting down")
		close(r.done)
		return
	}
	if p.returning > 0 {
		p.returning--
	}
	if p.h.cfg.Linger == 0 && len(p.q) == 0 && len(p.slots) == 0 && !p.regroupingLocked(r.enqueue) {
		select {
		case p.slots <- struct{}{}:
			if p.proposeNow(r) {
				return
			}
		default:
		}
	}
	p.q = append(p.q, r)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// proposeNow proposes a lone request from the caller's goroutine: nothing
// is queued or in flight (adapt would propose it at once), so the run
// goroutine's wake-up is skipped. The proposal is handed to Raft before
// p.mu is released, so requests enqueued after it are appended after it.
// It is called with p.mu held and a slot taken, and releases both, unless
// the shard refuses the proposal before its log (busy): then it releases
// the slot only and reports false, and the request is queued as any
// other (run proposes in order, waiting out the refusal).
func (p *proposer) proposeNow(r *produceReq) bool {
	reqs := []*produceReq{r}
	cmd := p.encode(reqs, len(r.recs), r.bytes, p.nextSeqLocked(len(r.recs)))
	start := time.Now()
	first := p.h.submit(p.shardID, cmd, false)
	if refusedBeforeLog(first.err) {
		bufpool.Put(cmd)
		<-p.slots
		return false
	}
	p.qRecords -= len(r.recs)
	p.qBytes -= r.bytes
	p.mu.Unlock()
	p.settleApart(reqs, cmd, first, start)
	return true
}

// release frees a proposal's slot and tells the run goroutine.
func (p *proposer) release() {
	<-p.slots
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

func (p *proposer) run() {
	defer close(p.done)
	cfg := &p.h.cfg
	regroup := time.NewTimer(time.Hour)
	regroup.Stop()
	for {
		// Wait for work.
		p.mu.Lock()
		for len(p.q) == 0 {
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-p.wake:
			}
			p.mu.Lock()
		}
		oldest := p.q[0].enqueue
		p.mu.Unlock()
		if cfg.Linger == 0 && !p.adapt(regroup) {
			return
		}
		// Wait for a free slot; meanwhile the batch grows.
		select {
		case p.slots <- struct{}{}:
		case <-p.stop:
			return
		}
		// Linger for more, unless the batch is already full.
		if cfg.Linger > 0 {
			deadline := oldest.Add(cfg.Linger)
			for {
				p.mu.Lock()
				full := p.qBytes >= cfg.MaxBatchBytes
				p.mu.Unlock()
				wait := time.Until(deadline)
				if full || wait <= 0 {
					break
				}
				t := time.NewTimer(wait)
				select {
				case <-p.wake:
				case <-t.C:
				case <-p.stop:
					t.Stop()
					<-p.slots
					return
				}
				t.Stop()
			}
		}
		// Batches are handed to Raft here, one after another, so they
		// are appended in the order their requests were queued; only the
		// wait for each outcome runs apart. (Each batch used to be
		// proposed from its own goroutine, and two proposed together, as
		// full batches are while others are in flight, could swap; so
		// could a batch the shard refused as busy, retried after later
		// ones were taken.)
		reqs, nrec, nbytes := p.take(cfg.MaxBatchBytes)
		cmd := p.encode(reqs, nrec, nbytes, p.nextSeq(nrec))
		start := time.Now()
		first := p.h.submitInOrder(context.Background(), p.shardID, cmd, false, p.stop)
		if refusedBeforeLog(first.err) {
			p.answer(reqs, 0, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 500,
				Message: "the partition's Raft log stayed too busy to take the write (" + first.err.Error() + "); nothing was appended, retry"})
			bufpool.Put(cmd)
			p.release()
			continue
		}
		p.settleApart(reqs, cmd, first, start)
	}
}

// adapt is group commit without a linger (Linger 0): with nothing in
// flight, the queue is proposed at once, so a lone device waits for one
// Raft round and fsync; while proposals are in flight, what arrives waits
// for one of them to finish, or for the queue to fill a batch, so load
// makes batches larger rather than proposals more numerous. With nothing
// in flight it still waits while the last cohort regroups (see regroup).
// It returns false when the proposer stops.
func (p *proposer) adapt(t *time.Timer) bool {
	for {
		p.mu.Lock()
		full := p.qBytes >= p.h.cfg.MaxBatchBytes
		now := time.Now()
		wait := time.Duration(0)
		if !full && p.regroupingLocked(now) {
			wait = p.regroupBy.Sub(now)
		}
		p.mu.Unlock()
		n := len(p.slots)
		if (n == 0 && wait == 0) || (full && n < cap(p.slots)) {
			return true
		}
		var expired <-chan time.Time
		if n == 0 {
			t.Reset(wait)
			expired = t.C
		}
		select {
		case <-p.freed:
		case <-p.wake:
		case <-expired:
		case <-p.stop:
			return false
		}
		if expired != nil && !t.Stop() {
			select { // drained, in case it fired as another case was chosen
			case <-t.C:
			default:
			}
		}
	}
}

// regroup: a cohort of requests answered together (devices that each
// wait for their acknowledgement before sending the next) comes back
// within a few microseconds of one another. Proposing the first to come
// back at once, alone, split the cohort in two for good: ten devices
// went in proposals of 1 and 9 records by turns, two Raft rounds and
// fsyncs for every ten records. So once a proposal of k requests is
// answered, the next waits (with nothing in flight) until all k came
// back, each with a new request, or as long as that proposal's round
// took, whichever is first. Waiting costs the first at most one round,
// which is what the split cost the rest; a lone client (k = 1) never
// waits, nor does a queue already longer than k (producers that
// pipeline: the k coming back could not double it).
//
// Waiting until k requests were queued instead counted a request that
// arrived while the proposal was in flight as one of the k: the proposer
// went on as the (k-1)th came back, and ten devices shared proposals of
// 9 for good. Going at once with exactly k queued let two halves (one
// late past the wait once) answer each other's proposals by turns, in
// proposals of 5.
func (p *proposer) regroup(k int, round time.Duration) {
	p.mu.Lock()
	p.returning = k
	if len(p.q) > k {
		p.returning = 0
	}
	p.regroupBy = time.Now().Add(min(round, maxRegroup))
	p.mu.Unlock()
}

// maxRegroup bounds the wait for a cohort to regroup.
const maxRegroup = time.Millisecond

// regroupingLocked reports whether the last cohort is still regrouping at
// now: some of it has not come back and its time is not up.
func (p *proposer) regroupingLocked(now time.Time) bool {
	return p.returning > 0 && now.Before(p.regroupBy)
}

// take removes whole requests from the queue up to maxBytes (at least one).
func (p *proposer) take(maxBytes int) ([]*produceReq, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, nrec, nbytes := 0, 0, 0
	for n < len(p.q) && (n == 0 || nbytes+p.q[n].bytes <= maxBytes) {
		nbytes += p.q[n].bytes
		nrec += len(p.q[n].recs)
		n++
	}
	reqs := append([]*produceReq(nil), p.q[:n]...)
	p.q = append(p.q[:0], p.q[n:]...)
	p.qRecords -= nrec
	p.qBytes -= nbytes
	return reqs, nrec, nbytes
}

// encode makes reqs one append entry under the node's producer id and
// sequence seq.
func (p *proposer) encode(reqs []*produceReq, nrec, nbytes int, seq int32) []byte {
	recs := reqs[0].recs
	if len(reqs) > 1 {
		recs = make([]eddy.Record, 0, nrec)
		for _, r := range reqs {
			recs = append(recs, r.recs...)
		}
	}
	opt := batch.Options{ProducerID: p.h.producerID, BaseSequence: seq}
	if p.logAppendTime {
		opt.LogAppendTime = time.Now().UnixMilli()
	}
	cmd := encodeAppend(bufpool.Get(nbytes+nrec*24+128), false)
	return batch.Append(cmd, recs, opt)
}

// settleApart settles a submitted proposal on a goroutine of its own,
// then frees its slot (settleInOrder).
func (p *proposer) settleApart(reqs []*produceReq, cmd []byte, first *attempt, start time.Time) {
	p.settleInOrder(func() { p.settle(reqs, cmd, first, start) })
}

// settleInOrder runs settle on a goroutine of its own, then frees the
// proposal's slot once every proposal made before it freed theirs. Slots
// are freed in the order the proposals were made, so while one is retried
// (its attempt timed out: it may have committed or not) at most
// MaxInFlight-1 later ones are proposed, its retry stays within the
// sequences the state machine remembers (segment.DedupWindow), and it is
// answered as a duplicate if its first attempt committed. (Freed as each
// settled, later proposals went on past a retried one, and a retry 16
// batches behind was refused as older than the window: an HTTP 409 for
// records that may have been stored, seen once in a benchmark on three
// nodes.) Answers are not held back: settle gives them.
func (p *proposer) settleInOrder(settle func()) {
	p.chainMu.Lock()
	prev := p.settled
	mine := make(chan struct{})
	p.settled = mine
	p.chainMu.Unlock()
	p.inflight.Add(1)
	go func() {
		defer p.inflight.Done()
		settle()
		if prev != nil {
			<-prev
		}
		p.release()
		close(mine)
	}()
}

// settle sees cmd through from its first attempt, submitted already,
// until it commits, is refused, or the retry deadline passes, and answers
// reqs.
func (p *proposer) settle(reqs []*produceReq, cmd []byte, first *attempt, start time.Time) {
	nrec := 0
	for _, r := range reqs {
		nrec += len(r.recs)
	}
	// A batch the shard refused before queueing it (busy: its log store
	// was stalled) takes a new sequence when it is proposed again: the
	// batches proposed meanwhile may have committed, and the state machine
	// takes a sequence further back than its dedup window for a conflict.
	resequence := func() { batch.SetBaseSequence(cmd[2:], p.nextSeq(nrec)) }
	base, err := p.h.proposeWithRetry(p.shardID, cmd, false, resequence, p.stop, first)
	round := time.Since(start)
	p.h.metrics.proposal(nrec, len(cmd), round)
	bufpool.Put(cmd)
	if err == nil && len(reqs) > 1 && p.h.cfg.Linger == 0 {
		p.regroup(len(reqs), round)
	}
	p.answer(reqs, base, err)
}

// answer tells reqs, appended from base on, or refused with err.
func (p *proposer) answer(reqs []*produceReq, base int64, err error) {
	off := base
	for _, r := range reqs {
		r.base, r.err = off, err
		off += int64(len(r.recs))
		close(r.done)
	}
}

// submitInOrder hands cmd to Raft, trying again while the shard refuses
// it before its log (busy: its proposal queue is full, its in-memory log
// over MaxInMemLogSize or the log store stalled; or not ready). What comes
// after waits meanwhile, so entries reach the log in the order they were
// submitted, and the callers behind are held back. It gives up at the
// propose timeout, when stop closes or ctx ends.
func (h *Host) submitInOrder(ctx context.Context, shardID uint64, cmd []byte, once bool, stop <-chan struct{}) *attempt {
	deadline := time.Now().Add(h.cfg.ProposeTimeout)
	backoff := time.Millisecond
	for {
		a := h.submit(shardID, cmd, once)
		if !refusedBeforeLog(a.err) || time.Now().Add(backoff).After(deadline) {
			return a
		}
		select {
		case <-time.After(backoff):
		case <-stop:
			return a
		case <-ctx.Done():
			return a
		}
		backoff = min(2*backoff, 4*time.Millisecond)
	}
}

// refusedBeforeLog reports a proposal dragonboat refused before it could
// reach the log: safe to propose again, as it is.
func refusedBeforeLog(err error) bool {
	return errors.Is(err, dragonboat.ErrSystemBusy) || errors.Is(err, dragonboat.ErrShardNotReady) || errors.Is(err, dragonboat.ErrTimeoutTooSmall)
}

// nextSeq reserves the sequences of a batch of n records.
func (p *proposer) nextSeq(n int) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextSeqLocked(n)
}

func (p *proposer) nextSeqLocked(n int) int32 {
	seq := p.seq
	p.seq += int32(n)
	if p.seq < 0 { // wrapped: sequences restart at 0
		p.seq = int32(n)
		seq = 0
	}
	return seq
}

// close stops the proposer after in-flight proposals finish; queued
// requests that never reached Raft fail with CodeUnavailable.
func (p *proposer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.inflight.Wait()
	p.mu.Lock()
	p.h.saveSeq(p.shardID, p.seq)
	p.mu.Unlock()
	p.mu.Lock()
	q := p.q
	p.q = nil
	p.mu.Unlock()
	for _, r := range q {
		r.err = eddy.Errorf(eddy.CodeUnavailable, "partition is shutting down")
		close(r.done)
	}
}

// lastSeq is the next producer sequence for a shard's proposer.
func (h *Host) lastSeq(shard uint64) int32 {
	h.seqMu.Lock()
	defer h.seqMu.Unlock()
	return h.seqs[shard]
}

func (h *Host) saveSeq(shard uint64, seq int32) {
	h.seqMu.Lock()
	defer h.seqMu.Unlock()
	if h.seqs == nil {
		h.seqs = map[uint64]int32{}
	}
	h.seqs[shard] = seq
}

// proposeWithRetry proposes cmd on a shard until it is applied. Outcomes
// that leave the entry possibly committed (timeout, a leader change) or
// certainly not (dropped, busy, no leader) are retried with the same bytes
// until ProposeTimeout has passed; the state machine's dedup makes that
// safe. An entry no dedup covers (once: a batch of a Kafka producer
// without a producer id) is proposed again only while no attempt can have
// reached the log; after that an outcome that leaves it possibly committed
// is the caller's "may or may not have been applied", as Kafka answers
// such a producer. resequence, if not nil, gives cmd a new producer
// sequence; it is called before a retry when no attempt so far can have
// reached the log.
// first, if not nil, is the first attempt, submitted already.
func (h *Host) proposeWithRetry(shardID uint64, cmd []byte, once bool, resequence func(), stop <-chan struct{}, first *attempt) (int64, error) {
	deadline := time.Now().Add(h.cfg.ProposeTimeout)
	sess := h.nh.GetNoOPSession(shardID)
	backoff := 5 * time.Millisecond
	var last error
	var leaderless time.Time // since when no leader has been known
	queued := false          // an attempt was queued: it may reach the log
attempts:
	for attempt := 0; ; attempt++ {
		leader, term, ok, _ := h.nh.GetLeaderID(shardID)
		if ok {
			leaderless = time.Time{}
		} else if leaderless.IsZero() {
			leaderless = time.Now()
		} else if time.Since(leaderless) > h.noQuorumAfter() {
			return 0, &eddy.Error{Code: eddy.CodeNoQuorum, RetryAfterMs: 1000,
				Message: "the partition has no leader (no quorum of its replicas is reachable); the write may or may not have been applied"}
		}
		if attempt > 0 {
			if time.Now().Add(backoff).After(deadline) {
				break attempts
			}
			select {
			case <-time.After(backoff):
			case <-stop:
				return 0, eddy.Errorf(eddy.CodeUnavailable, "shutting down; the write may or may not have been applied")
			}
			backoff = min(backoff*2, 100*time.Millisecond)
		}
		a := first
		if attempt > 0 || a == nil {
			if attempt > 0 && !queued && resequence != nil {
				resequence()
			}
			a = h.submitAs(shardID, sess, cmd, once, time.Until(deadline), leader, term, ok)
		}
		if err := a.err; err != nil {
			last = err
			if refusedBeforeLog(err) {
				continue
			}
			if errors.Is(err, dragonboat.ErrPayloadTooBig) {
				return 0, eddy.Errorf(eddy.CodeRequestTooLarge, "proposal of %d bytes is too large", len(cmd))
			}
			return 0, eddy.Errorf(eddy.CodeUnavailable, "propose: %v", err)
		}
		queued = true
		r, changed := h.awaitProposal(shardID, a.rs, a.change, a.leader, a.term, a.known)
		if changed {
			// dragonboat drops, without a word, a proposal a follower
			// forwarded to a leader that then lost leadership; it would
			// only time out. Retry at once (the abandoned attempt is not
			// released: dragonboat may still complete it).
			last = errors.New("the leader changed while the write was in flight")
			if once {
				break attempts
			}
			backoff = 5 * time.Millisecond
			continue
		}
		switch {
		case r.Completed():
			res := r.GetResult()
			if res.Value == resultRefused {
				return 0, resultError(res)
			}
			return int64(res.Value), nil
		case r.Dropped():
			// Dropped before it reached the log: safe to propose again.
			last = errors.New("proposal was dropped")
			continue
		case r.Timeout():
			last = errors.New("proposal timed out")
			if once {
				break attempts
			}
			continue
		default:
			return 0, eddy.Errorf(eddy.CodeUnavailable, "proposal aborted (shard closing or rejected)")
		}
	}
	if last == nil {
		last = errors.New("deadline")
	}
	return 0, &eddy.Error{Code: eddy.CodeTimeout, RetryAfterMs: 1000,
		Message: "the write was not confirmed in time (" + last.Error() + "); it may or may not have been applied"}
}

// attempt is one proposal handed to dragonboat, with the leader and term
// it was made under (a change of them is watched), or Propose's refusal.
type attempt struct {
	rs           *dragonboat.RequestState
	err          error
	change       <-chan struct{}
	leader, term uint64
	known        bool
}

// submit makes the first attempt of a proposal (proposeWithRetry goes on
// from it).
func (h *Host) submit(shardID uint64, cmd []byte, once bool) *attempt {
	leader, term, ok, _ := h.nh.GetLeaderID(shardID)
	return h.submitAs(shardID, h.nh.GetNoOPSession(shardID), cmd, once, h.cfg.ProposeTimeout, leader, term, ok)
}

// submitAs proposes cmd with left of the deadline, the shard's leader
// being as known.
//
// An attempt forwarded to another node is short: a proposal forwarded to
// a leader that just died is never answered, only timed out, and it holds
// one of the proposer's in-flight slots meanwhile. Retrying is safe
// (dedup). An attempt on this node as the leader is never lost but on a
// leader change (watched): it waits until the deadline, as a retry would
// only put another copy of the batch behind the first while the disk is
// slow, and a copy that lands more than the dedup window after the first
// is refused (the client would be told conflict for a batch that was
// appended). An entry proposed once waits the whole deadline.
func (h *Host) submitAs(shardID uint64, sess *client.Session, cmd []byte, once bool, left time.Duration, leader, term uint64, known bool) *attempt {
	timeout := left
	if (!known || leader != h.cfg.NodeID) && !once {
		timeout = min(timeout, h.attemptTimeout())
	}
	timeout = max(timeout, 100*time.Millisecond)
	a := &attempt{change: h.leaders.watch(shardID), leader: leader, term: term, known: known}
	a.rs, a.err = h.nh.Propose(sess, cmd, timeout)
	// Yield to the step worker Propose just woke. Go runs a woken
	// goroutine next on this P, but only until another is woken or
	// started here: the settle goroutine the proposer starts next, or
	// an answered request, took that place and left the step worker
	// behind every HTTP handler in the run queue. Under 50 connections
	// sending one record each, a proposal waited 210-230 µs for the step
	// worker to take it, 40-50 µs with the yield; the same load, 5 runs
	// interleaved with the build before: 25.1k-28.0k requests/s against
	// 24.7k-27.1k, lone p50 0.32-0.36 ms against 0.34-0.45 ms.
	runtime.Gosched()
	return a
}

// awaitProposal waits for a proposal's result, or reports that the shard's
// leader changed meanwhile. dragonboat reports every leader event (a new
// term's first word included); one that leaves the leader and term the
// attempt was made under is no change.
func (h *Host) awaitProposal(shardID uint64, rs *dragonboat.RequestState, change <-chan struct{}, leader, term uint64, known bool) (dragonboat.RequestResult, bool) {
	for {
		select {
		case r := <-rs.ResultC():
			rs.Release()
			return r, false
		case <-change:
			change = h.leaders.watch(shardID)
			now, nowTerm, ok, _ := h.nh.GetLeaderID(shardID)
			if !known || !ok || now != leader || nowTerm != term {
				return dragonboat.RequestResult{}, true
			}
		}
	}
}

// attemptTimeout bounds one proposal attempt (600 ms at the default RTT;
// commits take tens of ms): a proposal lost without a leader change is
// retried after this long.
func (h *Host) attemptTimeout() time.Duration { return 6 * h.cfg.RTT }

// noQuorumAfter is how long a shard may stay leaderless before writes are
// answered no_quorum: three election timeouts, long enough for a failover.
func (h *Host) noQuorumAfter() time.Duration { return 3 * 20 * h.cfg.RTT }

// await waits for a request's outcome or the context.
func (r *produceReq) await(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return eddy.Errorf(eddy.CodeTimeout, "gave up waiting for the commit: %v; the write may or may not have been applied", ctx.Err())
	}
}
