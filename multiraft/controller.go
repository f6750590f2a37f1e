package multiraft

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
	sm "github.com/lni/dragonboat/v4/statemachine"
)

// ControllerShardID is the Raft shard of the cluster's metadata.
const ControllerShardID uint64 = 1

// firstPartitionShard is the first shard id handed to a partition.
const firstPartitionShard uint64 = 1000

// NodeMeta is a node as the controller knows it.
type NodeMeta struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	// State is NodeActive, NodeJoining (added, not yet registered),
	// NodeDraining (being removed: its replicas move away first) or
	// NodeDrained (it deleted its last replica; it is removed next).
	State string `json:"state,omitempty"`
	// StartedMs is when the node last started (registered), by its clock.
	StartedMs int64 `json:"started_ms,omitempty"`
}

// Node states.
const (
	NodeActive   = "active"
	NodeJoining  = "joining"
	NodeDraining = "draining"
	NodeDrained  = "drained" // holds no replica any more; removed next
)

// active reports whether new replicas may be placed on the node.
func (n *NodeMeta) active() bool { return n.State == "" || n.State == NodeActive }

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

// controllerState is everything the controller shard replicates. It changes
// only in Update, deterministically.
type controllerState struct {
	Nodes          map[uint64]*NodeMeta          `json:"nodes"`
	Topics         map[string]*TopicMeta         `json:"topics"` // by "tenant/name"
	Tenants        map[eddy.TenantID]*TenantMeta `json:"tenants"`
	Keys           map[string]*tenants.Key       `json:"keys"` // by keyRef: "tenant/kid"
	Operator       *OperatorKey                  `json:"operator,omitempty"`
	NextShard      uint64                        `json:"next_shard"`
	NextProducerID int64                         `json:"next_producer_id"`
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
func keyRef(t eddy.TenantID, kid string) string { return string(t) + "/" + kid }

// MaxKeysPerTenant bounds a tenant's registered keys.
const MaxKeysPerTenant = 16

func newControllerState() *controllerState {
	return &controllerState{Nodes: map[uint64]*NodeMeta{}, Topics: map[string]*TopicMeta{},
		Tenants: map[eddy.TenantID]*TenantMeta{}, Keys: map[string]*tenants.Key{}, NextShard: firstPartitionShard,
		Transforms: map[string]*TransformMeta{}}
}

// ctrlCmd is one controller command, JSON-encoded in a Raft entry.
type ctrlCmd struct {
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
	GroupCmd  *groupCmd            `json:"group,omitempty"`
	Sizes     map[uint64]int64     `json:"sizes,omitempty"`
}

const (
	opRegisterNode  = "register_node"
	opCreateTopic   = "create_topic"
	opDeleteTopic   = "delete_topic"
	opAllocProducer = "alloc_producer"
	opCreateTenant  = "create_tenant"
	opDeleteTenant  = "delete_tenant"
	opSetQuotas     = "set_quotas"
	opAddKey        = "add_key"
	opRemoveKey     = "remove_key"
	opSetOperator   = "set_operator_key"
	opAddNode       = "add_node"
	opDrainNode     = "drain_node"
	opRemoveNode    = "remove_node"
	opNodeDrained   = "node_drained"
	opStartMove     = "start_move"
	opRebuild       = "rebuild_replica"
	opMovePhase     = "move_phase"
	opFinishMove    = "finish_move"

	opSetMQTT         = "set_mqtt"
	opJoinGroup       = "join_group"
	opLeaveGroup      = "leave_group"
	opExpireMember    = "expire_member"
	opHeartbeat       = "heartbeat"
	opCommitOffsets   = "commit_offsets"
	opDeleteGroup     = "delete_group"
	opDeployTransform = "deploy_transform"
	opDeleteTransform = "delete_transform"
	opBindTransform   = "bind_transform"
	opReportSizes     = "report_sizes"
)

// ctrlResult is the Data of a controller entry's result.
type ctrlResult struct {
	Err        *resultErr     `json:"err,omitempty"`
	Topic      *TopicMeta     `json:"topic,omitempty"`
	Tenant     *TenantMeta    `json:"tenant,omitempty"`
	Operator   *OperatorKey   `json:"operator,omitempty"`
	ProducerID int64          `json:"producer_id,omitempty"`
	Node       *NodeMeta      `json:"node,omitempty"`
	Move       *Move          `json:"move,omitempty"`
	Module     *ModuleVersion `json:"module,omitempty"`
	Group      *GroupMeta     `json:"group,omitempty"`
}

type resultErr struct {
	Code    eddy.Code `json:"code"`
	Message string    `json:"message"`
}

// controllerSM is the controller shard's state machine: small, in memory,
// snapshotted whole. Readers on this node use view() directly.
type controllerSM struct {
	mu       sync.RWMutex
	st       *controllerState
	onChange func()
	// modules holds the transform binaries on disk; nil in unit tests of
	// the state alone.
	modules *moduleStore
	log     *slog.Logger
	// moduleBytes counts binaries applied since the last snapshot (see
	// Host.compactModules).
	moduleBytes atomic.Int64
	// version counts the state's changes (every applied command, every
	// snapshot restored): a reader that cached metadata at one version
	// knows it is current while the version has not moved.
	version atomic.Uint64
}

var _ sm.IStateMachine = (*controllerSM)(nil)

func (c *controllerSM) Update(e sm.Entry) (sm.Result, error) {
	var cmd ctrlCmd
	var res ctrlResult
	if err := json.Unmarshal(e.Cmd, &cmd); err != nil {
		res.Err = &resultErr{Code: eddy.CodeInvalid, Message: "controller: undecodable command"}
	} else {
		c.storeModule(&cmd)
		c.mu.Lock()
		res = c.apply(&cmd)
		c.version.Add(1)
		var keep map[string]bool
		switch cmd.Op {
		case opDeployTransform, opDeleteTransform, opDeleteTenant:
			keep = c.st.modules()
		}
		c.mu.Unlock()
		if keep != nil && c.modules != nil {
			c.modules.gc(keep)
		}
	}
	data, _ := json.Marshal(&res)
	if c.onChange != nil {
		c.onChange()
	}
	return sm.Result{Value: 1, Data: data}, nil
}

func (c *controllerSM) apply(cmd *ctrlCmd) ctrlResult {
	st := c.st
	switch cmd.Op {
	case opRegisterNode:
		if cmd.Node == nil || cmd.Node.ID == 0 {
			return errResult(eddy.CodeInvalid, "register_node: missing node")
		}
		n := *cmd.Node
		if st.Removed[n.ID] {
			return errResult(eddy.CodeConflict, fmt.Sprintf("node %d was removed from the cluster; a node id is never reused (start it with a new id, added with eddy cluster add-node)", n.ID))
		}
		n.State = NodeActive
		if cur, ok := st.Nodes[n.ID]; ok && (cur.State == NodeDraining || cur.State == NodeDrained) {
			n.State = cur.State
		}
		st.Nodes[n.ID] = &n
		return ctrlResult{Node: &n}
	case opAddNode, opDrainNode, opRemoveNode, opNodeDrained:
		return st.applyMembership(cmd)
	case opStartMove, opRebuild, opMovePhase, opFinishMove:
		return st.applyMove(cmd)
	case opDeployTransform, opDeleteTransform, opBindTransform:
		if st.Transforms == nil {
			st.Transforms = map[string]*TransformMeta{}
		}
		return st.applyTransform(cmd)
	case opJoinGroup, opLeaveGroup, opExpireMember, opHeartbeat, opCommitOffsets, opDeleteGroup:
		return st.applyGroup(cmd.Op, cmd.GroupCmd)
	case opSetMQTT:
		cur, ok := st.Tenants[eddy.TenantID(cmd.Ref)]
		if !ok {
			return errResult(eddy.CodeNotFound, "tenant "+cmd.Ref+" does not exist")
		}
		if cmd.MQTT != nil {
			if err := cmd.MQTT.Validate(); err != nil {
				return errResult(eddy.CodeInvalid, eddy.AsError(err).Message)
			}
		}
		c := *cur // copy on write
		c.MQTT = cmd.MQTT
		st.Tenants[c.Name] = &c
		r := c
		return ctrlResult{Tenant: &r}
	case opReportSizes:
		st.reportSizes(cmd.Sizes)
		return ctrlResult{}
	case opAllocProducer:
		st.NextProducerID++
		return ctrlResult{ProducerID: st.NextProducerID}
	case opCreateTopic:
		t := cmd.Topic
		if t == nil {
			return errResult(eddy.CodeInvalid, "create_topic: missing topic")
		}
		ref := t.Ref().String()
		tn, ok := st.Tenants[t.Tenant]
		if !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(t.Tenant)+" does not exist")
		}
		if _, ok := st.Topics[ref]; ok {
			return errResult(eddy.CodeTopicExists, "topic "+string(t.Name)+" already exists")
		}
		spec := TopicSpec{Name: t.Name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Config: t.Config}
		nodes := st.activeNodeIDs()
		if err := spec.Validate(len(nodes)); err != nil {
			e := eddy.AsError(err)
			return errResult(e.Code, e.Message)
		}
		if q := tn.Quotas; q.MaxTopics > 0 || q.MaxPartitions > 0 {
			topics, parts := st.tenantUsage(t.Tenant)
			if q.MaxTopics > 0 && topics+1 > q.MaxTopics {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s is at its limit of %d topics", t.Tenant, q.MaxTopics))
			}
			if q.MaxPartitions > 0 && parts+int64(t.Partitions) > q.MaxPartitions {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s has %d of its %d partitions; %d more do not fit", t.Tenant, parts, q.MaxPartitions, t.Partitions))
			}
		}
		nt := *t
		nt.Shards = make([]uint64, t.Partitions)
		nt.Replicas = make([][]uint64, t.Partitions)
		for p := range nt.Shards {
			shard := st.NextShard
			st.NextShard++
			nt.Shards[p] = shard
			// Spread replicas round-robin from a shard-dependent start.
			start := int(shard % uint64(len(nodes)))
			for r := 0; r < t.ReplicationFactor; r++ {
				nt.Replicas[p] = append(nt.Replicas[p], nodes[(start+r)%len(nodes)])
			}
		}
		st.Topics[ref] = &nt
		return ctrlResult{Topic: &nt}
	case opDeleteTopic:
		dt, ok := st.Topics[cmd.Ref]
		if !ok {
			return errResult(eddy.CodeNotFound, "topic does not exist")
		}
		for _, t := range st.Topics {
			if b := t.Transform; b != nil && t.Tenant == dt.Tenant && b.OnError == OnErrorDeadLetter && b.DeadLetterTopic == string(dt.Name) && t != dt {
				return errResult(eddy.CodeConflict, fmt.Sprintf("topic %s is the dead-letter topic of topic %s's transform; change that binding first", dt.Name, t.Name))
			}
		}
		st.deleteTopic(cmd.Ref)
		return ctrlResult{}
	case opCreateTenant:
		tn := cmd.Tenant
		if tn == nil || tn.Name.Validate() != nil || tn.Quotas.Validate() != nil {
			return errResult(eddy.CodeInvalid, "create_tenant: invalid tenant")
		}
		if _, ok := st.Tenants[tn.Name]; ok {
			return errResult(eddy.CodeTenantExists, "tenant "+string(tn.Name)+" already exists")
		}
		c := *tn
		st.NextIncarnation++
		c.Incarnation = st.NextIncarnation
		st.Tenants[tn.Name] = &c
		return ctrlResult{Tenant: &c}
	case opSetQuotas:
		tn := cmd.Tenant
		if tn == nil || tn.Quotas.Validate() != nil {
			return errResult(eddy.CodeInvalid, "set_quotas: invalid quotas")
		}
		cur, ok := st.Tenants[tn.Name]
		if !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(tn.Name)+" does not exist")
		}
		cur.Quotas = tn.Quotas
		c := *cur
		return ctrlResult{Tenant: &c}
	case opDeleteTenant:
		name := eddy.TenantID(cmd.Ref)
		if _, ok := st.Tenants[name]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+cmd.Ref+" does not exist")
		}
		if name == eddy.DefaultTenant {
			return errResult(eddy.CodeConflict, "the default tenant cannot be deleted")
		}
		if n, _ := st.tenantUsage(name); n > 0 && !cmd.Force {
			return errResult(eddy.CodeConflict, fmt.Sprintf("tenant %s has %d topic(s); delete them first or use force=true", name, n))
		}
		for ref, t := range st.Topics {
			if t.Tenant == name {
				st.deleteTopic(ref)
			}
		}
		for kid, k := range st.Keys {
			if k.Tenant == name {
				delete(st.Keys, kid)
			}
		}
		for key, t := range st.Transforms {
			if t.Tenant == name {
				delete(st.Transforms, key)
			}
		}
		for key, g := range st.Groups {
			if g.Tenant == name {
				delete(st.Groups, key)
			}
		}
		delete(st.Tenants, name)
		return ctrlResult{}
	case opAddKey:
		k := cmd.Key
		if k == nil || k.Tenant == "" {
			return errResult(eddy.CodeInvalid, "add_key: missing key or tenant")
		}
		if _, ok := st.Tenants[k.Tenant]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(k.Tenant)+" does not exist")
		}
		// Kids are unique per tenant; no tenant key takes the operator's kid
		// (a tenant named like the operator issuer would be shadowed).
		if _, ok := st.Keys[keyRef(k.Tenant, k.ID)]; ok || (st.Operator != nil && st.Operator.ID == k.ID) {
			return errResult(eddy.CodeConflict, "tenant "+string(k.Tenant)+" already has a key with kid "+k.ID)
		}
		n := 0
		for _, o := range st.Keys {
			if o.Tenant == k.Tenant {
				n++
			}
		}
		if n >= MaxKeysPerTenant {
			return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s already has %d keys", k.Tenant, n))
		}
		c := *k
		st.Keys[keyRef(k.Tenant, k.ID)] = &c
		return ctrlResult{}
	case opRemoveKey:
		if cmd.Tenant == nil {
			return errResult(eddy.CodeInvalid, "remove_key: missing tenant")
		}
		ref := keyRef(cmd.Tenant.Name, cmd.Ref)
		if _, ok := st.Keys[ref]; !ok {
			return errResult(eddy.CodeNotFound, "no key with kid "+cmd.Ref)
		}
		delete(st.Keys, ref)
		return ctrlResult{}
	case opSetOperator:
		if st.Operator == nil {
			if cmd.Operator == nil || cmd.Operator.ID == "" {
				return errResult(eddy.CodeInvalid, "set_operator_key: missing key")
			}
			c := *cmd.Operator
			st.Operator = &c
		}
		c := *st.Operator // the first one set wins
		return ctrlResult{Operator: &c}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}

