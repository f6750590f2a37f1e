package httpapi

import (
	"bufio"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// maxTails bounds the live tails a node serves at once, a tenant at most
// half of them: one tenant's tails never leave another without.
const maxTails = 256

// tailSlots counts the live tails, in all and by tenant.
type tailSlots struct {
	mu       sync.Mutex
	n        int
	byTenant map[eddy.TenantID]int
}

// take reports whether the tenant may open one more tail, and counts it.
func (ts *tailSlots) take(t eddy.TenantID) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.n >= maxTails || ts.byTenant[t] >= maxTails/2 {
		return false
	}
	if ts.byTenant == nil {
		ts.byTenant = map[eddy.TenantID]int{}
	}
	ts.n++
	ts.byTenant[t]++
	return true
}

func (ts *tailSlots) give(t eddy.TenantID) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.n--
	if ts.byTenant[t]--; ts.byTenant[t] == 0 {
		delete(ts.byTenant, t)
	}
}

// tail streams a topic's new records as Server-Sent Events: from now on
// every partition, or, with partition and offset, one partition from an
// offset; from=P:OFF,... resumes the partitions named (the others from
// now), as a client reconnecting after the last records it saw. Each record is an event "record" whose data is the record as
// JSON with its partition; a comment every 15 s keeps proxies from closing
// an idle stream. It ends when the client goes away, the node stops, or the
// token is revoked (an "error" event says so).
func (s *Server) tail(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	meta, err := s.topicMeta(ctx, p, tenants.Consume)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ref := meta.Ref()
	args := ctx.QueryArgs()
	start := map[eddy.Partition]int64{}
	if args.Has("partition") {
		part, err := intArg(args, "partition", 0, 0, int64(meta.Partitions)-1)
		if err != nil {
			writeError(ctx, err)
			return
		}
		off := int64(-1)
		if args.Has("offset") {
			if off, err = intArg(args, "offset", 0, 0, 1<<62); err != nil {
				writeError(ctx, err)
				return
			}
		}
		start[eddy.Partition(part)] = off
	} else {
		if args.Has("offset") {
			writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "offset needs partition"))
			return
		}
		for i := int32(0); i < meta.Partitions; i++ {
			start[eddy.Partition(i)] = -1
		}
		// from=P:OFF,...: resume those partitions after what a client saw.
		if from := string(args.Peek("from")); from != "" {
			for _, f := range strings.Split(from, ",") {
				ps, os, ok := strings.Cut(f, ":")
				part, perr := strconv.ParseInt(ps, 10, 32)
				off, oerr := strconv.ParseInt(os, 10, 64)
				if !ok || perr != nil || oerr != nil || eddy.Partition(part).Validate(meta.Partitions) != nil || off < 0 {
					writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "from: %q is not partition:offset of this topic", f))
					return
				}
				start[eddy.Partition(part)] = off
			}
		}
	}
	for part, off := range start {
		po, err := s.b.Offsets(ref, part)
		if err != nil {
			writeError(ctx, err)
			return
		}
		// New records only by default; a resumed offset within what is kept.
		start[part] = int64(po.HighWatermark)
		if off >= 0 {
			start[part] = min(max(off, int64(po.LogStart)), int64(po.HighWatermark))
		}
	}
	if !s.tails.take(ref.Tenant) {
		writeError(ctx, &eddy.Error{Code: eddy.CodeBackpressure, RetryAfterMs: 5000,
			Message: "this node serves its limit of live tails, or the tenant its half of them"})
		return
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.SetStatusCode(200)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.tails.give(ref.Tenant)
		c, cancel := context.WithCancel(s.base)
		defer cancel()
		// Each partition's reader long-polls holding nothing (Await), then
		// reads and queues its events holding the tail's one reading turn:
		// a tail whose client reads slowly holds one read of 64 KiB and the
		// queue, however many partitions it follows (each reader held a
		// read of 1 MiB before, and the queue 64 events).
		events := make(chan []byte, tailQueue)
		turn := make(chan struct{}, 1)
		var wg sync.WaitGroup
		for part, off := range start {
			wg.Add(1)
			go func(part eddy.Partition, off int64) {
				defer wg.Done()
				for c.Err() == nil {
					next, ok := s.tailOnce(c, p, ref, part, off, turn, events)
					if !ok {
						select { // back off, then try again
						case <-time.After(time.Second):
						case <-c.Done():
						}
					}
					off = next
				}
			}(part, off)
		}
		defer wg.Wait()
		defer cancel()
		w.WriteString(": eddy live tail of " + string(ref.Name) + "\n\n")
		if w.Flush() != nil {
			return
		}
		write := func(ev []byte) { // a tail's records are the tenant's reads too
			w.Write(ev)
			s.cfg.ReadQuota.Charge(p, ref.Tenant, len(ev))
		}
		keep := time.NewTicker(15 * time.Second)
		defer keep.Stop()
		recheck := time.NewTicker(time.Second)
		defer recheck.Stop()
		for {
			select {
			case <-recheck.C:
				// A revoked token (key removed, tenant deleted or created
				// again, expired) ends the stream within a second, as does
				// the topic's end (deleted, or made again: its offsets
				// start over); the tail sent an error event every
				// back-off, for good.
				err := s.cfg.Verifier.Recheck(p)
				if err == nil {
					// The same life keeps its partitions' shards (it may
					// add partitions after them).
					if now, terr := s.b.Topic(ref); terr != nil || !slices.Equal(now.Shards[:min(len(now.Shards), len(meta.Shards))], meta.Shards) {
						err = eddy.Errorf(eddy.CodeNotFound, "topic %s was deleted", ref.Name)
					}
				}
				if err != nil {
					e := eddy.AsError(err)
					w.Write(appendJSONString([]byte("event: error\ndata: "), string(e.Code)+": "+e.Message))
					w.WriteString("\n\n")
					w.Flush()
					return
				}
				continue
			case ev := <-events:
				write(ev)
				for more := true; more; { // write what else is ready, then flush once
					select {
					case ev := <-events:
						write(ev)
					default:
						more = false
					}
				}
			case <-keep.C:
				w.WriteString(": keepalive\n\n")
			case <-c.Done():
				return
			}
			if w.Flush() != nil {
				return // the client went away
			}
		}
	})
}

