package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/batch"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	httpapi "github.com/eddy-broker/eddy/bridges/http"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

// forwarder carries requests for partitions this node holds no replica of
// to a node that does, over that node's HTTP API (through the API's own
// client), with an operator token the cluster key signs. Records travel as raw Kafka batches both ways, so they
// arrive exactly.
type forwarder struct {
	signer func() *tenants.Signer
	hc     *http.Client
	scheme string // https when the nodes' HTTP is TLS

	mu       sync.Mutex
	token    string
	tokenExp time.Time
}

var _ multiraft.Forwarder = (*forwarder)(nil)

// newForwarder forwards over HTTPS when https is set (httpsPeers).
func newForwarder(signer func() *tenants.Signer, https *http.Transport) *forwarder {
	f := &forwarder{signer: signer, scheme: "http", hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second}}}
	if https != nil {
		f.scheme, f.hc = "https", &http.Client{Transport: https}
	}
	return f
}

func (f *forwarder) bearer() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && time.Until(f.tokenExp) > 5*time.Minute {
		return f.token, nil
	}
	s := f.signer()
	if s == nil {
		return "", eddy.Errorf(eddy.CodeUnavailable, "this node cannot sign tokens yet")
	}
	tok, exp, err := s.Issue(eddy.DefaultTenant, "node-forward", []string{tenants.ScopeOperator}, time.Hour)
	if err != nil {
		return "", err
	}
	f.token, f.tokenExp = tok, exp
	return tok, nil
}

func partitionPath(ref eddy.TopicRef, p eddy.Partition, what string) string {
	return fmt.Sprintf("/v1/tenants/%s/topics/%s/partitions/%d/%s", url.PathEscape(string(ref.Tenant)), url.PathEscape(string(ref.Name)), p, what)
}

// forwardedHeader marks every forwarded request (read-only).
var forwardedHeader = http.Header{httpapi.ForwardedHeader: {"1"}}

// do sends a request to node n through the API's client, as a forward.
func (f *forwarder) do(ctx context.Context, n catalog.NodeMeta, method, path, ctype string, body []byte) (*http.Response, []byte, error) {
	c := httpapi.Client{Base: f.scheme + "://" + n.HTTPAddr, Token: f.bearer, HC: f.hc, Header: forwardedHeader}
	resp, b, err := c.Do(ctx, method, path, ctype, body)
	var ae *httpapi.APIError
	var re *httpapi.ReachError
	switch {
	case errors.As(err, &re):
		return nil, nil, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500, Message: "cannot reach the node holding the partition: " + re.Err.Error()}
	case errors.As(err, &ae) && ae.Code != "http":
		return nil, nil, &eddy.Error{Code: eddy.Code(ae.Code), Message: ae.Message, RetryAfterMs: 500}
	case errors.As(err, &ae):
		return nil, nil, eddy.Errorf(eddy.CodeUnavailable, "the node holding the partition answered HTTP %d", ae.Status)
	case err != nil:
		return nil, nil, err
	}
	return resp, b, nil
}

