package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// newBenchGroup measures consumption by a consumer group of HTTP members:
// each polls (max --batch) and commits after every poll, until the group
// has consumed --records or --duration passed.
func newBenchGroup() *cobra.Command {
	var topic, group string
	var members, batch int
	var records int64
	var duration time.Duration
	var out benchOut
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Consume a topic from its start with a consumer group of HTTP members (bounded by --records and --duration)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			if group == "" {
				group = fmt.Sprintf("bench-%d", time.Now().UnixNano())
			}
			body, _ := json.Marshal(map[string]any{"topics": []string{topic}, "auto_offset_reset": "earliest", "session_timeout_ms": 30000})
			ids := make([]string, members)
			for i := range ids { // join all first: no rebalance while measuring
				var j struct {
					MemberID string `json:"member_id"`
				}
				if err := c.do(ctxTimeout(), "POST", groupPath(group)+"/members", "application/json", body, &j); err != nil {
					return err
				}
				ids[i] = j.MemberID
			}
			ctx, cancel := context.WithTimeout(context.Background(), duration)
			defer cancel()
			var done atomic.Int64
			var lat latencies
			var firstErr atomic.Value
			var wg sync.WaitGroup
			start := time.Now()
			for _, id := range ids {
				wg.Add(1)
				go func(member string) {
					defer wg.Done()
					defer c.do(context.Background(), "DELETE", member, "", nil, nil)
					for ctx.Err() == nil && done.Load() < records {
						var res struct {
							Records []json.RawMessage `json:"records"`
						}
						t0 := time.Now()
						if err := c.do(ctx, "GET", fmt.Sprintf("%s/records?max=%d&wait_ms=200", member, batch), "", nil, &res); err != nil {
							if ctx.Err() == nil {
								firstErr.CompareAndSwap(nil, err)
								cancel()
							}
							return
						}
						if len(res.Records) > 0 {
							var ae *apiError
							if err := c.do(ctx, "POST", member+"/commit", "application/json", nil, nil); err != nil && !(errors.As(err, &ae) && ae.Code == "stale_generation") && ctx.Err() == nil {
								firstErr.CompareAndSwap(nil, err)
								cancel()
								return
							}
							lat.add(time.Since(t0))
						}
						done.Add(int64(len(res.Records)))
					}
				}(groupPath(group) + "/members/" + id)
			}
			wg.Wait()
			if err, _ := firstErr.Load().(error); err != nil {
				return err
			}
			el := time.Since(start).Seconds()
			r := benchResult{Mode: fmt.Sprintf("group of %d", members), Records: done.Load(), Seconds: el}
			r.RecordsPerSec = float64(r.Records) / el
			lat.fill(&r)
			return r.print(&out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "bench", "topic to consume from its start")
	f.StringVar(&group, "group", "", "group name (default: a new one)")
	f.IntVar(&members, "members", 3, "members, each its own poll-and-commit loop")
	f.IntVar(&batch, "batch", 1000, "records per poll")
	f.Int64Var(&records, "records", 300_000, "stop after the group consumed this many")
	f.DurationVar(&duration, "duration", 60*time.Second, "stop after this long, at most")
	out.flags(cmd)
	return cmd
}