// tailQueue bounds a tail's events not yet written.
const tailQueue = 16

// tailOnce waits up to 10 s for records of a tail's partition from off,
// reads them and queues them as events (or an error event), holding the
// tail's turn from the read on; a partition this node does not hold is
// long-polled by a read on a node that does, before the turn. It returns
// the offset to go on from, and false after an error.
func (s *Server) tailOnce(c context.Context, pr *tenants.Principal, ref eddy.TopicRef, part eddy.Partition, off int64, turn chan struct{}, events chan<- []byte) (int64, bool) {
	if d := s.cfg.ReadQuota.Owed(pr, ref.Tenant); d > 0 {
		// Over the consume quota: wait it out, holding nothing.
		select {
		case <-time.After(d):
		case <-c.Done():
			return off, true
		}
	}
	wait := 10 * time.Second
	if s.b.Await(c, ref, part, eddy.Offset(off), wait) {
		wait = 0 // awaited here, holding nothing
	}
	take := func() bool {
		select {
		case turn <- struct{}{}:
			return true
		case <-c.Done():
			return false
		}
	}
	if wait == 0 && !take() {
		return off, true
	}
	// A batch is read whole: one larger than the read takes room for it
	// (and its records, decoded) until the read has kept its 64 KiB.
	var hold membudget.Hold
	if n := s.b.BatchBytesAt(ref, part, eddy.Offset(off)); n > 64<<10 {
		var ok bool
		if hold, ok = s.room(string(ref.Tenant), 2*int64(n)); !ok {
			if wait == 0 {
				<-turn
			}
			return off, false // back off, then try again
		}
	}
	res, err := s.b.Fetch(c, ref, part, eddy.Offset(off), 500, 64<<10, wait)
	hold.Release()
	if wait > 0 && !take() {
		return off, true
	}
	defer func() { <-turn }()
	if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
		// Retention removed what the tail had not sent yet (its client
		// read slower than the log was cut): on from the log start, as
		// a consumer resetting to the earliest offset. It sent the same
		// error event every back-off, for good.
		if po, perr := s.b.Offsets(ref, part); perr == nil && int64(po.LogStart) > off {
			return int64(po.LogStart), true
		}
	}
	if err != nil {
		if c.Err() == nil {
			e := eddy.AsError(err)
			b := []byte("event: error\ndata: ")
			b = appendJSONString(b, string(e.Code)+": "+e.Message)
			select {
			case events <- append(b, "\n\n"...):
			case <-c.Done():
			}
		}
		return off, false
	}
	for i := range res.Records {
		r := &res.Records[i]
		b := []byte("event: record\ndata: {\"partition\":")
		b = strconv.AppendInt(b, int64(part), 10)
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, int64(r.Offset), 10)
		b = append(b, ',')
		b = appendRecordFields(b, &r.Record, false)
		select {
		case events <- append(b, "\n\n"...):
		case <-c.Done():
			return off, true
		}
	}
	return int64(res.NextOffset), true
}
