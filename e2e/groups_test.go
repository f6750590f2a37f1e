package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Consumer groups over HTTP through a real node.

type groupMember struct {
	p     *proc
	group string
	id    string
	gen   int64
}

type groupRecord struct {
	Topic     string          `json:"topic"`
	Partition int             `json:"partition"`
	Offset    int64           `json:"offset"`
	Value     json.RawMessage `json:"value"`
}

func (p *proc) joinGroup(group, body string) *groupMember {
	p.tb.Helper()
	var out struct {
		MemberID   string `json:"member_id"`
		Generation int64  `json:"generation"`
		apiError
	}
	if code, err := p.do("POST", "/v1/groups/"+group+"/members", "application/json", []byte(body), &out); err != nil || code != 201 {
		p.tb.Fatalf("join %s: %d %v %+v", group, code, err, out)
	}
	return &groupMember{p: p, group: group, id: out.MemberID, gen: out.Generation}
}

// poll fetches once; it returns the records, or the error code.
func (m *groupMember) poll(max, waitMs int) ([]groupRecord, string) {
	var out struct {
		Generation int64         `json:"generation"`
		Records    []groupRecord `json:"records"`
		apiError
	}
	code, err := m.p.do("GET", fmt.Sprintf("/v1/groups/%s/members/%s/records?max=%d&wait_ms=%d", m.group, m.id, max, waitMs), "", nil, &out)
	if err != nil {
		return nil, err.Error()
	}
	if code != 200 {
		return nil, out.Error.Code
	}
	m.gen = out.Generation
	return out.Records, ""
}

func (m *groupMember) commit() string {
	var out apiError
	code, err := m.p.do("POST", fmt.Sprintf("/v1/groups/%s/members/%s/commit", m.group, m.id), "application/json", nil, &out)
	if err != nil {
		return err.Error()
	}
	if code != 200 {
		return out.Error.Code
	}
	return ""
}

