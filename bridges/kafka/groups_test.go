package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *client) join(group, member string, version int16) *kmsg.JoinGroupResponse {
	c.t.Helper()
	return c.joinAs(group, member, nil, version)
}

// joinAs joins as a static member when instance is set.
func (c *client) joinAs(group, member string, instance *string, version int16) *kmsg.JoinGroupResponse {
	c.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.ProtocolType, req.InstanceID = version, group, member, "consumer", instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 5_000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	return c.do(req).(*kmsg.JoinGroupResponse)
}

func (c *client) syncAssign(group, member string, gen int32, version int16, assign map[string][]int32) *kmsg.SyncGroupResponse {
	c.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, gen
	for id, parts := range assign {
		a := kmsg.NewConsumerMemberAssignment()
		a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: parts}}
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a.AppendTo(nil)})
	}
	return c.do(req).(*kmsg.SyncGroupResponse)
}

func (c *client) heartbeat(group, member string, gen int32) int16 {
	return c.heartbeatAs(group, member, nil, gen)
}

func (c *client) heartbeatAs(group, member string, instance *string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation = 4, group, member, instance, gen
	return c.do(req).(*kmsg.HeartbeatResponse).ErrorCode
}

func (c *client) commit(version int16, group, member string, gen int32, offsets map[int32]int64) []int16 {
	c.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, off := range offsets {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, Offset: off, LeaderEpoch: -1})
	}
	req.Topics = append(req.Topics, rt)
	var codes []int16
	for _, p := range c.do(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	return codes
}

