// Package ingest is the one produce path. Every ingress (the HTTP produce
// handler, an MQTT publish, the MQTT QoS 0 flush, the bridge from other
// brokers, the Kafka listener to come) hands its records here: the
// tenant's quotas admit them, the topic's transform runs, the records are
// appended, and the answer carries their offsets and the transform's
// summary. Adapters only decode and encode.
//
//	adapter -> Path.Produce -> route (the topic's and its tenant's metadata,
//	                           metric handles; cached per topic while the
//	                           catalog's version stands)
//	                        -> admit (rate, storage quota)
//	                        -> transform (dead letters, pass/drop policies)
//	                        -> Appender.ProduceTo (partition, group commit, Raft)
//
// In the steady state a request reads no catalog state at all: one atomic
// load of the catalog's version tells its cached route is current.
package ingest

import (
	"context"
	"fmt"
	"github.com/eddy-broker/eddy/internal/promtext"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/tenants"
)

// Catalog is what the path reads of the cluster's state.
type Catalog interface {
	// CatalogVersion moves whenever the state changes.
	CatalogVersion() uint64
	Topic(ref eddy.TopicRef) (*catalog.TopicMeta, error)
	Tenant(t eddy.TenantID) (*catalog.TenantMeta, error)
	// StorageUsed is read only for a tenant with a storage quota.
	StorageUsed(t eddy.TenantID) int64
}

// Appender appends records to a topic's partitions.
type Appender interface {
	ProduceTo(ctx context.Context, meta *catalog.TopicMeta, recs []eddy.Record, part []eddy.Partition) ([]multiraft.ProduceResult, error)
	// AppendBatch appends a client's record batch as it came.
	AppendBatch(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, b []byte) (eddy.Offset, error)
	// AppendTransformed appends a transform's output of a client's batch
	// so that a retry of that batch is known (its producer's sequence).
	AppendTransformed(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, recs []eddy.Record, client []byte) (eddy.Offset, error)
	// ConsumeBatch remembers a client's batch the transform consumed
	// whole, so a retry of it is known; it returns the batch's base
	// offset (-1: nothing appended).
	ConsumeBatch(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, error)
	// SeenBatch reports a retry of a client's batch the partition
	// remembers, with its base offset (-1: consumed).
	SeenBatch(meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, bool)
	// IsLocal reports whether this node holds a replica of partition p.
	IsLocal(meta *catalog.TopicMeta, p eddy.Partition) bool
	// TransformElsewhere hands a client's batch, admitted here, to a node
	// holding partition p, which runs the topic's transform on it and
	// appends the output; it returns the base offset (-1: nothing
	// appended).
	TransformElsewhere(ctx context.Context, meta *catalog.TopicMeta, p eddy.Partition, client []byte) (eddy.Offset, error)
}

// Transformer runs a topic's transform over a batch.
type Transformer interface {
	Transform(ctx context.Context, meta *catalog.TopicMeta, recs []eddy.Record, parts []eddy.Partition) (*Transformed, error)
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
	// Admitted: another node admitted the records (charged them) and left
	// the transform to this one, which holds the partition.
	Admitted bool
	// Batch, when set, is Records as the client encoded them: one Kafka
	// record batch for the one partition all Parts name. It is stored as
	// it came (compression, producer id and sequence kept, so a retry is
	// not appended twice) unless the topic's transform rewrites the
	// records, stamps them (LogAppendTime) or stores them uncompressed
	// (compression.type=uncompressed).
	Batch []byte
}

// Result is where the records went.
type Result struct {
	// Offsets are in the request's order (after the transform: its output
	// records' order).
	Offsets []multiraft.ProduceResult
	// Transform is the transform's summary, nil when none ran.
	Transform *Transformed
	// Retry: the request's client batch was one the partition already
	// appended or consumed; nothing ran and nothing was appended.
	Retry bool
}

// Path is the produce path of one node.
type Path struct {
	cat     Catalog
	app     Appender
	tx      Transformer // nil: transforms are off
	limiter *tenants.Limiter
	m       *metrics.Set
	routes  sync.Map // eddy.TopicRef -> *route
	tenants sync.Map // eddy.TenantID -> *tenantRoute
}

// New builds a path; tx may be nil (transforms off). The limiter is the
// node's one, shared by every ingress.
func New(cat Catalog, app Appender, tx Transformer, limiter *tenants.Limiter, m *metrics.Set) *Path {
	return &Path{cat: cat, app: app, tx: tx, limiter: limiter, m: m}
}

