package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func groupPath(g string) string { return "/v1/groups/" + url.PathEscape(g) }

func newGroup() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Consumer groups: list, describe, reset or delete offsets, delete"}
	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's consumer groups",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Groups []struct {
					Name       string `json:"name"`
					Generation int64  `json:"generation"`
					Members    int    `json:"members"`
				} `json:"groups"`
			}
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/groups", format, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tMEMBERS\tGENERATION")
			for _, g := range out.Groups {
				fmt.Fprintf(w, "%s\t%d\t%d\n", g.Name, g.Members, g.Generation)
			}
			return w.Flush()
		},
	}
	describe := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Members, assignments, committed offsets and lag per partition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var g struct {
				Name       string `json:"name"`
				Generation int64  `json:"generation"`
				Lag        int64  `json:"lag"`
				Members    []struct {
					ID         string   `json:"member_id"`
					Topics     []string `json:"topics"`
					LastSeenMs int64    `json:"last_seen_ms"`
				} `json:"member_list"`
				Partitions []struct {
					Topic     string `json:"topic"`
					Partition int32  `json:"partition"`
					Committed *int64 `json:"committed_offset"`
					End       int64  `json:"high_watermark"`
					Lag       int64  `json:"lag"`
					Member    string `json:"member"`
				} `json:"partitions"`
			}
			if done, err := newClient(cmd).getOut(ctxTimeout(), groupPath(args[0]), format, &g); done || err != nil {
				return err
			}
			fmt.Printf("GROUP       %s\nGENERATION  %d\nLAG         %d\nMEMBERS     %d\n\n", g.Name, g.Generation, g.Lag, len(g.Members))
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
			for _, p := range g.Partitions {
				c := "-"
				if p.Committed != nil {
					c = fmt.Sprint(*p.Committed)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", p.Topic, p.Partition, c, p.End, p.Lag, p.Member)
			}
			return w.Flush()
		},
	}
	for _, c := range []*cobra.Command{list, describe} {
		outputFlag(c, &format)
	}
	var topic, to string
	var offset, ts int64
	reset := &cobra.Command{
		Use:   "reset-offsets GROUP --topic T --to earliest|latest|timestamp|offset",
		Short: "Set an empty group's committed offsets for a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"topic": topic, "to": to, "offset": offset, "timestamp_ms": ts})
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", groupPath(args[0])+"/offsets", "application/json", body, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("group %s: offsets of %s reset to %s\n", args[0], topic, to)
			return nil
		},
	}
	outputFlag(reset, new(string))
	reset.Flags().StringVar(&topic, "topic", "", "topic (required)")
	reset.Flags().StringVar(&to, "to", "earliest", "earliest, latest, timestamp (with --timestamp-ms) or offset (with --offset)")
	reset.Flags().Int64Var(&offset, "offset", 0, "offset, with --to offset")
	reset.Flags().Int64Var(&ts, "timestamp-ms", 0, "milliseconds since the epoch, with --to timestamp")
	reset.MarkFlagRequired("topic")
	var partition int32
	delOffsets := &cobra.Command{
		Use:   "delete-offsets GROUP --topic T [--partition P]",
		Short: "Forget a group's committed offsets of a topic no member reads (its lag goes with them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"topic": {topic}}
			if partition >= 0 {
				q.Set("partition", strconv.Itoa(int(partition)))
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", groupPath(args[0])+"/offsets?"+q.Encode(), "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("group %s: offsets of %s deleted\n", args[0], topic)
			return nil
		},
	}
	outputFlag(delOffsets, new(string))
	delOffsets.Flags().StringVar(&topic, "topic", "", "topic (required)")
	delOffsets.Flags().Int32Var(&partition, "partition", -1, "only this partition's offset (default: every partition's)")
	delOffsets.MarkFlagRequired("topic")
	del := &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete an empty group and its committed offsets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", groupPath(args[0]), "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("deleted group %s\n", args[0])
			return nil
		},
	}
	outputFlag(del, new(string))
	cmd.AddCommand(list, describe, reset, delOffsets, del)
	return cmd
}

// consumeGroup consumes topic as a member of group: it joins, prints
// what it is handed, commits after printing, and leaves when done
// (--max, or interrupted). Without --follow it stops once a poll finds
// nothing.
func consumeGroup(cmd *cobra.Command, topic, group, format string, fromBeginning, follow bool, max int) error {
	c := newClient(cmd)
	reset := "latest"
	if fromBeginning {
		reset = "earliest"
	}
	body, _ := json.Marshal(map[string]any{"topics": []string{topic}, "auto_offset_reset": reset, "session_timeout_ms": 30000})
	var j struct {
		MemberID string `json:"member_id"`
	}
	if err := c.do(ctxTimeout(), "POST", groupPath(group)+"/members", "application/json", body, &j); err != nil {
		return err
	}
	member := groupPath(group) + "/members/" + j.MemberID
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.do(ctx, "DELETE", member, "", nil, nil)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	n := 0
	for ctx.Err() == nil {
		var res struct {
			Records []struct {
				Partition int32 `json:"partition"`
				fetchedRecord
			} `json:"records"`
		}
		limit := 1000
		if max > 0 {
			limit = min(limit, max-n)
		}
		wait := 1000
		if !follow {
			wait = 500
		}
		err := c.do(ctx, "GET", fmt.Sprintf("%s/records?max=%d&wait_ms=%d", member, limit, wait), "", nil, &res)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		for i := range res.Records {
			printRecord(out, res.Records[i].Partition, &res.Records[i].fetchedRecord, format)
		}
		out.Flush()
		n += len(res.Records)
		if len(res.Records) > 0 {
			var ae *apiError
			if err := c.do(ctx, "POST", member+"/commit", "application/json", nil, nil); err != nil && !(errors.As(err, &ae) && ae.Code == "stale_generation") {
				return err
			}
		}
		if (max > 0 && n >= max) || (!follow && len(res.Records) == 0) {
			return nil
		}
	}
	return nil
}
