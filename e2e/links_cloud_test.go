package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// cloudBehindUplinks starts an n-node cloud cluster whose Kafka listeners
// are reached only through uplink proxies (each node advertises its
// proxy), and the link spec's brokers.
func cloudBehindUplinks(t *testing.T, n int) ([]*proc, []*uplink) {
	var ups []*uplink
	cloud := newClusterWith(t, n, func(p *proc) {
		u := newUplink(t, p.kafkaAddr)
		ups = append(ups, u)
		p.env = append(p.env, "EDDY_ADVERTISE_KAFKA_ADDR="+u.addr())
	})
	return cloud, ups[len(ups)-n:]
}

func setUplinks(ups []*uplink, mode int32) {
	for _, u := range ups {
		u.set(mode)
	}
}

// TestLinkEdgeToCloud is the edge-to-cloud story end to end: MQTT devices
// publish to an edge node, which links its topic to a 3-node cloud Eddy
// (RF 3) through its Kafka listener, under a 1 MiB/s bandwidth cap. The
// uplink is cut for 60 s and restored; mid catch-up it swallows the
// cloud's answers (until a batch is stored, never acknowledged), the edge
// is killed -9 and restarted, and the cloud node leading a target
// partition is killed -9. At the end the cloud holds each partition
// exactly as the edge does (every acknowledged record, in order, once),
// and the link's figures say so.
func TestLinkEdgeToCloud(t *testing.T) {
	cloud, ups := cloudBehindUplinks(t, 3)
	if code, err := cloud[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"site-17.sensors","partitions":3,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create the cloud's topic: %d %v", code, err)
	}
	edge := newProc(t)
	edge.start()
	const parts = 3
	edge.mustCreateTopic("sensors", parts)
	var to []string
	for _, u := range ups {
		to = append(to, u.addr())
	}
	spec := linkToCloud(cloud, map[string]any{"to": to, "target_prefix": "site-17.", "compression": "none",
		"max_bytes_per_sec": 1 << 20, "linger_ms": 20})
	edge.createLink(spec)

	type result struct {
		acked map[int]bool
		out   string
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }() // also when devices fails the test
		r.acked, r.out = edge.devices("sensors", 30, 24_000, "--rate", "10", "--size", "512", "--duration", "100s")
	}()
	t.Cleanup(func() { <-done })
	waitFor(t, "the link forwards", 30*time.Second, func() bool { return forwarded(edge.link("cloud")) >= 500 })
	setUplinks(ups, uplinkDown)
	cut := time.Now()
	time.Sleep(60 * time.Second)
	v := edge.link("cloud")
	t.Logf("after 60 s without the uplink: %s, backlog %d records (%.0f s); %s", v.State, v.Totals.BacklogRecords, v.Totals.BacklogSeconds, errorsOf(v))
	if v.State != "backing_off" || v.Totals.BacklogRecords < 10_000 || v.Totals.BacklogSeconds < 50 {
		t.Fatalf("the link is %s with a backlog of %d records, %.0f s", v.State, v.Totals.BacklogRecords, v.Totals.BacklogSeconds)
	}
	base := forwarded(v)
	setUplinks(ups, uplinkUp)
	restored := time.Now()
	waitFor(t, "the catch-up starts", 60*time.Second, func() bool { return forwarded(edge.link("cloud")) > base })

	// The cloud's answers are lost until it holds a batch the edge has
	// not heard about, and a second more.
	setUplinks(ups, uplinkSwallow)
	waitFor(t, "a batch stored in the cloud and not acknowledged", 30*time.Second, func() bool {
		return topicEnd(t, cloud, "site-17.sensors", parts) > forwarded(edge.link("cloud"))
	})
	time.Sleep(time.Second)
	v = edge.link("cloud")
	t.Logf("answers swallowed (the cloud holds %d records, the link counts %d forwarded); edge killed -9 mid catch-up, backlog %d",
		topicEnd(t, cloud, "site-17.sensors", parts), forwarded(v), v.Totals.BacklogRecords)
	setUplinks(ups, uplinkUp)
	if v.Totals.BacklogRecords == 0 {
		t.Fatal("the catch-up ended before the edge was killed")
	}
	edge.kill()
	edge.launch()
	edge.waitReady()
	base = forwarded(v)
	waitFor(t, "the link goes on after the edge's restart", 60*time.Second, func() bool { return forwarded(edge.link("cloud")) > base })
	victim := leaderOf(t, cloud, "site-17.sensors", 0)
	v = edge.link("cloud")
	t.Logf("cloud node %d (leading partition 0) killed -9 mid catch-up: %d forwarded, backlog %d", victim, forwarded(v), v.Totals.BacklogRecords)
	if v.Totals.BacklogRecords == 0 {
		t.Fatal("the catch-up ended before the cloud's leader was killed")
	}
	cloud[victim-1].kill()

	r := <-done
	done <- r // for the cleanup
	waitFor(t, "the link catches up", 120*time.Second, func() bool { return drained(edge.link("cloud"), parts) })
	caughtUp := time.Since(restored)
	var live *proc
	for _, c := range cloud {
		if c.alive() {
			live = c
		}
	}
	acked := map[string]bool{}
	for s := range r.acked {
		acked[fmt.Sprint(s)] = true
	}
	n := sameLogs(t, edge, live, "sensors", "site-17.sensors", parts, acked, seqOf(t))
	v = edge.link("cloud")
	if forwarded(v) != int64(n) || v.Totals.Dropped != 0 {
		t.Fatalf("link figures: forwarded %d of %d, dropped %d", forwarded(v), n, v.Totals.Dropped)
	}
	t.Logf("%d records (%d acknowledged by devices) in the cloud, each once, in the edge's order; cut %s, lag zero %s after the uplink came back; %d bytes sent, %d producer resets",
		n, len(r.acked), restored.Sub(cut).Round(time.Second), caughtUp.Round(100*time.Millisecond), v.Totals.BytesSent, v.Totals.Resets)
}

// topicEnd sums a topic's partitions' ends, as a live node of procs
// reports them.
func topicEnd(t *testing.T, procs []*proc, topic string, partitions int) int64 {
	t.Helper()
	for _, p := range procs {
		if !p.alive() {
			continue
		}
		var n int64
		for part := range partitions {
			var o struct {
				Latest int64 `json:"latest"`
			}
			if code, err := p.do("GET", fmt.Sprintf("/v1/topics/%s/partitions/%d/offsets", topic, part), "", nil, &o); err != nil || code != 200 {
				t.Fatalf("offsets of %s/%d: %d %v", topic, part, code, err)
			}
			n += o.Latest
		}
		return n
	}
	t.Fatal("no live node")
	return 0
}

func errorsOf(v linkView) string {
	for _, p := range v.Partitions {
		if p.Error != "" {
			return p.Error
		}
	}
	return "no error"
}

// seqOf is a device's value's "seq".
func seqOf(t *testing.T) func(json.RawMessage) string {
	return func(raw json.RawMessage) string {
		var v struct{ Seq int }
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("value %s: %v", raw, err)
		}
		return fmt.Sprint(v.Seq)
	}
}
