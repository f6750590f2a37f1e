package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeleteOffsets: a group that stopped reading a topic keeps its
// committed offsets there, and its lag with them, until they are deleted
// (kadm's DeleteOffsets, as kafka-consumer-groups --delete-offsets; the
// HTTP API; the CLI). The offsets of a topic a live member reads stay
// (GROUP_SUBSCRIBED_TO_TOPIC, HTTP 409); once the last member has left,
// they go too, and the group with them.
func TestDeleteOffsets(t *testing.T) {
	p := newCluster(t, 1)[0]
	for _, topic := range []string{"old", "cur"} {
		if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"`+topic+`","partitions":1}`), nil); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v", topic, code, err)
		}
		body := `{"records":[` + strings.Repeat(`{"value":"r"},`, 9) + `{"value":"r"}]}`
		if code, err := p.do("POST", "/v1/topics/"+topic+"/records", "application/json", []byte(body), nil); err != nil || code != 200 {
			t.Fatalf("produce to %s: %d %v", topic, code, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, []*proc{p}))
	var at kadm.Offsets
	at.Add(kadm.Offset{Topic: "old", Partition: 0, At: 4})
	at.Add(kadm.Offset{Topic: "cur", Partition: 0, At: 6})
	if r, err := adm.CommitOffsets(ctx, "dash", at); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}

	// A member reads cur to its end: what is left of the group's lag is
	// old's 6 records, which it no longer reads.
	member := kgoClient(t, []*proc{p}, kgo.ConsumerGroup("dash"), kgo.ConsumeTopics("cur"), kgo.DisableAutoCommit())
	for got := 0; got < 4; {
		fs := member.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	lag := `eddy_group_lag_records{tenant="default",group="dash"}`
	waitFor(t, "the group's lag is old's 6 records", 10*time.Second, func() bool { return p.metric(lag) == 6 })

	r, err := adm.DeleteOffsets(ctx, "dash", kadm.TopicsSet{"old": {0: {}}, "cur": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err, ok := r.Lookup("old", 0); !ok || err != nil {
		t.Fatalf("delete old/0: %v %v", err, ok)
	}
	if err, ok := r.Lookup("cur", 0); !ok || !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete cur/0, which a member reads: %v %v", err, ok)
	}
	fetched, err := adm.FetchOffsets(ctx, "dash")
	if err != nil {
		t.Fatal(err)
	}
	if _, kept := fetched.Lookup("old", 0); kept {
		t.Fatal("old/0's offset is still committed")
	}
	if o, ok := fetched.Lookup("cur", 0); !ok || o.At != 10 {
		t.Fatalf("cur/0's offset: %+v %v", o, ok)
	}
	if v := p.metric(lag); v != 0 {
		t.Fatalf("the group's lag after old's offset went: %v", v)
	}
	if out, errOut, err := p.cli("", "group", "delete-offsets", "dash", "--topic", "cur"); err == nil || !strings.Contains(out+errOut, "subscribed to topic cur") {
		t.Fatalf("the CLI while a member reads cur: %v\n%s%s", err, out, errOut)
	}

	// The member leaves: cur's offsets can go, and the group, now empty
	// of members and offsets, with them.
	member.Close()
	waitFor(t, "the member left", 10*time.Second, func() bool {
		gs, err := adm.DescribeGroups(ctx, "dash")
		return err == nil && len(gs["dash"].Members) == 0
	})
	if code, err := p.do("DELETE", "/v1/groups/dash/offsets?topic=cur&partition=1", "", nil, nil); err != nil || code != 404 {
		t.Fatalf("a partition cur does not have: %d %v", code, err)
	}
	if out := p.mustCLI("", "group", "delete-offsets", "dash", "--topic", "cur", "--partition", "0"); out != "group dash: offsets of cur deleted\n" {
		t.Fatalf("the CLI said %q", out)
	}
	if code, err := p.do("GET", "/v1/groups/dash", "", nil, nil); err != nil || code != 404 {
		t.Fatalf("the group after its last offsets went: %d %v", code, err)
	}
	if v := p.metric(lag); v != 0 {
		t.Fatalf("a deleted group's lag is still reported: %v", v)
	}
}
