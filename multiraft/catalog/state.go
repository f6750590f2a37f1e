package catalog

import (
	"encoding/json"
	"slices"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// FirstPartitionShard is the first shard id handed to a partition.
const FirstPartitionShard uint64 = 1000

// NodeMeta is a node as the controller knows it.
type NodeMeta struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	// KafkaAddr is where Kafka clients reach the node (Metadata); empty
	// when its Kafka listener is off.
	KafkaAddr string `json:"kafka_addr,omitempty"`
	// State is NodeActive, NodeJoining (added, not yet registered),
	// NodeDraining (being removed: its replicas move away first) or
	// NodeDrained (it deleted its last replica; it is removed next).
	State string `json:"state,omitempty"`
	// StartedMs is when the node last started (registered), by its clock.
	StartedMs int64 `json:"started_ms,omitempty"`
	// Features are the controller commands of its build that an earlier
	// build does not know: one is proposed only once every node has it,
	// since a replica that refused it would hold another state.
	Features []string `json:"features,omitempty"`
}

// The features of this build: FeatureSessionCommits, the node applies
// OpSessionCommits; FeatureDeleteOffsets, OpDeleteOffsets;
// FeatureSubscriptionOptions, it keeps MQTTFilter's MQTT 5 options;
// FeatureCompaction, it takes the topic configs of compaction and time
// rolls (NeedsCompactionFeature), which an earlier build's ValidateConfig
// refuses as it applies them.
const (
	FeatureSessionCommits      = "session_commits"
	FeatureDeleteOffsets       = "delete_offsets"
	FeatureSubscriptionOptions = "subscription_options"
	FeatureCompaction          = "compaction"
)

// Features lists the features of this build, as a node registers them.
var Features = []string{FeatureSessionCommits, FeatureDeleteOffsets, FeatureSubscriptionOptions, FeatureCompaction}

// AllHave reports whether every node of the cluster has feature f.
func (st *State) AllHave(f string) bool {
	for _, n := range st.Nodes {
		if !slices.Contains(n.Features, f) {
			return false
		}
	}
	return len(st.Nodes) > 0
}

// Node states.
const (
	NodeActive   = "active"
	NodeJoining  = "joining"
	NodeDraining = "draining"
	NodeDrained  = "drained" // holds no replica any more; removed next
)

// active reports whether new replicas may be placed on the node.
func (n *NodeMeta) Active() bool { return n.State == "" || n.State == NodeActive }

// MaxNodeID bounds node ids; ReplicaIDs of moved replicas start above it.
const MaxNodeID = 1<<20 - 1

// Move is a partition replica moving from one node to another: the new
// replica joins as a non-voting member (learner), is promoted to a voter
// once it has caught up (ready, then voter), and only then is the old one
// removed. From is 0 when nothing is removed.
type Move struct {
	Shard     uint64         `json:"shard"`
	Topic     string         `json:"topic"`
	Partition eddy.Partition `json:"partition"`
	Node      uint64         `json:"node"`
	ReplicaID uint64         `json:"replica_id"`
	From      uint64         `json:"from,omitempty"`
	Phase     string         `json:"phase"`
	// OldReplicaID is, for a rebuild (From == Node), the damaged replica
	// the new one replaces on the same node.
	OldReplicaID uint64 `json:"old_replica_id,omitempty"`
}

// Rebuild reports whether the move replaces a damaged replica on its own
// node rather than moving one between nodes.
func (m *Move) Rebuild() bool { return m.From != 0 && m.From == m.Node }

// Move phases.
const (
	// MoveRebuild: the damaged replica is being removed from the shard
	// (a rebuild's first phase; then learner, ready, voter as a move).
	MoveRebuild = "rebuild"
	MoveLearner = "learner"
	MoveReady   = "ready"
	MoveVoter   = "voter"
)

