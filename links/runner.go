package links

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// runner forwards one source partition this node leads. Each round:
//
//  1. choose the next batch, [Sent, InFlight), and write that intent to the
//     controller (with the acknowledgement of the round before, one entry);
//  2. send it with the partition's producer id, epoch and sequence;
//  3. once acknowledged, Sent moves to InFlight.
//
// A batch in flight at a crash, an outage or a leadership change is sent
// again byte for byte under the same identity, so the target keeps one
// copy. The controller's compare-and-set refuses a runner whose view is
// stale (another node took over).
type runner struct {
	m      *Manager
	lk     *link
	shard  uint64
	meta   *catalog.TopicMeta
	p      eddy.Partition
	target string
	rank   int
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	st       status
	reported status
	lastSent time.Time // of the last status-only report
}

type status struct {
	state, err     string
	end            int64
	backlogRecords int64
	backlogBytes   int64
	oldestMs       int64 // timestamp of the oldest unsent record
}

func (s status) backlogSeconds() float64 {
	if s.backlogRecords <= 0 || s.oldestMs <= 0 {
		return 0
	}
	return max(0, float64(time.Now().UnixMilli()-s.oldestMs)/1000)
}

// errStale: the controller holds newer progress than this runner read.
var errStale = errors.New("stale progress")

func newRunner(m *Manager, lk *link, shard uint64, meta *catalog.TopicMeta, p eddy.Partition) *runner {
	r := &runner{m: m, lk: lk, shard: shard, meta: meta, p: p, done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if l := m.current(lk); l != nil {
		r.target = l.TargetPrefix + string(meta.Name)
		r.rank = l.PriorityOf(meta.Name)
	}
	return r
}

func (r *runner) close() {
	r.cancel()
	<-r.done
}

func (r *runner) status() status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *runner) run() {
	defer close(r.done)
	var own backoff
	for r.ctx.Err() == nil {
		err := r.step()
		switch {
		case err == nil:
			own.reset()
			r.lk.uplink.reset()
			continue
		case r.ctx.Err() != nil:
			return
		case errors.Is(err, errStale):
			r.sleep(200 * time.Millisecond)
			continue
		}
		r.lk.m.failures.Inc()
		state, msg := catalog.LinkBackingOff, err.Error()
		var ue *upErr
		errors.As(err, &ue)
		if ue != nil && (ue.kind == fatal || ue.kind == unsupported) {
			state = catalog.LinkFailing
		}
		r.report(state, msg)
		if ue != nil && ue.unreachable {
			// The target did not answer: the link's runners wait on one
			// backoff, so a down uplink costs one attempt per wait, not
			// one per partition.
			r.wait(r.lk.uplink.fail(r.m.cfg.MaxBackoff))
			continue
		}
		limit := r.m.cfg.MaxBackoff
		if state == catalog.LinkFailing {
			limit *= 3 // someone must act; no need to ask often
		}
		r.wait(own.fail(limit))
	}
}

// backoff is exponential with full jitter (each wait drawn between a
// quarter and one and a quarter of the current delay), so the runners of
// many partitions and gateways do not retry in step when a cloud comes
// back after a long outage. A success ends every wait on it: once one
// partition gets through, the link's others go at once.
type backoff struct {
	mu    sync.Mutex
	delay time.Duration
	until time.Time
	wake  chan struct{} // closed by reset
}

// fail doubles the delay (from 100 ms, at most limit) and returns when
// the next attempt may go (while an earlier wait runs, that one), and a
// channel closed if a success comes first.
func (b *backoff) fail(limit time.Duration) (time.Time, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := time.Now(); b.until.Before(now) {
		b.delay = min(max(2*b.delay, 100*time.Millisecond), limit)
		b.until = now.Add(b.delay/4 + time.Duration(rand.Int64N(int64(b.delay))))
	}
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.until, b.wake
}

func (b *backoff) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay, b.until = 0, time.Time{}
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

// wait sleeps until t, a success on the backoff, or the runner's end.
func (r *runner) wait(t time.Time, wake <-chan struct{}) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-r.ctx.Done():
	case <-timer.C:
	case <-wake:
	}
}

func (r *runner) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
	case <-t.C:
	}
}

