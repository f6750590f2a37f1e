package httpapi

import (
	"context"
	"fmt"
	"github.com/eddy-broker/eddy/internal/promtext"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// Reader reads partitions: records, stored batches, offsets.
type Reader interface {
	Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error)
	// FetchBatchesPooled reads stored batches, into a buffer of
	// internal/bufpool when Pooled says so, to give back once written.
	FetchBatchesPooled(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error)
	// BatchBytesAt is the size of the stored batch holding offset
	// (asked of a node with a replica), which a read returns whole.
	BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) int
	// Await waits up to wait for a record at offset in this node's
	// replica, reading none; false without a replica here.
	Await(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration) bool
	Offsets(ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error)
	TopicOffsets(meta *catalog.TopicMeta) []multiraft.PartitionOffsets
	// OffsetForTime looks a time up in a replica of the partition (-1
	// when no record is that late).
	OffsetForTime(ref eddy.TopicRef, p eddy.Partition, ts int64) (offset, timestamp int64, err error)
}

// fetchLimits reads a fetch's max (at least minRecs), max_bytes and
// wait_ms.
func (s *Server) fetchLimits(args *fasthttp.Args, minRecs int64) (maxRecs, maxBytes, waitMs int64, err error) {
	if maxRecs, err = intArg(args, "max", 500, minRecs, 10_000); err != nil {
		return
	}
	if maxBytes, err = intArg(args, "max_bytes", 1<<20, 1, int64(s.cfg.FetchMaxBytes)); err != nil {
		return
	}
	waitMs, err = intArg(args, "wait_ms", 0, 0, s.cfg.MaxWait.Milliseconds())
	return
}

func (s *Server) fetch(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	start := time.Now()
	ref, p, err := s.partitionRef(ctx, pr, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	args := ctx.QueryArgs()
	maxRecs, maxBytes, waitMs, err := s.fetchLimits(args, 0)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var offset int64
	if args.Has("offset") {
		if offset, err = intArg(args, "offset", 0, 0, 1<<62); err != nil {
			writeError(ctx, err)
			return
		}
	} else {
		po, err := s.b.Offsets(ref, p)
		if err != nil {
			writeError(ctx, err)
			return
		}
		offset = int64(po.LogStart)
	}
	format := string(args.Peek("format"))
	c, cancel := s.reqContext(time.Duration(waitMs)*time.Millisecond+5*time.Second, true)
	defer cancel()
	switch format {
	case "", "json", "binary", "batches":
		if maxRecs == 0 {
			s.awaitOnly(ctx, c, multiraft.PartitionAt{Ref: ref, P: p, Offset: eddy.Offset(offset)}, time.Duration(waitMs)*time.Millisecond, format == "batches")
			return
		}
	}
	if err := s.readOwed(c, pr, ref.Tenant); err != nil {
		writeError(ctx, err)
		return
	}
	switch format {
	case "", "json", "binary":
	case "batches":
		s.fetchBatches(ctx, c, pr, ref, p, offset, int(maxBytes), time.Duration(waitMs)*time.Millisecond)
		return
	default:
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "format %q: use json, binary or batches", format))
		return
	}
	binary := format == "binary"
	if args.Has("key") || args.Has("contains") {
		s.searchFetch(ctx, c, pr, ref, p, offset, maxRecs, binary)
		return
	}
	var res *multiraft.FetchResult
	at := multiraft.PartitionAt{Ref: ref, P: p, Offset: eddy.Offset(offset)}
	room := func(n int) int { return jsonAnswerRoom(int64(n), maxRecs) }
	hold, done, err := s.readHeld(c, at, int(maxBytes), room, time.Duration(waitMs)*time.Millisecond, func() (found bool, err error) {
		res, err = s.b.Fetch(c, ref, p, at.Offset, int(maxRecs), int(maxBytes), 0)
		return err == nil && len(res.Records) > 0, err
	})
	if err != nil {
		writeError(ctx, err)
		return
	}
	defer done() // the answer is made here; fasthttp writes it after
	est := 128
	for i := range res.Records {
		est += 96 + res.Records[i].Size()*9/8
	}
	out := make([]byte, 0, est)
	out = append(out, `{"records":[`...)
	bytes := 0
	for i := range res.Records {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendRecordJSON(out, &res.Records[i], binary)
		bytes += res.Records[i].Size()
	}
	out = append(out, `],"next_offset":`...)
	out = strconv.AppendInt(out, int64(res.NextOffset), 10)
	out = append(out, `,"high_watermark":`...)
	out = strconv.AppendInt(out, int64(res.HighWatermark), 10)
	out = append(out, `,"log_start_offset":`...)
	out = strconv.AppendInt(out, int64(res.LogStart), 10)
	out = append(out, "}\n"...)
	tm := s.topicMetrics(ref)
	tm.fetchRecords.Add(len(res.Records))
	tm.fetchBytes.Add(bytes)
	if waitMs == 0 || len(res.Records) > 0 {
		tm.fetchDuration.UpdateDuration(start)
	}
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	// The answer goes out without a copy. SetBody would copy it into one
	// of fasthttp's pooled buffers, which keep the size of the largest
	// answers they held: after a burst of 1 MB fetches they held tens of MB.
	s.answerRead(ctx, pr, ref.Tenant, out, hold.Shrink(int64(bytes+len(out))))
}

