package catalog

import (
	"slices"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// ctrlFixture is a controller with nodes 1-3, the default tenant and topic
// t (1 partition, RF 3, replicas 1 2 3).
func ctrlFixture(t *testing.T) *State {
	t.Helper()
	c := NewState()
	for id := uint64(1); id <= 3; id++ {
		mustApply(t, c, &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: id, RaftAddr: "127.0.0.1:" + string(rune('0'+id))}})
	}
	mustApply(t, c, &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: eddy.DefaultTenant}})
	mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "t", Partitions: 1, ReplicationFactor: 3}})
	return c
}

func mustApply(t *testing.T, c *State, cmd *Cmd) Result {
	t.Helper()
	res := c.Apply(cmd)
	if res.Err != nil {
		t.Fatalf("%s: %s %s", cmd.Op, res.Err.Code, res.Err.Message)
	}
	return res
}

func applyErr(t *testing.T, c *State, cmd *Cmd, want eddy.Code) {
	t.Helper()
	res := c.Apply(cmd)
	if res.Err == nil || res.Err.Code != want {
		t.Fatalf("%s: got %+v, want error %s", cmd.Op, res.Err, want)
	}
}

func TestControllerMoveLifecycle(t *testing.T) {
	c := ctrlFixture(t)
	st := c
	shard := st.Topics["default/t"].Shards[0]
	mustApply(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 4, RaftAddr: "127.0.0.1:4"}})
	// A joining node takes no replica until it registers.
	applyErr(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 4, From: 1}}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: 4, RaftAddr: "127.0.0.1:4"}})

	applyErr(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 2, From: 1}}, eddy.CodeConflict) // already a replica
	applyErr(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: 99, Node: 4, From: 1}}, eddy.CodeNotFound)
	before := st.Topics["default/t"]
	mv := mustApply(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 4, From: 1}}).Move
	if mv.ReplicaID <= MaxNodeID || mv.Phase != MoveLearner {
		t.Fatalf("move: %+v", mv)
	}
	if len(before.ReplicaIDs) != 0 {
		t.Fatal("a move changed the topic a reader held (copy-on-write broken)")
	}
	applyErr(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 4, From: 2}}, eddy.CodeConflict) // one move per shard
	// Phases go forward only; finishing early is refused.
	applyErr(t, c, &Cmd{Op: OpFinishMove, Move: mv}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpMovePhase, Move: &Move{Shard: shard, ReplicaID: mv.ReplicaID, Phase: MoveReady}})
	mustApply(t, c, &Cmd{Op: OpMovePhase, Move: &Move{Shard: shard, ReplicaID: mv.ReplicaID, Phase: MoveVoter}})
	if got := st.Topics["default/t"].Replicas[0]; len(got) != 4 {
		t.Fatalf("voters after promotion: %v", got)
	}
	applyErr(t, c, &Cmd{Op: OpMovePhase, Move: &Move{Shard: shard, ReplicaID: mv.ReplicaID, Phase: MoveReady}}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpFinishMove, Move: mv})
	tm := st.Topics["default/t"]
	if got := tm.Replicas[0]; len(got) != 3 || slices.Contains(got, 1) || !slices.Contains(got, 4) {
		t.Fatalf("voters after the move: %v", got)
	}
	if tm.ReplicaID(0, 4) != mv.ReplicaID || tm.NodeOf(0, mv.ReplicaID) != 4 || tm.ReplicaID(0, 2) != 2 {
		t.Fatalf("replica ids: %v", tm.ReplicaIDs)
	}
	if len(st.Moves) != 0 {
		t.Fatalf("moves left: %v", st.Moves)
	}
	// Moving node 4 out and back in gives it a new ReplicaID: never reused.
	out := mustApply(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 1, From: 4}}).Move
	if out.ReplicaID == mv.ReplicaID {
		t.Fatal("a ReplicaID was reused")
	}
	mustApply(t, c, &Cmd{Op: OpMovePhase, Move: &Move{Shard: shard, ReplicaID: out.ReplicaID, Phase: MoveVoter}})
	mustApply(t, c, &Cmd{Op: OpFinishMove, Move: out})
	back := mustApply(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 4, From: 1}}).Move
	if back.ReplicaID == mv.ReplicaID || back.ReplicaID == out.ReplicaID {
		t.Fatalf("ReplicaID reused: %d", back.ReplicaID)
	}
	// Deleting the topic ends its moves.
	mustApply(t, c, &Cmd{Op: OpDeleteTopic, Ref: "default/t"})
	if len(st.Moves) != 0 {
		t.Fatal("a deleted topic's move survived")
	}
}

