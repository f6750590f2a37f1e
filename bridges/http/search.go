package httpapi

import (
	"bytes"
	"context"
	"strconv"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// A fetch with key= or contains= searches instead of reading: it scans the
// partition from offset, at most scan_max_bytes of records per request,
// and answers the matches (at most max, and about fetch_max_bytes of
// them) with how far it scanned (next_offset: where to go on; done when
// it reached the end), so a browser shows progress and asks again rather
// than waiting on a timeout.
// The predicates are fixed (exact key, a substring of the value): no
// tenant code runs in the node. preview_bytes cuts long values.

const (
	defaultScanBytes = 16 << 20
	maxScanBytes     = 256 << 20
	searchPage       = 4 << 20
)

type search struct {
	key      []byte // the key, exactly; nil: any
	contains []byte // a substring of the value; nil: any
	preview  int    // values longer are cut to this many bytes (0: whole)
}

func (q *search) match(r *eddy.FetchedRecord) bool {
	return (q.key == nil || bytes.Equal(r.Key, q.key)) && (q.contains == nil || bytes.Contains(r.Value, q.contains))
}

// searchFetch answers a filtered fetch (the caller checked access).
func (s *Server) searchFetch(ctx *fasthttp.RequestCtx, c context.Context, pr *tenants.Principal, ref eddy.TopicRef, p eddy.Partition, offset, maxRecs int64, binary bool) {
	args := ctx.QueryArgs()
	q := search{}
	if args.Has("key") {
		q.key = append([]byte{}, args.Peek("key")...)
	}
	if args.Has("contains") {
		q.contains = append([]byte{}, args.Peek("contains")...)
		if len(q.contains) == 0 {
			q.contains = nil
		}
	}
	budget, err := intArg(args, "scan_max_bytes", defaultScanBytes, 1, maxScanBytes)
	if err != nil {
		writeError(ctx, err)
		return
	}
	preview, err := intArg(args, "preview_bytes", 0, 0, 16<<20)
	if err != nil {
		writeError(ctx, err)
		return
	}
	q.preview = int(preview)
	// The answer: at most fetch_max_bytes of matches (and the one that
	// crosses it), as a fetch's.
	hold, err := s.answerRoom(ref.Tenant, s.cfg.FetchMaxBytes)
	if err != nil {
		writeError(ctx, err)
		return
	}
	release, err := s.readSlot(ref.Tenant) // the scan is one read, up to scan_max_bytes
	if err != nil {
		hold.Release()
		writeError(ctx, err)
		return
	}
	defer release()
	out := []byte(`{"records":[`)
	matches, scanned, next := 0, int64(0), offset
	var hw, logStart int64
	done := false
	for matches < int(maxRecs) && scanned < budget && len(out) < s.cfg.FetchMaxBytes {
		res, page, err := s.searchPage(c, ref, p, next, int(min(searchPage, budget-scanned)))
		if err != nil {
			hold.Release()
			writeError(ctx, err)
			return
		}
		hw, logStart = int64(res.HighWatermark), int64(res.LogStart)
		if len(res.Records) == 0 {
			page.Release()
			if int64(res.NextOffset) > next && int64(res.NextOffset) < hw {
				next = int64(res.NextOffset) // a compacted topic's gap
				continue
			}
			next = max(next, int64(res.NextOffset))
			done = next >= hw
			break
		}
		whole := true // every record of the page was looked at
		for i := range res.Records {
			r := &res.Records[i]
			if scanned >= budget {
				whole = false
				break // one stored batch may hold more than the budget
			}
			scanned += int64(r.Size())
			next = int64(r.Offset) + 1
			if !q.match(r) {
				continue
			}
			if matches > 0 {
				out = append(out, ',')
			}
			out = q.appendMatch(out, r, binary)
			if matches++; matches == int(maxRecs) || len(out) >= s.cfg.FetchMaxBytes {
				whole = i == len(res.Records)-1
				break
			}
		}
		page.Release()
		if whole {
			next = max(next, int64(res.NextOffset)) // past a gap the page ended in
		}
		done = next >= hw
		if done || c.Err() != nil {
			break
		}
	}
	out = append(out, `],"next_offset":`...)
	out = strconv.AppendInt(out, next, 10)
	out = append(out, `,"scanned_from":`...)
	out = strconv.AppendInt(out, offset, 10)
	out = append(out, `,"scanned_bytes":`...)
	out = strconv.AppendInt(out, scanned, 10)
	out = append(out, `,"done":`...)
	out = strconv.AppendBool(out, done)
	out = append(out, `,"high_watermark":`...)
	out = strconv.AppendInt(out, hw, 10)
	out = append(out, `,"log_start_offset":`...)
	out = strconv.AppendInt(out, logStart, 10)
	out = append(out, "}\n"...)
	s.topicMetrics(ref).fetchRecords.Add(matches)
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	s.answerRead(ctx, pr, ref.Tenant, out, hold.Shrink(int64(len(out))))
}

// searchPage reads a page of a search, up to limit bytes from offset,
// with room for what the read returns: limit, or the stored batch at offset when
// larger, since a batch is read whole (room for a 4 MiB page let
// concurrent searches inside 8 MB batches hold memory never counted). The
// caller releases the room once it is done with the records.
func (s *Server) searchPage(c context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, limit int) (*multiraft.FetchResult, membudget.Hold, error) {
	hold, err := s.answerRoom(ref.Tenant, max(limit, s.b.BatchBytesAt(ref, p, eddy.Offset(offset))))
	if err != nil {
		return nil, hold, err
	}
	res, err := s.b.Fetch(c, ref, p, eddy.Offset(offset), 10_000, limit, 0)
	if err != nil {
		hold.Release()
	}
	return res, hold, err
}

// appendMatch writes a record, its value cut to the preview (then with
// "value_size", the whole size).
func (q *search) appendMatch(dst []byte, r *eddy.FetchedRecord, binary bool) []byte {
	if q.preview == 0 || len(r.Value) <= q.preview {
		return appendRecordJSON(dst, r, binary)
	}
	cut := *r
	cut.Value = r.Value[:q.preview]
	dst = appendRecordJSON(dst, &cut, binary)
	dst = dst[:len(dst)-1] // reopen the object
	dst = append(dst, `,"value_size":`...)
	dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
	return append(dst, '}')
}

// partitionForKey answers the partition a key goes to (Kafka's murmur2, as
// a produce with that key and no partition), so a search by key reads one
// partition.
func (s *Server) partitionForKey(ctx *fasthttp.RequestCtx, pr *tenants.Principal) {
	meta, err := s.topicMeta(ctx, pr, tenants.Describe)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if !ctx.QueryArgs().Has("key") {
		writeError(ctx, eddy.Errorf(eddy.CodeInvalid, "key is required"))
		return
	}
	key := ctx.QueryArgs().Peek("key")
	writeJSON(ctx, 200, map[string]any{"key": string(key), "partition": int32(eddy.KeyPartition(key, meta.Partitions))})
}
