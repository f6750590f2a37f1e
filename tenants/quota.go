package tenants

import (
	"math"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
)

// Quotas are a tenant's limits; zero means unlimited.
type Quotas struct {
	ProduceBytesPerSec   int64 `json:"produce_bytes_per_sec,omitempty" yaml:"produce_bytes_per_sec,omitempty"`
	ProduceRecordsPerSec int64 `json:"produce_records_per_sec,omitempty" yaml:"produce_records_per_sec,omitempty"`
	// ConsumeBytesPerSec bounds the bytes the tenant's reads answer on
	// each node (Kafka's consumer_byte_rate): HTTP fetches, searches,
	// group polls and live tails, Kafka fetches.
	ConsumeBytesPerSec   int64 `json:"consume_bytes_per_sec,omitempty" yaml:"consume_bytes_per_sec,omitempty"`
	StorageBytes         int64 `json:"storage_bytes,omitempty" yaml:"storage_bytes,omitempty"`
	MaxTopics            int64 `json:"max_topics,omitempty" yaml:"max_topics,omitempty"`
	MaxPartitions        int64 `json:"max_partitions,omitempty" yaml:"max_partitions,omitempty"`
	MaxTransforms        int64 `json:"max_transforms,omitempty" yaml:"max_transforms,omitempty"`
	TransformMemoryBytes int64 `json:"transform_memory_bytes,omitempty" yaml:"transform_memory_bytes,omitempty"`
	// TransformCPUMillisPerSec bounds the time the tenant's transform
	// batches may run on each node, in milliseconds per second.
	TransformCPUMillisPerSec int64 `json:"transform_cpu_ms_per_sec,omitempty" yaml:"transform_cpu_ms_per_sec,omitempty"`
	// TransformStorageBytes bounds the tenant's stored transform modules
	// (every kept version, each distinct binary once), on every node.
	TransformStorageBytes int64 `json:"transform_storage_bytes,omitempty" yaml:"transform_storage_bytes,omitempty"`
	// MaxConnections bounds the tenant's MQTT connections on each node,
	// and apart from them its authenticated Kafka connections.
	MaxConnections int64 `json:"max_connections,omitempty" yaml:"max_connections,omitempty"`
	// MaxGroups bounds the tenant's consumer groups (HTTP's and Kafka's):
	// every group is controller state that every node holds.
	MaxGroups int64 `json:"max_groups,omitempty" yaml:"max_groups,omitempty"`
	// MaxMQTTSessions bounds the tenant's MQTT persistent sessions (kept
	// as groups too, but apart from MaxGroups: a fleet of devices with a
	// session each would not fit a tenant's consumer groups).
	MaxMQTTSessions int64 `json:"max_mqtt_sessions,omitempty" yaml:"max_mqtt_sessions,omitempty"`
}

// DefaultQuotas are what a tenant created without quotas gets: enough for
// a site's devices, not enough for one tenant to fill a gateway. An
// operator raises them per tenant (0 = unlimited); nodes take theirs from
// the tenant_default_* settings.
func DefaultQuotas() Quotas {
	return Quotas{MaxTopics: 64, MaxPartitions: 128, StorageBytes: 4 << 30, MaxTransforms: 16,
		TransformMemoryBytes: 256 << 20, TransformCPUMillisPerSec: 400, TransformStorageBytes: 64 << 20, MaxConnections: 1000, MaxGroups: 256,
		MaxMQTTSessions: 4096}
}

// Validate refuses negative limits.
func (q *Quotas) Validate() error {
	for name, v := range map[string]int64{"produce_bytes_per_sec": q.ProduceBytesPerSec, "produce_records_per_sec": q.ProduceRecordsPerSec,
		"consume_bytes_per_sec": q.ConsumeBytesPerSec,
		"storage_bytes":         q.StorageBytes, "max_topics": q.MaxTopics, "max_partitions": q.MaxPartitions,
		"max_transforms": q.MaxTransforms, "transform_memory_bytes": q.TransformMemoryBytes, "max_connections": q.MaxConnections,
		"transform_cpu_ms_per_sec": q.TransformCPUMillisPerSec, "transform_storage_bytes": q.TransformStorageBytes, "max_groups": q.MaxGroups,
		"max_mqtt_sessions": q.MaxMQTTSessions} {
		if v < 0 {
			return eddy.Errorf(eddy.CodeInvalid, "quota %s must be 0 (unlimited) or positive, got %d", name, v)
		}
	}
	return nil
}

// bucket is a token bucket holding at most one second of its rate.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(rate int64, now time.Time) {
	if rate <= 0 {
		return
	}
	if b.last.IsZero() {
		b.tokens = float64(rate)
	} else {
		b.tokens = math.Min(float64(rate), b.tokens+now.Sub(b.last).Seconds()*float64(rate))
	}
	b.last = now
}

// wait is how long until n can be taken (0: now). A request larger than a
// second's worth passes on a full bucket (driving it negative), or it could
// never pass at all.
func (b *bucket) wait(rate int64, n float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	need := math.Min(n, float64(rate))
	if b.tokens >= need {
		return 0
	}
	return time.Duration((need - b.tokens) / float64(rate) * float64(time.Second))
}

// Limiter enforces the rate quotas per tenant on this node (produce,
// consume), and bounds create-time timestamps against the node's clock.
type Limiter struct {
	// MaxTimestampAhead refuses records stamped further in the future
	// (Kafka's message.timestamp.after.max.ms): a record of year 292277026
	// would keep its segment from ever ageing out. Default 1h.
	MaxTimestampAhead time.Duration

	mu      sync.Mutex
	buckets map[eddy.TenantID]*buckets
	now     func() time.Time
}