func errResult(code eddy.Code, msg string) ctrlResult {
	return ctrlResult{Err: &resultErr{Code: code, Message: msg}}
}

// tenantUsage counts a tenant's topics and partitions.
func (st *controllerState) tenantUsage(t eddy.TenantID) (topics, partitions int64) {
	for _, m := range st.Topics {
		if m.Tenant == t {
			topics++
			partitions += int64(m.Partitions)
		}
	}
	return topics, partitions
}

// deleteTopic removes a topic and any move of its partitions.
func (st *controllerState) deleteTopic(ref string) {
	if t, ok := st.Topics[ref]; ok {
		for _, s := range t.Shards {
			delete(st.Moves, s)
			delete(st.Sizes, s)
		}
	}
	delete(st.Topics, ref)
}

// reportSizes records partitions' retained bytes; shards of topics that no
// longer exist are ignored.
func (st *controllerState) reportSizes(sizes map[uint64]int64) {
	live := map[uint64]bool{}
	for _, t := range st.Topics {
		for _, s := range t.Shards {
			live[s] = true
		}
	}
	for shard, n := range sizes {
		if live[shard] && n >= 0 {
			if st.Sizes == nil {
				st.Sizes = map[uint64]int64{}
			}
			st.Sizes[shard] = n
		}
	}
}