// commitMeta commits one partition's offset with a metadata string.
func (c *client) commitMeta(group, member string, gen, partition int32, offset int64, meta string) int16 {
	c.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 8, group, member, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: partition, Offset: offset, LeaderEpoch: -1, Metadata: &meta}}}}
	return c.do(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// TestGroupLifecycle: the classic protocol from FindCoordinator to
// DeleteGroups at the ends of each API's range: an id handed out with
// MEMBER_ID_REQUIRED, the leader's assignment, commits checked by member
// and generation and read back with their metadata (also as the catalog's
// offsets, which the HTTP groups share; metadata over 512 bytes refused), a second member triggering a rebalance the first
// hears of in its heartbeat, an HTTP member kept out meanwhile, and the
// group deleted once empty.
func TestGroupLifecycle(t *testing.T) {
	e := newEnv(t)
	a, b := e.login("default", e.token), e.login("default", e.token)
	for _, v := range []int16{0, 4} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version, fc.CoordinatorKey, fc.CoordinatorKeys = v, "g", []string{"g"}
		r := a.do(fc).(*kmsg.FindCoordinatorResponse)
		node, host := r.NodeID, r.Host
		if v == 4 {
			node, host = r.Coordinators[0].NodeID, r.Coordinators[0].Host
		}
		if node != 1 || host != "127.0.0.1" {
			t.Fatalf("find coordinator v%d: %+v", v, r)
		}
	}
	first := a.join("g", "", 7)
	if first.ErrorCode != errMemberIDRequired || first.MemberID == "" {
		t.Fatalf("join without an id: %+v", first)
	}
	ja := a.join("g", first.MemberID, 7)
	if ja.ErrorCode != 0 || ja.LeaderID != ja.MemberID || len(ja.Members) != 1 || *ja.Protocol != "range" {
		t.Fatalf("join: %+v", ja)
	}
	sa := a.syncAssign("g", ja.MemberID, ja.Generation, 5, map[string][]int32{ja.MemberID: {0, 1}})
	var got kmsg.ConsumerMemberAssignment
	if sa.ErrorCode != 0 || got.ReadFrom(sa.MemberAssignment) != nil || len(got.Topics[0].Partitions) != 2 {
		t.Fatalf("sync: %+v", sa)
	}
	if code := a.heartbeat("g", ja.MemberID, ja.Generation); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	if codes := a.commit(8, "g", ja.MemberID, ja.Generation, map[int32]int64{0: 5, 1: 7}); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("commit v8: %v", codes)
	}
	if code := a.commitMeta("g", ja.MemberID, ja.Generation, 0, 5, "ckpt-5"); code != 0 {
		t.Fatalf("commit with metadata: %d", code)
	}
	if code := a.commitMeta("g", ja.MemberID, ja.Generation, 1, 6, strings.Repeat("m", 513)); code != errOffsetMetadataTooLarge {
		t.Fatalf("commit with 513 bytes of metadata: %d", code)
	}
	if codes := a.commit(8, "g", ja.MemberID, ja.Generation-1, map[int32]int64{0: 6}); codes[0] != errIllegalGeneration {
		t.Fatalf("commit of a stale generation: %v", codes)
	}
	if codes := a.commit(8, "g", "nobody", ja.Generation, map[int32]int64{0: 6}); codes[0] != errUnknownMemberID {
		t.Fatalf("commit of an unknown member: %v", codes)
	}
	if codes := a.commit(0, "g", "", -1, map[int32]int64{0: 6}); codes[0] != errUnknownMemberID {
		t.Fatalf("a member-less commit to a group with members: %v", codes)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 1, "g"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	if r := a.do(of).(*kmsg.OffsetFetchResponse); r.Topics[0].Partitions[0].Offset != 5 || r.Topics[0].Partitions[1].Offset != 7 ||
		*r.Topics[0].Partitions[0].Metadata != "ckpt-5" || *r.Topics[0].Partitions[1].Metadata != "" {
		t.Fatalf("offset fetch v1: %+v", r.Topics)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.Version, of8.Groups = 8, []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	if r := a.do(of8).(*kmsg.OffsetFetchResponse); len(r.Groups[0].Topics) != 1 || len(r.Groups[0].Topics[0].Partitions) != 2 {
		t.Fatalf("offset fetch v8, every partition: %+v", r.Groups)
	}
	if cg, err := e.h.Group(eddy.DefaultTenant, "g"); err != nil || cg.Offsets["t/0"] != 5 || cg.Kafka == nil {
		t.Fatalf("the catalog's group: %+v %v", cg, err)
	}
	if _, _, err := e.h.JoinGroup(context.Background(), eddy.DefaultTenant, "g", []string{"t"}, 10_000, false); eddy.ErrorCode(err) != eddy.CodeConflict {
		t.Fatalf("an HTTP member joining a Kafka group: %v", err)
	}

	// A second member: the first hears of the rebalance in its heartbeat,
	// rejoins, and both land in the next generation.
	done := make(chan *kmsg.JoinGroupResponse)
	go func() { done <- b.join("g", "", 0) }() // v0: the id is given at once
	deadline := time.Now().Add(5 * time.Second)
	for a.heartbeat("g", ja.MemberID, ja.Generation) != errRebalanceInProgress {
		if time.Now().After(deadline) {
			t.Fatal("the first member never heard of the rebalance")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ja2 := a.join("g", ja.MemberID, 7)
	jb := <-done
	if ja2.ErrorCode != 0 || jb.ErrorCode != 0 || ja2.Generation != ja.Generation+1 || jb.Generation != ja2.Generation {
		t.Fatalf("rebalance: %+v / %+v", ja2, jb)
	}
	leader, other := a, b
	lid, oid := ja2.MemberID, jb.MemberID
	if ja2.LeaderID != ja2.MemberID {
		leader, other, lid, oid = b, a, jb.MemberID, ja2.MemberID
	}
	syncDone := make(chan *kmsg.SyncGroupResponse)
	go func() { syncDone <- other.syncAssign("g", oid, ja2.Generation, 0, nil) }()
	time.Sleep(50 * time.Millisecond)
	leader.syncAssign("g", lid, ja2.Generation, 5, map[string][]int32{lid: {0, 1}}) // gives the other nothing
	so := <-syncDone
	var empty kmsg.ConsumerMemberAssignment
	if so.ErrorCode != 0 || empty.ReadFrom(so.MemberAssignment) != nil || len(empty.Topics) != 0 {
		t.Fatalf("a member given nothing: %+v", so)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"g", "none"}
	if r := a.do(dg).(*kmsg.DescribeGroupsResponse); r.Groups[0].State != stateStable || len(r.Groups[0].Members) != 2 || r.Groups[1].State != stateDead {
		t.Fatalf("describe: %+v", r.Groups)
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 4
	if r := a.do(lg).(*kmsg.ListGroupsResponse); len(r.Groups) != 1 || r.Groups[0].ProtocolType != "consumer" || r.Groups[0].GroupState != stateStable {
		t.Fatalf("list: %+v", r.Groups)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"g"}
	if r := a.do(del).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != errNonEmptyGroup {
		t.Fatalf("delete with members: %+v", r.Groups)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: lid}, {MemberID: oid}, {MemberID: "nobody"}}
	if r := a.do(leave).(*kmsg.LeaveGroupResponse); r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != 0 || r.Members[2].ErrorCode != errUnknownMemberID {
		t.Fatalf("leave: %+v", r.Members)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		r := a.do(del).(*kmsg.DeleteGroupsResponse)
		if r.Groups[0].ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete when empty: %+v", r.Groups)
		}
		time.Sleep(50 * time.Millisecond) // the empty group's record lands
	}
	if _, err := e.h.Group(eddy.DefaultTenant, "g"); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("after delete: %v", err)
	}
}

// partitionsOf decodes a sync's assignment of topic t.
func partitionsOf(t *testing.T, sr *kmsg.SyncGroupResponse) []int32 {
	t.Helper()
	var a kmsg.ConsumerMemberAssignment
	if sr.ErrorCode != 0 || a.ReadFrom(sr.MemberAssignment) != nil {
		t.Fatalf("sync: %+v", sr)
	}
	if len(a.Topics) == 0 {
		return nil
	}
	return a.Topics[0].Partitions
}

// TestStaticMemberAndTakeover: a static member (group.instance.id) joins
// without a MEMBER_ID_REQUIRED round; restarted, it takes its place under
// a new id in the same generation with its old assignment, no rebalance,
// and its old id is fenced. A coordinator that takes over (its memory
// gone, the catalog kept) serves the recorded generation on: the member's
// heartbeat, sync and commit go through unchanged. It leaves by its
// instance id alone.
func TestStaticMemberAndTakeover(t *testing.T) {
	e := newEnv(t)
	a, b := e.login("default", e.token), e.login("default", e.token)
	inst := kmsg.StringPtr("sensor-reader-1")
	ja := a.joinAs("s", "", inst, 7)
	if ja.ErrorCode != 0 || ja.MemberID == "" || ja.LeaderID != ja.MemberID {
		t.Fatalf("a static member's first join: %+v", ja)
	}
	if got := partitionsOf(t, a.syncAssign("s", ja.MemberID, ja.Generation, 5, map[string][]int32{ja.MemberID: {0, 1}})); len(got) != 2 {
		t.Fatalf("assigned %v", got)
	}

	// The instance restarts: a join with no member id.
	jb := b.joinAs("s", "", inst, 7)
	if jb.ErrorCode != 0 || jb.Generation != ja.Generation || jb.MemberID == ja.MemberID || jb.LeaderID != jb.MemberID || len(jb.Members) != 1 {
		t.Fatalf("the restarted instance: %+v (was %+v)", jb, ja)
	}
	if code := a.heartbeatAs("s", ja.MemberID, inst, ja.Generation); code != errFencedInstanceID {
		t.Fatalf("the old incarnation's heartbeat: %d", code)
	}
	if code := b.heartbeatAs("s", jb.MemberID, inst, jb.Generation); code != 0 {
		t.Fatalf("the new incarnation's heartbeat: %d", code)
	}
	if got := partitionsOf(t, b.syncAssign("s", jb.MemberID, jb.Generation, 5, map[string][]int32{jb.MemberID: {1}})); len(got) != 2 {
		t.Fatalf("a stable group's sync keeps the assignment: %v", got)
	}

	// Another coordinator takes over: the catalog's record is all it has.
	co := e.l.groups
	co.mu.Lock()
	co.drop()
	co.mu.Unlock()
	if code := b.heartbeatAs("s", jb.MemberID, inst, jb.Generation); code != 0 {
		t.Fatalf("a heartbeat after the takeover: %d", code)
	}
	if got := partitionsOf(t, b.syncAssign("s", jb.MemberID, jb.Generation, 5, nil)); len(got) != 2 {
		t.Fatalf("the assignment after the takeover: %v", got)
	}
	if codes := b.commit(8, "s", jb.MemberID, jb.Generation, map[int32]int64{0: 3}); codes[0] != 0 {
		t.Fatalf("a commit after the takeover: %v", codes)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"s"}
	if r := b.do(dg).(*kmsg.DescribeGroupsResponse); r.Groups[0].State != stateStable || len(r.Groups[0].Members) != 1 ||
		r.Groups[0].Members[0].InstanceID == nil || *r.Groups[0].Members[0].InstanceID != *inst {
		t.Fatalf("describe after the takeover: %+v", r.Groups)
	}
	if code := a.heartbeatAs("s", ja.MemberID, inst, ja.Generation); code != errFencedInstanceID {
		t.Fatalf("the old incarnation after the takeover: %d", code)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "s"
	leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: inst}}
	if r := b.do(leave).(*kmsg.LeaveGroupResponse); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %+v", r.Members)
	}
	if r := b.do(dg).(*kmsg.DescribeGroupsResponse); len(r.Groups[0].Members) != 0 {
		t.Fatalf("after leaving: %+v", r.Groups)
	}
}

