package catalog

import (
	"fmt"
	"maps"
	"sort"

	"github.com/eddy-broker/eddy"
)

// Apply applies one controller command to the state: deterministically,
// since every replica applies the same commands in the same order. A
// refusal is the Result's Err.
func (st *State) Apply(cmd *Cmd) Result {
	switch cmd.Op {
	case OpRegisterNode:
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
		return Result{Node: &n}
	case OpAddNode, OpDrainNode, OpRemoveNode, OpNodeDrained:
		return st.applyMembership(cmd)
	case OpStartMove, OpRebuild, OpMovePhase, OpFinishMove:
		return st.applyMove(cmd)
	case OpDeployTransform, OpDeleteTransform, OpBindTransform:
		if st.Transforms == nil {
			st.Transforms = map[string]*TransformMeta{}
		}
		return st.applyTransform(cmd)
	case OpJoinGroup, OpLeaveGroup, OpExpireMember, OpHeartbeat, OpCommitOffsets, OpDeleteGroup, OpDeleteOffsets, OpKafkaGroup, OpMQTTSession:
		return st.applyGroup(cmd.Op, cmd.GroupCmd)
	case OpSessionCommits:
		errs := make([]*ResultErr, len(cmd.Sessions))
		for i, c := range cmd.Sessions {
			if c == nil || !c.SessionOnly {
				errs[i] = &ResultErr{Code: eddy.CodeInvalid, Message: "session_commits: not a session's commit"}
				continue
			}
			errs[i] = st.applyGroup(OpCommitOffsets, c).Err
		}
		return Result{Errs: errs}
	case OpCreateLink, OpDeleteLink, OpPauseLink, OpLinkProgress:
		return st.applyLink(cmd.Op, cmd.Link)
	case OpSetMQTT:
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
		return Result{Tenant: &r}
	case OpReportSizes:
		st.reportSizes(cmd.Sizes)
		return Result{}
	case OpAllocProducer:
		st.NextProducerID++
		return Result{ProducerID: st.NextProducerID}
	case OpAllocKafkaProducer:
		st.NextKafkaProducerID = max(st.NextKafkaProducerID, KafkaProducerIDBase)
		st.NextKafkaProducerID++
		return Result{ProducerID: st.NextKafkaProducerID - 1}
	case OpCreateTopic:
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
		nodes := st.ActiveNodeIDs()
		if err := spec.Validate(len(nodes)); err != nil {
			e := eddy.AsError(err)
			return errResult(e.Code, e.Message)
		}
		if q := tn.Quotas; q.MaxTopics > 0 || q.MaxPartitions > 0 {
			topics, parts := st.TenantCounts(t.Tenant)
			if q.MaxTopics > 0 && topics+1 > q.MaxTopics {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s is at its limit of %d topics", t.Tenant, q.MaxTopics))
			}
			if q.MaxPartitions > 0 && parts+int64(t.Partitions) > q.MaxPartitions {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s has %d of its %d partitions; %d more do not fit", t.Tenant, parts, q.MaxPartitions, t.Partitions))
			}
		}
		nt := *t
		nt.Shards, nt.Replicas = nil, nil
		st.place(&nt, t.Partitions, nodes)
		st.Topics[ref] = &nt
		return Result{Topic: &nt}
	case OpAlterTopic:
		return st.alterTopic(cmd)
	case OpDeleteTopic:
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
		return Result{}
	case OpCreateTenant:
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
		return Result{Tenant: &c}
	case OpSetQuotas:
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
		return Result{Tenant: &c}
	case OpDeleteTenant:
		name := eddy.TenantID(cmd.Ref)
		if _, ok := st.Tenants[name]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+cmd.Ref+" does not exist")
		}
		if name == eddy.DefaultTenant {
			return errResult(eddy.CodeConflict, "the default tenant cannot be deleted")
		}
		if n, _ := st.TenantCounts(name); n > 0 && !cmd.Force {
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
		for key, l := range st.Links {
			if l.Tenant == name {
				delete(st.Links, key)
			}
		}
		for key, g := range st.Groups {
			if g.Tenant == name {
				delete(st.Groups, key)
			}
		}
		delete(st.Tenants, name)
		return Result{}
	case OpAddKey:
		k := cmd.Key
		if k == nil || k.Tenant == "" {
			return errResult(eddy.CodeInvalid, "add_key: missing key or tenant")
		}
		if _, ok := st.Tenants[k.Tenant]; !ok {
			return errResult(eddy.CodeNotFound, "tenant "+string(k.Tenant)+" does not exist")
		}
		// Kids are unique per tenant; no tenant key takes the operator's kid
		// (a tenant named like the operator issuer would be shadowed).
		if _, ok := st.Keys[KeyRef(k.Tenant, k.ID)]; ok || (st.Operator != nil && st.Operator.ID == k.ID) {
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
		st.Keys[KeyRef(k.Tenant, k.ID)] = &c
		return Result{}
	case OpRemoveKey:
		if cmd.Tenant == nil {
			return errResult(eddy.CodeInvalid, "remove_key: missing tenant")
		}
		ref := KeyRef(cmd.Tenant.Name, cmd.Ref)
		if _, ok := st.Keys[ref]; !ok {
			return errResult(eddy.CodeNotFound, "no key with kid "+cmd.Ref)
		}
		delete(st.Keys, ref)
		return Result{}
	case OpSetOperator:
		if st.Operator == nil {
			if cmd.Operator == nil || cmd.Operator.ID == "" {
				return errResult(eddy.CodeInvalid, "set_operator_key: missing key")
			}
			c := *cmd.Operator
			st.Operator = &c
		}
		c := *st.Operator // the first one set wins
		return Result{Operator: &c}
	}
	return errResult(eddy.CodeInvalid, "controller: unknown op "+cmd.Op)
}

