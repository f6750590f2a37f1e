package catalog

import (
	"fmt"
	"testing"

	"github.com/eddy-broker/eddy"
)

// groupFixture: controller with topic a (6 partitions) and b (2).
func groupFixture(t *testing.T) *State {
	c := ctrlFixture(t)
	mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "a", Partitions: 6, ReplicationFactor: 1}})
	mustApply(t, c, &Cmd{Op: OpCreateTopic, Topic: &TopicMeta{Tenant: eddy.DefaultTenant, Name: "b", Partitions: 2, ReplicationFactor: 1}})
	return c
}

func joinCmd(id string, topics ...string) *Cmd {
	return &Cmd{Op: OpJoinGroup, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g",
		Member: &MemberMeta{ID: id, Topics: topics, SessionTimeoutMs: 1000, LastSeenMs: 100}}}
}

// checkAssignment: every partition of the subscribed topics is assigned
// to exactly one member subscribed to its topic.
func checkAssignment(t *testing.T, g *GroupMeta, want map[string]int) {
	t.Helper()
	owner := map[string]string{}
	for id, tps := range g.Assignments {
		m := g.Members[id]
		if m == nil {
			t.Fatalf("assignment to a non-member %s", id)
		}
		for _, tp := range tps {
			if o, ok := owner[tp.Key()]; ok {
				t.Fatalf("%s assigned to %s and %s", tp.Key(), o, id)
			}
			if !contains(m.Topics, tp.Topic) {
				t.Fatalf("%s assigned to %s, which does not subscribe to it", tp.Key(), id)
			}
			owner[tp.Key()] = id
		}
	}
	for topic, n := range want {
		for p := 0; p < n; p++ {
			if _, ok := owner[fmt.Sprintf("%s/%d", topic, p)]; !ok {
				t.Fatalf("%s/%d unassigned: %v", topic, p, g.Assignments)
			}
		}
	}
}

func TestGroupRebalance(t *testing.T) {
	c := groupFixture(t)
	g := mustApply(t, c, joinCmd("m1", "a")).Group
	checkAssignment(t, g, map[string]int{"a": 6})
	g = mustApply(t, c, joinCmd("m2", "a")).Group
	checkAssignment(t, g, map[string]int{"a": 6})
	if len(g.Assignments["m1"]) != 3 || len(g.Assignments["m2"]) != 3 || g.Generation != 2 {
		t.Fatalf("two members: %v gen %d", g.Assignments, g.Generation)
	}
	kept := map[string]bool{}
	for _, tp := range g.Assignments["m1"] {
		kept[tp.Key()] = true
	}
	g = mustApply(t, c, joinCmd("m3", "a", "b")).Group
	checkAssignment(t, g, map[string]int{"a": 6, "b": 2})
	for _, id := range []string{"m1", "m2"} {
		if n := len(g.Assignments[id]); n != 2 {
			t.Fatalf("%s has %d partitions of a, want 2: %v", id, n, g.Assignments)
		}
	}
	// Sticky: m1 kept partitions it had.
	stayed := 0
	for _, tp := range g.Assignments["m1"] {
		if kept[tp.Key()] {
			stayed++
		}
	}
	if stayed != 2 {
		t.Fatalf("m1 kept %d of its partitions, want 2 (sticky)", stayed)
	}
	// Leave, expire (only when not seen since), stale generation.
	mustApply(t, c, &Cmd{Op: OpLeaveGroup, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m2"}})
	applyErr(t, c, &Cmd{Op: OpExpireMember, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m3", NowMs: 500}}, eddy.CodeConflict)
	g = mustApply(t, c, &Cmd{Op: OpExpireMember, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m3", NowMs: 5000}}).Group
	checkAssignment(t, g, map[string]int{"a": 6})
	if len(g.Assignments["m1"]) != 6 {
		t.Fatalf("m1 alone: %v", g.Assignments)
	}
	applyErr(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m1", Generation: g.Generation - 1,
		Offsets: map[string]int64{"a/0": 5}}}, eddy.CodeStaleGeneration)
	applyErr(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m1", Generation: g.Generation,
		Offsets: map[string]int64{"b/0": 5}}}, eddy.CodeStaleGeneration) // not assigned
	applyErr(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "gone", Generation: g.Generation}}, eddy.CodeUnknownMember)
	g = mustApply(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m1", Generation: g.Generation,
		Offsets: map[string]int64{"a/0": 5}}}).Group
	if g.Offsets["a/0"] != 5 {
		t.Fatalf("offsets %v", g.Offsets)
	}
	applyErr(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", Reset: true, Offsets: map[string]int64{"a/0": 0}}}, eddy.CodeConflict)
	applyErr(t, c, &Cmd{Op: OpDeleteGroup, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g"}}, eddy.CodeConflict)
	mustApply(t, c, &Cmd{Op: OpLeaveGroup, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", MemberID: "m1"}})
	g = mustApply(t, c, &Cmd{Op: OpCommitOffsets, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g", Reset: true, Offsets: map[string]int64{"a/0": 0}}}).Group
	if g.Offsets["a/0"] != 0 || len(g.Members) != 0 {
		t.Fatalf("reset %v", g)
	}
	mustApply(t, c, &Cmd{Op: OpDeleteGroup, GroupCmd: &GroupCmd{Tenant: eddy.DefaultTenant, Group: "g"}})
	applyErr(t, c, joinCmd("x", "nope"), eddy.CodeNotFound)
}
