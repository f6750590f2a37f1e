package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// compacted is one record as a reader of a compacted topic sees it.
type compacted struct {
	Offset int64
	Key    string
	Value  string // "" for a tombstone
}

// readCompacted reads partition 0 of topic from offset 0 over HTTP,
// following next_offset (gaps and all) to the high watermark.
func (p *proc) readCompacted(t *testing.T, topic string) []compacted {
	t.Helper()
	var out []compacted
	for off, reads := int64(0), 0; ; reads++ {
		var page struct {
			Records []struct {
				Offset int64           `json:"offset"`
				Key    string          `json:"key"`
				Value  json.RawMessage `json:"value"`
			} `json:"records"`
			NextOffset    int64 `json:"next_offset"`
			HighWatermark int64 `json:"high_watermark"`
		}
		code, err := p.do("GET", fmt.Sprintf("/v1/topics/%s/partitions/0/records?offset=%d&max=7", topic, off), "", nil, &page)
		if err != nil || code != 200 {
			t.Fatalf("read %s at %d: %d %v", topic, off, code, err)
		}
		for _, r := range page.Records {
			v := string(r.Value)
			if v == "null" {
				v = ""
			}
			out = append(out, compacted{r.Offset, r.Key, v})
		}
		if page.NextOffset >= page.HighWatermark {
			return out
		}
		if page.NextOffset <= off || reads > 1000 {
			t.Fatalf("read %s at %d: next offset %d of high watermark %d: stuck", topic, off, page.NextOffset, page.HighWatermark)
		}
		off = page.NextOffset
	}
}

// TestCompaction: a topic with cleanup.policy=compact and small segments
// keeps, once compacted, each key's newest record, and a key deleted by a
// tombstone (delete.retention.ms 0) is gone with it. What is left reads
// the same over HTTP (following next_offset over the gaps), through kcat
// (librdkafka), through a franz-go consumer group and an HTTP group, and
// after a kill -9. A record without a key is refused.
func TestCompaction(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_COMPACTION_INTERVAL=1s")
	p.start()
	body := `{"name":"config","partitions":1,"config":{"cleanup.policy":"compact","segment.bytes":"2048","delete.retention.ms":"0"}}`
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(body), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	const rounds, keys = 40, 10
	for r := range rounds {
		var recs []string
		for k := range keys {
			if k == 9 && r >= 30 {
				continue // dev-9 is deleted in round 30
			}
			recs = append(recs, fmt.Sprintf(`{"key":"dev-%d","value":{"round":%d}}`, k, r))
		}
		if r == 30 {
			recs = append(recs, `{"key":"dev-9","value":null}`)
		}
		p.produceRecords("config", recs...)
	}
	var refused apiError
	if code, err := p.do("POST", "/v1/topics/config/records", "application/json", []byte(`{"records":[{"value":1}]}`), &refused); err != nil || code != 400 || refused.Error.Code != "invalid_request" {
		t.Fatalf("a record without a key: %d %v %+v", code, err, refused)
	}

	// Kafka's INVALID_RECORD, as librdkafka words it.
	if out, err := p.kcat("default", p.token, "no key\n", "-P", "-t", "config"); err == nil || !strings.Contains(out, "failed to validate record") {
		t.Fatalf("kcat produced a record without a key: %v\n%s", err, out)
	}

	waitFor(t, "a compaction", 30*time.Second, func() bool {
		return p.metric(`eddy_compaction_dropped_records_total{tenant="default"}`) > 0
	})
	// Compaction goes segment by segment; wait for the log to settle.
	var got []compacted
	waitFor(t, "dev-9 gone", 30*time.Second, func() bool {
		got = p.readCompacted(t, "config")
		for _, r := range got {
			if r.Key == "dev-9" {
				return false
			}
		}
		return true
	})
	produced := rounds*keys - 10 + 1
	if len(got) > produced/3 {
		t.Fatalf("%d of %d records left after compaction", len(got), produced)
	}
	last := map[string]int{}
	for i, r := range got {
		if i > 0 && r.Offset <= got[i-1].Offset {
			t.Fatalf("offsets out of order: %d after %d", r.Offset, got[i-1].Offset)
		}
		var v struct{ Round int }
		if err := json.Unmarshal([]byte(r.Value), &v); err != nil {
			t.Fatalf("record %+v: %v", r, err)
		}
		if prev, ok := last[r.Key]; ok && v.Round <= prev {
			t.Fatalf("key %s: round %d after %d", r.Key, v.Round, prev)
		}
		last[r.Key] = v.Round
	}
	for k := range 9 {
		if last[fmt.Sprintf("dev-%d", k)] != rounds-1 {
			t.Fatalf("dev-%d's newest record is round %d, want %d", k, last[fmt.Sprintf("dev-%d", k)], rounds-1)
		}
	}

	// A search by key scans over the gaps to the end: the key's records
	// left (the newest segments' are not compacted yet), and done.
	var found struct {
		Records []struct {
			Offset int64 `json:"offset"`
		} `json:"records"`
		Done       bool  `json:"done"`
		NextOffset int64 `json:"next_offset"`
	}
	if code, err := p.do("GET", "/v1/topics/config/partitions/0/records?offset=0&key=dev-3", "", nil, &found); err != nil || code != 200 ||
		!found.Done || found.NextOffset != got[len(got)-1].Offset+1 {
		t.Fatalf("search for dev-3: %d %v %+v", code, err, found)
	}
	var want, have []int64
	for _, r := range got {
		if r.Key == "dev-3" {
			want = append(want, r.Offset)
		}
	}
	for _, r := range found.Records {
		have = append(have, r.Offset)
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("search for dev-3 found %v, want %v", have, want)
	}

	// kcat (librdkafka) reads the same, over the empty batches and gaps.
	out, err := p.kcat("default", p.token, "", "-C", "-t", "config", "-o", "beginning", "-e", "-q", "-f", "%o %k %s\n")
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if want := compactedLines(got); strings.TrimSpace(out) != want {
		t.Fatalf("kcat read:\n%s\nHTTP read:\n%s", out, want)
	}

	// A franz-go consumer group from the earliest offset.
	cl := kgoClient(t, []*proc{p}, kgo.ConsumerGroup("cg"), kgo.ConsumeTopics("config"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var viaGroup []compacted
	for len(viaGroup) < len(got) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			viaGroup = append(viaGroup, compacted{r.Offset, string(r.Key), string(r.Value)})
		})
	}
	if compactedLines(viaGroup) != compactedLines(got) {
		t.Fatalf("franz-go group read:\n%s\nHTTP read:\n%s", compactedLines(viaGroup), compactedLines(got))
	}

	// An HTTP group member, a few records a poll, ends at the high
	// watermark with each record once.
	m := p.joinGroup("hg", `{"topics":["config"],"auto_offset_reset":"earliest"}`)
	var viaHTTP []int64
	for polls := 0; len(viaHTTP) < len(got) && polls < 200; polls++ {
		recs, code := m.poll(5, 100)
		if code != "" {
			t.Fatalf("poll: %s", code)
		}
		for _, r := range recs {
			viaHTTP = append(viaHTTP, r.Offset)
		}
	}
	if fmt.Sprint(viaHTTP) != fmt.Sprint(offsetsOf(got)) {
		t.Fatalf("HTTP group read offsets %v, want %v", viaHTTP, offsetsOf(got))
	}

	// A kill -9: the compacted segments stay so, and what the restart
	// replays from the Raft log is compacted again.
	p.kill()
	p.start()
	var after []compacted
	waitFor(t, "the same records after a restart", 30*time.Second, func() bool {
		after = p.readCompacted(t, "config")
		return compactedLines(after) == compactedLines(got)
	})
}