func errResult(code eddy.Code, msg string) Result {
	return Result{Err: &ResultErr{Code: code, Message: msg}}
}

// tenantUsage counts a tenant's topics and partitions.
func (st *State) TenantCounts(t eddy.TenantID) (topics, partitions int64) {
	for _, m := range st.Topics {
		if m.Tenant == t {
			topics++
			partitions += int64(m.Partitions)
		}
	}
	return topics, partitions
}

// deleteTopic removes a topic, any move of its partitions and their sizes.
func (st *State) deleteTopic(ref string) {
	if t, ok := st.Topics[ref]; ok {
		for _, s := range t.Shards {
			delete(st.Moves, s)
			st.tenantBytes[t.Tenant] -= st.Sizes[s]
			delete(st.Sizes, s)
		}
		if st.tenantBytes[t.Tenant] == 0 {
			delete(st.tenantBytes, t.Tenant)
		}
		// Its groups' committed offsets go with it, as Kafka's do: a
		// topic made again under the name starts at offset 0, and a
		// position kept from the old one (an MQTT device's persistent
		// session at 5) skipped the new one's first records.
		for _, g := range st.Groups {
			if g.Tenant != t.Tenant {
				continue
			}
			for p := range t.Partitions {
				key := TopicPartition{Topic: string(t.Name), Partition: eddy.Partition(p)}.Key()
				delete(g.Offsets, key)
				delete(g.OffsetMetadata, key)
			}
		}
	}
	delete(st.Topics, ref)
}

// reportSizes records partitions' retained bytes; shards of topics that no
// longer exist are ignored.
func (st *State) reportSizes(sizes map[uint64]int64) {
	owner := map[uint64]eddy.TenantID{}
	for _, t := range st.Topics {
		for _, s := range t.Shards {
			owner[s] = t.Tenant
		}
	}
	for shard, n := range sizes {
		tn, live := owner[shard]
		if !live || n < 0 {
			continue
		}
		if st.Sizes == nil {
			st.Sizes = map[uint64]int64{}
		}
		st.tenantBytes[tn] += n - st.Sizes[shard]
		st.Sizes[shard] = n
	}
}