// TestFollowerRejoinKeepsGeneration: after a coordinator takeover, a
// follower that joins again with the same subscription (as clients do
// when their heartbeats failed meanwhile) keeps its generation and
// assignment, and nobody rebalances; one that changes its subscription
// rebalances the group.
func TestFollowerRejoinKeepsGeneration(t *testing.T) {
	e := newEnv(t)
	a, b := e.login("default", e.token), e.login("default", e.token)
	done := make(chan *kmsg.JoinGroupResponse)
	go func() { done <- b.join("f", "", 0) }()
	ja := a.join("f", "", 0)
	jb := <-done
	if ja.ErrorCode != 0 || jb.ErrorCode != 0 || ja.Generation != jb.Generation {
		t.Fatalf("joins: %+v %+v", ja, jb)
	}
	leader, follower, lid, fid := a, b, ja.MemberID, jb.MemberID
	if ja.LeaderID != ja.MemberID {
		leader, follower, lid, fid = b, a, jb.MemberID, ja.MemberID
	}
	syncDone := make(chan *kmsg.SyncGroupResponse)
	go func() { syncDone <- follower.syncAssign("f", fid, ja.Generation, 5, nil) }()
	time.Sleep(50 * time.Millisecond)
	leader.syncAssign("f", lid, ja.Generation, 5, map[string][]int32{lid: {0}, fid: {1}})
	if got := partitionsOf(t, <-syncDone); len(got) != 1 || got[0] != 1 {
		t.Fatalf("follower's assignment: %v", got)
	}
	co := e.l.groups
	co.mu.Lock()
	co.drop()
	co.mu.Unlock()

	again := follower.join("f", fid, 7)
	if again.ErrorCode != 0 || again.Generation != ja.Generation || again.LeaderID != lid {
		t.Fatalf("the follower's rejoin: %+v", again)
	}
	if got := partitionsOf(t, follower.syncAssign("f", fid, again.Generation, 5, nil)); len(got) != 1 || got[0] != 1 {
		t.Fatalf("the follower's assignment after its rejoin: %v", got)
	}
	if code := leader.heartbeat("f", lid, ja.Generation); code != 0 {
		t.Fatalf("the leader's heartbeat after a follower's rejoin: %d", code)
	}

	// Another subscription: a rebalance.
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.ProtocolType = 7, "f", fid, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 5_000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t", "other"}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	changed := make(chan kmsg.Response, 1)
	go func() { changed <- follower.do(req) }()
	deadline := time.Now().Add(5 * time.Second)
	for leader.heartbeat("f", lid, ja.Generation) != errRebalanceInProgress {
		if time.Now().After(deadline) {
			t.Fatal("a changed subscription did not rebalance")
		}
		time.Sleep(20 * time.Millisecond)
	}
	jl := leader.join("f", lid, 7)
	if jf := (<-changed).(*kmsg.JoinGroupResponse); jl.ErrorCode != 0 || jf.ErrorCode != 0 || jf.Generation != ja.Generation+1 {
		t.Fatalf("the rebalance: %+v / %+v", jl, jf)
	}
}

