package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// producePadded appends n records of size bytes each to a partition, 50 a
// request, with values "<tag>-<i>" padded to size.
func (p *proc) producePadded(topic string, part, n, size int, tag string) {
	p.tb.Helper()
	for i := 0; i < n; {
		var b strings.Builder
		b.WriteString(`{"records":[`)
		for j := 0; j < 50 && i < n; j, i = j+1, i+1 {
			if j > 0 {
				b.WriteByte(',')
			}
			v := fmt.Sprintf("%s-%06d-", tag, i)
			v += strings.Repeat("x", max(0, size-len(v)))
			fmt.Fprintf(&b, `{"value":%q,"partition":%d}`, v, part)
		}
		b.WriteString(`]}`)
		if code, err := p.do("POST", "/v1/topics/"+topic+"/records", "application/json", []byte(b.String()), nil); err != nil || code != 200 {
			p.tb.Fatalf("produce: %d %v", code, err)
		}
	}
}

// TestLinkFailures: links to a target that refuses the credentials, to a
// topic the target does not have and the link may not create, and to an
// address nobody listens on each say so in their state and error, keep
// the edge's records (the backlog is all of them), and back off: a
// handful of attempts and connections in 10 s, not a busy loop.
func TestLinkFailures(t *testing.T) {
	cloud := newProc(t)
	cloud.start()
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("sensors", 1)
	edge.producePadded("sensors", 0, 100, 64, "r")
	cases := []struct {
		name  string
		spec  map[string]any
		state string
		err   string
	}{
		{"badauth", map[string]any{"password": "not-a-token"}, "failing", "SASL_AUTHENTICATION_FAILED"},
		{"notopic", map[string]any{"target_prefix": "absent.", "no_create_topics": true}, "failing", "may not create topics"},
		{"nowhere", map[string]any{"to": []string{"127.0.0.1:1"}}, "backing_off", "connection refused"},
	}
	for _, c := range cases {
		spec := linkToCloud([]*proc{cloud}, c.spec)
		spec["name"] = c.name
		edge.createLink(spec)
	}
	time.Sleep(10 * time.Second)
	for _, c := range cases {
		v := edge.link(c.name)
		failures := edge.metric(fmt.Sprintf(`eddy_link_send_failures_total{link="default/%s"}`, c.name))
		connects := edge.metric(fmt.Sprintf(`eddy_link_connects_total{link="default/%s"}`, c.name))
		t.Logf("%s: %s, %q; %v failed attempts and %v connections in 10 s", c.name, v.State, errorsOf(v), failures, connects)
		if v.State != c.state || !strings.Contains(errorsOf(v), c.err) {
			t.Errorf("%s: state %s, error %q; want %s with %q", c.name, v.State, errorsOf(v), c.state, c.err)
		}
		if v.Totals.BacklogRecords != 100 || forwarded(v) != 0 {
			t.Errorf("%s: backlog %d, forwarded %d; want all 100 kept", c.name, v.Totals.BacklogRecords, forwarded(v))
		}
		if failures < 1 || failures > 15 || connects > 15 {
			t.Errorf("%s: %v failed attempts and %v connections in 10 s: a busy loop", c.name, failures, connects)
		}
	}
	if n := len(edge.readPartition("sensors", 0)); n != 100 {
		t.Fatalf("the edge holds %d of its 100 records", n)
	}
	// The credentials mended (a new link), everything goes.
	edge.do("DELETE", "/v1/links/badauth", "", nil, nil)
	edge.createLink(linkToCloud([]*proc{cloud}, nil))
	waitFor(t, "the mended link forwards", 30*time.Second, func() bool { return drained(edge.link("cloud"), 1) })
	if n := len(cloud.readPartition("sensors", 0)); n != 100 {
		t.Fatalf("the cloud holds %d of 100 records", n)
	}
}

