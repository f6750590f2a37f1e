package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterFollowerReadCatchesUp: a read at an offset the leader has
// acknowledged, sent to a follower that has not applied it yet, waits for
// the follower to catch up and answers the records; it answered 416,
// which tells a client its position is past the end (it resets it). An
// offset past the leader's end is still 416, from any node.
func TestClusterFollowerReadCatchesUp(t *testing.T) {
	procs := newCluster(t, 3)
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"lag","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	l := leaderOf(t, procs, "lag", 0)
	leader, follower := procs[l-1], procs[l%3]
	produce := func(n int, tag string) {
		t.Helper()
		recs := make([]string, n)
		for i := range recs {
			recs[i] = fmt.Sprintf(`{"value":"%s-%d","partition":0}`, tag, i)
		}
		if code, err := leader.do("POST", "/v1/topics/lag/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	produce(1, "first")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, offs, _, _ := follower.fetchAt("lag", 0); code == 200 && len(offs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never had the first record")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for round := range 5 {
		// The follower stops; the leader and the other follower commit
		// 50 more; the read reaches the follower before it runs again.
		follower.cmd.Process.Signal(syscall.SIGSTOP)
		produce(50, fmt.Sprintf("r%d", round))
		want := int64(1 + 51*round + 40)
		type answer struct {
			code int
			offs []int64
			body string
		}
		got := make(chan answer, 1)
		go func() {
			if round%2 == 0 {
				code, offs, body, _ := follower.fetchAt("lag", want)
				got <- answer{code, offs, body}
				return
			}
			// Stored batches, as a Kafka fetch reads them.
			req, _ := http.NewRequest("GET", follower.url(fmt.Sprintf("/v1/topics/lag/partitions/0/records?offset=%d&format=batches", want)), nil)
			req.Header.Set("Authorization", "Bearer "+follower.token)
			resp, err := follower.client().Do(req)
			if err != nil {
				got <- answer{0, nil, err.Error()}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			a := answer{resp.StatusCode, nil, string(body)}
			if next, _ := strconv.ParseInt(resp.Header.Get("Eddy-Next-Offset"), 10, 64); resp.StatusCode == 200 && next > want {
				a.offs = []int64{want} // the batch holding it (it may start before)
			}
			got <- a
		}()
		time.Sleep(200 * time.Millisecond) // the request waits in the stopped node's socket
		follower.cmd.Process.Signal(syscall.SIGCONT)
		a := <-got
		if a.code != 200 || len(a.offs) == 0 || a.offs[0] != want {
			t.Fatalf("round %d: a read at %d, acknowledged by the leader, on a follower that had not applied it: %d %v %s", round, want, a.code, a.offs, a.body)
		}
		produce(1, fmt.Sprintf("tail%d", round))
	}
	for _, p := range procs {
		if code, _, body, _ := p.fetchAt("lag", 10_000); code != 416 {
			t.Fatalf("node %d: a read past the leader's end: %d %s", p.nodeID, code, body)
		}
	}
}