// TenantBytes is a tenant's retained bytes as its partitions' leaders
// last reported them: a sum the state keeps, so reading it walks nothing.
func (st *State) TenantBytes(t eddy.TenantID) int64 { return st.tenantBytes[t] }

// sumTenantBytes computes tenantBytes from Sizes (a decoded snapshot).
func (st *State) sumTenantBytes() {
	st.tenantBytes = map[eddy.TenantID]int64{}
	for _, t := range st.Topics {
		for _, s := range t.Shards {
			if n := st.Sizes[s]; n != 0 {
				st.tenantBytes[t.Tenant] += n
			}
		}
	}
}

// activeNodeIDs are the nodes new replicas may be placed on, sorted.
func (st *State) ActiveNodeIDs() []uint64 {
	var ids []uint64
	for _, id := range st.NodeIDs() {
		if st.Nodes[id].Active() {
			ids = append(ids, id)
		}
	}
	return ids
}

func (st *State) NodeIDs() []uint64 {
	ids := make([]uint64, 0, len(st.Nodes))
	for id := range st.Nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// place gives a topic new partitions up to n: each a shard, its replicas
// spread round-robin over nodes from a shard-dependent start.
func (st *State) place(t *TopicMeta, n int32, nodes []uint64) {
	for p := int32(len(t.Shards)); p < n; p++ {
		shard := st.NextShard
		st.NextShard++
		t.Shards = append(t.Shards, shard)
		start := int(shard % uint64(len(nodes)))
		var replicas []uint64
		for r := 0; r < t.ReplicationFactor; r++ {
			replicas = append(replicas, nodes[(start+r)%len(nodes)])
		}
		t.Replicas = append(t.Replicas, replicas)
	}
	t.Partitions = n
}

// alterTopic changes a topic's configuration (the keys given; an empty
// value returns a key to its default) and adds partitions. Keys a log or a
// proposer reads only when a replica starts cannot change.
func (st *State) alterTopic(cmd *Cmd) Result {
	cur, ok := st.Topics[cmd.Ref]
	if !ok || cmd.Topic == nil {
		return errResult(eddy.CodeNotFound, "topic "+cmd.Ref+" does not exist")
	}
	t := cur.Clone()
	cfg := maps.Clone(cur.Config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for k, v := range cmd.Topic.Config {
		if k == ConfSegmentBytes || k == ConfSegmentMs || k == ConfTimestampType {
			return errResult(eddy.CodeInvalid, "config "+k+" is set when a topic is created and cannot change")
		}
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	if err := ValidateConfig(cfg); err != nil {
		e := eddy.AsError(err)
		return errResult(e.Code, e.Message)
	}
	t.Config = cfg
	if n := cmd.Topic.Partitions; n != 0 && n != cur.Partitions {
		if n < cur.Partitions || n > MaxPartitions {
			return errResult(eddy.CodeInvalid, fmt.Sprintf("partitions can grow from %d up to %d, not to %d", cur.Partitions, MaxPartitions, n))
		}
		if q := st.Tenants[t.Tenant].Quotas; q.MaxPartitions > 0 {
			if _, parts := st.TenantCounts(t.Tenant); parts+int64(n-cur.Partitions) > q.MaxPartitions {
				return errResult(eddy.CodeLimitExceeded, fmt.Sprintf("tenant %s has %d of its %d partitions; %d more do not fit", t.Tenant, parts, q.MaxPartitions, n-cur.Partitions))
			}
		}
		nodes := st.ActiveNodeIDs()
		if len(nodes) < t.ReplicationFactor {
			return errResult(eddy.CodeInvalid, fmt.Sprintf("replication factor %d needs %d active nodes, the cluster has %d", t.ReplicationFactor, t.ReplicationFactor, len(nodes)))
		}
		st.place(t, n, nodes)
		t.ReplicaIDs = t.Clone().ReplicaIDs // one map per partition, new ones included
	}
	st.Topics[cmd.Ref] = t
	return Result{Topic: t}
}
