package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetDelete sends OffsetDelete for group, topics naming partitions,
// and returns the group's code and each partition's, as "topic/p".
func (c *client) offsetDelete(group string, topics map[string][]int32) (int16, map[string]int16) {
	c.t.Helper()
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	for topic, ps := range topics {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		for _, p := range ps {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
		}
		req.Topics = append(req.Topics, rt)
	}
	r := c.do(req).(*kmsg.OffsetDeleteResponse)
	got := map[string]int16{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			got[catalog.TopicPartition{Topic: t.Topic, Partition: eddy.Partition(p.Partition)}.Key()] = p.ErrorCode
		}
	}
	return r.ErrorCode, got
}

// TestOffsetDeleteRequest: OffsetDelete forgets the offsets of a topic no
// member reads, answers a subscribed topic's partitions (a Kafka
// member's, an HTTP member's, an MQTT session's) with
// GROUP_SUBSCRIBED_TO_TOPIC and leaves them, refuses what the token may
// not consume, and a group left with neither members nor offsets is gone.
func TestOffsetDeleteRequest(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.h.CreateTopic(ctx, eddy.DefaultTenant, catalog.TopicSpec{Name: "u", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	a := e.login("default", e.token)
	if code, _ := a.offsetDelete("g", map[string][]int32{"u": {0}}); code != errGroupIDNotFound {
		t.Fatalf("a group that does not exist: %d", code)
	}
	if code, _ := e.login("default", e.mint("default", "produce:u")).offsetDelete("g", map[string][]int32{"u": {0}}); code != errGroupAuthorization {
		t.Fatalf("a token that consumes nothing: %d", code)
	}
	if err := e.h.KafkaCommit(ctx, eddy.DefaultTenant, "g", map[string]int64{"u/0": 3, "t/0": 1}, nil); err != nil {
		t.Fatal(err)
	}
	first := a.join("g", "", 7) // subscribes to t
	ja := a.join("g", first.MemberID, 7)
	if sa := a.syncAssign("g", ja.MemberID, ja.Generation, 5, map[string][]int32{ja.MemberID: {0, 1}}); sa.ErrorCode != 0 {
		t.Fatalf("sync: %+v", sa)
	}
	if codes := a.commit(8, "g", ja.MemberID, ja.Generation, map[int32]int64{0: 5, 1: 7}); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("commit: %v", codes)
	}

	// u's offset is forgotten only by a token that may consume u.
	if code, got := e.login("default", e.mint("default", "consume:t")).offsetDelete("g", map[string][]int32{"u": {0}}); code != 0 || got["u/0"] != errTopicAuthorization {
		t.Fatalf("a token without consume on u: %d %v", code, got)
	}
	code, got := a.offsetDelete("g", map[string][]int32{"t": {0}, "u": {0, 0, 5}, "nope": {0}}) // u/0 twice: one key
	want := map[string]int16{"t/0": errGroupSubscribedToTopic, "u/0": 0, "u/5": errUnknownTopicOrPartition, "nope/0": errUnknownTopicOrPartition}
	if code != 0 || len(got) != len(want) {
		t.Fatalf("delete: %d %v", code, got)
	}
	for k, c := range want {
		if got[k] != c {
			t.Fatalf("delete %s: %d, want %d (%v)", k, got[k], c, got)
		}
	}
	cg, err := e.h.Group(eddy.DefaultTenant, "g")
	if _, kept := cg.Offsets["u/0"]; err != nil || kept || cg.Offsets["t/0"] != 5 || cg.Offsets["t/1"] != 7 {
		t.Fatalf("the catalog's offsets after the delete: %v %v", cg.Offsets, err)
	}

	// Once the member has left, t's go too, and the group with them.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group, leave.Members = 5, "g", []kmsg.LeaveGroupRequestMember{{MemberID: ja.MemberID}}
	if r := a.do(leave).(*kmsg.LeaveGroupResponse); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r.Members)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) { // the empty generation's record lands
		if cg, err := e.h.Group(eddy.DefaultTenant, "g"); err == nil && len(cg.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group's empty generation was never recorded")
		}
	}
	if code, got := a.offsetDelete("g", map[string][]int32{"t": {0, 1}}); code != 0 || got["t/0"] != 0 || got["t/1"] != 0 {
		t.Fatalf("delete of an empty group's offsets: %d %v", code, got)
	}
	if _, err := e.h.Group(eddy.DefaultTenant, "g"); eddy.ErrorCode(err) != eddy.CodeNotFound {
		t.Fatalf("a group left with neither members nor offsets: %v", err)
	}

	// An HTTP group's member reading t, and an MQTT session's positions.
	if _, _, err := e.h.JoinGroup(ctx, eddy.DefaultTenant, "h", []string{"t"}, 30_000, false); err != nil {
		t.Fatal(err)
	}
	if code, got := a.offsetDelete("h", map[string][]int32{"t": {1}}); code != 0 || got["t/1"] != errGroupSubscribedToTopic {
		t.Fatalf("an HTTP member's topic: %d %v", code, got)
	}
	if err := e.h.MQTTSession(ctx, eddy.DefaultTenant, "mqtt.d1", &catalog.MQTTSession{Filters: []catalog.MQTTFilter{{Filter: "t/#", QoS: 1}}}, map[string]int64{"t/0": 0}); err != nil {
		t.Fatal(err)
	}
	if code, got := a.offsetDelete("mqtt.d1", map[string][]int32{"t": {0}}); code != 0 || got["t/0"] != errGroupSubscribedToTopic {
		t.Fatalf("an MQTT session's position: %d %v", code, got)
	}
}