// activeNodeIDs are the nodes new replicas may be placed on, sorted.
func (st *controllerState) activeNodeIDs() []uint64 {
	var ids []uint64
	for _, id := range st.sortedNodeIDs() {
		if st.Nodes[id].active() {
			ids = append(ids, id)
		}
	}
	return ids
}

func (st *controllerState) sortedNodeIDs() []uint64 {
	ids := make([]uint64, 0, len(st.Nodes))
	for id := range st.Nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// view runs fn with the state read-locked. fn must not keep references.
func (c *controllerSM) view(fn func(st *controllerState)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.st)
}

// Lookup serves SyncRead, which the host uses only as a barrier (the local
// state is read through view once it returns).
func (c *controllerSM) Lookup(q any) (any, error) { return nil, nil }

// storeModule writes a deploy's binary to the module store and leaves
// only its hash in the command. A write that fails (a full disk) is
// logged: the version exists, and this node refuses to run it until the
// file is back (every other node has it).
func (c *controllerSM) storeModule(cmd *ctrlCmd) {
	if cmd.Op != opDeployTransform || cmd.Module == nil || len(cmd.Module.Binary) == 0 {
		return
	}
	c.moduleBytes.Add(int64(len(cmd.Module.Binary)))
	if c.modules != nil {
		if err := c.modules.put(cmd.Module.SHA256, cmd.Module.Binary); err != nil && c.log != nil {
			c.log.Error("transform module not stored on this node", "sha256", cmd.Module.SHA256, "err", err)
		}
	}
	cmd.Module.Binary = nil
}

