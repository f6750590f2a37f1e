package catalog

import (
	"sort"
	"strconv"
	"strings"

	"github.com/eddy-broker/eddy"
)

// Topic configuration keys use Kafka's names. Values are strings, as in
// Kafka's configs; the defaults fill any key not given.
const (
	ConfRetentionMs     = "retention.ms"
	ConfRetentionBytes  = "retention.bytes"
	ConfSegmentBytes    = "segment.bytes"
	ConfMaxMessageBytes = "max.message.bytes"
	ConfCompressionType = "compression.type"
	ConfCleanupPolicy   = "cleanup.policy"
	ConfTimestampType   = "message.timestamp.type"
	// Compaction (cleanup.policy compact): how long a tombstone outlives
	// what it deleted, and the share of a log written since the last
	// compaction that starts the next.
	ConfDeleteRetentionMs = "delete.retention.ms"
	ConfMinCleanableRatio = "min.cleanable.dirty.ratio"
	// ConfSegmentMs rolls the active segment once a batch is this much
	// newer (by its timestamp) than the segment's first: a slow topic's
	// records reach retention and compaction.
	ConfSegmentMs = "segment.ms"
)

// NeedsCompactionFeature reports whether a topic config uses what
// FeatureCompaction brought: a cluster with a node of an earlier build
// must not be asked for it.
func NeedsCompactionFeature(c map[string]string) bool {
	for k, v := range c {
		switch k {
		case ConfDeleteRetentionMs, ConfMinCleanableRatio, ConfSegmentMs:
			return true
		case ConfCleanupPolicy:
			if v != "delete" && v != "" {
				return true
			}
		}
	}
	return false
}

// TopicDefaults are the values used for keys a topic does not set.
var topicDefaults = map[string]string{
	ConfRetentionMs:       "604800000", // 7 days
	ConfRetentionBytes:    "-1",        // unlimited
	ConfSegmentBytes:      "67108864",  // 64 MiB
	ConfMaxMessageBytes:   "1048588",   // Kafka's default
	ConfCompressionType:   "producer",
	ConfCleanupPolicy:     "delete",
	ConfTimestampType:     "CreateTime",
	ConfDeleteRetentionMs: "86400000", // 1 day, as Kafka
	ConfMinCleanableRatio: "0.5",
	ConfSegmentMs:         "604800000", // 7 days, as Kafka
}

