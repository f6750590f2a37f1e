// Package ingest is the one produce path. Every ingress (the HTTP produce
// handler, an MQTT publish, the MQTT QoS 0 flush, the bridge from other
// brokers, the Kafka listener to come) hands its records here: the
// tenant's quotas admit them, the topic's transform runs, the records are
// appended, and the answer carries their offsets and the transform's
// summary. Adapters only decode and encode.
//
//	adapter -> Path.Produce -> admit (rate, storage quota)
//	                        -> route (topic metadata, metric handles; cached per topic)
//	                        -> transform (dead letters, pass/drop policies)
//	                        -> Appender.Produce (partition, group commit, Raft)
package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

// Catalog is what the path reads of the cluster's state.
type Catalog interface {
	Topic(ref eddy.TopicRef) (*multiraft.TopicMeta, error)
	// AdmitProduce checks records against the tenant's rate and storage
	// quotas (taking rate tokens when it admits them).
	AdmitProduce(l *tenants.Limiter, t eddy.TenantID, recs []eddy.Record) error
}

// Appender appends records to a topic's partitions.
type Appender interface {
	Produce(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record, part []eddy.Partition) ([]multiraft.ProduceResult, error)
}

// Transformer runs a topic's transform over a batch.
type Transformer interface {
	Transform(ctx context.Context, meta *multiraft.TopicMeta, recs []eddy.Record, parts []eddy.Partition) (*Transformed, error)
}

// Transformed is a produce batch after its topic's transform.
type Transformed struct {
	Module  string
	Version int
	In      int
	// Records are to be appended, Parts their partitions (nil: choose).
	Records []eddy.Record
	Parts   []eddy.Partition
	// Policy is the failure policy applied ("" when the module succeeded),
	// Failure the kind of failure, DeadLettered the records sent to the
	// dead-letter topic.
	Policy       string
	Failure      string
	DeadLettered int
}

// Request is one produce request, decoded by its adapter.
type Request struct {
	Ref     eddy.TopicRef
	Records []eddy.Record
	// Parts are the records' explicit partitions, or nil (all chosen
	// here: by key, or one partition per request).
	Parts []eddy.Partition
	// Forwarded: another node admitted and transformed the records
	// already (its request was charged there); only append them.
	Forwarded bool
}

// Result is where the records went.
type Result struct {
	// Offsets are in the request's order (after the transform: its output
	// records' order).
	Offsets []multiraft.ProduceResult
	// Transform is the transform's summary, nil when none ran.
	Transform *Transformed
}

// Path is the produce path of one node.
type Path struct {
	cat     Catalog
	app     Appender
	tx      Transformer // nil: transforms are off
	limiter *tenants.Limiter
	m       *metrics.Set
	routes  sync.Map // eddy.TopicRef -> *route
}

// New builds a path; tx may be nil (transforms off). The limiter is the
// node's one, shared by every ingress.
func New(cat Catalog, app Appender, tx Transformer, limiter *tenants.Limiter, m *metrics.Set) *Path {
	return &Path{cat: cat, app: app, tx: tx, limiter: limiter, m: m}
}

// route is a topic's metric handles, made once per topic rather than
// formatted and looked up by name on every request. A deleted topic's
// stay, as its series stay in the metric set.
type route struct {
	records, bytes *metrics.Counter
	duration       *metrics.Histogram
}

func (p *Path) route(ref eddy.TopicRef) *route {
	if r, ok := p.routes.Load(ref); ok {
		return r.(*route)
	}
	name := ref.String()
	r := &route{
		records:  p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_records_total{topic=%q}`, name)),
		bytes:    p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_bytes_total{topic=%q}`, name)),
		duration: p.m.GetOrCreateHistogram(fmt.Sprintf(`eddy_produce_request_duration_seconds{topic=%q}`, name)),
	}
	got, _ := p.routes.LoadOrStore(ref, r)
	return got.(*route)
}

// Produce admits, transforms and appends a request's records. A request
// is refused whole or appended whole; a transform that drops every record
// (or sends them all to its dead-letter topic) is an empty success.
func (p *Path) Produce(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	res, err := p.produce(ctx, req)
	if err != nil {
		p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_errors_total{topic=%q,code=%q}`, req.Ref.String(), eddy.ErrorCode(err))).Inc()
		return res, err
	}
	r := p.route(req.Ref)
	recs := req.Records
	if res.Transform != nil {
		recs = res.Transform.Records
	}
	bytes := 0
	for i := range recs {
		bytes += recs[i].Size()
	}
	r.records.Add(len(recs))
	r.bytes.Add(bytes)
	r.duration.UpdateDuration(start)
	return res, nil
}

func (p *Path) produce(ctx context.Context, req Request) (Result, error) {
	var res Result
	recs, parts := req.Records, req.Parts
	if !req.Forwarded {
		if err := p.cat.AdmitProduce(p.limiter, req.Ref.Tenant, recs); err != nil {
			if c := eddy.ErrorCode(err); c == eddy.CodeQuotaExceeded || c == eddy.CodeStorageQuota {
				p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_tenant_quota_rejections_total{tenant=%q,code=%q}`, req.Ref.Tenant, c)).Inc()
			}
			return res, err
		}
		if p.tx != nil {
			meta, err := p.cat.Topic(req.Ref)
			if err != nil {
				return res, err
			}
			if meta.Transform != nil {
				tr, err := p.tx.Transform(ctx, meta, recs, parts)
				if err != nil {
					return res, err
				}
				res.Transform = tr
				recs, parts = tr.Records, tr.Parts
			}
		}
	}
	if len(recs) == 0 {
		return res, nil // dropped or dead-lettered by the transform: acknowledged
	}
	var err error
	res.Offsets, err = p.app.Produce(ctx, req.Ref, recs, parts)
	return res, err
}

// MaxMessageBytes is the topic's max.message.bytes, for adapters that
// check a record's size before decoding it whole.
func (p *Path) MaxMessageBytes(ref eddy.TopicRef) (int64, error) {
	meta, err := p.cat.Topic(ref)
	if err != nil {
		return 0, err
	}
	return meta.ConfigInt(multiraft.ConfMaxMessageBytes), nil
}
