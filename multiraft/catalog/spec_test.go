package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// TestCatalogSpec runs the controller's deterministic apply over the
// scripts in testdata/catalog: each command is one controller entry,
// written short, and its expected output is what the entry did (the
// entity it changed, or the refusal). They are the catalog's
// specification: read them first. Rewrite the expected output after an
// intended change with: go test ./multiraft/catalog -run TestCatalogSpec -rewrite
//
// Commands (times are the entry's clock, in ms):
//
//	node id=N                          a node registers itself (register_node)
//	add-node|drain-node|remove-node|node-drained id=N
//	tenant name=T [max-topics=N] [max-partitions=N] [storage=BYTES]
//	       [max-transforms=N] [transform-storage=BYTES] [max-groups=N]
//	       [max-mqtt-sessions=N]
//	delete-tenant name=T [force]
//	topic tenant=T name=X partitions=N [rf=N]
//	alter-topic tenant=T name=X [partitions=N] [config=(key=value,...)]   value "" resets a key
//	delete-topic tenant=T name=X
//	join tenant=T group=G member=M topics=(a,b) [timeout=MS] [now=MS]
//	leave|heartbeat|expire tenant=T group=G member=M [now=MS]
//	commit tenant=T group=G member=M gen=N offsets=(topic/p=off,...)
//	reset-offsets tenant=T group=G offsets=(topic/p=off,...)
//	start-move shard=S node=N [from=N]   a replica moves to node N (from=0: added)
//	rebuild shard=S node=N               node N's damaged replica is replaced
//	move-phase shard=S replica=R phase=learner|ready|voter
//	finish-move shard=S replica=R
//	report-sizes sizes=(shard=bytes,...)
//	alloc-producer | alloc-kafka-producer   a node's producer id, a Kafka client's
//	kafka-group tenant=T group=G gen=N assign=(member:topic/p,...)   a Kafka coordinator's view
//	mqtt-session tenant=T group=G [filters=(f:qos,...)] [offsets=(...)]   no filters: drop it
//	mqtt-commit tenant=T group=G [offsets=(topic/p=off,...)] [expiry=SEC gone=MS]
//	mqtt-expire tenant=T group=G now=MS                                   drop it if due
//	kafka-commit tenant=T group=G offsets=(topic/p=off,...) [meta=(topic/p=text,...)]
//	deploy tenant=T name=X bin=S [size=BYTES]   a transform version (S: its content)
//	delete-transform tenant=T name=X [version=N]   N=0: every version
//	bind tenant=T topic=X module=M [version=N] [on-error=P] [dlq=TOPIC]
//	unbind tenant=T topic=X
//	link tenant=T name=L [to=(h:p,...)] [topics=(glob,...)] [spec options]   create a link
//	delete-link|pause-link|resume-link tenant=T name=L
//	link-progress tenant=T name=L shard=S [expect=(sent,inflight,pid,epoch,seq)|expect=none]
//	              next=(sent,inflight,pid,epoch,seq) [dropped=N] [resets=N] [state=S]
//	show topics|groups|nodes|moves|usage|transforms|links
func TestCatalogSpec(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		st := NewState()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "show" {
				return show(st, d)
			}
			cmd := catalogCmd(t, d)
			res := st.Apply(cmd)
			checkTenantBytes(t, d, st)
			if res.Err != nil {
				return fmt.Sprintf("refused %s: %s\n", res.Err.Code, res.Err.Message)
			}
			return describe(st, cmd, res)
		})
	})
}

func arg(t *testing.T, d *datadriven.TestData, key string) string {
	var v string
	d.ScanArgs(t, key, &v)
	return v
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int64) int64 {
	if !d.HasArg(key) {
		return def
	}
	var v int64
	d.ScanArgs(t, key, &v)
	return v
}

// listArg is key=(a,b,...) as strings.
func listArg(d *datadriven.TestData, key string) []string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			return a.Vals
		}
	}
	return nil
}

// offsetsArg is key=(topic/p=off,...).
func offsetsArg(t *testing.T, d *datadriven.TestData, key string) map[string]int64 {
	out := map[string]int64{}
	for _, v := range listArg(d, key) {
		k, n, ok := strings.Cut(v, "=")
		var off int64
		if _, err := fmt.Sscan(n, &off); !ok || err != nil {
			d.Fatalf(t, "bad offset %q", v)
		}
		out[k] = off
	}
	return out
}

