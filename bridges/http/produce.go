package httpapi

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/valyala/fasthttp"
)

// maxRecordsPerRequest bounds one produce request.
const maxRecordsPerRequest = 100_000

func (s *Server) produce(ctx *fasthttp.RequestCtx, p *tenants.Principal) {
	ref, err := s.topicRef(ctx, p, tenants.Produce)
	if err != nil {
		writeError(ctx, err)
		return
	}
	// A forwarded request was admitted and transformed where it arrived;
	// the header is trusted only with an operator token.
	forwarded := len(ctx.Request.Header.Peek(ForwardedHeader)) > 0 && p.Operator()
	recs, parts, err := s.parseProduce(ctx, forwarded)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if len(parts) > 0 && parts[0] >= 0 {
		if err := s.refuseForwardLoop(ctx, ref, parts[0]); err != nil {
			writeError(ctx, err)
			return
		}
	}
	req := ingest.Request{Ref: ref, Records: recs, Parts: parts, Forwarded: forwarded}
	if forwarded && ctx.QueryArgs().Has("verbatim") {
		// A client's batch another node checked: stored as it came, or
		// (transform) admitted there and transformed here.
		req.Batch = bytes.Clone(ctx.PostBody())
		if ctx.QueryArgs().Has("transform") {
			req.Forwarded, req.Admitted = false, true
		}
	}
	ans, err := s.cfg.Producer.Produce(s.produceDeadline.Context(), req)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, tr := ans.Offsets, ans.Transform
	out := make([]byte, 0, 16+len(res)*32)
	out = append(out, `{"offsets":[`...)
	for i, r := range res {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"partition":`...)
		out = strconv.AppendInt(out, int64(r.Partition), 10)
		out = append(out, `,"offset":`...)
		out = strconv.AppendInt(out, int64(r.BaseOffset), 10)
		out = append(out, '}')
	}
	out = append(out, ']')
	if tr != nil {
		out = appendTransformJSON(out, tr)
	}
	out = append(out, "}\n"...)
	ctx.SetStatusCode(200)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// parseProduce decodes a produce body by Content-Type. The records it
// returns own their bytes (nothing points into the fasthttp request).
// Kafka record batches (BatchesContentType, for the partition the
// partition argument names) are how one node forwards a produce to
// another; only a forwarded request may send them.
func (s *Server) parseProduce(ctx *fasthttp.RequestCtx, forwarded bool) ([]eddy.Record, []eddy.Partition, error) {
	ct := string(ctx.Request.Header.ContentType())
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(strings.ToLower(ct))
	body := ctx.PostBody()
	now := time.Now().UnixMilli()
	var recs []eddy.Record
	var parts []eddy.Partition
	add := func(i int, jr *jsonRecord) error {
		if len(recs) >= maxRecordsPerRequest {
			return eddy.Errorf(eddy.CodeRequestTooLarge, "more than %d records in one request", maxRecordsPerRequest)
		}
		r, p, err := jr.toRecord(i, now)
		if err != nil {
			return err
		}
		recs = append(recs, r)
		parts = append(parts, p)
		return nil
	}
	switch ct {
	case "application/json", "":
		jrs, err := parseProduceJSON(body)
		if err != nil {
			return nil, nil, produceJSONError(err)
		}
		if len(jrs) == 0 {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, `body has no records: expected {"records":[{"value":...}]}`)
		}
		for i := range jrs {
			if err := add(i, &jrs[i]); err != nil {
				return nil, nil, err
			}
		}
	case "application/x-ndjson", "application/jsonl", "application/json-seq":
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), s.cfg.MaxBodyBytes)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			jr, err := parseRecordJSON(b)
			if err != nil {
				return nil, nil, eddy.Errorf(eddy.CodeInvalid, "line %d: malformed JSON: %v", line, err)
			}
			if err := add(len(recs), &jr); err != nil {
				return nil, nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "reading NDJSON: %v", err)
		}
		if len(recs) == 0 {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "NDJSON body has no records")
		}
	case BatchesContentType:
		if !forwarded {
			return nil, nil, eddy.Errorf(eddy.CodeUnsupportedMedia, "record batches are accepted only from another node of the cluster")
		}
		p, err := partitionArg(ctx.QueryArgs())
		if err != nil || p < 0 {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "record batches need their partition")
		}
		var frs []eddy.FetchedRecord
		if err := batch.SplitVerified(bytes.Clone(body), func(_ batch.Header, one []byte) error {
			frs, err = batch.DecodeVerified(frs, one)
			return err
		}); err != nil {
			return nil, nil, err
		}
		if len(frs) == 0 || len(frs) > maxRecordsPerRequest {
			return nil, nil, eddy.Errorf(eddy.CodeInvalid, "%d records in the batches: 1 to %d", len(frs), maxRecordsPerRequest)
		}
		recs, parts = make([]eddy.Record, len(frs)), make([]eddy.Partition, len(frs))
		for i := range frs {
			recs[i], parts[i] = frs[i].Record, p
		}
	case "application/octet-stream":
		r := eddy.Record{Value: bytes.Clone(body), Timestamp: now}
		if r.Value == nil {
			r.Value = []byte{}
		}
		args := ctx.QueryArgs()
		if args.Has("key") {
			r.Key = bytes.Clone(args.Peek("key"))
		}
		p, err := partitionArg(args)
		if err != nil {
			return nil, nil, err
		}
		recs, parts = []eddy.Record{r}, []eddy.Partition{p}
	default:
		return nil, nil, eddy.Errorf(eddy.CodeUnsupportedMedia, "Content-Type %q: use application/json, application/x-ndjson or application/octet-stream", ct)
	}
	return recs, parts, nil
}

// partitionArg is the partition query argument, or -1 (choose) without one.
func partitionArg(args *fasthttp.Args) (eddy.Partition, error) {
	if !args.Has("partition") {
		return -1, nil
	}
	n, ok := parsePartition(string(args.Peek("partition")))
	if !ok {
		return 0, eddy.Errorf(eddy.CodeInvalid, "partition %q is not a partition number", args.Peek("partition"))
	}
	return n, nil
}