func (p *proc) produceValues(topic string, from, to int) {
	p.tb.Helper()
	for i := from; i < to; i += 500 {
		var b strings.Builder
		b.WriteString(`{"records":[`)
		for j := i; j < min(i+500, to); j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"value":"r-%d"}`, j)
		}
		b.WriteString(`]}`)
		if code, a := p.produceJSON("", topic, b.String()); code != 200 {
			p.tb.Fatalf("produce: %d %+v", code, a)
		}
	}
}

// TestGroupDeliversEachRecordOnce: 3 members, 6 partitions, 30,000
// records: each record to exactly one member, none missing, none twice.
func TestGroupDeliversEachRecordOnce(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("g", 6)
	p.produceValues("g", 0, 30000)
	join := `{"topics":["g"],"session_timeout_ms":10000,"auto_offset_reset":"earliest"}`
	members := []*groupMember{p.joinGroup("readers", join), p.joinGroup("readers", join), p.joinGroup("readers", join)}
	var mu sync.Mutex
	seen := map[string][]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range members {
		wg.Add(1)
		go func(i int, m *groupMember) {
			defer wg.Done()
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
				recs, code := m.poll(1000, 200)
				if code != "" {
					t.Errorf("member %d: %s", i, code)
					return
				}
				mu.Lock()
				for _, r := range recs {
					v := jsonString(r.Value)
					seen[v] = append(seen[v], i)
				}
				n := len(seen)
				mu.Unlock()
				if code := m.commit(); code != "" {
					t.Errorf("member %d commit: %s", i, code)
					return
				}
				if n >= 30000 && len(recs) == 0 {
					return
				}
			}
		}(i, m)
	}
	wg.Wait()
	el := time.Since(start)
	if len(seen) != 30000 {
		t.Fatalf("%d distinct records delivered, want 30000", len(seen))
	}
	per := make([]int, 3)
	for v, who := range seen {
		if len(who) != 1 {
			t.Fatalf("record %s delivered %d times (members %v)", v, len(who), who)
		}
		per[who[0]]++
	}
	t.Logf("30000 records to 3 members (%v) in %s", per, el.Round(time.Millisecond))
	for i, n := range per {
		if n == 0 {
			t.Fatalf("member %d got nothing: %v", i, per)
		}
	}
	var desc struct {
		Lag        int64 `json:"lag"`
		Generation int64 `json:"generation"`
		Partitions []struct {
			Committed *int64 `json:"committed_offset"`
			Lag       int64  `json:"lag"`
			Member    string `json:"member"`
		} `json:"partitions"`
	}
	if code, err := p.do("GET", "/v1/groups/readers", "", nil, &desc); err != nil || code != 200 || desc.Lag != 0 || len(desc.Partitions) != 6 {
		t.Fatalf("describe: %d %v %+v", code, err, desc)
	}
	// Lag counts what arrives after the commits.
	p.produceValues("g", 30000, 30600)
	if code, err := p.do("GET", "/v1/groups/readers", "", nil, &desc); err != nil || code != 200 || desc.Lag != 600 {
		t.Fatalf("lag after 600 more: %d %v %+v", code, err, desc)
	}
}

// TestGroupMemberCrash: a member that stops without leaving expires after
// its session timeout; its partitions move to the others, which get the
// records after its last commit again; nothing is lost. Commits and a
// stale generation are checked too, and commits survive a kill -9.
func TestGroupMemberCrash(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("c", 6)
	p.produceValues("c", 0, 6000)
	join := `{"topics":["c"],"session_timeout_ms":2000,"auto_offset_reset":"earliest"}`
	a, b, c := p.joinGroup("crash", join), p.joinGroup("crash", join), p.joinGroup("crash", join)
	got := map[string]int{}
	take := func(m *groupMember, commit bool) int {
		recs, code := m.poll(300, 100)
		if code != "" {
			t.Fatalf("poll: %s", code)
		}
		for _, r := range recs {
			got[jsonString(r.Value)]++
		}
		if commit {
			// stale_generation: the group rebalanced (c expired) after this
			// poll; these records are not committed and come again.
			if code := m.commit(); code != "" && code != "stale_generation" {
				t.Fatalf("commit: %s", code)
			}
		}
		return len(recs)
	}
	for i := 0; i < 3; i++ {
		take(a, true)
		take(b, true)
		take(c, true)
	}
	uncommitted := take(c, false) // c crashes: handed these, never commits
	if uncommitted == 0 {
		t.Fatal("c was handed nothing before its crash")
	}
	crashedGen := c.gen
	// a and b keep polling (heartbeats); c's session expires.
	expired := time.Time{}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		take(a, true)
		take(b, true)
		var d struct{ Members int }
		p.do("GET", "/v1/groups/crash", "", nil, &d)
		if d.Members == 2 {
			expired = time.Now()
			break
		}
	}
	if expired.IsZero() {
		t.Fatal("c's session did not expire")
	}
	if code := c.commit(); code != "unknown_member" {
		t.Fatalf("a commit by the expired member: %q, want unknown_member", code)
	}
	// A commit with a stale generation is refused.
	var e apiError
	if code, _ := p.do("POST", "/v1/groups/crash/members/"+a.id+"/commit", "application/json",
		[]byte(fmt.Sprintf(`{"generation":%d,"offsets":[{"topic":"c","partition":0,"offset":1}]}`, crashedGen)), &e); code != 409 || e.Error.Code != "stale_generation" {
		t.Fatalf("stale generation commit: %d %+v", code, e)
	}
	// a and b drain everything, including c's partitions from c's last commit.
	servedAgain := time.Duration(0)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(got) < 6000; {
		n := take(a, true) + take(b, true)
		if n > 0 && servedAgain == 0 {
			servedAgain = time.Since(expired)
		}
	}
	if len(got) != 6000 {
		t.Fatalf("%d of 6000 records delivered", len(got))
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if dups < uncommitted {
		t.Fatalf("%d records redelivered, want at least the %d c had not committed", dups, uncommitted)
	}
	t.Logf("c's %d uncommitted records were redelivered (%d duplicates in all); partitions served again %s after the expiry", uncommitted, dups, servedAgain)
	// Commits survive a kill -9.
	var before, after struct {
		Partitions []struct {
			Committed *int64 `json:"committed_offset"`
		}
	}
	p.do("GET", "/v1/groups/crash", "", nil, &before)
	p.kill()
	p.start()
	p.do("GET", "/v1/groups/crash", "", nil, &after)
	if len(before.Partitions) != 6 || len(after.Partitions) != 6 {
		t.Fatalf("partitions %d / %d", len(before.Partitions), len(after.Partitions))
	}
	for i := range before.Partitions {
		if before.Partitions[i].Committed == nil || after.Partitions[i].Committed == nil || *before.Partitions[i].Committed != *after.Partitions[i].Committed {
			t.Fatalf("partition %d: committed %v before the kill, %v after", i, before.Partitions[i].Committed, after.Partitions[i].Committed)
		}
	}
}

// readEvents reads SSE "record" events from a live tail until n arrived
// or the deadline.
func readEvents(t *testing.T, p *proc, path string, n int, during func()) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.url(path), nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("tail: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	go during()
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() && len(out) < n {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: ") && event == "record":
			var m map[string]any
			if err := json.Unmarshal([]byte(line[len("data: "):]), &m); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// TestLiveTail: Server-Sent Events from now on every partition, and from
// an offset on one.
func TestLiveTail(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("live", 3)
	p.produceValues("live", 0, 30) // before the tail: not shown from now
	got := readEvents(t, p, "/v1/topics/live/tail", 9, func() {
		time.Sleep(300 * time.Millisecond)
		p.produceValues("live", 100, 109)
	})
	if len(got) != 9 {
		t.Fatalf("%d events, want 9: %v", len(got), got)
	}
	for _, e := range got {
		if v, _ := e["value"].(string); !strings.HasPrefix(v, "r-10") {
			t.Fatalf("an old record in a tail from now: %v", e)
		}
	}
	part0 := len(p.records("", "live", 0))
	got = readEvents(t, p, "/v1/topics/live/tail?partition=0&offset=0", part0, func() {})
	if len(got) != part0 || got[0]["offset"].(float64) != 0 || got[0]["partition"].(float64) != 0 {
		t.Fatalf("from offset 0: %d events %v", len(got), got)
	}
	var e apiError
	if code, _ := p.do("GET", "/v1/topics/live/tail?offset=3", "", nil, &e); code != 400 || e.Error.Code != "invalid_request" {
		t.Fatalf("offset without partition: %d %+v", code, e)
	}
}

// TestGroupCLI: eddy consume --group continues where the group committed;
// eddy group list, describe and reset-offsets.
func TestGroupCLI(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCLI("", "topic", "create", "events", "--partitions", "2")
	p.produceValues("events", 0, 100)
	lines := func(s string) int { return strings.Count(s, "\n") }
	if out := p.mustCLI("", "consume", "events", "--group", "g1", "--from-beginning", "--max", "60", "--format", "text"); lines(out) != 60 {
		t.Fatalf("first consumer: %d lines", lines(out))
	}
	out := p.mustCLI("", "consume", "events", "--group", "g1", "--format", "text")
	if lines(out) != 40 {
		t.Fatalf("second consumer: %d lines, want the 40 left", lines(out))
	}
	if out := p.mustCLI("", "group", "list"); !strings.Contains(out, "g1") {
		t.Fatalf("list: %s", out)
	}
	if out := p.mustCLI("", "group", "describe", "g1"); !strings.Contains(out, "LAG         0") || !strings.Contains(out, "MEMBERS     0") {
		t.Fatalf("describe: %s", out)
	}
	p.mustCLI("", "group", "reset-offsets", "g1", "--topic", "events", "--to", "earliest")
	if out := p.mustCLI("", "consume", "events", "--group", "g1", "--format", "text"); lines(out) != 100 {
		t.Fatalf("after the reset: %d lines", lines(out))
	}
	if _, errOut, err := p.cli("", "consume", "events", "--group", "g1", "--partition", "1"); err == nil || !strings.Contains(errOut, "--group") {
		t.Fatalf("--group with --partition: %v %s", err, errOut)
	}
	p.mustCLI("", "group", "delete", "g1")
}

// TestGroupCommitsSurviveControllerFailover: in a 3-node cluster, kill the
// controller's leader; the committed offsets are there on the others, and
// a member joining through another node continues from them.
func TestGroupCommitsSurviveControllerFailover(t *testing.T) {
	procs := newCluster(t, 3)
	p1 := procs[0]
	if code, err := p1.do("POST", "/v1/topics", "application/json", []byte(`{"name":"f","partitions":2,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	p1.produceValues("f", 0, 1000)
	m := p1.joinGroup("fo", `{"topics":["f"],"auto_offset_reset":"earliest"}`)
	got := 0
	for got < 600 {
		recs, code := m.poll(100, 200)
		if code != "" {
			t.Fatalf("poll: %s", code)
		}
		got += len(recs)
		if code := m.commit(); code != "" {
			t.Fatalf("commit: %s", code)
		}
	}
	var cv struct {
		Nodes []struct {
			ID     int  `json:"id"`
			Leader bool `json:"controller_leader"`
		} `json:"nodes"`
	}
	p1.do("GET", "/v1/cluster", "", nil, &cv)
	leader := 0
	for _, n := range cv.Nodes {
		if n.Leader {
			leader = n.ID
		}
	}
	if leader == 0 {
		t.Fatalf("no controller leader: %+v", cv)
	}
	procs[leader-1].kill()
	other := procs[leader%3]
	other.token = p1.token
	// The member left with the dead node's view; a new one joins elsewhere
	// (the old one expires after its session timeout).
	var m2 *groupMember
	for deadline := time.Now().Add(20 * time.Second); m2 == nil; {
		var out struct {
			MemberID string `json:"member_id"`
		}
		if code, err := other.do("POST", "/v1/groups/fo/members", "application/json", []byte(`{"topics":["f"],"auto_offset_reset":"earliest"}`), &out); err == nil && code == 201 {
			m2 = &groupMember{p: other, group: "fo", id: out.MemberID}
		} else if time.Now().After(deadline) {
			t.Fatalf("join after the failover: %d %v", code, err)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	var d struct {
		Partitions []struct {
			Committed *int64 `json:"committed_offset"`
		} `json:"partitions"`
	}
	other.do("GET", "/v1/groups/fo", "", nil, &d)
	var committed int64
	for _, p := range d.Partitions {
		if p.Committed != nil {
			committed += *p.Committed
		}
	}
	if committed != int64(got) {
		t.Fatalf("committed %d after the failover, %d before", committed, got)
	}
	// The old member still owns partitions until it expires (30 s default);
	// leave it explicitly so m2 gets everything now.
	if code, err := other.do("DELETE", "/v1/groups/fo/members/"+m.id, "", nil, nil); err != nil || code != 204 {
		t.Fatalf("leave: %d %v", code, err)
	}
	rest := 0
	for deadline := time.Now().Add(20 * time.Second); rest < 1000-got && time.Now().Before(deadline); {
		recs, code := m2.poll(500, 200)
		if code != "" {
			t.Fatalf("poll after the failover: %s", code)
		}
		rest += len(recs)
	}
	if rest != 1000-got {
		t.Fatalf("%d records after the failover, want %d (from the committed offsets)", rest, 1000-got)
	}
}

// TestGroupScopes: consume scopes cover groups and the tail; other
// tenants see nothing.
func TestGroupScopes(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("s1", 1)
	p.mustCreateTopic("s2", 1)
	p.joinGroup("gs", `{"topics":["s1"]}`)
	reader := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "default", "--scopes", "consume:s2", "--ttl", "1h"))
	p.mustCLI("", "tenant", "create", "other")
	other := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "other", "--scopes", "admin", "--ttl", "1h"))
	as := func(tok, method, path, body string) (int, string) {
		q := *p
		q.token = tok
		var e apiError
		code, _ := q.do(method, path, "application/json", []byte(body), &e)
		return code, e.Error.Code
	}
	for _, c := range []struct {
		tok, method, path, body string
		status                  int
		code                    string
	}{
		{reader, "POST", "/v1/groups/gs/members", `{"topics":["s1"]}`, 403, "forbidden"},
		{reader, "GET", "/v1/groups/gs", ``, 404, "not_found"},
		{reader, "GET", "/v1/topics/s1/tail", ``, 403, "forbidden"},
		{other, "GET", "/v1/tenants/default/groups/gs", ``, 404, "not_found"},
		{other, "GET", "/v1/groups/gs", ``, 404, "not_found"},
		{other, "POST", "/v1/groups/gs/members", `{"topics":["s1"]}`, 404, "not_found"},
	} {
		if status, code := as(c.tok, c.method, c.path, c.body); status != c.status || code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, status, code, c.status, c.code)
		}
	}
	var list struct{ Groups []any }
	q := *p
	q.token = reader
	if code, _ := q.do("GET", "/v1/groups", "", nil, &list); code != 200 || len(list.Groups) != 0 {
		t.Fatalf("a reader of s2 lists %v", list.Groups)
	}
	if code, _ := as(reader, "POST", "/v1/groups/g2/members", `{"topics":["s2"]}`); code != 201 {
		t.Fatalf("a reader joins a group of its topic: %d", code)
	}
}

