package mqtt

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestReasonCodes(t *testing.T) {
	for c, want := range map[eddy.Code]byte{
		eddy.CodeForbidden: 0x87, eddy.CodeNotFound: 0x90, eddy.CodeQuotaExceeded: 0x97, eddy.CodeRecordTooLarge: 0x95,
		eddy.CodeTransformError: 0x99, eddy.CodeTransformTimeout: 0x83, eddy.CodeNoQuorum: 0x80, eddy.CodeTimeout: 0x80,
	} {
		if got := ReasonCode(c).Code; got != want {
			t.Errorf("%s: 0x%02x, want 0x%02x", c, got, want)
		}
	}
}

func TestRecordHeaders(t *testing.T) {
	var pk packets.Packet
	pk.TopicName, pk.Payload = "s/d", []byte("v")
	pk.FixedHeader.Qos, pk.FixedHeader.Retain = 1, true
	// User properties named as Eddy's headers are left out: a device must
	// not pass its message off as another topic's, retained or another's.
	pk.Properties.User = []packets.UserProperty{{Key: "mqtt.topic", Val: "s/other"}, {Key: "unit", Val: "C"},
		{Key: "mqtt.retain", Val: "true"}, {Key: "mqtt.client_id", Val: "victim"}}
	pk.Properties.ContentType = "text/plain"
	if n := countReserved(pk.Properties.User); n != 3 {
		t.Fatalf("countReserved: %d, want 3", n)
	}
	r := record(pk, "d", true)
	want := []string{"unit=C", "mqtt.topic=s/d", "mqtt.qos=1", "mqtt.retain=true", "content-type=text/plain"}
	if string(r.Key) != "d" || string(r.Value) != "v" || len(r.Headers) != len(want) {
		t.Fatalf("%+v", r)
	}
	for i, h := range r.Headers {
		if h.Key+"="+string(h.Value) != want[i] {
			t.Fatalf("header %d: %s=%s, want %s", i, h.Key, h.Value, want[i])
		}
	}
	// The qos and retain values are shared by every record: appending to
	// one must not write into the next record's.
	_ = append(r.Headers[2].Value, '9')
	_ = append(r.Headers[3].Value, 'X')
	if n := record(pk, "d", true); string(n.Headers[2].Value) != "1" || string(n.Headers[3].Value) != "true" ||
		string(qosValues[1][:cap(qosValues[1])]) != "1" || string(retainValues[1][:cap(retainValues[1])]) != "true" {
		t.Fatalf("a shared header value was written to: %+v", n.Headers)
	}
}

// BenchmarkRecord: the record a device's QoS 1 publish becomes, as the
// listener makes it for each message (allocations count: each is
// garbage a message).
func BenchmarkRecord(b *testing.B) {
	var pk packets.Packet
	pk.TopicName, pk.Payload = "sensors/dev-0001", make([]byte, 256)
	pk.FixedHeader.Qos = 1
	b.ReportAllocs()
	for b.Loop() {
		r := record(pk, "dev-0001", true)
		if len(r.Headers) != 3 {
			b.Fatal(r.Headers)
		}
	}
}

// recorder is an Ingest that keeps what it is given (the queue's logic is
// under test here; the real produce path is in e2e/mqtt_test.go). As the
// host does, it queues the records in call order (and says so), then
// waits for their "commit" (the gate).
type recorder struct {
	mu     sync.Mutex
	recs   map[eddy.TopicRef]int
	values []string // in the order queued
	gate   chan struct{}
}

func (r *recorder) Ingest(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record) error {
	r.mu.Lock()
	for _, rec := range recs {
		r.values = append(r.values, string(rec.Value))
	}
	r.mu.Unlock()
	eddy.Queued(ctx)
	<-r.gate
	r.mu.Lock()
	r.recs[ref] += len(recs)
	r.mu.Unlock()
	return nil
}

func (r *recorder) MaxMessageBytes(eddy.TopicRef) (int64, error)            { return 1 << 20, nil }
func (r *recorder) Mapping(eddy.TenantID) *tenants.MQTTMapping              { return nil }
func (r *recorder) MaxConnections(eddy.TenantID) int64                      { return 0 }
func (r *recorder) CreateTopic(context.Context, eddy.TopicRef, int32) error { return nil }

// The QoS 0 queue is bounded in records and bytes, and drains everything
// it accepted, in batches per topic, also on stop.
func TestQoS0QueueBounded(t *testing.T) {
	rec := &recorder{recs: map[eddy.TopicRef]int{}, gate: make(chan struct{})}
	l := New(Config{Addr: "127.0.0.1:0"}, rec)
	q := newQoS0Queue(l, 100, 1000, 10*time.Millisecond)
	q.start()
	a, b := eddy.TopicRef{Tenant: "t", Name: "a"}, eddy.TopicRef{Tenant: "t", Name: "b"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[eddy.TopicRef]int{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ref := a
				if i%2 == 1 {
					ref = b
				}
				if q.push(ref, eddy.Record{Value: []byte("0123456789")}) {
					mu.Lock()
					accepted[ref]++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	if n := accepted[a] + accepted[b]; n != 100 {
		t.Fatalf("accepted %d, bound 100", n)
	}
	close(rec.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.stop(ctx)
	if rec.recs[a] != accepted[a] || rec.recs[b] != accepted[b] {
		t.Fatalf("ingested %v, accepted %v", rec.recs, accepted)
	}
}

// A publish that finds the QoS 0 queue full waits for room rather than
// being dropped, and batches in flight at once keep the publishes' order.
func TestQoS0QueueWaitsAndKeepsOrder(t *testing.T) {
	rec := &recorder{recs: map[eddy.TopicRef]int{}, gate: make(chan struct{})}
	l := New(Config{Addr: "127.0.0.1:0"}, rec)
	q := newQoS0Queue(l, 10, 1<<20, 5*time.Second)
	q.start()
	ref := eddy.TopicRef{Tenant: "t", Name: "a"}
	pushed := make(chan bool)
	go func() {
		ok := true
		for i := 0; i < 1000; i++ {
			ok = ok && q.push(ref, eddy.Record{Value: []byte(strconv.Itoa(i))})
		}
		pushed <- ok
	}()
	time.Sleep(50 * time.Millisecond) // the queue fills; the publisher waits
	close(rec.gate)
	select {
	case ok := <-pushed:
		if !ok {
			t.Fatal("a publish was dropped though room came within the wait")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher never got room")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.stop(ctx)
	if rec.recs[ref] != 1000 || len(rec.values) != 1000 {
		t.Fatalf("ingested %d (%d queued) of 1000", rec.recs[ref], len(rec.values))
	}
	for i, v := range rec.values {
		if v != strconv.Itoa(i) {
			t.Fatalf("queued out of order: %s at %d", v, i)
		}
	}
}