// readHeld reads a fetch's answer with room taken first for reading
// maxBytes, or the batch at the offset if larger (room says how much
// that takes; the caller gives it back once the answer is written), and
// never holds that room through a long poll: a partition on this node is
// awaited before,
// holding nothing; one on another node is read at once and, when that
// finds nothing, long-polled there holding nothing (AwaitAny) and read
// again, as the group poll does. (The read used to long-poll the other
// node with the room held: a few idle fetches could hold a tenant's share
// of max_request_memory for their whole wait.) read reads without waiting
// and reports whether it found anything.
//
// A read also takes one of the tenant's read slots (readSlot), never
// through a wait; done gives it back, once the caller has made its answer.
func (s *Server) readHeld(c context.Context, at multiraft.PartitionAt, maxBytes int, room func(readBytes int) int, wait time.Duration, read func() (bool, error)) (hold membudget.Hold, done func(), err error) {
	awaited := wait > 0 && s.b.Await(c, at.Ref, at.P, at.Offset, wait)
	for {
		// A read returns the batch at the offset whole, whatever its
		// max_bytes: one HTTP request's records are one batch, up to
		// max_body_bytes. (Room for max_bytes alone let fetches of
		// max_bytes=1 hold 8 MB answers each for about nothing.)
		hold, err := s.answerRoom(at.Ref.Tenant, room(max(maxBytes, s.b.BatchBytesAt(at.Ref, at.P, at.Offset))))
		if err != nil {
			return hold, nil, err
		}
		done, err := s.readSlot(at.Ref.Tenant)
		if err != nil {
			hold.Release()
			return hold, nil, err
		}
		found, err := read()
		if err != nil {
			done()
			hold.Release()
			return hold, nil, err
		}
		if found || awaited || wait <= 0 {
			return hold, done, nil
		}
		done()
		hold.Release()
		s.b.AwaitAny(c, []multiraft.PartitionAt{at}, wait)
		awaited = true
	}
}

