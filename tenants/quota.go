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
	// MaxConnections bounds the tenant's MQTT connections on each node.
	MaxConnections int64 `json:"max_connections,omitempty" yaml:"max_connections,omitempty"`
	// MaxGroups bounds the tenant's consumer groups (HTTP's and Kafka's):
	// every group is controller state that every node holds.
	MaxGroups int64 `json:"max_groups,omitempty" yaml:"max_groups,omitempty"`
}

// DefaultQuotas are what a tenant created without quotas gets: enough for
// a site's devices, not enough for one tenant to fill a gateway. An
// operator raises them per tenant (0 = unlimited); nodes take theirs from
// the tenant_default_* settings.
func DefaultQuotas() Quotas {
	return Quotas{MaxTopics: 64, MaxPartitions: 128, StorageBytes: 4 << 30, MaxTransforms: 16,
		TransformMemoryBytes: 256 << 20, TransformCPUMillisPerSec: 400, TransformStorageBytes: 64 << 20, MaxConnections: 1000, MaxGroups: 256}
}

// Validate refuses negative limits.
func (q *Quotas) Validate() error {
	for name, v := range map[string]int64{"produce_bytes_per_sec": q.ProduceBytesPerSec, "produce_records_per_sec": q.ProduceRecordsPerSec,
		"storage_bytes": q.StorageBytes, "max_topics": q.MaxTopics, "max_partitions": q.MaxPartitions,
		"max_transforms": q.MaxTransforms, "transform_memory_bytes": q.TransformMemoryBytes, "max_connections": q.MaxConnections,
		"transform_cpu_ms_per_sec": q.TransformCPUMillisPerSec, "transform_storage_bytes": q.TransformStorageBytes, "max_groups": q.MaxGroups} {
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

// Limiter enforces produce rate quotas per tenant on this node, and
// bounds create-time timestamps against the node's clock.
type Limiter struct {
	// MaxTimestampAhead refuses records stamped further in the future
	// (Kafka's message.timestamp.after.max.ms): a record of year 292277026
	// would keep its segment from ever ageing out. Default 1h.
	MaxTimestampAhead time.Duration

	mu      sync.Mutex
	buckets map[eddy.TenantID]*[2]bucket // bytes, records
	now     func() time.Time
}

// NewLimiter returns a Limiter; now defaults to time.Now.
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{buckets: map[eddy.TenantID]*[2]bucket{}, now: now}
}

// AllowProduce takes records and bytes from the tenant's buckets, or
// refuses with CodeQuotaExceeded and how long to wait.
func (l *Limiter) AllowProduce(t eddy.TenantID, q Quotas, records, bytes int) error {
	if q.ProduceBytesPerSec <= 0 && q.ProduceRecordsPerSec <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[t]
	if !ok {
		b = &[2]bucket{}
		l.buckets[t] = b
	}
	now := l.now()
	b[0].refill(q.ProduceBytesPerSec, now)
	b[1].refill(q.ProduceRecordsPerSec, now)
	wait := max(b[0].wait(q.ProduceBytesPerSec, float64(bytes)), b[1].wait(q.ProduceRecordsPerSec, float64(records)))
	if wait > 0 {
		return &eddy.Error{Code: eddy.CodeQuotaExceeded, RetryAfterMs: wait.Milliseconds() + 1,
			Message: "tenant " + string(t) + " is over its produce rate quota; retry after the Retry-After delay"}
	}
	if q.ProduceBytesPerSec > 0 {
		b[0].tokens -= float64(bytes)
	}
	if q.ProduceRecordsPerSec > 0 {
		b[1].tokens -= float64(records)
	}
	return nil
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