// TestGroupEdgeCases: a member with no partition long-polls; deleting a
// subscribed topic does not break the group.
func TestGroupEdgeCases(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("one", 1)
	p.mustCreateTopic("gone", 1)
	a := p.joinGroup("edge", `{"topics":["one","gone"],"auto_offset_reset":"earliest"}`)
	b := p.joinGroup("edge", `{"topics":["one","gone"],"auto_offset_reset":"earliest"}`)
	c := p.joinGroup("edge", `{"topics":["one","gone"],"auto_offset_reset":"earliest"}`)
	// Two partitions, three members: one has nothing and waits its wait_ms.
	idle := 0
	for _, m := range []*groupMember{a, b, c} {
		start := time.Now()
		recs, code := m.poll(100, 300)
		if code != "" {
			t.Fatalf("poll: %s", code)
		}
		if len(recs) == 0 && time.Since(start) >= 250*time.Millisecond {
			idle++
		}
	}
	if idle != 3 { // before any record, every member waits, also the one with no partition
		t.Fatalf("%d of 3 members long-polled; one with no partition must wait too", idle)
	}
	if code, err := p.do("DELETE", "/v1/topics/gone", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("delete topic: %d %v", code, err)
	}
	p.produceValues("one", 0, 10)
	got := 0
	for _, m := range []*groupMember{a, b, c} {
		recs, code := m.poll(100, 0)
		if code != "" {
			t.Fatalf("poll after the topic was deleted: %s", code)
		}
		got += len(recs)
	}
	if got != 10 {
		t.Fatalf("%d records of topic one after deleting the other, want 10", got)
	}
}

