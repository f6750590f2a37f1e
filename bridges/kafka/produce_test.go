package kafka

// Produce over the wire: idempotence, one request naming a partition many
// times, pipelined requests, and frames reused once answered.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceOne sends one batch to t/0 and returns the partition's answer.
func (c *client) produceOne(b []byte) kmsg.ProduceResponseTopicPartition {
	c.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: b}}}}
	return c.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// initProducer asks InitProducerId (v4) for a new producer id.
func (c *client) initProducer() (*kmsg.InitProducerIDRequest, *kmsg.InitProducerIDResponse) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.ProducerID, req.ProducerEpoch = 4, -1, -1
	return req, c.do(req).(*kmsg.InitProducerIDResponse)
}

// TestIdempotentProduce: a producer id from InitProducerId; a retried
// batch is answered with its first offset and stored once; a gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER; a bumped epoch fences the older one; a
// producer id never handed out (a node's own) is refused; a compressed
// batch is stored as it came.
func TestIdempotentProduce(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	initReq, ip := c.initProducer()
	if ip.ErrorCode != 0 || ip.ProducerID < catalog.KafkaProducerIDBase || ip.ProducerEpoch != 0 {
		t.Fatalf("init: %+v", ip)
	}
	mk := func(pid int64, epoch int16, seq int32, n int) []byte {
		recs := make([]eddy.Record, n)
		for i := range recs {
			recs[i] = eddy.Record{Value: []byte("idem"), Timestamp: time.Now().UnixMilli()}
		}
		return batch.Append(nil, recs, batch.Options{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	}
	first := mk(ip.ProducerID, 0, 0, 3)
	a := c.produceOne(append([]byte(nil), first...))
	b := c.produceOne(append([]byte(nil), first...)) // the retry
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.BaseOffset != b.BaseOffset {
		t.Fatalf("retry: %+v then %+v", a, b)
	}
	if r := c.produceOne(mk(ip.ProducerID, 0, 7, 1)); r.ErrorCode != errOutOfOrderSequence {
		t.Fatalf("gap: %d", r.ErrorCode)
	}
	if r := c.produceOne(mk(ip.ProducerID, 0, 3, 2)); r.ErrorCode != 0 || r.BaseOffset != a.BaseOffset+3 {
		t.Fatalf("next: %+v", r)
	}
	initReq.ProducerID, initReq.ProducerEpoch = ip.ProducerID, 0
	if bump := c.do(initReq).(*kmsg.InitProducerIDResponse); bump.ProducerID != ip.ProducerID || bump.ProducerEpoch != 1 {
		t.Fatalf("epoch bump: %+v", bump)
	}
	if r := c.produceOne(mk(ip.ProducerID, 1, 0, 1)); r.ErrorCode != 0 {
		t.Fatalf("new epoch: %d", r.ErrorCode)
	}
	if r := c.produceOne(mk(ip.ProducerID, 0, 5, 1)); r.ErrorCode != errInvalidProducerEpoch {
		t.Fatalf("fenced epoch: %d", r.ErrorCode)
	}
	for _, pid := range []int64{1, ip.ProducerID + 1000} {
		if r := c.produceOne(mk(pid, 0, 0, 1)); r.ErrorCode != errUnknownProducerID {
			t.Fatalf("producer id %d: %d", pid, r.ErrorCode)
		}
	}
	po, err := e.h.Offsets(eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}, 0)
	if err != nil || int64(po.HighWatermark) != a.BaseOffset+6 {
		t.Fatalf("high watermark %d (%v): want %d records, each once", po.HighWatermark, err, a.BaseOffset+6)
	}
}

// TestManyPartitionsInOneRequest: a produce and a fetch naming one
// partition 10,000 times are served with bounded concurrency (the node's
// goroutines stay few) and answered in full.
func TestManyPartitionsInOneRequest(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	const n = 10_000
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 9, 1, 30_000
	rec := batch.Append(nil, []eddy.Record{{Value: []byte("x")}}, batch.Options{ProducerID: -1})
	rt := kmsg.ProduceRequestTopic{Topic: "t"}
	for range n {
		rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: 0, Records: rec})
	}
	pr.Topics = []kmsg.ProduceRequestTopic{rt}
	base := runtime.NumGoroutine()
	peak := atomic.Int64{}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
				time.Sleep(time.Millisecond)
			}
		}
	}()
	r := c.do(pr).(*kmsg.ProduceResponse)
	close(stop)
	if len(r.Topics[0].Partitions) != n {
		t.Fatalf("%d answers", len(r.Topics[0].Partitions))
	}
	if extra := peak.Load() - int64(base); extra > 2*maxConcurrentAppends+100 {
		t.Fatalf("%d more goroutines while serving one request", extra)
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.Version, fr.MaxWaitMillis, fr.MaxBytes = 12, 200, 1<<20
	ft := kmsg.FetchRequestTopic{Topic: "t"}
	for range n {
		ft.Partitions = append(ft.Partitions, kmsg.FetchRequestTopicPartition{Partition: 1, PartitionMaxBytes: 100})
	}
	fr.Topics = []kmsg.FetchRequestTopic{ft}
	if f := c.do(fr).(*kmsg.FetchResponse); len(f.Topics[0].Partitions) != n {
		t.Fatalf("fetch: %d answers", len(f.Topics[0].Partitions))
	}
}