// TestGroupMemoryBounded: what a tenant's groups hold in the coordinator
// is bounded. JoinGroups without a member id (each a join in progress
// for a minute) across many groups stop at maxTenantMembers with
// GROUP_MAX_SIZE_REACHED while another tenant still joins; a member's
// metadata over maxMemberBytes is refused; and the metadata a member
// keeps is its own copy, not the request's frame.
func TestGroupMemoryBounded(t *testing.T) {
	e := newEnv(t)
	c := e.login("default", e.token)
	refused, accepted := 0, 0
	for i := range maxTenantMembers + 100 {
		switch code := c.join(fmt.Sprintf("g%d", i%50), "", 4).ErrorCode; code {
		case errMemberIDRequired:
			accepted++
		case errGroupMaxSizeReached:
			refused++
		default:
			t.Fatalf("join %d: error %d", i, code)
		}
	}
	if accepted != maxTenantMembers || refused != 100 {
		t.Fatalf("%d joins in progress accepted, %d refused; want %d and 100", accepted, refused, maxTenantMembers)
	}
	if _, err := e.h.CreateTenant(context.Background(), "acme", tenants.Quotas{}); err != nil {
		t.Fatal(err)
	}
	other := e.login("acme", e.mint("acme", "admin"))
	if code := other.join("g0", "", 4).ErrorCode; code != errMemberIDRequired {
		t.Fatalf("another tenant's join: error %d", code)
	}

	big := kmsg.NewPtrJoinGroupRequest()
	big.Version, big.Group, big.ProtocolType = 3, "big", "consumer"
	big.SessionTimeoutMillis, big.RebalanceTimeoutMillis = 10_000, 5_000
	big.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: make([]byte, maxMemberBytes+1)}}
	if code := other.do(big).(*kmsg.JoinGroupResponse).ErrorCode; code != errGroupMaxSizeReached {
		t.Fatalf("metadata of %d bytes: error %d, want GROUP_MAX_SIZE_REACHED", maxMemberBytes+1, code)
	}
	ps, ok := ownProtocols([]kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("abc")}})
	frame := []byte("abc")
	ps2, _ := ownProtocols([]kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: frame}})
	frame[0] = 'x'
	if !ok || string(ps[0].Metadata) != "abc" || string(ps2[0].Metadata) != "abc" {
		t.Fatalf("a member's metadata follows its request's frame: %q", ps2[0].Metadata)
	}
}