// route is what a request to a topic needs, read once per catalog
// version: the topic's and its tenant's metadata (read-only, shared), and
// the topic's metric handles (kept across versions: a deleted topic's
// stay, as its series stay in the metric set).
type route struct {
	version        uint64
	meta           *catalog.TopicMeta
	tenant         *catalog.TenantMeta
	maxMsg         int64
	compacted      bool // cleanup.policy compact: every record needs a key
	records, bytes *metrics.Counter
	duration       *metrics.PrometheusHistogram
}

// tenantRoute is a tenant's metadata at a catalog version.
type tenantRoute struct {
	version uint64
	meta    *catalog.TenantMeta
}

// route returns ref's route, reading the catalog only when its version
// moved since the route was made.
func (p *Path) route(ref eddy.TopicRef) (*route, error) {
	v := p.cat.CatalogVersion()
	old, _ := p.routes.Load(ref)
	if r, ok := old.(*route); ok && r.version == v {
		return r, nil
	}
	meta, err := p.cat.Topic(ref)
	if err != nil {
		return nil, err
	}
	tm, err := p.tenant(ref.Tenant, v)
	if err != nil {
		return nil, err
	}
	r := &route{version: v, meta: meta, tenant: tm, maxMsg: meta.ConfigInt(catalog.ConfMaxMessageBytes), compacted: meta.Compacted()}
	if o, ok := old.(*route); ok {
		r.records, r.bytes, r.duration = o.records, o.bytes, o.duration
	} else {
		name := ref.String()
		r.records = p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_records_total{topic=%q}`, name))
		r.bytes = p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_bytes_total{topic=%q}`, name))
		r.duration = p.m.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`eddy_produce_request_duration_seconds{topic=%q}`, name), promtext.DurationBuckets)
	}
	p.routes.Store(ref, r)
	return r, nil
}

// tenant returns a tenant's metadata, read at most once per catalog
// version.
func (p *Path) tenant(t eddy.TenantID, v uint64) (*catalog.TenantMeta, error) {
	if old, ok := p.tenants.Load(t); ok && old.(*tenantRoute).version == v {
		return old.(*tenantRoute).meta, nil
	}
	tm, err := p.cat.Tenant(t)
	if err != nil {
		return nil, err
	}
	p.tenants.Store(t, &tenantRoute{version: v, meta: tm})
	return tm, nil
}

// Mapping is the tenant's MQTT topic mapping (nil: the default), for the
// MQTT listener, which maps a publish's topic before it has a route.
func (p *Path) Mapping(t eddy.TenantID) *tenants.MQTTMapping {
	tm, err := p.tenant(t, p.cat.CatalogVersion())
	if err != nil {
		return nil
	}
	return tm.MQTT
}