// State is everything the controller shard replicates. It changes
// only in Update, deterministically.
type State struct {
	Nodes          map[uint64]*NodeMeta          `json:"nodes"`
	Topics         map[string]*TopicMeta         `json:"topics"` // by "tenant/name"
	Tenants        map[eddy.TenantID]*TenantMeta `json:"tenants"`
	Keys           map[string]*tenants.Key       `json:"keys"` // by keyRef: "tenant/kid"
	Operator       *OperatorKey                  `json:"operator,omitempty"`
	NextShard      uint64                        `json:"next_shard"`
	NextProducerID int64                         `json:"next_producer_id"`
	// NextKafkaProducerID is the next producer id for a Kafka client
	// (InitProducerId); they start at KafkaProducerIDBase, above the
	// nodes' own, so a batch naming a node's producer id, or one never
	// handed out, is told apart and refused.
	NextKafkaProducerID int64 `json:"next_kafka_producer_id,omitempty"`
	// NextIncarnation numbers tenants as they are created, so a tenant
	// deleted and created again under its name is told apart from the old.
	NextIncarnation int64 `json:"next_incarnation,omitempty"`
	// Moves in progress, by shard; at most one per shard.
	Moves map[uint64]*Move `json:"moves,omitempty"`
	// NextReplicaID is the ReplicaID the next moved replica gets.
	NextReplicaID uint64 `json:"next_replica_id,omitempty"`
	// Removed node ids, never to be used again.
	Removed map[uint64]bool `json:"removed,omitempty"`
	// Transforms by "tenant/name", with their binaries.
	Transforms map[string]*TransformMeta `json:"transforms,omitempty"`
	// Groups are consumer groups by "tenant/name".
	Groups map[string]*GroupMeta `json:"groups,omitempty"`
	// Sizes are partitions' retained bytes by shard, as their leaders last
	// reported them, so every node can count a tenant's storage, also for
	// partitions it holds no replica of.
	Sizes map[uint64]int64 `json:"sizes,omitempty"`
	// Links forward topics to other clusters, by "tenant/name".
	Links map[string]*LinkMeta `json:"links,omitempty"`

	// tenantBytes sums Sizes by tenant (derived: kept by every change of
	// Sizes, computed again when a snapshot is decoded).
	tenantBytes map[eddy.TenantID]int64
}

// QuotasOf makes a lookup of tenants into their quotas: none for a
// tenant the lookup does not find (a tenants.ReadQuota's Quotas).
func QuotasOf(lookup func(eddy.TenantID) (*TenantMeta, error)) func(eddy.TenantID) tenants.Quotas {
	return func(t eddy.TenantID) tenants.Quotas {
		if tm, err := lookup(t); err == nil {
			return tm.Quotas
		}
		return tenants.Quotas{}
	}
}

// TenantMeta is a tenant as the controller holds it.
type TenantMeta struct {
	Name      eddy.TenantID  `json:"name"`
	Quotas    tenants.Quotas `json:"quotas"`
	CreatedMs int64          `json:"created_ms"`
	// Incarnation tells this tenant from an earlier one of the same name
	// (0 for tenants created before incarnations were kept). Operator
	// tokens carry it, and are refused by a later incarnation.
	Incarnation int64 `json:"incarnation,omitempty"`
	// MQTT maps the tenant's MQTT topics; nil: the default mapping.
	MQTT *tenants.MQTTMapping `json:"mqtt,omitempty"`
}

// OperatorKey is the cluster's token-signing key. It is set once, by the
// first node to start; every node signs with it. (It lives in the Raft log
// and snapshots, on the same disks as the data it protects.)
type OperatorKey struct {
	ID         string `json:"kid"`
	PrivatePEM string `json:"private_pem"`
}

// keyRef is a tenant key's name in the controller: kids are per tenant.
func KeyRef(t eddy.TenantID, kid string) string { return string(t) + "/" + kid }

// MaxKeysPerTenant bounds a tenant's registered keys.
const MaxKeysPerTenant = 16

func NewState() *State {
	return &State{Nodes: map[uint64]*NodeMeta{}, Topics: map[string]*TopicMeta{},
		Tenants: map[eddy.TenantID]*TenantMeta{}, Keys: map[string]*tenants.Key{}, NextShard: FirstPartitionShard,
		Transforms: map[string]*TransformMeta{}, tenantBytes: map[eddy.TenantID]int64{}}
}

// KafkaProducerIDBase is the first producer id handed to Kafka clients;
// the nodes' proposers take theirs below it.
const KafkaProducerIDBase int64 = 1 << 40

// KafkaProducer reports whether pid was handed to a Kafka client.
func (st *State) KafkaProducer(pid int64) bool {
	return pid >= KafkaProducerIDBase && pid < st.NextKafkaProducerID
}

// Decode reads a state as a snapshot holds it (JSON), also in the layouts
// of earlier versions.
func Decode(b []byte) (*State, error) {
	st := NewState()
	if err := json.Unmarshal(b, st); err != nil {
		return nil, err
	}
	st.sumTenantBytes()
	// Snapshots from before kids were per tenant hold keys by kid alone.
	for ref, k := range st.Keys {
		if want := KeyRef(k.Tenant, k.ID); ref != want {
			delete(st.Keys, ref)
			st.Keys[want] = k
		}
	}
	return st, nil
}