// step does one round (or part of one); nil when it made progress or
// found nothing to do.
func (r *runner) step() error {
	l := r.m.current(r.lk)
	if l == nil {
		r.sleep(time.Second) // deleted: the manager stops this runner
		return nil
	}
	cur := l.Partitions[r.shard]
	if cur == nil {
		return r.begin(l)
	}
	c := *cur
	// Past the backlog's caps the oldest unsent records are given up,
	// also while paused, or while the uplink is down and a batch is sent
	// again and again.
	bl, err := r.m.src.LinkBacklog(r.meta, r.p, c.Sent, l.BacklogBytes(), l.MaxBacklogAgeMs)
	if err != nil {
		return err
	}
	r.setBacklog(bl.End, c.Sent, bl.Bytes, c.OldestMs)
	if bl.Cut > c.Sent {
		return r.drop(l, c, bl.Cut)
	}
	if l.Paused {
		r.report(catalog.LinkPaused, "")
		r.sleep(time.Second)
		return nil
	}
	if c.InFlight > c.Sent {
		return r.send(l, c)
	}
	if c.ProducerID < 0 {
		next := c
		if next.ProducerID, next.Epoch, err = r.lk.up.initProducer(r.ctx, -1, -1); err != nil {
			return err
		}
		return r.propose(l, &c, next)
	}
	next, ok, err := r.prepare(l, c, bl, true)
	if err != nil || !ok {
		return err
	}
	return r.propose(l, &c, next)
}

// begin starts the partition's progress at the log's start (or end), so
// retention keeps what the link has not sent from now on, reachable
// target or not. Its producer id comes with the first contact.
func (r *runner) begin(l *catalog.LinkMeta) error {
	bl, err := r.m.src.LinkBacklog(r.meta, r.p, 0, 0, 0)
	if err != nil {
		return err
	}
	start := bl.Start
	if l.Start == "latest" {
		start = bl.End
	}
	next := catalog.LinkPartition{Topic: r.meta.Name, Partition: r.p, Sent: start, InFlight: start, ProducerID: -1}
	return r.propose(l, nil, next)
}

// prepare chooses the next batch from c.Sent, given the backlog from
// there (bl), whose caps it applies first. With wait, it waits for
// records (and then lingers); ok is false when there is nothing to write.
func (r *runner) prepare(l *catalog.LinkMeta, c catalog.LinkPartition, bl multiraft.Backlog, wait bool) (catalog.LinkPartition, bool, error) {
	next := c
	if bl.Cut > c.Sent { // nothing is in flight: the sequence goes on
		next.Dropped += bl.Cut - c.Sent
		next.Sent, next.InFlight = bl.Cut, bl.Cut
	}
	r.setBacklog(bl.End, next.Sent, bl.Bytes, 0)
	if next.Sent >= bl.End {
		if wait {
			// Sleep on the log until a record comes (woken by the append,
			// reading nothing: a read of one byte returned a whole stored
			// batch, up to 16 MiB, at every wake), then linger so that a
			// trickle goes in fewer requests. A replica no longer here
			// (the runner is about to stop) is not spun on.
			if r.m.src.Await(r.ctx, r.meta.Ref(), r.p, eddy.Offset(next.Sent), 5*time.Second) {
				r.sleep(time.Duration(l.Linger()) * time.Millisecond)
			} else {
				r.sleep(200 * time.Millisecond)
			}
		}
		return next, next != c, nil
	}
	if next.Seq > math.MaxInt32-int32(min(bl.End-next.Sent, 1<<20)) {
		// The sequence would wrap: a new epoch starts again at 0 (nothing
		// is in flight, so nothing can be duplicated).
		var err error
		if next.ProducerID, next.Epoch, err = r.newEpoch(next); err != nil {
			return c, false, err
		}
		next.Seq = 0
	}
	recs, err := r.read(next.Sent, bl.End, r.batchBytes(l))
	if err != nil {
		return c, false, err
	}
	if len(recs) == 0 {
		return next, next != c, nil
	}
	next.InFlight = next.Sent + int64(len(recs))
	next.OldestMs = recs[0].Timestamp
	r.setBacklog(bl.End, next.Sent, bl.Bytes, recs[0].Timestamp)
	return next, true, nil
}

// batchBytes bounds one batch: under a bandwidth cap, a quarter second of
// it, so the cap holds over short windows too.
func (r *runner) batchBytes(l *catalog.LinkMeta) int {
	n := l.BatchBytes()
	if l.MaxBytesPerSec > 0 {
		n = min(n, max(l.MaxBytesPerSec/4, 4096))
	}
	return int(n)
}

