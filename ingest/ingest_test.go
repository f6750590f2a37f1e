package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/internal/testhost"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

// startHost runs a real one-node host with a topic "t" of the default
// tenant and one of tenant "slow", whose produce rate quota is 2 records
// a second.
func startHost(tb testing.TB) *multiraft.Host {
	tb.Helper()
	h := testhost.Start(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.CreateTenant(ctx, "slow", tenants.Quotas{ProduceRecordsPerSec: 2}); err != nil {
		tb.Fatal(err)
	}
	for _, ref := range []eddy.TopicRef{{Tenant: eddy.DefaultTenant, Name: "t"}, {Tenant: "slow", Name: "t"}} {
		if _, err := h.CreateTopic(ctx, ref.Tenant, catalog.TopicSpec{Name: ref.Name, Partitions: 1, ReplicationFactor: 1}); err != nil {
			tb.Fatal(err)
		}
	}
	testhost.Ready(tb, h)
	return h
}

func records(n int) []eddy.Record {
	recs := make([]eddy.Record, n)
	for i := range recs {
		recs[i] = eddy.Record{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}
	}
	return recs
}

func series(m *metrics.Set) string {
	var b bytes.Buffer
	m.WritePrometheus(&b)
	return b.String()
}

func TestProduce(t *testing.T) {
	h := startHost(t)
	m := metrics.NewSet()
	p := ingest.New(h, h, nil, tenants.NewLimiter(nil), m)
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}

	res, err := p.Produce(ctx, ingest.Request{Ref: ref, Records: records(3)})
	if err != nil || len(res.Offsets) != 3 || res.Offsets[2].BaseOffset != 2 || res.Transform != nil {
		t.Fatalf("produce: %+v %v", res, err)
	}
	if !strings.Contains(series(m), `eddy_produce_records_total{topic="default/t"} 3`) {
		t.Fatalf("records not counted:\n%s", series(m))
	}

	// The tenant's rate quota admits 2 records a second: the next 2 are
	// refused, counted as a quota rejection and a produce error.
	slow := eddy.TopicRef{Tenant: "slow", Name: "t"}
	if _, err := p.Produce(ctx, ingest.Request{Ref: slow, Records: records(2)}); err != nil {
		t.Fatalf("within the rate quota: %v", err)
	}
	if _, err := p.Produce(ctx, ingest.Request{Ref: slow, Records: records(2)}); eddy.ErrorCode(err) != eddy.CodeQuotaExceeded {
		t.Fatalf("over the rate quota: %v", err)
	}
	for _, want := range []string{`eddy_tenant_quota_rejections_total{tenant="slow",code="quota_exceeded"} 1`,
		`eddy_produce_errors_total{topic="slow/t",code="quota_exceeded"} 1`} {
		if !strings.Contains(series(m), want) {
			t.Fatalf("missing %s:\n%s", want, series(m))
		}
	}
	// A forwarded request was charged where it arrived: it is appended.
	if res, err := p.Produce(ctx, ingest.Request{Ref: slow, Records: records(3), Forwarded: true}); err != nil || len(res.Offsets) != 3 {
		t.Fatalf("forwarded: %+v %v", res, err)
	}

	// A batch another node admitted for this one to transform, where this
	// node sees no transform (a binding it has not applied yet): refused,
	// retriable, rather than stored untransformed.
	admitted := ingest.Request{Ref: ref, Records: records(1), Parts: []eddy.Partition{0}, Admitted: true,
		Batch: batch.Append(nil, records(1), batch.Options{ProducerID: -1})}
	if _, err := p.Produce(ctx, admitted); eddy.ErrorCode(err) != eddy.CodeUnavailable {
		t.Fatalf("an admitted batch where no transform runs: %v", err)
	}

	missing := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "nope"}
	if _, err := p.Produce(ctx, ingest.Request{Ref: missing, Records: records(1)}); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("missing topic: %v", err)
	}
	// ... counted without the name a client made up.
	if s := series(m); !strings.Contains(s, `eddy_produce_errors_total{topic="",code="not_found"} 1`) || strings.Contains(s, "nope") {
		t.Fatalf("a missing topic's refusal:\n%s", s)
	}
	if n, err := p.MaxMessageBytes(ref); err != nil || n <= 0 {
		t.Fatalf("max.message.bytes: %d %v", n, err)
	}
}

// BenchmarkProduceOne is the path's cost for one record, as one MQTT
// publish or one-record HTTP request pays it, with 32 producers per CPU
// sharing group commits (ns/op is then about the CPU cost per record).
func BenchmarkProduceOne(b *testing.B) {
	h := startHost(b)
	cat := &countingCatalog{Host: h}
	p := ingest.New(cat, h, nil, tenants.NewLimiter(nil), metrics.NewSet())
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		recs := records(1)
		for pb.Next() {
			if _, err := p.Produce(ctx, ingest.Request{Ref: ref, Records: recs}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cat.reads.Load())/float64(b.N), "catalog-reads/op")
}

// countingCatalog is the real host, counting the reads of catalog state
// the path makes.
type countingCatalog struct {
	*multiraft.Host
	reads atomic.Int64
}

func (c *countingCatalog) Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error) {
	c.reads.Add(1)
	return c.Host.Topic(ref)
}

func (c *countingCatalog) Tenant(t eddy.TenantID) (*catalog.TenantMeta, error) {
	c.reads.Add(1)
	return c.Host.Tenant(t)
}

// TestRoutesCachedPerCatalogVersion: a request, as an MQTT publish makes
// it (the tenant's mapping, the topic's max.message.bytes, then the
// produce), reads no catalog state while the catalog is unchanged; a
// change makes the next request read the topic and tenant once more.
func TestRoutesCachedPerCatalogVersion(t *testing.T) {
	h := startHost(t)
	cat := &countingCatalog{Host: h}
	p := ingest.New(cat, h, nil, tenants.NewLimiter(nil), metrics.NewSet())
	ctx := context.Background()
	ref := eddy.TopicRef{Tenant: eddy.DefaultTenant, Name: "t"}
	publish := func() {
		t.Helper()
		p.Mapping(ref.Tenant)
		if _, err := p.MaxMessageBytes(ref); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Produce(ctx, ingest.Request{Ref: ref, Records: records(1)}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	first := cat.reads.Load()
	for range 100 {
		publish()
	}
	if n := cat.reads.Load() - first; n != 0 {
		t.Fatalf("100 publishes on an unchanged catalog read it %d times", n)
	}
	if _, err := h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "other", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	before := cat.reads.Load()
	publish()
	publish()
	if n := cat.reads.Load() - before; n != 2 {
		t.Fatalf("after a catalog change, two publishes read it %d times, want 2 (the topic and its tenant, once)", n)
	}
}