// NewLimiter returns a Limiter; now defaults to time.Now.
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{buckets: map[eddy.TenantID]*buckets{}, now: now}
}

// buckets are one tenant's.
type buckets struct {
	produceBytes, produceRecords, consumeBytes bucket
}

// of is the tenant's buckets; l.mu is held.
func (l *Limiter) of(t eddy.TenantID) *buckets {
	b, ok := l.buckets[t]
	if !ok {
		b = &buckets{}
		l.buckets[t] = b
	}
	return b
}

// AllowProduce takes records and bytes from the tenant's buckets, or
// refuses with CodeQuotaExceeded and how long to wait.
func (l *Limiter) AllowProduce(t eddy.TenantID, q Quotas, records, bytes int) error {
	if q.ProduceBytesPerSec <= 0 && q.ProduceRecordsPerSec <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.of(t)
	now := l.now()
	b.produceBytes.refill(q.ProduceBytesPerSec, now)
	b.produceRecords.refill(q.ProduceRecordsPerSec, now)
	wait := max(b.produceBytes.wait(q.ProduceBytesPerSec, float64(bytes)), b.produceRecords.wait(q.ProduceRecordsPerSec, float64(records)))
	if wait > 0 {
		return &eddy.Error{Code: eddy.CodeQuotaExceeded, RetryAfterMs: wait.Milliseconds() + 1,
			Message: "tenant " + string(t) + " is over its produce rate quota; retry after the Retry-After delay"}
	}
	if q.ProduceBytesPerSec > 0 {
		b.produceBytes.tokens -= float64(bytes)
	}
	if q.ProduceRecordsPerSec > 0 {
		b.produceRecords.tokens -= float64(records)
	}
	return nil
}

// ConsumeOwed is how long the tenant's reads wait before the next one,
// under its consume_bytes_per_sec quota: 0 while its bucket holds any
// bytes. A read is charged what it answered once it is made
// (ChargeConsume), so an answer is never cut to fit the quota: the bucket
// goes into debt, and the reads after wait it out, as Kafka throttles a
// consumer after the fetch that went over.
func (l *Limiter) ConsumeOwed(t eddy.TenantID, q Quotas) time.Duration {
	if q.ConsumeBytesPerSec <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.of(t)
	b.consumeBytes.refill(q.ConsumeBytesPerSec, l.now())
	return b.consumeBytes.wait(q.ConsumeBytesPerSec, 1)
}

// ChargeConsume takes the bytes a read answered from the tenant's
// consume bucket, into debt when it holds fewer.
func (l *Limiter) ChargeConsume(t eddy.TenantID, q Quotas, bytes int) {
	if q.ConsumeBytesPerSec <= 0 || bytes <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.of(t)
	b.consumeBytes.refill(q.ConsumeBytesPerSec, l.now())
	b.consumeBytes.tokens -= float64(bytes)
}

// Forget drops a tenant's buckets (deleted tenant).
func (l *Limiter) Forget(t eddy.TenantID) {
	l.mu.Lock()
	delete(l.buckets, t)
	l.mu.Unlock()
}

// Admit checks a produce of recs against the tenant's quotas: its retained
// bytes (used) against the storage quota, then the rate buckets. Every
// ingress path (HTTP, MQTT, Kafka) calls it before appending.
func (l *Limiter) Admit(t eddy.TenantID, q Quotas, used int64, recs []eddy.Record) error {
	if q.StorageBytes > 0 && used >= q.StorageBytes {
		return &eddy.Error{Code: eddy.CodeStorageQuota, RetryAfterMs: 60_000,
			Message: "tenant " + string(t) + " retains its whole storage quota; nothing was appended (retention or deleting topics frees it)"}
	}
	ahead := l.MaxTimestampAhead
	if ahead <= 0 {
		ahead = time.Hour
	}
	limit := l.now().Add(ahead).UnixMilli()
	bytes := 0
	for i := range recs {
		if recs[i].Timestamp > limit {
			return eddy.Errorf(eddy.CodeInvalid, "record %d has timestamp %d, more than %v ahead of this node's clock", i, recs[i].Timestamp, ahead)
		}
		bytes += recs[i].Size()
	}
	return l.AllowProduce(t, q, len(recs), bytes)
}

// ReadQuota is a Limiter's consume side over the tenants' quotas, as a
// node's listeners throttle their reads by it. It bounds the tenant's
// own clients: an operator's reads are not throttled, and so a read one
// node forwards to another (with its operator token) is counted once,
// where the client is.
type ReadQuota struct {
	Limiter *Limiter
	// Quotas are a tenant's quotas (none when it is unknown).
	Quotas func(eddy.TenantID) Quotas
	// OnThrottle, if not nil, is told of each read that owes (a metric).
	OnThrottle func(t eddy.TenantID, owed time.Duration)
}

// Owed is how long the principal's next read of tenant t waits
// (ConsumeOwed).
func (r ReadQuota) Owed(p *Principal, t eddy.TenantID) time.Duration {
	if p.Operator() {
		return 0
	}
	d := r.Limiter.ConsumeOwed(t, r.Quotas(t))
	if d > 0 && r.OnThrottle != nil {
		r.OnThrottle(t, d)
	}
	return d
}

// Charge counts the bytes a read of tenant t answered the principal
// (ChargeConsume).
func (r ReadQuota) Charge(p *Principal, t eddy.TenantID, bytes int) {
	if p.Operator() {
		return
	}
	r.Limiter.ChargeConsume(t, r.Quotas(t), bytes)
}
