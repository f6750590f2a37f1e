package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The memory a connection's requests make the listener hold.

// TestSlowLargeFrameHoldsWhatWasSent: a client that announces a request
// of 60 MiB and sends 200 KiB of it makes the listener hold memory in
// proportion to the 200 KiB (at most four times), not the 60 MiB.
func TestSlowLargeFrameHoldsWhatWasSent(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := &conn{nc: server, br: bufio.NewReaderSize(server, 16<<10)}
	const sent = 200 << 10
	go func() {
		hdr := binary.BigEndian.AppendUint32(nil, 60<<20)
		client.Write(append(hdr, make([]byte, sent)...))
		time.Sleep(200 * time.Millisecond) // the client stalls; then it goes
		client.Close()
	}()
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() { _, _, err := c.readFrame(64 << 20); done <- err }()
	time.Sleep(100 * time.Millisecond)
	runtime.ReadMemStats(&during)
	if err := <-done; err == nil {
		t.Fatal("a frame cut short was read whole")
	}
	if grown := int64(during.TotalAlloc - before.TotalAlloc); grown > 4*sent+(256<<10) {
		t.Fatalf("the listener allocated %d KiB for %d KiB sent of an announced 60 MiB", grown>>10, sent>>10)
	}
}

// TestRequestMemoryWaits: an authenticated connection's frame is read
// once the node's request memory holds its size, a tenant at most half:
// a tenant whose stalled large requests hold its half waits, another
// tenant does not, and a stalled request that goes gives its room back.
func TestRequestMemoryWaits(t *testing.T) {
	e := newEnv(t) // max 1 MiB a request: a budget of 8 MiB, 4 a tenant
	if _, err := e.h.CreateTenant(context.Background(), "acme", tenants.Quotas{}); err != nil {
		t.Fatal(err)
	}
	var stalled []*client
	for range 4 {
		c := e.login("default", e.token)
		hdr := binary.BigEndian.AppendUint32(nil, 1<<20)
		c.nc.Write(append(hdr, make([]byte, 100<<10)...)) // 100 KiB of 1 MiB, then nothing
		stalled = append(stalled, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.l.cfg.Bodies.Used() != 4<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes held by four stalled 1 MiB requests; want 4 MiB", e.l.cfg.Bodies.Used())
		}
		time.Sleep(10 * time.Millisecond)
	}
	waiting := e.login("default", e.token) // SASL is read before: no tenant yet
	answered := make(chan error, 1)
	go func() {
		req := kmsg.NewPtrApiVersionsRequest()
		_, err := waiting.recv(req, waiting.send(req))
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a request of a tenant holding its half was read: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	acme := e.login("acme", e.mint("acme", "produce:*"))
	req := kmsg.NewPtrApiVersionsRequest()
	if r := acme.do(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("another tenant's request: %d", r.ErrorCode)
	}
	stalled[0].nc.Close()
	if err := <-answered; err != nil {
		t.Fatalf("the waiting request once a stalled one went: %v", err)
	}
}

// TestFetchAnswerBounded: a fetch asking for 1 GiB gets at most the
// listener's FetchMaxBytes (1 MiB here: an eighth of the 8 MiB request
// memory); while its tenant's half of that memory is held, a fetch waits
// its MaxWaitMillis for room and is answered the offsets without records;
// once the memory is back, the records come.
func TestFetchAnswerBounded(t *testing.T) {
	e := newEnv(t) // max 1 MiB a request: a budget of 8 MiB, 4 a tenant
	c := e.login("default", e.token)
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	value := make([]byte, 100<<10)
	for range 60 { // 6 MiB in batches of 100 KiB
		if _, err := e.h.Produce(context.Background(), ref, []eddy.Record{{Value: value}}, []eddy.Partition{0}); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(wait int32) (kmsg.FetchResponseTopicPartition, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 11, wait, 1, 1<<30, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = 0, 1<<30
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp := c.do(req).(*kmsg.FetchResponse)
		return resp.Topics[0].Partitions[0], time.Since(start)
	}
	p, _ := fetch(0)
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || len(p.RecordBatches) > 1<<20 {
		t.Fatalf("a fetch of 1 GiB: error %d, %d bytes of batches (high watermark %d); want some, at most 1 MiB", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	for deadline := time.Now().Add(2 * time.Second); e.l.cfg.Bodies.Used() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) { // given back right after the write, which the client may see first
			t.Fatalf("%d bytes of request memory held after the answer was written", e.l.cfg.Bodies.Used())
		}
	}
	held, err := e.l.cfg.Bodies.Acquire(context.Background(), "default", 3<<20) // its request fits, not the fetch's 2 MiB
	if err != nil {
		t.Fatal(err)
	}
	p, took := fetch(300)
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 60 {
		t.Fatalf("a fetch without room: error %d, %d bytes, high watermark %d; want no records, offsets told", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	if took < 250*time.Millisecond {
		t.Fatalf("a fetch without room was answered in %v, before its MaxWaitMillis of 300", took)
	}
	held.Release()
	if p, _ = fetch(300); len(p.RecordBatches) == 0 {
		t.Fatal("no records once the memory was given back")
	}
}

// TestFetchLongPollFromOneGoroutine: a fetch naming the same partition
// 5,000 times long-polls without a goroutine for each (it took 256,
// some 2 MB, a fetch), and the first append answers it before its
// MaxWaitMillis.
func TestFetchLongPollFromOneGoroutine(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 11, 5000, 1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for range 5000 {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = 0, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	before := runtime.NumGoroutine()
	start := time.Now()
	answered := make(chan *kmsg.FetchResponse, 1)
	go func() { answered <- c.do(req).(*kmsg.FetchResponse) }()
	time.Sleep(300 * time.Millisecond)
	if n := runtime.NumGoroutine() - before; n > 20 {
		t.Fatalf("%d more goroutines while one fetch long-polls", n)
	}
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	if _, err := e.h.Produce(context.Background(), ref, []eddy.Record{{Value: []byte("v")}}, []eddy.Partition{0}); err != nil {
		t.Fatal(err)
	}
	resp := <-answered
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the append answered the fetch after %v", took)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("the fetch woken by an append: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
}

// TestFetchRoomForWholeBatch: the first partition with records is
// answered its next batch whole however small the limits (KIP-74), so
// a fetch takes room for that batch, not for its limits (a fetch of
// 1 byte took 2 bytes of room and held a 600 KiB answer); a partition
// after it whose next batch exceeds its limit is answered offsets alone.
func TestFetchRoomForWholeBatch(t *testing.T) {
	e := newEnv(t) // a budget of 8 MiB, 4 a tenant
	c := e.login("default", e.token)
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	big := make([]eddy.Record, 6)
	for i := range big {
		big[i].Value = make([]byte, 100<<10)
	}
	for p, recs := range [][]eddy.Record{{{Value: []byte("small")}}, big} {
		to := make([]eddy.Partition, len(recs)) // one batch
		for i := range to {
			to[i] = eddy.Partition(p)
		}
		if _, err := e.h.Produce(context.Background(), ref, recs, to); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(limit int32, parts ...int32) []kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 11, 200, 1, limit, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, limit
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return c.do(req).(*kmsg.FetchResponse).Topics[0].Partitions
	}
	if ps := fetch(1, 1); len(ps[0].RecordBatches) < 600<<10 {
		t.Fatalf("a fetch of 1 byte: %d bytes; want the whole batch of 600 KiB", len(ps[0].RecordBatches))
	}
	if ps := fetch(64<<10, 0, 1); len(ps[0].RecordBatches) == 0 || len(ps[1].RecordBatches) != 0 || ps[1].HighWatermark != 6 {
		t.Fatalf("after a partition with records, one whose batch exceeds 64 KiB: %d and %d bytes, high watermark %d; want some, none, 6",
			len(ps[0].RecordBatches), len(ps[1].RecordBatches), ps[1].HighWatermark)
	}
	for deadline := time.Now().Add(2 * time.Second); e.l.cfg.Bodies.Used() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of request memory held after the answers", e.l.cfg.Bodies.Used())
		}
	}
	held, err := e.l.cfg.Bodies.Acquire(context.Background(), "default", 3<<20) // leaves 1 MiB: not twice the batch
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if ps := fetch(1, 1); len(ps[0].RecordBatches) != 0 {
		t.Fatalf("a fetch of 1 byte without room for the 600 KiB batch it would answer: %d bytes", len(ps[0].RecordBatches))
	}
}