// TopicMeta is a topic as the controller holds it.
type TopicMeta struct {
	Tenant            eddy.TenantID     `json:"tenant"`
	Name              eddy.TopicName    `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int               `json:"replication_factor"`
	Config            map[string]string `json:"config"`
	// Shards[p] is the Raft shard of partition p.
	Shards []uint64 `json:"shards"`
	// Replicas[p] are the node ids of partition p's voting replicas.
	Replicas [][]uint64 `json:"replicas"`
	// ReplicaIDs[p] maps a node to its ReplicaID in partition p's shard for
	// replicas added after the topic was created (by a move); an original
	// replica's ReplicaID is its node id. A ReplicaID is never reused in a
	// shard: dragonboat refuses a removed one back.
	ReplicaIDs []map[uint64]uint64 `json:"replica_ids,omitempty"`
	CreatedMs  int64               `json:"created_ms"`
	// Transform, when set, runs on every produce before partitioning.
	Transform *TransformBinding `json:"transform,omitempty"`
}

// ReplicaID is node's ReplicaID in partition p's shard.
func (t *TopicMeta) ReplicaID(p int, node uint64) uint64 {
	if p < len(t.ReplicaIDs) {
		if r, ok := t.ReplicaIDs[p][node]; ok {
			return r
		}
	}
	return node
}

// NodeOf is the node holding ReplicaID rid of partition p's shard.
func (t *TopicMeta) NodeOf(p int, rid uint64) uint64 {
	if p < len(t.ReplicaIDs) {
		for n, r := range t.ReplicaIDs[p] {
			if r == rid {
				return n
			}
		}
	}
	return rid
}

// clone copies the placement so an update can change it while readers keep
// the copy they hold (controller state is copy-on-write for topics).
func (t *TopicMeta) Clone() *TopicMeta {
	c := *t
	c.Replicas = make([][]uint64, len(t.Replicas))
	for p, r := range t.Replicas {
		c.Replicas[p] = append([]uint64(nil), r...)
	}
	c.ReplicaIDs = make([]map[uint64]uint64, len(t.Shards))
	for p := range c.ReplicaIDs {
		c.ReplicaIDs[p] = map[uint64]uint64{}
		if p < len(t.ReplicaIDs) {
			for n, r := range t.ReplicaIDs[p] {
				c.ReplicaIDs[p][n] = r
			}
		}
	}
	return &c
}

// Ref is the topic's fully qualified name.
func (t *TopicMeta) Ref() eddy.TopicRef { return eddy.TopicRef{Tenant: t.Tenant, Name: t.Name} }

// ConfigValue returns the effective value of a config key.
func (t *TopicMeta) ConfigValue(key string) string {
	if v, ok := t.Config[key]; ok {
		return v
	}
	return topicDefaults[key]
}

// Compacted reports whether the topic keeps each key's newest record
// (cleanup.policy compact, alone or with delete).
func (t *TopicMeta) Compacted() bool {
	return strings.Contains(t.ConfigValue(ConfCleanupPolicy), "compact")
}

// Deletes reports whether retention.ms and retention.bytes apply
// (cleanup.policy delete, alone or with compact).
func (t *TopicMeta) Deletes() bool {
	return strings.Contains(t.ConfigValue(ConfCleanupPolicy), "delete")
}

// ConfigFloat returns a decimal config value.
func (t *TopicMeta) ConfigFloat(key string) float64 {
	v, _ := strconv.ParseFloat(t.ConfigValue(key), 64)
	return v
}

// ConfigInt returns an integer config value.
func (t *TopicMeta) ConfigInt(key string) int64 {
	v, _ := strconv.ParseInt(t.ConfigValue(key), 10, 64)
	return v
}

// EffectiveConfig returns every key with its effective value.
func (t *TopicMeta) EffectiveConfig() map[string]string {
	out := make(map[string]string, len(topicDefaults))
	for k := range topicDefaults {
		out[k] = t.ConfigValue(k)
	}
	return out
}

// TopicSpec is a request to create a topic.
type TopicSpec struct {
	Name              eddy.TopicName
	Partitions        int32
	ReplicationFactor int
	Config            map[string]string
}

// MaxPartitions bounds a topic's partitions: each is a Raft group, and the
// idle cost of a gateway grows with their number.
const MaxPartitions = 256

// Validate checks a spec against the node count.
func (s *TopicSpec) Validate(nodes int) error {
	if err := s.Name.Validate(); err != nil {
		return err
	}
	if err := ValidatePartitions(s.Partitions); err != nil {
		return err
	}
	if err := ValidateReplicationFactor(s.ReplicationFactor, nodes); err != nil {
		return err
	}
	return ValidateConfig(s.Config)
}

// ValidatePartitions checks a topic's partition count.
func ValidatePartitions(n int32) error {
	if n < 1 || n > MaxPartitions {
		return eddy.Errorf(eddy.CodeInvalid, "partitions must be 1 to %d, got %d", MaxPartitions, n)
	}
	return nil
}

// ValidateReplicationFactor checks a replication factor against the node
// count.
func ValidateReplicationFactor(rf, nodes int) error {
	switch rf {
	case 1, 3, 5:
	default:
		return eddy.Errorf(eddy.CodeInvalid, "replication_factor must be 1, 3 or 5, got %d", rf)
	}
	if rf > nodes {
		return eddy.Errorf(eddy.CodeInvalid, "replication_factor %d is larger than the %d node(s) in the cluster", rf, nodes)
	}
	return nil
}

// ValidateConfig checks topic configs by their Kafka names.
func ValidateConfig(c map[string]string) error {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c[k]
		if _, ok := topicDefaults[k]; !ok {
			return eddy.Errorf(eddy.CodeInvalid, "unknown topic config %q (known: %s)", k, strings.Join(knownKeys(), ", "))
		}
		switch k {
		case ConfRetentionMs, ConfRetentionBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1 || n == 0 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be a positive integer or -1, got %q", k, v)
			}
		case ConfSegmentMs:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be a positive integer, got %q", k, v)
			}
		case ConfSegmentBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 14 || n > 1<<30 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be 14 to 1073741824, got %q", k, v)
			}
		case ConfMaxMessageBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 16<<20 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be 1 to 16777216, got %q", k, v)
			}
		case ConfCompressionType:
			if v != "producer" && v != "uncompressed" {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be producer or uncompressed, got %q", k, v)
			}
		case ConfCleanupPolicy:
			switch v {
			case "delete", "compact", "compact,delete", "delete,compact":
			default:
				return eddy.Errorf(eddy.CodeInvalid, "%s must be delete, compact or compact,delete, got %q", k, v)
			}
		case ConfDeleteRetentionMs:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be 0 or more, got %q", k, v)
			}
		case ConfMinCleanableRatio:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be 0 to 1, got %q", k, v)
			}
		case ConfTimestampType:
			if v != "CreateTime" && v != "LogAppendTime" {
				return eddy.Errorf(eddy.CodeInvalid, "%s must be CreateTime or LogAppendTime, got %q", k, v)
			}
		}
	}
	return nil
}

func knownKeys() []string {
	out := make([]string, 0, len(topicDefaults))
	for k := range topicDefaults {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