// TestPipelinedProduce: produce requests sent without waiting (more than
// a connection keeps in flight, an acks=0 one among them) are answered in
// order, each batch stored behind the one sent before it, an idempotent
// producer's sequences accepted as sent; a Metadata request after them is
// answered after them.
func TestPipelinedProduce(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	_, ip := c.initProducer()
	if ip.ErrorCode != 0 {
		t.Fatalf("init: %+v", ip)
	}
	const requests, perBatch = 3 * maxPipelined, 2
	var order []sentProduce
	for i := range requests {
		recs := make([]eddy.Record, perBatch)
		for j := range recs {
			recs[j] = eddy.Record{Value: []byte(strconv.Itoa(i*perBatch + j)), Timestamp: time.Now().UnixMilli()}
		}
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		if i == requests/2 {
			req.Acks = 0 // no answer, in its place
		}
		idem := batch.Append(nil, recs, batch.Options{ProducerID: ip.ProducerID, BaseSequence: int32(i * perBatch)})
		plain := batch.Append(nil, recs, batch.Options{ProducerID: -1})
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{
			{Partition: 0, Records: idem}, {Partition: 1, Records: plain}}}}
		corr := c.send(req)
		if req.Acks != 0 {
			order = append(order, sentProduce{req, corr})
		}
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	metaCorr := c.send(meta)
	next := [2]int64{-1, -1}
	c.answers(t, order, func(s sentProduce, p kmsg.ProduceResponseTopicPartition) {
		if n := next[p.Partition]; n >= 0 && p.BaseOffset < n {
			t.Fatalf("request %d, partition %d: base offset %d, before the %d the request before it reached", s.corr, p.Partition, p.BaseOffset, n)
		}
		next[p.Partition] = p.BaseOffset + perBatch
	})
	if _, err := c.recv(meta, metaCorr); err != nil {
		t.Fatalf("metadata after the produces: %v", err)
	}
	for p := range eddy.Partition(2) {
		po, err := e.h.Offsets(eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}, p)
		if err != nil || po.HighWatermark != requests*perBatch {
			t.Fatalf("partition %d: high watermark %d (%v), want %d", p, po.HighWatermark, err, requests*perBatch)
		}
	}
}

// TestReusedFramesKeepRecords: produce frames of 64 KiB and more come
// from a pool and go back once served. Requests pipelined on one
// connection, each in a frame the one before may have used, must store
// what each one sent: one batch a partition (stored as it came) and two
// (decoded, queued on the partition as records).
func TestReusedFramesKeepRecords(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	const requests, perBatch, size = 4 * maxPipelined, 40, 1000
	want := [2][]string{}
	var order []sentProduce
	for i := range requests {
		batchOf := func(p, n int) []byte {
			recs := make([]eddy.Record, perBatch)
			for j := range recs {
				v := fmt.Sprintf("request %d partition %d batch %d record %d ", i, p, n, j)
				v += strings.Repeat(string(rune('a'+(i+j)%26)), size-len(v))
				recs[j] = eddy.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
				want[p] = append(want[p], v)
			}
			return batch.Append(nil, recs, batch.Options{ProducerID: -1})
		}
		one := batchOf(0, 0)
		two := append(batchOf(1, 0), batchOf(1, 1)...)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{
			{Partition: 0, Records: one}, {Partition: 1, Records: two}}}}
		order = append(order, sentProduce{req, c.send(req)})
	}
	c.answers(t, order, func(sentProduce, kmsg.ProduceResponseTopicPartition) {})
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	for p := range eddy.Partition(2) {
		var got []string
		for off := eddy.Offset(0); len(got) < len(want[p]); {
			res, err := e.h.Fetch(context.Background(), ref, p, off, 1000, 16<<20, 0)
			if err != nil || len(res.Records) == 0 {
				t.Fatalf("partition %d at %d: %v", p, off, err)
			}
			for _, r := range res.Records {
				got = append(got, string(r.Value))
			}
			off = res.NextOffset
		}
		if !slices.Equal(got, want[p]) {
			for i := range got {
				if got[i] != want[p][i] {
					t.Fatalf("partition %d, record %d: %.60q, want %.60q", p, i, got[i], want[p][i])
				}
			}
			t.Fatalf("partition %d: %d records, want %d", p, len(got), len(want[p]))
		}
	}
}

// sentProduce is a produce request sent on a connection, not yet answered.
type sentProduce struct {
	req  *kmsg.ProduceRequest
	corr int32
}

// answers reads the answers to sent, in their order, fails on any
// partition's error, and hands each partition's answer to each.
func (c *client) answers(t *testing.T, sent []sentProduce, each func(sentProduce, kmsg.ProduceResponseTopicPartition)) {
	t.Helper()
	for _, s := range sent {
		resp, err := c.recv(s.req, s.corr)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.(*kmsg.ProduceResponse).Topics[0].Partitions {
			if p.ErrorCode != 0 {
				msg := ""
				if p.ErrorMessage != nil {
					msg = *p.ErrorMessage
				}
				t.Fatalf("request %d, partition %d: error %d %s", s.corr, p.Partition, p.ErrorCode, msg)
			}
			each(s, p)
		}
	}
}