// awaitOnly answers a fetch of max=0: it waits up to wait for a record
// at the offset, reading none, on whichever node holds the partition
// (Host.AwaitAny), and answers the partition's offsets without records.
// A node long-polls a partition another node holds so, its answer not
// held in memory meanwhile.
func (s *Server) awaitOnly(ctx *fasthttp.RequestCtx, c context.Context, at multiraft.PartitionAt, wait time.Duration, batches bool) {
	s.b.AwaitAny(c, []multiraft.PartitionAt{at}, wait)
	po, err := s.b.Offsets(at.Ref, at.P)
	if err != nil {
		writeError(ctx, err)
		return
	}
	h := &ctx.Response.Header
	h.Set("Eddy-Next-Offset", strconv.FormatInt(int64(at.Offset), 10))
	h.Set("Eddy-High-Watermark", strconv.FormatInt(int64(po.HighWatermark), 10))
	h.Set("Eddy-Log-Start-Offset", strconv.FormatInt(int64(po.LogStart), 10))
	if meta, err := s.b.Topic(at.Ref); err == nil && s.b.IsLocal(meta, at.P) { // never asked of another node again
		h.Set(BatchBytesHeader, strconv.Itoa(s.b.BatchBytesAt(at.Ref, at.P, at.Offset)))
	}
	ctx.SetStatusCode(200)
	if batches {
		ctx.SetContentType(BatchesContentType)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(fmt.Sprintf(`{"records":[],"next_offset":%d,"high_watermark":%d,"log_start_offset":%d}`+"\n", at.Offset, po.HighWatermark, po.LogStart))
}

// BatchBytesHeader, on the answer of a fetch of max=0, is the size of the
// stored batch at its offset on a node that holds the partition: what a
// read from there returns at least (a node without a replica asks one
// that has it before it reads through it).
const BatchBytesHeader = "Eddy-Batch-Bytes"

// BatchesContentType is the media type of a format=batches fetch: Kafka v2
// record batches back to back, exactly as stored.
const BatchesContentType = "application/vnd.eddy.kafka-record-batches"

// fetchBatches answers with the stored record batches, no re-encoding. The
// offsets a JSON fetch puts in its body go in headers.
func (s *Server) fetchBatches(ctx *fasthttp.RequestCtx, c context.Context, pr *tenants.Principal, ref eddy.TopicRef, p eddy.Partition, offset int64, maxBytes int, wait time.Duration) {
	var rr eddy.FetchedBatches
	at := multiraft.PartitionAt{Ref: ref, P: p, Offset: eddy.Offset(offset)}
	// The room: a pooled buffer for what it may read (bufpool.Cap), held
	// until fasthttp has written it.
	hold, done, err := s.readHeld(c, at, maxBytes, bufpool.Cap, wait, func() (found bool, err error) {
		rr, err = s.b.FetchBatchesPooled(c, ref, p, at.Offset, maxBytes, 0)
		return err == nil && len(rr.Batches) > 0, err
	})
	if err != nil {
		writeError(ctx, err)
		return
	}
	done()
	next, records := offset, 0
	batch.SplitVerified(rr.Batches, func(h batch.Header, _ []byte) error {
		next = h.LastOffset() + 1
		records += int(h.NumRecords)
		return nil
	})
	tm := s.topicMetrics(ref)
	tm.fetchRecords.Add(records)
	tm.fetchBytes.Add(len(rr.Batches))
	h := &ctx.Response.Header
	h.Set("Eddy-Next-Offset", strconv.FormatInt(next, 10))
	h.Set("Eddy-High-Watermark", strconv.FormatInt(rr.HighWatermark, 10))
	h.Set("Eddy-Log-Start-Offset", strconv.FormatInt(rr.LogStart, 10))
	ctx.SetStatusCode(200)
	ctx.SetContentType(BatchesContentType)
	held := len(rr.Batches)
	if rr.Pooled {
		held = cap(rr.Batches)
	}
	s.cfg.ReadQuota.Charge(pr, ref.Tenant, len(rr.Batches))
	answerWith(ctx, rr.Batches, hold.Shrink(int64(held)), rr.Pooled) // read for this request only
}

func (s *Server) offsets(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	ref, p, err := s.partitionRef(ctx, pr, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	po, err := s.b.Offsets(ref, p)
	if err != nil {
		writeError(ctx, err)
		return
	}
	out := map[string]any{"partition": int32(p), "earliest": int64(po.LogStart), "latest": int64(po.HighWatermark),
		"leader": po.Leader, "size_bytes": po.Bytes}
	if args := ctx.QueryArgs(); args.Has("timestamp") {
		ts, err := intArg(args, "timestamp", 0, -1<<62, 1<<62)
		if err != nil {
			writeError(ctx, err)
			return
		}
		off, stamp, err := s.offsetForTime(ref, po, ts)
		if err != nil {
			writeError(ctx, err)
			return
		}
		out["timestamp"], out["offset"], out["record_timestamp"] = ts, off, stamp
	}
	writeJSON(ctx, 200, out)
}

// topicMetrics are a topic's fetch series, looked up once per topic
// rather than formatted and looked up by name on every request (ingest
// keeps the produce series).
type topicMetrics struct {
	fetchRecords, fetchBytes *metrics.Counter
	fetchDuration            *metrics.PrometheusHistogram
}

// topicMetricsCache holds each topic's series; a deleted topic's stay,
// as its series stay in the metrics set.
type topicMetricsCache struct{ m sync.Map } // eddy.TopicRef -> *topicMetrics

func (s *Server) topicMetrics(ref eddy.TopicRef) *topicMetrics {
	if tm, ok := s.tm.m.Load(ref); ok {
		return tm.(*topicMetrics)
	}
	name := ref.String()
	tm := &topicMetrics{
		fetchRecords:  s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_fetch_records_total{topic=%q}`, name)),
		fetchBytes:    s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_fetch_bytes_total{topic=%q}`, name)),
		fetchDuration: s.m.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`eddy_fetch_request_duration_seconds{topic=%q}`, name), promtext.DurationBuckets),
	}
	got, _ := s.tm.m.LoadOrStore(ref, tm)
	return got.(*topicMetrics)
}