// Produce appends records to a partition another node holds: they travel
// as one Kafka record batch (the storage format, so keys, headers and
// timestamps arrive exactly), and the node appends them without running
// quotas or the transform again (this node did).
func (f *forwarder) Produce(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, recs []eddy.Record) (int64, error) {
	body := batch.Append(nil, recs, batch.Options{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	path := fmt.Sprintf("/v1/tenants/%s/topics/%s/records?partition=%d", url.PathEscape(string(ref.Tenant)), url.PathEscape(string(ref.Name)), p)
	_, b, err := f.do(ctx, n, "POST", path, httpapi.BatchesContentType, body)
	if err != nil {
		return 0, err
	}
	var res struct {
		Offsets []struct{ Offset int64 } `json:"offsets"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Offsets) != len(recs) {
		return 0, eddy.Errorf(eddy.CodeInternal, "forwarded produce: unexpected answer")
	}
	return res.Offsets[0].Offset, nil
}

// AppendBatch appends a client's batch, as it came, to a partition
// another node holds (verbatim: that node stores it so, its producer id
// and sequence kept for deduplication).
func (f *forwarder) AppendBatch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, b []byte) (int64, error) {
	return f.batch(ctx, n, ref, p, b, "verbatim=true", false)
}

// TransformBatch hands a client's batch to a partition another node
// holds, whose transform runs on it there (verbatim and admitted: that
// node charges no quota again, and remembers the batch).
func (f *forwarder) TransformBatch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, b []byte) (int64, error) {
	return f.batch(ctx, n, ref, p, b, "verbatim=true&transform=true", true)
}

// batch forwards a client's batch with the query's flags; consumed allows
// an answer of no offsets (the transform consumed the batch: -1).
func (f *forwarder) batch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, b []byte, query string, consumed bool) (int64, error) {
	path := fmt.Sprintf("/v1/tenants/%s/topics/%s/records?partition=%d&%s", url.PathEscape(string(ref.Tenant)), url.PathEscape(string(ref.Name)), p, query)
	_, body, err := f.do(ctx, n, "POST", path, httpapi.BatchesContentType, b)
	if err != nil {
		return 0, err
	}
	var res struct {
		Offsets []struct{ Offset int64 } `json:"offsets"`
	}
	switch err := json.Unmarshal(body, &res); {
	case err == nil && len(res.Offsets) > 0:
		return res.Offsets[0].Offset, nil
	case err == nil && consumed:
		return -1, nil
	}
	return 0, eddy.Errorf(eddy.CodeInternal, "forwarded batch: unexpected answer")
}

// FetchBatches reads stored batches of a partition another node holds.
func (f *forwarder) FetchBatches(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error) {
	path := partitionPath(ref, p, "records") + fmt.Sprintf("?offset=%d&max_bytes=%d&wait_ms=%d&format=batches", offset, maxBytes, wait.Milliseconds())
	resp, b, err := f.do(ctx, n, "GET", path, "", nil)
	if err != nil {
		return eddy.FetchedBatches{}, err
	}
	hw, _ := strconv.ParseInt(resp.Header.Get("Eddy-High-Watermark"), 10, 64)
	start, _ := strconv.ParseInt(resp.Header.Get("Eddy-Log-Start-Offset"), 10, 64)
	return eddy.FetchedBatches{Batches: b, HighWatermark: hw, LogStart: start}, nil
}

// BatchBytesAt asks node n for the size of the batch at offset: a fetch
// of max=0 there, which names it (an older node does not: 0).
func (f *forwarder) BatchBytesAt(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) (int, error) {
	path := partitionPath(ref, p, "records") + fmt.Sprintf("?offset=%d&max=0&format=batches", offset)
	resp, _, err := f.do(ctx, n, "GET", path, "", nil)
	if err != nil {
		return 0, err
	}
	size, _ := strconv.Atoi(resp.Header.Get(httpapi.BatchBytesHeader))
	return size, nil
}

// Await long-polls a partition another node holds, reading nothing
// there (a fetch of max=0): the answer is its offsets alone.
func (f *forwarder) Await(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration) (bool, error) {
	path := partitionPath(ref, p, "records") + fmt.Sprintf("?offset=%d&max=0&wait_ms=%d&format=batches", offset, wait.Milliseconds())
	resp, _, err := f.do(ctx, n, "GET", path, "", nil)
	if err != nil {
		return false, err
	}
	hw, err1 := strconv.ParseInt(resp.Header.Get("Eddy-High-Watermark"), 10, 64)
	start, err2 := strconv.ParseInt(resp.Header.Get("Eddy-Log-Start-Offset"), 10, 64)
	if err1 != nil || err2 != nil {
		return false, eddy.Errorf(eddy.CodeInternal, "forwarded wait: the answer has no offsets")
	}
	return int64(offset) < hw || int64(offset) < start, nil
}

func (f *forwarder) Fetch(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error) {
	path := partitionPath(ref, p, "records") + fmt.Sprintf("?offset=%d&max_bytes=%d&wait_ms=%d&format=batches", offset, maxBytes, wait.Milliseconds())
	resp, b, err := f.do(ctx, n, "GET", path, "", nil)
	if err != nil {
		return nil, err
	}
	res := &multiraft.FetchResult{NextOffset: offset}
	hw, _ := strconv.ParseInt(resp.Header.Get("Eddy-High-Watermark"), 10, 64)
	start, _ := strconv.ParseInt(resp.Header.Get("Eddy-Log-Start-Offset"), 10, 64)
	res.HighWatermark, res.LogStart = eddy.Offset(hw), eddy.Offset(start)
	// As readRecords: past the last record kept, or past the last batch
	// taken whole (a compacted one may end in a gap).
	cut := false
	var recs []eddy.FetchedRecord
	err = batch.Split(b, func(h batch.Header, one []byte) error {
		if cut {
			return nil
		}
		var err error
		recs, err = batch.DecodeVerified(recs[:0], one)
		for _, r := range recs {
			if r.Offset < offset {
				continue
			}
			if cut = cut || len(res.Records) >= maxRecords; !cut {
				res.Records = append(res.Records, r)
				res.NextOffset = r.Offset + 1
			}
		}
		if !cut {
			res.NextOffset = max(res.NextOffset, eddy.Offset(h.LastOffset()+1))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (f *forwarder) Offsets(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error) {
	_, b, err := f.do(ctx, n, "GET", partitionPath(ref, p, "offsets"), "", nil)
	if err != nil {
		return multiraft.PartitionOffsets{}, err
	}
	var o struct {
		Earliest, Latest int64
		Leader           uint64
		SizeBytes        int64 `json:"size_bytes"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return multiraft.PartitionOffsets{}, err
	}
	return multiraft.PartitionOffsets{Partition: p, LogStart: eddy.Offset(o.Earliest), HighWatermark: eddy.Offset(o.Latest),
		Leader: o.Leader, Bytes: o.SizeBytes}, nil
}

// OffsetForTime asks node n for the first offset of a partition at or
// after a timestamp (the offsets endpoint's ?timestamp=).
func (f *forwarder) OffsetForTime(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, ts int64) (int64, int64, error) {
	_, b, err := f.do(ctx, n, "GET", partitionPath(ref, p, "offsets")+"?timestamp="+strconv.FormatInt(ts, 10), "", nil)
	if err != nil {
		return -1, -1, err
	}
	var o struct {
		Offset          *int64 `json:"offset"`
		RecordTimestamp *int64 `json:"record_timestamp"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.Offset == nil || o.RecordTimestamp == nil {
		return -1, -1, eddy.Errorf(eddy.CodeUnavailable, "the node holding the partition gave no offset for the time")
	}
	if *o.RecordTimestamp < 0 {
		return -1, -1, nil
	}
	return *o.Offset, *o.RecordTimestamp, nil
}

// DeleteRecords asks node n, which holds a replica, to move a
// partition's log start.
func (f *forwarder) DeleteRecords(ctx context.Context, n catalog.NodeMeta, ref eddy.TopicRef, p eddy.Partition, before int64) (int64, error) {
	_, b, err := f.do(ctx, n, "DELETE", partitionPath(ref, p, "records")+"?before="+strconv.FormatInt(before, 10), "", nil)
	if err != nil {
		return 0, err
	}
	var o struct {
		LogStart *int64 `json:"log_start_offset"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.LogStart == nil {
		return 0, eddy.Errorf(eddy.CodeInternal, "forwarded delete of records: unexpected answer")
	}
	return *o.LogStart, nil
}

// Get asks node n for path of its API (read-only), as a forward: what
// one node's API tells of every node (transform breakers, replica
// checksums) it gathers so.
func (f *forwarder) Get(ctx context.Context, n catalog.NodeMeta, path string) ([]byte, error) {
	_, b, err := f.do(ctx, n, "GET", path, "", nil)
	return b, err
}