func catalogCmd(t *testing.T, d *datadriven.TestData) *Cmd {
	group := func(op string) *Cmd {
		return &Cmd{Op: op, GroupCmd: &GroupCmd{Tenant: eddy.TenantID(arg(t, d, "tenant")), Group: arg(t, d, "group"),
			MemberID: memberArg(t, d), NowMs: intArg(t, d, "now", 0)}}
	}
	switch d.Cmd {
	case "node":
		id := uint64(intArg(t, d, "id", 0))
		return &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: id, RaftAddr: fmt.Sprintf("n%d:7100", id)}}
	case "add-node", "drain-node", "remove-node", "node-drained":
		id := uint64(intArg(t, d, "id", 0))
		return &Cmd{Op: strings.ReplaceAll(d.Cmd, "-", "_"), Node: &NodeMeta{ID: id, RaftAddr: fmt.Sprintf("n%d:7100", id)}}
	case "tenant":
		return &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: eddy.TenantID(arg(t, d, "name")), Quotas: tenants.Quotas{
			MaxTopics: intArg(t, d, "max-topics", 0), MaxPartitions: intArg(t, d, "max-partitions", 0),
			StorageBytes: intArg(t, d, "storage", 0), MaxTransforms: intArg(t, d, "max-transforms", 0),
			TransformStorageBytes: intArg(t, d, "transform-storage", 0), MaxGroups: intArg(t, d, "max-groups", 0),
			MaxMQTTSessions: intArg(t, d, "max-mqtt-sessions", 0)}}}
	case "delete-tenant":
		return &Cmd{Op: OpDeleteTenant, Ref: arg(t, d, "name"), Force: d.HasArg("force")}
	case "topic":
		return &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.TenantID(arg(t, d, "tenant")), Name: eddy.TopicName(arg(t, d, "name")),
			Partitions: int32(intArg(t, d, "partitions", 1)), ReplicationFactor: int(intArg(t, d, "rf", 1))}}
	case "alter-topic":
		cfg := map[string]string{}
		for _, kv := range listArg(d, "config") {
			k, v, _ := strings.Cut(kv, "=")
			cfg[k] = v
		}
		return &Cmd{Op: OpAlterTopic, Ref: arg(t, d, "tenant") + "/" + arg(t, d, "name"),
			Topic: &TopicMeta{Partitions: int32(intArg(t, d, "partitions", 0)), Config: cfg}}
	case "delete-topic":
		return &Cmd{Op: OpDeleteTopic, Ref: arg(t, d, "tenant") + "/" + arg(t, d, "name")}
	case "join":
		c := group(OpJoinGroup)
		c.GroupCmd.Member = &MemberMeta{ID: c.GroupCmd.MemberID, Topics: listArg(d, "topics"),
			SessionTimeoutMs: intArg(t, d, "timeout", 30_000), LastSeenMs: c.GroupCmd.NowMs, JoinedMs: c.GroupCmd.NowMs}
		return c
	case "leave":
		return group(OpLeaveGroup)
	case "heartbeat":
		return group(OpHeartbeat)
	case "expire":
		return group(OpExpireMember)
	case "commit":
		c := group(OpCommitOffsets)
		c.GroupCmd.Generation, c.GroupCmd.Offsets = intArg(t, d, "gen", 0), offsetsArg(t, d, "offsets")
		return c
	case "reset-offsets":
		c := group(OpCommitOffsets)
		c.GroupCmd.Reset, c.GroupCmd.Offsets = true, offsetsArg(t, d, "offsets")
		return c
	case "delete-offsets": // offsets=(topic/p,...)
		c := group(OpDeleteOffsets)
		c.GroupCmd.Drop = listArg(d, "offsets")
		return c
	case "start-move":
		return &Cmd{Op: OpStartMove, Move: &Move{Shard: uint64(intArg(t, d, "shard", 0)), Node: uint64(intArg(t, d, "node", 0)),
			From: uint64(intArg(t, d, "from", 0))}}
	case "rebuild":
		return &Cmd{Op: OpRebuild, Move: &Move{Shard: uint64(intArg(t, d, "shard", 0)), Node: uint64(intArg(t, d, "node", 0))}}
	case "move-phase", "finish-move":
		op := OpMovePhase
		if d.Cmd == "finish-move" {
			op = OpFinishMove
		}
		mv := &Move{Shard: uint64(intArg(t, d, "shard", 0)), ReplicaID: uint64(intArg(t, d, "replica", 0))}
		if d.HasArg("phase") {
			mv.Phase = arg(t, d, "phase")
		}
		return &Cmd{Op: op, Move: mv}
	case "deploy":
		bin := arg(t, d, "bin")
		sum := sha256.Sum256([]byte(bin))
		return &Cmd{Op: OpDeployTransform, Transform: &TransformMeta{Tenant: eddy.TenantID(arg(t, d, "tenant")), Name: arg(t, d, "name")},
			Module: &ModuleVersion{SHA256: hex.EncodeToString(sum[:]), Size: int(intArg(t, d, "size", int64(len(bin)))), Binary: []byte(bin)}}
	case "delete-transform":
		return &Cmd{Op: OpDeleteTransform, Transform: &TransformMeta{Tenant: eddy.TenantID(arg(t, d, "tenant")), Name: arg(t, d, "name")},
			Version: int(intArg(t, d, "version", 0))}
	case "bind", "unbind":
		c := &Cmd{Op: OpBindTransform, Ref: arg(t, d, "tenant") + "/" + arg(t, d, "topic")}
		if d.Cmd == "bind" {
			c.Binding = &TransformBinding{Module: arg(t, d, "module"), Version: int(intArg(t, d, "version", 0)), OnError: OnErrorReject}
			if d.HasArg("on-error") {
				c.Binding.OnError = arg(t, d, "on-error")
			}
			if d.HasArg("dlq") {
				c.Binding.DeadLetterTopic = arg(t, d, "dlq")
			}
		}
		return c
	case "kafka-group": // a Kafka coordinator's view after a rebalance
		c := group(OpKafkaGroup)
		v := &GroupMeta{Generation: intArg(t, d, "gen", 0), Members: map[string]*MemberMeta{}, Assignments: map[string][]TopicPartition{},
			Kafka: &KafkaGroup{ProtocolType: "consumer", Protocol: "range"}}
		if d.HasArg("type") {
			d.ScanArgs(t, "type", &v.Kafka.ProtocolType)
		}
		for _, a := range listArg(d, "assign") { // member:topic/partition
			if a == "" {
				continue
			}
			id, tp, _ := strings.Cut(a, ":")
			topic, p, _ := strings.Cut(tp, "/")
			var n int32
			fmt.Sscan(p, &n)
			if v.Members[id] == nil {
				v.Members[id] = &MemberMeta{ID: id}
			}
			v.Assignments[id] = append(v.Assignments[id], TopicPartition{Topic: topic, Partition: eddy.Partition(n)})
		}
		for _, s := range listArg(d, "subscribed") { // member:topic, subscribed with nothing assigned yet
			id, topic, _ := strings.Cut(s, ":")
			if v.Members[id] == nil {
				v.Members[id] = &MemberMeta{ID: id}
			}
			v.Members[id].Topics = append(v.Members[id].Topics, topic)
		}
		c.GroupCmd.View = v
		return c
	case "mqtt-session":
		c := group(OpMQTTSession)
		if fs := listArg(d, "filters"); d.HasArg("filters") {
			c.GroupCmd.Session = &MQTTSession{}
			for _, f := range fs {
				name, qos, _ := strings.Cut(f, ":")
				c.GroupCmd.Session.Filters = append(c.GroupCmd.Session.Filters, MQTTFilter{Filter: name, QoS: byte(qos[0] - '0')})
			}
		}
		if d.HasArg("offsets") {
			c.GroupCmd.Offsets = offsetsArg(t, d, "offsets")
		}
		return c
	case "mqtt-commit":
		c := group(OpCommitOffsets)
		c.GroupCmd.SessionOnly = true
		if d.HasArg("offsets") {
			c.GroupCmd.Offsets = offsetsArg(t, d, "offsets")
		}
		if d.HasArg("expiry") {
			c.GroupCmd.Session = &MQTTSession{}
			d.ScanArgs(t, "expiry", &c.GroupCmd.Session.ExpirySec)
			if d.HasArg("gone") {
				d.ScanArgs(t, "gone", &c.GroupCmd.Session.GoneMs)
			}
		}
		return c
	case "mqtt-commits": // commits=(group:topic/p=off,...): one entry of many sessions' commits
		c := &Cmd{Op: OpSessionCommits}
		for _, v := range listArg(d, "commits") {
			g, tp, _ := strings.Cut(v, ":")
			k, n, _ := strings.Cut(tp, "=")
			var off int64
			if _, err := fmt.Sscan(n, &off); err != nil {
				d.Fatalf(t, "bad commit %q", v)
			}
			c.Sessions = append(c.Sessions, &GroupCmd{Tenant: eddy.TenantID(arg(t, d, "tenant")), Group: g, SessionOnly: true, Offsets: map[string]int64{k: off}})
		}
		return c
	case "mqtt-expire":
		c := group(OpMQTTSession)
		d.ScanArgs(t, "now", &c.GroupCmd.NowMs)
		return c
	case "kafka-commit":
		c := group(OpCommitOffsets)
		c.GroupCmd.Kafka, c.GroupCmd.Offsets = true, offsetsArg(t, d, "offsets")
		for _, v := range listArg(d, "meta") {
			k, text, _ := strings.Cut(v, "=")
			if c.GroupCmd.Metadata == nil {
				c.GroupCmd.Metadata = map[string]string{}
			}
			c.GroupCmd.Metadata[k] = text
		}
		return c
	case "alloc-producer":
		return &Cmd{Op: OpAllocProducer}
	case "alloc-kafka-producer":
		return &Cmd{Op: OpAllocKafkaProducer}
	case "report-sizes":
		sizes := map[uint64]int64{}
		for k, v := range offsetsArg(t, d, "sizes") {
			var shard uint64
			fmt.Sscan(k, &shard)
			sizes[shard] = v
		}
		return &Cmd{Op: OpReportSizes, Sizes: sizes}
	}
	if c := linkCmd(t, d); c != nil {
		return c
	}
	d.Fatalf(t, "unknown command %s", d.Cmd)
	return nil
}