// send sends the batch in flight and records the acknowledgement (with
// the next batch's intent, when one is ready).
func (r *runner) send(l *catalog.LinkMeta, c catalog.LinkPartition) error {
	recs, err := r.read(c.Sent, c.InFlight, math.MaxInt)
	if err != nil {
		return err
	}
	if len(recs) == 0 || recs[0].Offset != eddy.Offset(c.Sent) || int64(len(recs)) != c.InFlight-c.Sent {
		return r.lost(l, c)
	}
	b, err := r.encode(l, recs, c)
	if err != nil {
		return err
	}
	if err := r.lk.bucket.take(r.ctx, len(b), r.rank); err != nil {
		return err
	}
	_, err = r.lk.up.produce(r.ctx, r.target, int32(r.p), r.meta.Partitions, b)
	var ue *upErr
	if errors.As(err, &ue) {
		switch {
		case ue.kind == resetSeq:
			// The target forgot the producer (it expired) or refused the
			// sequence: a new epoch from 0. The batch in flight goes
			// again and, if the target had stored it, is now duplicated:
			// counted as a reset.
			next := c
			if next.ProducerID, next.Epoch, err = r.newEpoch(c); err != nil {
				return err
			}
			next.Seq, next.Resets = 0, c.Resets+1
			return r.propose(l, &c, next)
		case ue.kind == tooLarge && len(recs) > 1:
			next := c // refused, so not stored: the batch may shrink
			next.InFlight = c.Sent + int64(len(recs)/2)
			return r.propose(l, &c, next)
		case ue.kind == tooLarge:
			ue.kind, ue.msg = fatal, ue.msg+": the record at offset "+itoa(c.Sent)+" alone is over the target's limit (raise its max.message.bytes)"
		}
	}
	if err != nil {
		return err
	}
	n := c.InFlight - c.Sent
	r.lk.m.records.Add(int(n))
	r.lk.m.bytes.Add(len(b))
	acked := c
	acked.Sent, acked.Seq, acked.Bytes = c.InFlight, c.Seq+int32(n), c.Bytes+int64(len(b))
	next := acked
	if bl, err := r.m.src.LinkBacklog(r.meta, r.p, acked.Sent, l.BacklogBytes(), l.MaxBacklogAgeMs); err == nil {
		if nb, ok, err := r.prepare(l, acked, bl, false); err == nil && ok {
			next = nb
		}
	}
	return r.propose(l, &c, next)
}

// lost handles a batch in flight whose records are gone from the log
// before it was acknowledged: dropped, counted.
func (r *runner) lost(l *catalog.LinkMeta, c catalog.LinkPartition) error {
	bl, err := r.m.src.LinkBacklog(r.meta, r.p, c.Sent, 0, 0)
	if err != nil {
		return err
	}
	if bl.Start <= c.Sent {
		return eddy.Errorf(eddy.CodeInternal, "link %s: records %d-%d are in the log but could not be read", l.Name, c.Sent, c.InFlight-1)
	}
	return r.drop(l, c, bl.Start)
}

// drop gives up the unsent records below to (past the backlog caps, or
// gone). With a batch in flight among them (it may have reached the
// target), the partition then takes a new producer id: the target may
// hold that batch under its sequence, and it is never sent again.
func (r *runner) drop(l *catalog.LinkMeta, c catalog.LinkPartition, to int64) error {
	next := c
	next.Dropped += to - c.Sent
	next.Sent, next.InFlight = to, to
	if c.InFlight > c.Sent {
		// A new producer id is taken when the target can be reached (the
		// uplink may well be down now).
		next.ProducerID, next.Epoch, next.Seq, next.Resets = -1, 0, 0, c.Resets+1
	}
	return r.propose(l, &c, next)
}

// newEpoch bumps the producer's epoch (KIP-360); a target that does not
// know the id any more gives a new one.
func (r *runner) newEpoch(c catalog.LinkPartition) (int64, int16, error) {
	pid, epoch, err := r.lk.up.initProducer(r.ctx, c.ProducerID, c.Epoch)
	if err != nil {
		var ue *upErr
		if !errors.As(err, &ue) || ue.kind == retry {
			return 0, 0, err
		}
		return r.lk.up.initProducer(r.ctx, -1, -1)
	}
	return pid, epoch, nil
}