// SaveSnapshot writes the state as JSON; the module files go along as the
// snapshot's external files (dragonboat links them into the snapshot and
// streams them to a node that needs the snapshot).
func (c *controllerSM) SaveSnapshot(w io.Writer, fc sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	c.mu.RLock()
	b, err := json.Marshal(c.st)
	keep := c.st.modules()
	c.moduleBytes.Store(0)
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	if c.modules != nil && fc != nil {
		shas := make([]string, 0, len(keep))
		for sha := range keep {
			shas = append(shas, sha)
		}
		sort.Strings(shas)
		for i, sha := range shas {
			if _, err := os.Stat(c.modules.path(sha)); err == nil {
				fc.AddFile(uint64(i+1), c.modules.path(sha), []byte(sha))
			}
		}
	}
	_, err = w.Write(b)
	return err
}

func (c *controllerSM) RecoverFromSnapshot(r io.Reader, files []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st := newControllerState()
	if err := json.Unmarshal(b, st); err != nil {
		return err
	}
	// Snapshots from before the module store hold binaries inline.
	for _, t := range st.Transforms {
		for _, v := range t.Versions {
			c.storeModule(&ctrlCmd{Op: opDeployTransform, Module: v})
		}
	}
	if c.modules != nil {
		for _, f := range files {
			if err := c.modules.putFrom(string(f.Metadata), f.Filepath); err != nil && c.log != nil {
				c.log.Error("transform module from the snapshot not stored", "sha256", string(f.Metadata), "err", err)
			}
		}
		c.modules.gc(st.modules())
	}
	// Snapshots from before kids were per tenant hold keys by kid alone.
	for ref, k := range st.Keys {
		if want := keyRef(k.Tenant, k.ID); ref != want {
			delete(st.Keys, ref)
			st.Keys[want] = k
		}
	}
	c.mu.Lock()
	c.st = st
	c.version.Add(1)
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange()
	}
	return nil
}

func (c *controllerSM) Close() error { return nil }