// Produce admits, transforms and appends a request's records. A request
// is refused whole or appended whole; a transform that drops every record
// (or sends them all to its dead-letter topic) is an empty success.
func (p *Path) Produce(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	r, err := p.route(req.Ref)
	var res Result
	if err == nil {
		res, err = p.produce(ctx, r, req)
	}
	if err != nil {
		// A refusal for a topic that does not exist is counted without its
		// name: a client naming random topics would otherwise make a
		// metric series each.
		topic := ""
		if r != nil {
			topic = req.Ref.String()
		}
		p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_produce_errors_total{topic=%q,code=%q}`, topic, eddy.ErrorCode(err))).Inc()
		return res, err
	}
	if res.Retry {
		return res, nil
	}
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

func (p *Path) produce(ctx context.Context, r *route, req Request) (Result, error) {
	var res Result
	recs, parts := req.Records, req.Parts
	if !req.Forwarded {
		if !req.Admitted {
			if err := p.admit(r.tenant, recs); err != nil {
				return res, err
			}
		} else if p.tx == nil || r.meta.Transform == nil {
			// The node that admitted the batch saw the topic's transform
			// and this one does not (it has not applied the binding yet,
			// or runs without transforms): appending the batch would skip
			// the transform.
			return res, &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 200,
				Message: "the node holding the partition does not run the topic's transform (yet); retry"}
		}
		if p.tx != nil && r.meta.Transform != nil {
			// A client's batch is transformed where its partition is, which
			// remembers it: the node that holds it knows a retry, and a
			// retry is answered as the first attempt was, without running
			// the transform again (it may decide otherwise this time).
			if req.Batch != nil && !p.app.IsLocal(r.meta, req.Parts[0]) {
				base, err := p.app.TransformElsewhere(ctx, r.meta, req.Parts[0], req.Batch)
				if err != nil || base < 0 {
					return res, err
				}
				res.Offsets = consecutive(req.Parts[0], base, len(recs))
				return res, nil
			}
			if req.Batch != nil {
				if base, ok := p.app.SeenBatch(r.meta, req.Parts[0], req.Batch); ok {
					return retried(req, base), nil
				}
			}
			tr, err := p.tx.Transform(ctx, r.meta, recs, parts)
			if err != nil {
				return res, err
			}
			res.Transform = tr
			recs, parts = tr.Records, tr.Parts
		}
	}
	if len(recs) == 0 {
		// Dropped or dead-lettered by the transform: acknowledged, and a
		// client's batch remembered as consumed.
		if req.Batch != nil && res.Transform != nil {
			base, err := p.app.ConsumeBatch(ctx, r.meta, req.Parts[0], req.Batch)
			if err != nil {
				return res, err
			}
			if base >= 0 { // a retry of a first attempt that was appended
				return retried(req, base), nil
			}
		}
		return res, nil
	}
	if r.compacted {
		for i := range recs {
			if recs[i].Key == nil {
				return res, eddy.Errorf(eddy.CodeInvalid, "topic %s is compacted (cleanup.policy compact): record %d has no key, and compaction keeps each key's newest record", r.meta.Name, i)
			}
		}
	}
	if req.Batch != nil {
		if base, ok, err := p.appendClientBatch(ctx, r, req, res.Transform != nil, recs, parts); ok {
			if err != nil {
				return res, err
			}
			if base < 0 { // a retry of a batch the transform consumed before
				return retried(req, base), nil
			}
			res.Offsets = consecutive(req.Parts[0], base, len(recs))
			return res, nil
		}
	}
	var err error
	res.Offsets, err = p.app.ProduceTo(ctx, r.meta, recs, parts)
	return res, err
}

// appendClientBatch appends a request's client batch, or its transform's
// output as that batch for deduplication; ok is false when the records
// go their own way (rerouted by the transform: no deduplication).
func (p *Path) appendClientBatch(ctx context.Context, r *route, req Request, transformed bool, recs []eddy.Record, parts []eddy.Partition) (base eddy.Offset, ok bool, err error) {
	switch {
	case !transformed && r.meta.ConfigValue(catalog.ConfTimestampType) != "LogAppendTime" &&
		r.meta.ConfigValue(catalog.ConfCompressionType) != "uncompressed":
		base, err = p.app.AppendBatch(ctx, r.meta, req.Parts[0], req.Batch)
		return base, true, err
	case onePartition(parts, req.Parts[0]):
		base, err = p.app.AppendTransformed(ctx, r.meta, req.Parts[0], recs, req.Batch)
		return base, true, err
	}
	return 0, false, nil
}

// retried is the result of a retry of req's client batch, which the
// partition stored at base (-1: nothing was appended).
func retried(req Request, base eddy.Offset) Result {
	res := Result{Retry: true}
	if base >= 0 {
		res.Offsets = consecutive(req.Parts[0], base, len(req.Records))
	}
	return res
}

// consecutive is n records' offsets in partition p from base on.
func consecutive(p eddy.Partition, base eddy.Offset, n int) []multiraft.ProduceResult {
	out := make([]multiraft.ProduceResult, n)
	for i := range out {
		out[i] = multiraft.ProduceResult{Partition: p, BaseOffset: base + eddy.Offset(i)}
	}
	return out
}

// onePartition reports whether parts (nil: unchosen) all name p.
func onePartition(parts []eddy.Partition, p eddy.Partition) bool {
	for _, q := range parts {
		if q != p {
			return false
		}
	}
	return true
}

// admit checks records against the tenant's rate quota (taking tokens
// when it admits them), its storage quota and the timestamp bound.
func (p *Path) admit(tm *catalog.TenantMeta, recs []eddy.Record) error {
	var used int64
	if tm.Quotas.StorageBytes > 0 {
		used = p.cat.StorageUsed(tm.Name)
	}
	err := p.limiter.Admit(tm.Name, tm.Quotas, used, recs)
	if c := eddy.ErrorCode(err); c == eddy.CodeQuotaExceeded || c == eddy.CodeStorageQuota {
		p.m.GetOrCreateCounter(fmt.Sprintf(`eddy_tenant_quota_rejections_total{tenant=%q,code=%q}`, tm.Name, c)).Inc()
	}
	return err
}

// MaxMessageBytes is the topic's max.message.bytes, for adapters that
// check a record's size before decoding it whole.
func (p *Path) MaxMessageBytes(ref eddy.TopicRef) (int64, error) {
	r, err := p.route(ref)
	if err != nil {
		return 0, err
	}
	return r.maxMsg, nil
}