// TestGroupChurnLogsLittle: a client joining and leaving a group in a
// loop, each time a rebalance of the member that stays, is logged once a
// window, then with the count left out: a tenant's clients do not write
// the node's log at their pace.
func TestGroupChurnLogsLittle(t *testing.T) {
	var buf testutil.SyncBuffer
	e := newEnvWith(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	a, b := e.login("default", e.token), e.login("default", e.token)
	aID := a.join("g", "", 7).MemberID
	ja := a.join("g", aID, 7)
	a.syncAssign("g", aID, ja.Generation, 5, map[string][]int32{aID: {0, 1}})
	const rounds = 10
	for range rounds {
		bID := b.join("g", "", 7).MemberID
		joined := make(chan *kmsg.JoinGroupResponse, 1)
		go func() { joined <- b.join("g", bID, 7) }() // waits for a to join again
		time.Sleep(50 * time.Millisecond)
		if r := a.join("g", aID, 7); r.ErrorCode != 0 {
			t.Fatalf("a joins again: %d", r.ErrorCode)
		}
		if r := <-joined; r.ErrorCode != 0 {
			t.Fatalf("b joins: %d", r.ErrorCode)
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Version, leave.Group = 5, "g"
		leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: bID}}
		b.do(leave)
		if r := a.join("g", aID, 7); r.ErrorCode != 0 {
			t.Fatalf("a joins after b left: %d", r.ErrorCode)
		}
	}
	lines := strings.Count(buf.String(), "kafka group rebalancing")
	t.Logf("%d rounds of a member joining and leaving: %d lines", rounds, lines)
	if lines < 1 || lines > 2 {
		t.Fatalf("%d rebalancing lines for %d rounds, want 1 (2 if a window passed):\n%s", lines, rounds, buf.String())
	}
	if n := e.l.cfg.Metrics.GetOrCreateCounter(`eddy_kafka_group_rebalances_total{tenant="default"}`).Get(); n != 2*rounds {
		t.Fatalf("%d rebalances counted, want %d", n, 2*rounds)
	}
}