func compactedLines(rs []compacted) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%d %s %s\n", r.Offset, r.Key, r.Value)
	}
	return strings.TrimSpace(b.String())
}

func offsetsOf(rs []compacted) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Offset
	}
	return out
}

// TestCompactionReplicas: each replica of an RF 3 compacted topic
// compacts its own log, and all three come to hold the same records,
// before and after one of them is killed -9 and catches up.
func TestCompactionReplicas(t *testing.T) {
	procs := newCluster(t, 3, "EDDY_COMPACTION_INTERVAL=1s")
	body := `{"name":"config","partitions":1,"replication_factor":3,"config":{"cleanup.policy":"compact","segment.bytes":"2048","delete.retention.ms":"0"}}`
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(body), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	produce := func(p *proc, from, to int) {
		for r := from; r < to; r++ {
			var recs []string
			for k := range 10 {
				recs = append(recs, fmt.Sprintf(`{"key":"dev-%d","value":{"round":%d}}`, k, r))
			}
			p.produceRecords("config", recs...)
		}
	}
	same := func(what string, hw int64) []compacted {
		var reads [3][]compacted
		waitFor(t, what, 60*time.Second, func() bool {
			for i, p := range procs {
				reads[i] = p.readCompacted(t, "config")
				if n := len(reads[i]); n == 0 || reads[i][n-1].Offset != hw-1 || n > int(hw)/3 {
					return false // not caught up, or not compacted yet
				}
			}
			return compactedLines(reads[0]) == compactedLines(reads[1]) && compactedLines(reads[0]) == compactedLines(reads[2])
		})
		return reads[0]
	}
	produce(procs[0], 0, 40)
	got := same("three replicas compacted alike", 400)
	if len(got) == 0 {
		t.Fatal("nothing read")
	}
	procs[2].kill()
	produce(procs[0], 40, 80)
	procs[2].start()
	same("three replicas alike after a kill -9", 800)
}
