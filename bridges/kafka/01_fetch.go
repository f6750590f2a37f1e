package kafka

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch, v4-12: the record batches of each partition as stored (a fetch
// never decodes or re-encodes; the first batch may start before the
// offset asked, as Kafka's do), at least one whole batch per partition
// even over the byte limits (KIP-74), then up to PartitionMaxBytes and
// MaxBytes. Nothing there: it long-polls up to MaxWaitMillis, woken by
// the first append to any of the partitions. A partition with nothing
// new answers empty records, never null (librdkafka reads null as an
// error). No fetch sessions (SessionID 0: every request is full, which
// KIP-227 allows), no transactions (the last stable offset is the high
// watermark). A partition this node holds no replica of is
// NOT_LEADER_OR_FOLLOWER; the client refreshes its metadata.

func init() { register(1, 4, 12, false, handleFetch) }

// maxFetchWait bounds MaxWaitMillis.
const maxFetchWait = 30 * time.Second

type fetchPart struct {
	ref   eddy.TopicRef
	out   *kmsg.FetchResponseTopicPartition
	off   int64
	max   int
	done  bool // answered (an error, or records)
	batch int  // the size of the stored batch at off, which a read returns whole (fetchPass)
}

func handleFetch(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	if r.Version >= 13 { // topics by id: not kept
		resp.ErrorCode = errUnsupportedVersion
		return resp, nil
	}
	maxBytes := int(r.MaxBytes)
	if r.Version < 3 || maxBytes <= 0 || maxBytes > c.l.cfg.FetchMaxBytes {
		maxBytes = c.l.cfg.FetchMaxBytes // a client may ask for 2 GiB
	}
	var parts []*fetchPart
	for _, rt := range r.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		_, terr := c.topic(rt.Topic, tenants.Consume)
		for i, rp := range rt.Partitions {
			out := &t.Partitions[i]
			*out = kmsg.NewFetchResponseTopicPartition()
			out.Partition, out.HighWatermark, out.LastStableOffset, out.LogStartOffset = rp.Partition, -1, -1, -1
			out.PreferredReadReplica = -1
			out.RecordBatches = []byte{}
			fp := &fetchPart{ref: eddy.TopicRef{Tenant: c.tenant, Name: eddy.TopicName(rt.Topic)}, out: out,
				off: rp.FetchOffset, max: int(rp.PartitionMaxBytes)}
			if terr != nil {
				out.ErrorCode, fp.done = kafkaCode(terr), true
			}
			parts = append(parts, fp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if owed := c.l.cfg.ReadQuota.Owed(c.p, c.tenant); owed > 0 {
		// Over the consume quota: offsets alone, at once (as Kafka
		// answers a throttled fetch empty), then the debt is paid.
		c.offsetsOnly(parts)
		c.throttle(resp, owed)
		return resp, nil
	}
	ctx, cancel := c.ctx(c.l.cfg.RequestTimeout)
	defer cancel()
	wait := min(time.Duration(r.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	until := time.Now().Add(wait)
	got := c.fetchPass(ctx, parts, maxBytes, until)
	if got == 0 && r.MinBytes > 0 && time.Now().Before(until) { // nothing yet: long-poll (any bytes then answer)
		c.fetchWait(ctx, parts, time.Until(until))
		got = c.fetchPass(ctx, parts, maxBytes, until)
	}
	c.l.cfg.ReadQuota.Charge(c.p, c.tenant, got)
	if owed := c.l.cfg.ReadQuota.Owed(c.p, c.tenant); owed > 0 {
		c.throttle(resp, owed) // this answer went over: it goes out whole, the next waits
	}
	return resp, nil
}

// ReadQuota throttles a tenant's fetches to its consume_bytes_per_sec
// quota; tenants.ReadQuota is one.
type ReadQuota interface {
	// Owed is how long the principal's next read of tenant waits (0:
	// none).
	Owed(p *tenants.Principal, tenant eddy.TenantID) time.Duration
	// Charge counts the bytes a read of tenant answered the principal.
	Charge(p *tenants.Principal, tenant eddy.TenantID, bytes int)
}

type noQuota struct{}

func (noQuota) Owed(*tenants.Principal, eddy.TenantID) time.Duration { return 0 }
func (noQuota) Charge(*tenants.Principal, eddy.TenantID, int)        {}

// maxThrottle bounds one throttle, as Kafka bounds it by its quota
// window (11 s): a tenant owing more is throttled again at its next
// fetch, and a muted connection its client gave up on is not held for
// the whole debt (a day, at a quota of a few bytes a second).
const maxThrottle = 10 * time.Second

// throttle tells the client how long its fetches are throttled
// (ThrottleMillis) and mutes the connection as long: its next request is
// not read until then (KIP-219: a client of Fetch v8 or later waits as
// long itself before sending it; an older one's waits in the socket).
func (c *conn) throttle(resp *kmsg.FetchResponse, owed time.Duration) {
	owed = min(owed, maxThrottle)
	resp.ThrottleMillis = int32(owed.Milliseconds()) + 1
	c.mutedUntil = time.Now().Add(owed)
}

// fetchPass reads each partition not yet answered, without waiting, and
// returns the bytes it gathered. It reads once the node's request memory
// (max_request_memory, a tenant at most half) has room for twice what it
// may read (a read's pooled buffer may be twice its size; an answer that
// cannot be spliced is encoded whole, fetch_write.go), and holds what it
// read until the answer is written (conn.answer). Without room by until, it
// reads nothing and answers each partition's offsets alone: consumers
// wait for memory, as producers do, and the node's stays bounded. Nor
// does it read without one of the tenant's read slots by until.
func (c *conn) fetchPass(ctx context.Context, parts []*fetchPart, maxBytes int, until time.Time) int {
	want, first := 0, 0
	for _, fp := range parts {
		if !fp.done {
			want = min(want+max(fp.max, 1), maxBytes)
			fp.batch = c.l.b.BatchBytesAt(fp.ref, eddy.Partition(fp.out.Partition), eddy.Offset(fp.off))
			first = max(first, fp.batch)
		}
	}
	if want == 0 {
		return 0
	}
	// The first partition with records is answered a whole batch however
	// large (KIP-74), so there must be room for the largest that could be
	// first; the others are answered only batches within their limits
	// (read). (Room for the limits alone let a fetch of PartitionMaxBytes
	// 1 hold a batch of 8 MB for 2 bytes.)
	want = max(want, first)
	rctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	hold, err := c.l.cfg.Bodies.Acquire(rctx, string(c.tenant), 2*int64(want))
	if err != nil {
		c.l.m.fetchNoRoom.Inc()
		c.offsetsOnly(parts)
		return 0
	}
	// The reading is one of the tenant's reads (tenant_read_slots), so a
	// tenant's consumers share at most its part of the node's CPUs.
	release, err := c.l.cfg.Reads.Acquire(rctx, string(c.tenant))
	if err != nil {
		hold.Release()
		c.offsetsOnly(parts)
		return 0
	}
	total := c.read(ctx, parts, maxBytes)
	release()
	held := int64(0)
	for _, b := range c.pooled {
		held += int64(cap(b))
	}
	c.answer = hold.Shrink(max(2*int64(total), held))
	return total
}

// offsetsOnly answers every partition not yet answered its offsets alone.
func (c *conn) offsetsOnly(parts []*fetchPart) {
	for _, fp := range parts {
		if !fp.done {
			c.fetchOffsets(fp)
		}
	}
}

// read reads each partition not yet answered up to its and the answer's
// bytes (the first with records at least one batch; the others only
// batches that fit), and returns the bytes it gathered.
func (c *conn) read(ctx context.Context, parts []*fetchPart, maxBytes int) int {
	total := 0
	for _, fp := range parts {
		if fp.done {
			continue
		}
		limit := min(fp.max, maxBytes-total)
		if total == 0 {
			limit = max(limit, 1) // at least one batch, however large
		}
		if limit <= 0 {
			continue
		}
		if total > 0 && fp.batch > limit {
			c.fetchOffsets(fp) // its next batch does not fit: offsets alone, as Kafka answers
			continue
		}
		rr, err := c.l.b.FetchBatchesPooled(ctx, fp.ref, eddy.Partition(fp.out.Partition), eddy.Offset(fp.off), limit, 0)
		if rr.Pooled {
			c.pooled = append(c.pooled, rr.Batches) // given back once the answer is written
		}
		c.fetchAnswer(fp, rr, err)
		total += len(rr.Batches)
	}
	return total
}

func (c *conn) fetchAnswer(fp *fetchPart, rr eddy.FetchedBatches, err error) {
	out := fp.out
	if err != nil {
		fp.done = true
		switch eddy.ErrorCode(err) {
		case eddy.CodeUnavailable: // no replica here
			out.ErrorCode = errNotLeaderOrFollower
		default:
			out.ErrorCode = kafkaCode(err)
		}
		c.fetchOffsets(fp)
		return
	}
	out.HighWatermark, out.LastStableOffset, out.LogStartOffset = rr.HighWatermark, rr.HighWatermark, rr.LogStart
	if len(rr.Batches) > 0 {
		out.RecordBatches, fp.done = rr.Batches, true
	}
}

// fetchOffsets answers a partition's offsets, as far as this node knows
// them, without its records.
func (c *conn) fetchOffsets(fp *fetchPart) {
	out := fp.out
	if po, err := c.l.b.Offsets(fp.ref, eddy.Partition(out.Partition)); err == nil {
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = int64(po.HighWatermark), int64(po.HighWatermark), int64(po.LogStart)
	}
}

// fetchWait long-polls every partition not yet answered until one of
// them has records, wait passes or the listener stops, reading none of
// those this node holds (the pass after reads, within the request
// memory).
func (c *conn) fetchWait(ctx context.Context, parts []*fetchPart, wait time.Duration) {
	var at []multiraft.PartitionAt
	for _, fp := range parts {
		if !fp.done {
			at = append(at, multiraft.PartitionAt{Ref: fp.ref, P: eddy.Partition(fp.out.Partition), Offset: eddy.Offset(fp.off)})
		}
	}
	c.l.b.AwaitAny(ctx, at, wait)
}
