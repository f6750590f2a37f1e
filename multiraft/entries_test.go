package multiraft

import (
	"context"
	"runtime"
	"testing"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
)

// A lone client's record, one at a time, costs the node a few kilobytes
// of garbage, not the 37 KB entry slice dragonboat made for every
// proposal by default (47 KB a record in all then).
func TestLoneProposalAllocates(t *testing.T) {
	h := mustStartHost(t, t.TempDir(), testutil.FreeAddr(t))
	defer h.Close()
	ref, _ := oneTopic(t, h, "lone")
	ctx := context.Background()
	rec := []eddy.Record{{Value: make([]byte, 1024)}}
	produce := func(n int) {
		for range n {
			if _, err := h.Produce(ctx, ref, rec, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(200) // warm: the log's files, pools, the replica's slices
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	produce(n)
	runtime.ReadMemStats(&after)
	// Everything the process allocated meanwhile counts (ticks, the
	// host's checks): a bound, not an exact figure. 6-7 KB were measured.
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated a record", per)
	if per > 20<<10 {
		t.Fatalf("%d bytes allocated per lone 1 KiB record, want at most 20 KiB", per)
	}
}