// read returns the records in [from, to), at most about maxBytes of them
// (at least one).
func (r *runner) read(from, to int64, maxBytes int) ([]eddy.FetchedRecord, error) {
	var out []eddy.FetchedRecord
	size := 0
	for off := from; off < to && (size < maxBytes || len(out) == 0); {
		fb, err := r.m.src.FetchBatches(r.ctx, r.meta.Ref(), r.p, eddy.Offset(off), min(maxBytes, 1<<20), 0)
		if err != nil {
			return nil, err
		}
		if len(fb.Batches) == 0 {
			break
		}
		recs, err := batch.Decode(nil, fb.Batches)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, rec := range recs {
			if int64(rec.Offset) < off || int64(rec.Offset) >= to {
				continue
			}
			s := len(rec.Key) + len(rec.Value) + 24
			for _, h := range rec.Headers {
				s += len(h.Key) + len(h.Value) + 4
			}
			if size+s > maxBytes && len(out) > 0 {
				return out, nil
			}
			size += s
			out = append(out, rec)
		}
		if len(out) == n {
			break // the log starts after off: retention removed it
		}
		off = int64(out[len(out)-1].Offset) + 1
	}
	return out, nil
}

// encode makes the batch sent upstream: deterministic, so a resend has
// the same bytes (and CRC) as the first send.
func (r *runner) encode(l *catalog.LinkMeta, recs []eddy.FetchedRecord, c catalog.LinkPartition) ([]byte, error) {
	rs := make([]eddy.Record, len(recs))
	for i := range recs {
		rs[i] = recs[i].Record
	}
	b := batch.Append(nil, rs, batch.Options{ProducerID: c.ProducerID, ProducerEpoch: c.Epoch, BaseSequence: c.Seq})
	codec, _ := batch.CodecByName(l.Compression)
	return batch.Compress(b, codec)
}

// propose writes the partition's move from cur (nil: none yet) to next,
// with this node's view of its status.
func (r *runner) propose(l *catalog.LinkMeta, cur *catalog.LinkPartition, next catalog.LinkPartition) error {
	next.Topic, next.Partition = r.meta.Name, r.p
	oldest := next.OldestMs
	r.stamp(&next, r.status(), catalog.LinkConnected, "")
	next.OldestMs = oldest // the progress's own
	if next.Sent >= next.End {
		next.OldestMs = 0
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	err := r.lk.progress.write(ctx, catalog.LinkProgress{Shard: r.shard, Expect: cur, Next: next})
	if eddy.ErrorCode(err) == eddy.CodeConflict {
		return errStale
	}
	if err == nil {
		if cur != nil {
			r.lk.m.dropped.Add(int(next.Dropped - cur.Dropped))
			r.lk.m.resets.Add(int(next.Resets - cur.Resets))
		}
		r.mu.Lock()
		r.st.state, r.st.err = catalog.LinkConnected, ""
		r.reported = r.st
		r.mu.Unlock()
	}
	return err
}

func (r *runner) setBacklog(end, sent, bytes, oldestMs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.end, r.st.backlogRecords, r.st.backlogBytes = end, max(0, end-sent), bytes
	if oldestMs > 0 || end <= sent {
		r.st.oldestMs = oldestMs
	}
}

// report writes the runner's state when it changes (and at most every
// 10 s otherwise); the progress entries carry it too.
func (r *runner) report(state, msg string) {
	r.mu.Lock()
	r.st.state, r.st.err = state, msg
	st := r.st
	due := st.state != r.reported.state || st.err != r.reported.err || time.Since(r.lastSent) > 10*time.Second
	if due {
		r.reported, r.lastSent = st, time.Now()
	}
	r.mu.Unlock()
	if !due {
		return
	}
	l := r.m.current(r.lk)
	if l == nil || l.Partitions[r.shard] == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	var next catalog.LinkPartition
	r.stamp(&next, st, state, msg)
	r.lk.progress.write(ctx, catalog.LinkProgress{Shard: r.shard, Next: next, StatusOnly: true})
}

// stamp fills a partition entry's status: this node's view, now.
func (r *runner) stamp(p *catalog.LinkPartition, st status, state, msg string) {
	// The text may hold the target's own (a SASL refusal's message):
	// every node keeps it in the controller.
	p.Node, p.State, p.Error, p.UpdatedMs = r.m.src.NodeID(), state, clip(msg, maxStatusMessage), time.Now().UnixMilli()
	p.End, p.BacklogBytes, p.OldestMs = st.end, st.backlogBytes, st.oldestMs
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