// Cmd is one controller command, JSON-encoded in a Raft entry.
type Cmd struct {
	Op       string       `json:"op"`
	Node     *NodeMeta    `json:"node,omitempty"`
	Topic    *TopicMeta   `json:"topic,omitempty"`
	Ref      string       `json:"ref,omitempty"`
	Tenant   *TenantMeta  `json:"tenant,omitempty"`
	Key      *tenants.Key `json:"key,omitempty"`
	Operator *OperatorKey `json:"operator,omitempty"`
	Force    bool         `json:"force,omitempty"`
	Move     *Move        `json:"move,omitempty"`

	Transform *TransformMeta       `json:"transform,omitempty"`
	Module    *ModuleVersion       `json:"module,omitempty"`
	Version   int                  `json:"version,omitempty"`
	Binding   *TransformBinding    `json:"binding,omitempty"`
	MQTT      *tenants.MQTTMapping `json:"mqtt,omitempty"`
	GroupCmd  *GroupCmd            `json:"group,omitempty"`
	Sizes     map[uint64]int64     `json:"sizes,omitempty"`
	Link      *LinkCmd             `json:"link,omitempty"`
	Sessions  []*GroupCmd          `json:"sessions,omitempty"`
}

const (
	OpRegisterNode  = "register_node"
	OpCreateTopic   = "create_topic"
	OpDeleteTopic   = "delete_topic"
	OpAlterTopic    = "alter_topic" // config keys and more partitions
	OpAllocProducer = "alloc_producer"
	// OpAllocKafkaProducer hands a Kafka client a producer id.
	OpAllocKafkaProducer = "alloc_kafka_producer"
	OpCreateTenant       = "create_tenant"
	OpDeleteTenant       = "delete_tenant"
	OpSetQuotas          = "set_quotas"
	OpAddKey             = "add_key"
	OpRemoveKey          = "remove_key"
	OpSetOperator        = "set_operator_key"
	OpAddNode            = "add_node"
	OpDrainNode          = "drain_node"
	OpRemoveNode         = "remove_node"
	OpNodeDrained        = "node_drained"
	OpStartMove          = "start_move"
	OpRebuild            = "rebuild_replica"
	OpMovePhase          = "move_phase"
	OpFinishMove         = "finish_move"

	OpSetMQTT       = "set_mqtt"
	OpJoinGroup     = "join_group"
	OpLeaveGroup    = "leave_group"
	OpExpireMember  = "expire_member"
	OpHeartbeat     = "heartbeat"
	OpCommitOffsets = "commit_offsets"
	OpDeleteGroup   = "delete_group"
	// OpDeleteOffsets deletes some of a group's committed offsets
	// (GroupCmd.Drop), as Kafka's OffsetDelete: a group that stopped
	// reading a topic no longer shows lag on it.
	OpDeleteOffsets = "delete_offsets"
	// OpKafkaGroup records a Kafka group as its coordinator completed a
	// rebalance (or saw it empty).
	OpKafkaGroup = "kafka_group"
	// OpMQTTSession records an MQTT device's persistent session (its
	// filters; its positions are the group's offsets), or drops it.
	OpMQTTSession     = "mqtt_session"
	OpDeployTransform = "deploy_transform"
	OpDeleteTransform = "delete_transform"
	OpBindTransform   = "bind_transform"
	OpReportSizes     = "report_sizes"
	// OpSessionCommits records the positions of many MQTT persistent
	// sessions of one tenant (Cmd.Sessions, each a SessionOnly commit)
	// as one entry: each connected session records its positions once a
	// second, and an entry for each filled the controller with one
	// tenant's fleet.
	OpSessionCommits = "session_commits"
)

// Result is the Data of a controller entry's result.
type Result struct {
	Err        *ResultErr     `json:"err,omitempty"`
	Topic      *TopicMeta     `json:"topic,omitempty"`
	Tenant     *TenantMeta    `json:"tenant,omitempty"`
	Operator   *OperatorKey   `json:"operator,omitempty"`
	ProducerID int64          `json:"producer_id,omitempty"`
	Node       *NodeMeta      `json:"node,omitempty"`
	Move       *Move          `json:"move,omitempty"`
	Module     *ModuleVersion `json:"module,omitempty"`
	Group      *GroupMeta     `json:"group,omitempty"`
	Link       *LinkMeta      `json:"link,omitempty"`
	// Errs is OpSessionCommits' refusal of each session, in its order
	// (nil: recorded).
	Errs []*ResultErr `json:"errs,omitempty"`
}

type ResultErr struct {
	Code    eddy.Code `json:"code"`
	Message string    `json:"message"`
}

// AsError is the refusal as an *eddy.Error, nil for none.
func (e *ResultErr) AsError() error {
	if e == nil {
		return nil
	}
	return &eddy.Error{Code: e.Code, Message: e.Message}
}