// TestLinkBandwidthCap: a link capped at 64 KiB/s catching up 3 MB of
// bulk records and 600 KiB of alerts, alerts first: the alerts go up
// before all but a few bulk records, then the bulk at 64 KiB/s on the
// wire, within 10%, over 30 s.
func TestLinkBandwidthCap(t *testing.T) {
	cloud, ups := cloudBehindUplinks(t, 1)
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("bulk", 1)
	edge.mustCreateTopic("alerts", 1)
	edge.producePadded("bulk", 0, 3000, 1024, "b")
	edge.producePadded("alerts", 0, 600, 1024, "a")
	const rate = 64 << 10
	edge.createLink(linkToCloud(cloud, map[string]any{"to": []string{ups[0].addr()}, "topics": []string{"bulk", "alerts"},
		"priority": []string{"alerts"}, "compression": "none", "max_bytes_per_sec": rate}))
	forwardedOf := func(v linkView, topic string) int64 {
		for _, p := range v.Partitions {
			if string(p.Topic) == topic {
				return p.Forwarded
			}
		}
		return 0
	}
	waitFor(t, "the alerts go up", 60*time.Second, func() bool { return forwardedOf(edge.link("cloud"), "alerts") == 600 })
	v := edge.link("cloud")
	t.Logf("all 600 alerts forwarded with %d bulk records", forwardedOf(v, "bulk"))
	// Sharing the cap evenly would send about as many bulk records; what
	// bulk takes is what it took in the first second, before the alerts'
	// partition had its producer id and its first batch ready.
	if b := forwardedOf(v, "bulk"); b > 200 {
		t.Fatalf("the alerts went up with %d bulk records: not first", b)
	}
	b0, t0 := ups[0].bytes.Load(), time.Now()
	time.Sleep(30 * time.Second)
	got := float64(ups[0].bytes.Load()-b0) / time.Since(t0).Seconds()
	v = edge.link("cloud")
	t.Logf("%.0f bytes/s on the wire against a cap of %d (%.1f%%); %d of 3000 bulk records forwarded", got, rate, 100*got/rate, forwardedOf(v, "bulk"))
	if got < 0.9*rate || got > 1.1*rate {
		t.Fatalf("%.0f bytes/s, not within 10%% of %d", got, rate)
	}
	if forwardedOf(v, "bulk") == 3000 {
		t.Fatal("the backlog ran out during the measure")
	}
}

// TestLinkBacklogCap: while the uplink is down, a link whose backlog cap
// is 64 KiB gives up the oldest unsent records (whole segments of 16 KiB)
// and counts exactly how many: once the uplink is back the cloud holds
// the edge's log from that count on, nothing else.
func TestLinkBacklogCap(t *testing.T) {
	cloud, ups := cloudBehindUplinks(t, 1)
	edge := newProc(t)
	edge.start()
	if code, err := edge.do("POST", "/v1/topics", "application/json", []byte(`{"name":"capped","partitions":1,"config":{"segment.bytes":"16384"}}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	ups[0].set(uplinkDown)
	edge.createLink(linkToCloud(cloud, map[string]any{"to": []string{ups[0].addr()}, "topics": []string{"capped"},
		"max_backlog_bytes": 64 << 10}))
	edge.producePadded("capped", 0, 1000, 512, "c")
	waitFor(t, "the cap drops records", 60*time.Second, func() bool { return edge.link("cloud").Totals.Dropped > 0 })
	time.Sleep(3 * time.Second) // the last segment's drop
	v := edge.link("cloud")
	t.Logf("uplink down: %s, backlog %d records, %d dropped (%q)", v.State, v.Totals.BacklogRecords, v.Totals.Dropped, errorsOf(v))
	if v.Totals.BacklogRecords+v.Totals.Dropped != 1000 || v.Totals.BacklogRecords*540 > 64<<10+16<<10 {
		t.Fatalf("backlog %d records and %d dropped, of 1000 under a 64 KiB cap", v.Totals.BacklogRecords, v.Totals.Dropped)
	}
	ups[0].set(uplinkUp)
	waitFor(t, "the link catches up", 60*time.Second, func() bool { return drained(edge.link("cloud"), 1) })
	v = edge.link("cloud")
	e, c := edge.readPartition("capped", 0), cloud[0].readPartition("capped", 0)
	d := int(v.Totals.Dropped)
	if len(c) != len(e)-d {
		t.Fatalf("the cloud holds %d records; the edge %d of which %d were dropped", len(c), len(e), d)
	}
	for i := range c {
		if jsonString(c[i].Value) != jsonString(e[d+i].Value) {
			t.Fatalf("cloud record %d is %.12s, the edge's record %d is %.12s", i, jsonString(c[i].Value), d+i, jsonString(e[d+i].Value))
		}
	}
	if m := edge.metric(`eddy_link_dropped_records_total{link="default/cloud"}`); int(m) != d {
		t.Fatalf("eddy_link_dropped_records_total is %v, the link counts %d", m, d)
	}
	t.Logf("%d dropped, the cloud holds the other %d, in order", d, len(c))
}