func TestControllerNodeRemoval(t *testing.T) {
	c := ctrlFixture(t)
	st := c
	// RF 3 on 3 nodes: no node can go.
	applyErr(t, c, &Cmd{Op: OpDrainNode, Node: &NodeMeta{ID: 3}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpDrainNode, Node: &NodeMeta{ID: 9}}, eddy.CodeNotFound)
	mustApply(t, c, &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: 4, RaftAddr: "127.0.0.1:4"}})
	mustApply(t, c, &Cmd{Op: OpDrainNode, Node: &NodeMeta{ID: 3}})
	if st.Nodes[3].Active() {
		t.Fatal("a draining node takes replicas")
	}
	// A new topic avoids the draining node; RF 3 fits on 1, 2, 4.
	res := mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "u", Partitions: 4, ReplicationFactor: 3}})
	for _, r := range res.Topic.Replicas {
		for _, n := range r {
			if n == 3 {
				t.Fatalf("placed on the draining node: %v", res.Topic.Replicas)
			}
		}
	}
	// Not removable while it holds a replica, nor reported drained.
	applyErr(t, c, &Cmd{Op: OpNodeDrained, Node: &NodeMeta{ID: 3}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpRemoveNode, Node: &NodeMeta{ID: 3}}, eddy.CodeConflict)
	// Re-registering (a restart) keeps it draining.
	mustApply(t, c, &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: 3, RaftAddr: "127.0.0.1:3"}})
	if st.Nodes[3].State != NodeDraining {
		t.Fatalf("state after restart: %s", st.Nodes[3].State)
	}
	shard := st.Topics["default/t"].Shards[0]
	mv := mustApply(t, c, &Cmd{Op: OpStartMove, Move: &Move{Shard: shard, Node: 4, From: 3}}).Move
	mustApply(t, c, &Cmd{Op: OpMovePhase, Move: &Move{Shard: shard, ReplicaID: mv.ReplicaID, Phase: MoveVoter}})
	mustApply(t, c, &Cmd{Op: OpFinishMove, Move: mv})
	mustApply(t, c, &Cmd{Op: OpNodeDrained, Node: &NodeMeta{ID: 3}})
	mustApply(t, c, &Cmd{Op: OpRemoveNode, Node: &NodeMeta{ID: 3}})
	if _, ok := st.Nodes[3]; ok || !st.Removed[3] {
		t.Fatal("node 3 not removed")
	}
	// Its id never comes back, neither by registering nor by adding.
	applyErr(t, c, &Cmd{Op: OpRegisterNode, Node: &NodeMeta{ID: 3, RaftAddr: "127.0.0.1:3"}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 3, RaftAddr: "127.0.0.1:33"}}, eddy.CodeConflict)
	// An active node is not removed without draining.
	applyErr(t, c, &Cmd{Op: OpRemoveNode, Node: &NodeMeta{ID: 2}}, eddy.CodeConflict)
	// Adding: the same id twice with one address is a retry; another address conflicts.
	mustApply(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 5, RaftAddr: "127.0.0.1:5"}})
	mustApply(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 5, RaftAddr: "127.0.0.1:5"}})
	applyErr(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 5, RaftAddr: "127.0.0.1:55"}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: 6, RaftAddr: "127.0.0.1:5"}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpAddNode, Node: &NodeMeta{ID: MaxNodeID + 1, RaftAddr: "127.0.0.1:7"}}, eddy.CodeInvalid)
}

// TestControllerKeysPerTenant: kids are unique per tenant; a re-created
// tenant is a new incarnation; a snapshot from before keys were per
// tenant (keys by kid alone) is read into the new layout.
func TestControllerKeysPerTenant(t *testing.T) {
	c := ctrlFixture(t)
	mustApply(t, c, &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: "acme"}})
	mustApply(t, c, &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: "globex"}})
	k := func(tn eddy.TenantID) *tenants.Key {
		return &tenants.Key{ID: "k1", Tenant: tn, Alg: tenants.AlgEdDSA, PEM: string(tn)}
	}
	mustApply(t, c, &Cmd{Op: OpAddKey, Key: k("acme")})
	mustApply(t, c, &Cmd{Op: OpAddKey, Key: k("globex")})
	applyErr(t, c, &Cmd{Op: OpAddKey, Key: k("acme")}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpRemoveKey, Ref: "k1", Tenant: &TenantMeta{Name: "acme"}})
	if _, ok := c.Keys["globex/k1"]; !ok {
		t.Fatal("removing acme's k1 removed globex's")
	}
	inc := c.Tenants["acme"].Incarnation
	mustApply(t, c, &Cmd{Op: OpDeleteTenant, Ref: "acme", Force: true})
	mustApply(t, c, &Cmd{Op: OpCreateTenant, Tenant: &TenantMeta{Name: "acme"}})
	if again := c.Tenants["acme"].Incarnation; again <= inc {
		t.Fatalf("incarnation %d, then %d after re-creating", inc, again)
	}
	old := `{"nodes":{},"topics":{},"tenants":{},"keys":{"k9":{"kid":"k9","tenant":"acme","alg":"EdDSA","public_key_pem":"x"}},"next_shard":1000}`
	c, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Keys["acme/k9"]; !ok || len(c.Keys) != 1 {
		t.Fatalf("keys after recovering an old snapshot: %v", c.Keys)
	}
}