// TestGroupLagInTime: a group's lag in time is how long ago the batch
// holding its first record not yet consumed was stamped, read from that
// batch's header: in the group's description and in
// eddy_group_lag_seconds. A one-record fetch read the whole batch at every
// describe and scrape: 10 describes of a group behind in an 8 MB batch
// allocated 80 MB and more.
func TestGroupLagInTime(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("lt", 1)
	now := time.Now().UnixMilli()
	produce := func(stamps ...int64) {
		var recs []string
		for _, ts := range stamps {
			recs = append(recs, fmt.Sprintf(`{"value":"x","timestamp":%d}`, ts))
		}
		if code, err := p.do("POST", "/v1/topics/lt/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	produce(now-600_000, now-599_000, now-598_000) // one batch, offsets 0-2
	produce(now - 60_000)                          // offset 3
	m := p.joinGroup("lagging", `{"topics":["lt"],"auto_offset_reset":"earliest"}`)
	lagMs := func() int64 {
		var out struct {
			Lag   int64 `json:"lag"`
			LagMs int64 `json:"lag_ms"`
		}
		if code, err := p.do("GET", "/v1/groups/lagging", "", nil, &out); err != nil || code != 200 {
			t.Fatalf("describe: %d %v", code, err)
		}
		return out.LagMs
	}
	within := func(what string, got, want int64) {
		if got < want || got > want+30_000 {
			t.Errorf("%s: lag %d ms, want about %d", what, got, want)
		}
	}
	within("nothing consumed", lagMs(), 600_000)
	if secs := p.metric(`eddy_group_lag_seconds{tenant="default",group="lagging"}`); secs < 600 || secs > 630 {
		t.Errorf("eddy_group_lag_seconds %v, want about 600", secs)
	}
	if recs, code := m.poll(3, 0); code != "" || len(recs) != 3 {
		t.Fatalf("poll: %d records, %q", len(recs), code)
	}
	if code := m.commit(); code != "" {
		t.Fatalf("commit: %s", code)
	}
	within("the first batch consumed", lagMs(), 60_000)

	// What a describe costs: a group behind in an 8 MB batch.
	p.mustCreateTopic("big", 1)
	var recs []string
	for i := range 8000 {
		recs = append(recs, fmt.Sprintf(`{"value":%q,"timestamp":%d}`, strings.Repeat("x", 1000), now-600_000+int64(i)))
	}
	if code, err := p.do("POST", "/v1/topics/big/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	p.joinGroup("behind", `{"topics":["big"],"auto_offset_reset":"earliest"}`)
	before := p.metric("go_memstats_alloc_bytes_total")
	for range 10 {
		if code, err := p.do("GET", "/v1/groups/behind", "", nil, nil); err != nil || code != 200 {
			t.Fatalf("describe: %d %v", code, err)
		}
	}
	if grew := p.metric("go_memstats_alloc_bytes_total") - before; grew > 16<<20 {
		t.Errorf("10 describes of a group behind in an 8 MB batch allocated %.0f MB", grew/(1<<20))
	}
}

// TestGroupTopicRecreated: a topic deleted and made again under its name
// starts its offsets over. A member that had read to offset 5 of the old
// one reads the new one's records from its start (they are all new to
// it), and neither its commit in the old one (gone with the topic) nor
// its auto-commit of its old place comes back.
func TestGroupTopicRecreated(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("re", 1)
	p.produceValues("re", 0, 5)
	m := p.joinGroup("gr", `{"topics":["re"],"auto_offset_reset":"earliest","auto_commit":true}`)
	if recs, code := m.poll(10, 2000); len(recs) != 5 || code != "" {
		t.Fatalf("before: %d records, %q", len(recs), code)
	}
	if code := m.commit(); code != "" {
		t.Fatalf("commit: %s", code)
	}
	if code, err := p.do("DELETE", "/v1/topics/re", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("delete: %d %v", code, err)
	}
	p.mustCreateTopic("re", 1)
	p.produceValues("re", 100, 103)
	values := func(recs []groupRecord) string {
		var v []string
		for _, r := range recs {
			v = append(v, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return strings.Join(v, " ")
	}
	want := `0:"r-100" 1:"r-101" 2:"r-102"`
	if recs, code := m.poll(10, 2000); values(recs) != want || code != "" {
		t.Fatalf("the member after the topic was made again: %q, %q; want %s", values(recs), code, want)
	}
	var g map[string]any
	p.do("GET", "/v1/groups/gr", "", nil, &g)
	if offs, _ := g["offsets"].(map[string]any); offs["re/0"] != nil && offs["re/0"] != float64(3) {
		t.Fatalf("group gr's commit for re/0: %v, want none or 3", offs["re/0"])
	}
}
