package httpapi

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft"
)

// TestTailsTenantShare: a tenant opens at most half the node's live tails
// (429 past it), so another tenant still opens one; a tail that ends
// gives its slot back.
func TestTailsTenantShare(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	acme := e.tenantTopic("acme", "s")
	e.mustCreate("d", 1, "")
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: maxTails, MaxIdleConnsPerHost: maxTails}}
	open := func(token, topic string) *http.Response {
		req, _ := http.NewRequest("GET", e.base+"/v1/topics/"+topic+"/tail", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var held []*http.Response
	for range maxTails / 2 {
		if resp := open(acme, "s"); resp.StatusCode != 200 {
			t.Fatalf("tail %d of acme: %d", len(held)+1, resp.StatusCode)
		} else {
			held = append(held, resp)
		}
	}
	if resp := open(acme, "s"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("acme's tail past half the node's: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp := open(e.token, "d"); resp.StatusCode != 200 {
		t.Fatalf("another tenant's tail while acme holds its half: %d", resp.StatusCode)
	}
	// A tail whose client went is seen gone at its next write (a record,
	// or the keepalive every 15 s), and gives its slot back.
	held[0].Body.Close()
	for i := 0; ; i++ {
		if code, _, body := e.reqAs(acme, "POST", "/v1/topics/s/records", "application/json", `{"records":[{"value":1}]}`); code != 200 {
			t.Fatalf("produce: %d %s", code, body)
		}
		resp := open(acme, "s")
		if resp.StatusCode == 200 {
			break
		}
		resp.Body.Close()
		if i == 50 {
			t.Fatalf("acme's tail after one ended: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// retained is a host whose partitions' log start retention has moved to
// start (their records below it are gone), as a slow tail finds it.
type retained struct {
	*multiraft.Host
	start atomic.Int64
}

func (r *retained) Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error) {
	if s := r.start.Load(); int64(offset) < s {
		return nil, eddy.Errorf(eddy.CodeOffsetOutOfRange, "offset %d is before the log start %d", offset, s)
	}
	return r.Host.Fetch(ctx, ref, p, offset, maxRecords, maxBytes, wait)
}

func (r *retained) Offsets(ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error) {
	po, err := r.Host.Offsets(ref, p)
	po.LogStart = max(po.LogStart, eddy.Offset(r.start.Load()))
	return po, err
}

// TestTailPastRetention: a tail whose next records retention removed
// before it sent them goes on from the log start; it sent the same
// error event every back-off, for good.
func TestTailPastRetention(t *testing.T) {
	var r *retained
	e := newEnvOver(t, multiraft.Config{}, Config{}, func(h *multiraft.Host) Broker { r = &retained{Host: h}; return r })
	e.mustCreate("t", 1, "")
	produce := func() {
		if code, _, body := e.req("POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5}]}`); code != 200 {
			t.Fatalf("produce: %d %s", code, body)
		}
	}
	produce() // 0-4
	req, _ := http.NewRequest("GET", e.base+"/v1/topics/t/tail?partition=0&offset=0", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tail: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				events <- line
			}
		}
		close(events)
	}()
	next := func() string {
		select {
		case ev := <-events:
			return ev
		case <-time.After(15 * time.Second):
			t.Fatal("no event within 15 s")
			return ""
		}
	}
	for i := range 5 {
		if ev := next(); !strings.Contains(ev, `"offset":`+string(rune('0'+i))) {
			t.Fatalf("event %d: %s", i, ev)
		}
	}
	r.start.Store(8) // 5-7 removed before the tail read them
	produce()        // 5-9
	for _, want := range []string{`"offset":8`, `"offset":9`} {
		if ev := next(); !strings.Contains(ev, want) {
			t.Fatalf("after retention: %s, want %s", ev, want)
		}
	}
}

// TestTailEndsWithItsTopic: a tail of a topic deleted, or deleted and
// made again, ends within a couple of seconds with an error event saying
// so; one of a topic that grew partitions goes on.
func TestTailEndsWithItsTopic(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	for _, again := range []bool{false, true} {
		e.mustCreate("t", 1, "")
		req, _ := http.NewRequest("GET", e.base+"/v1/topics/t/tail", nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("tail: %v %v", resp, err)
		}
		done := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(resp.Body)
			done <- string(b)
		}()
		if code, _, body := e.req("PATCH", "/v1/topics/t", "application/json", `{"partitions":2}`); code != 200 {
			t.Fatalf("add a partition: %d %s", code, body)
		}
		select {
		case out := <-done:
			t.Fatalf("the tail ended when its topic grew: %q", out)
		case <-time.After(1500 * time.Millisecond): // a recheck or more
		}
		if code, _, body := e.req("DELETE", "/v1/topics/t", "", ""); code != 204 && code != 200 {
			t.Fatalf("delete: %d %s", code, body)
		}
		if again {
			e.mustCreate("t", 1, "")
		}
		select {
		case out := <-done:
			if !strings.Contains(out, "event: error") || !strings.Contains(out, "was deleted") {
				t.Fatalf("the tail ended with %q", out)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the tail of a deleted topic (made again: %v) goes on", again)
		}
		resp.Body.Close()
		if again {
			e.req("DELETE", "/v1/topics/t", "", "")
		}
	}
}