func memberArg(t *testing.T, d *datadriven.TestData) string {
	if !d.HasArg("member") {
		return ""
	}
	return arg(t, d, "member")
}

// describe prints what an applied entry changed.
func describe(st *State, cmd *Cmd, res Result) string {
	var b strings.Builder
	switch {
	case cmd.Node != nil:
		n := st.Nodes[cmd.Node.ID]
		if n == nil {
			return fmt.Sprintf("node %d removed\n", cmd.Node.ID)
		}
		fmt.Fprintf(&b, "node %d: %s\n", n.ID, nodeState(n))
	case cmd.Tenant != nil:
		tn := st.Tenants[cmd.Tenant.Name]
		fmt.Fprintf(&b, "tenant %s: incarnation %d\n", tn.Name, tn.Incarnation)
	case cmd.Op == OpDeleteTenant, cmd.Op == OpDeleteTopic:
		fmt.Fprintf(&b, "deleted %s\n", cmd.Ref)
	case cmd.Op == OpAlterTopic:
		writeTopic(&b, st.Topics[cmd.Ref])
		for _, k := range slices.Sorted(maps.Keys(st.Topics[cmd.Ref].Config)) {
			fmt.Fprintf(&b, "  %s=%s\n", k, st.Topics[cmd.Ref].Config[k])
		}
	case cmd.Topic != nil:
		writeTopic(&b, st.Topics[cmd.Topic.Ref().String()])
	case cmd.GroupCmd != nil:
		writeGroup(&b, st.Groups[GroupKey(cmd.GroupCmd.Tenant, cmd.GroupCmd.Group)])
	case cmd.Op == OpSessionCommits:
		for i, c := range cmd.Sessions {
			if e := res.Errs[i]; e != nil {
				fmt.Fprintf(&b, "%s refused %s: %s\n", c.Group, e.Code, e.Message)
			} else {
				writeGroup(&b, st.Groups[GroupKey(c.Tenant, c.Group)])
			}
		}
	case cmd.Move != nil:
		if mv := res.Move; mv != nil {
			fmt.Fprintf(&b, "move shard %d to node %d (replica %d) from %d: %s\n", mv.Shard, mv.Node, mv.ReplicaID, mv.From, mv.Phase)
		} else {
			fmt.Fprintf(&b, "move of shard %d finished\n", cmd.Move.Shard)
		}
		ref, tm, p := st.TopicOfShard(cmd.Move.Shard)
		fmt.Fprintf(&b, "%s/%d replicas %v, replica ids %v\n", ref, p, tm.Replicas[p], tm.ReplicaIDs[p])
	case cmd.Op == OpDeployTransform, cmd.Op == OpDeleteTransform:
		tm := st.Transforms[TransformKey(cmd.Transform.Tenant, cmd.Transform.Name)]
		if tm == nil {
			fmt.Fprintf(&b, "transform %s/%s deleted\n", cmd.Transform.Tenant, cmd.Transform.Name)
		} else {
			writeTransform(&b, st, tm)
		}
	case cmd.Op == OpAllocProducer, cmd.Op == OpAllocKafkaProducer:
		fmt.Fprintf(&b, "producer id %d; Kafka's: %v\n", res.ProducerID, st.KafkaProducer(res.ProducerID))
	case cmd.Op == OpBindTransform:
		writeBinding(&b, st.Topics[cmd.Ref])
	case cmd.Link != nil:
		writeLink(&b, st, cmd.Link)
	case cmd.Sizes != nil:
		for _, tn := range slices.Sorted(maps.Keys(st.Tenants)) {
			fmt.Fprintf(&b, "tenant %s: %d bytes\n", tn, st.TenantBytes(tn))
		}
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func nodeState(n *NodeMeta) string {
	if n.State == "" {
		return NodeActive
	}
	return n.State
}

func writeTopic(b *strings.Builder, tm *TopicMeta) {
	fmt.Fprintf(b, "topic %s: %d partitions, rf %d\n", tm.Ref(), tm.Partitions, tm.ReplicationFactor)
	for p := range tm.Partitions {
		fmt.Fprintf(b, "  %d: shard %d replicas %v\n", p, tm.Shards[p], tm.Replicas[p])
	}
}

func writeTransform(b *strings.Builder, st *State, tm *TransformMeta) {
	var vs []string
	for _, v := range tm.Versions {
		vs = append(vs, fmt.Sprintf("%d(%s)", v.Version, v.SHA256[:6]))
	}
	fmt.Fprintf(b, "transform %s/%s versions %s\n", tm.Tenant, tm.Name, strings.Join(vs, " "))
	if pinned, topics := st.Pinned(tm.Tenant, tm.Name); len(topics) > 0 {
		var vs []string
		for _, v := range slices.Sorted(maps.Keys(pinned)) {
			vs = append(vs, versionName(v))
		}
		fmt.Fprintf(b, "  bound at %s by %s\n", strings.Join(vs, " "), strings.Join(topics, " "))
	}
}

// versionName is a binding's version: 0 follows the latest.
func versionName(v int) string {
	if v == 0 {
		return "latest"
	}
	return fmt.Sprint(v)
}

func writeBinding(b *strings.Builder, tm *TopicMeta) {
	if tm.Transform == nil {
		fmt.Fprintf(b, "topic %s: no transform\n", tm.Ref())
		return
	}
	tb := tm.Transform
	fmt.Fprintf(b, "topic %s: transform %s version %s, on error %s", tm.Ref(), tb.Module, versionName(tb.Version), tb.OnError)
	if tb.DeadLetterTopic != "" {
		fmt.Fprintf(b, " to %s", tb.DeadLetterTopic)
	}
	b.WriteString("\n")
}

func writeGroup(b *strings.Builder, g *GroupMeta) {
	if g == nil {
		b.WriteString("no group\n")
		return
	}
	kind := ""
	if g.Kafka != nil {
		kind = " (kafka)"
	}
	fmt.Fprintf(b, "group %s/%s generation %d%s\n", g.Tenant, g.Name, g.Generation, kind)
	for _, id := range slices.Sorted(maps.Keys(g.Members)) {
		var tps []string
		for _, tp := range g.Assignments[id] {
			tps = append(tps, fmt.Sprintf("%s/%d", tp.Topic, tp.Partition))
		}
		if len(tps) == 0 {
			tps = []string{"(nothing)"}
		}
		fmt.Fprintf(b, "  %s: %s\n", id, strings.Join(tps, " "))
	}
	if len(g.Offsets) > 0 {
		var offs []string
		for _, k := range slices.Sorted(maps.Keys(g.Offsets)) {
			offs = append(offs, fmt.Sprintf("%s=%d", k, g.Offsets[k]))
		}
		fmt.Fprintf(b, "  committed %s\n", strings.Join(offs, " "))
	}
	if g.MQTT != nil {
		var fs []string
		for _, f := range g.MQTT.Filters {
			fs = append(fs, fmt.Sprintf("%s:%d", f.Filter, f.QoS))
		}
		fmt.Fprintf(b, "  mqtt session %s", strings.Join(fs, " "))
		if g.MQTT.ExpirySec > 0 {
			fmt.Fprintf(b, " (expiry %ds", g.MQTT.ExpirySec)
			if g.MQTT.GoneMs > 0 {
				fmt.Fprintf(b, ", gone at %d", g.MQTT.GoneMs)
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	if len(g.OffsetMetadata) > 0 {
		var meta []string
		for _, k := range slices.Sorted(maps.Keys(g.OffsetMetadata)) {
			meta = append(meta, k+"="+g.OffsetMetadata[k])
		}
		fmt.Fprintf(b, "  metadata %s\n", strings.Join(meta, " "))
	}
}

// checkTenantBytes: the per-tenant sums the state keeps are the sums of
// the reported sizes of the tenant's partitions.
func checkTenantBytes(t *testing.T, d *datadriven.TestData, st *State) {
	want := map[eddy.TenantID]int64{}
	for _, tm := range st.Topics {
		for _, s := range tm.Shards {
			want[tm.Tenant] += st.Sizes[s]
		}
	}
	for tn := range st.Tenants {
		if got := st.TenantBytes(tn); got != want[tn] {
			d.Fatalf(t, "tenant %s: kept sum %d bytes, its partitions' sizes add up to %d", tn, got, want[tn])
		}
	}
}

func show(st *State, d *datadriven.TestData) string {
	var b strings.Builder
	what := d.CmdArgs[0].Key
	for _, k := range slices.Sorted(maps.Keys(st.Topics)) {
		if what == "topics" {
			writeTopic(&b, st.Topics[k])
		}
	}
	switch what {
	case "links":
		for _, k := range slices.Sorted(maps.Keys(st.Links)) {
			l := st.Links[k]
			writeLink(&b, st, &LinkCmd{Tenant: l.Tenant, Name: l.Name})
		}
	case "transforms":
		for _, k := range slices.Sorted(maps.Keys(st.Transforms)) {
			writeTransform(&b, st, st.Transforms[k])
		}
	case "groups":
		for _, k := range slices.Sorted(maps.Keys(st.Groups)) {
			writeGroup(&b, st.Groups[k])
		}
	case "nodes":
		for _, id := range st.NodeIDs() {
			fmt.Fprintf(&b, "node %d: %s\n", id, nodeState(st.Nodes[id]))
		}
	case "moves":
		for _, s := range slices.Sorted(maps.Keys(st.Moves)) {
			mv := st.Moves[s]
			fmt.Fprintf(&b, "shard %d: to node %d from %d, %s\n", s, mv.Node, mv.From, mv.Phase)
		}
	case "usage":
		for _, tn := range slices.Sorted(maps.Keys(st.Tenants)) {
			topics, parts := st.TenantCounts(tn)
			fmt.Fprintf(&b, "tenant %s: %d topics, %d partitions, %d bytes\n", tn, topics, parts, st.TenantBytes(tn))
		}
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}

// TestAllHave: a feature is the cluster's once every node registered it
// (a node of an earlier build registers none).
func TestAllHave(t *testing.T) {
	st := NewState()
	if st.AllHave(FeatureSessionCommits) {
		t.Fatal("a cluster of no nodes has the feature")
	}
	for _, n := range []*NodeMeta{{ID: 1, Features: []string{FeatureSessionCommits}}, {ID: 2}} {
		if r := st.Apply(&Cmd{Op: OpRegisterNode, Node: n}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if st.AllHave(FeatureSessionCommits) {
		t.Fatal("node 2, of an earlier build, has the feature")
	}
	st.Apply(&Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: 2, Features: []string{FeatureSessionCommits}}}) // upgraded, restarted
	if !st.AllHave(FeatureSessionCommits) {
		t.Fatal("every node registered the feature")
	}
}
