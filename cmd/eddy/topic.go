package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newTopic() *cobra.Command {
	cmd := &cobra.Command{Use: "topic", Short: "Create, list, describe and delete topics"}
	var partitions int32
	var rf int
	var configs []string
	create := &cobra.Command{
		Use:   "create TOPIC",
		Short: "Create a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf := map[string]string{}
			for _, kv := range configs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--config %q: use key=value", kv)
				}
				conf[k] = v
			}
			body, _ := json.Marshal(map[string]any{"name": args[0], "partitions": partitions, "replication_factor": rf, "config": conf})
			var t topicInfo
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", "/v1/topics", "application/json", body, outputOf(cmd), &t); done || err != nil {
				return err
			}
			fmt.Printf("created topic %s with %d partition(s), replication factor %d\n", t.Name, t.Partitions, t.ReplicationFactor)
			return nil
		},
	}
	outputFlag(create, new(string))
	create.Flags().Int32VarP(&partitions, "partitions", "p", 1, "partitions")
	create.Flags().IntVarP(&rf, "replication-factor", "r", 1, "replication factor (1, 3 or 5)")
	create.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (Kafka names, e.g. retention.ms=86400000)")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Topics []topicInfo }
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/topics", format, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tPARTITIONS\tREPLICAS")
			for _, t := range out.Topics {
				fmt.Fprintf(w, "%s\t%d\t%d\n", t.Name, t.Partitions, t.ReplicationFactor)
			}
			return w.Flush()
		},
	}
	describe := &cobra.Command{
		Use:   "describe TOPIC",
		Short: "Show a topic's config and partitions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t topicInfo
			if done, err := newClient(cmd).getOut(ctxTimeout(), topicPath(args[0]), format, &t); done || err != nil {
				return err
			}
			fmt.Printf("NAME          %s\nPARTITIONS    %d\nREPLICATION   %d\n", t.Name, t.Partitions, t.ReplicationFactor)
			if t.Transform != nil {
				describeBinding(os.Stdout, t.Transform)
			}
			fmt.Printf("\nCONFIG\n")
			keys := make([]string, 0, len(t.Config))
			for k := range t.Config {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s\t%s\n", k, t.Config[k])
			}
			fmt.Fprintln(w, "\nPARTITION\tLEADER\tREPLICAS\tLOG-START\tHIGH-WATERMARK\tSIZE")
			for _, p := range t.PartitionInfo {
				fmt.Fprintf(w, "%d\t%d\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.LogStart, p.HighWatermark, p.Bytes)
			}
			for _, p := range t.PartitionInfo {
				if p.Quarantined != "" {
					fmt.Fprintf(w, "\npartition %d is QUARANTINED on this node: %s\n", p.Partition, p.Quarantined)
				}
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Delete a topic and its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", topicPath(args[0]), "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("deleted topic %s\n", args[0])
			return nil
		},
	}
	outputFlag(del, new(string))
	var upto int64
	checksum := &cobra.Command{
		Use:   "checksum TOPIC PARTITION",
		Short: "Digest of the --server node's replica of a partition up to --upto (default its high watermark)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			path := fmt.Sprintf("%s/partitions/%s/checksum?upto=%d", topicPath(args[0]), args[1], upto)
			if done, err := newClient(cmd).getOut(ctxTimeout(), path, outputOf(cmd), &out); done || err != nil {
				return err
			}
			keys := make([]string, 0, len(out))
			for k := range out {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Printf("%-16s %v\n", k, out[k])
			}
			return nil
		},
	}
	checksum.Flags().Int64Var(&upto, "upto", 0, "offset to stop before (0: the high watermark)")
	outputFlag(checksum, new(string))
	repair := &cobra.Command{
		Use:   "repair TOPIC PARTITION",
		Short: "Truncate the --server node's quarantined replica of a partition to its last good batch (drops data; operator)",
		Long: `A replica whose log cannot be opened (a damaged or cut segment, a damaged
checkpoint) is quarantined at start: the node serves its other partitions.
A replicated partition's replica is rebuilt from a healthy one on its own;
a partition with one replica waits for this command, which keeps every
batch before the first damaged one, drops the rest, restarts the replica and
prints exactly which offsets were lost.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Topic          string `json:"topic"`
				Partition      int32  `json:"partition"`
				NextOffset     int64  `json:"next_offset"`
				DroppedFrom    int64  `json:"dropped_from_offset"`
				DroppedTo      int64  `json:"dropped_to_offset"`
				DroppedRecords int64  `json:"dropped_records"`
				DroppedBytes   int64  `json:"dropped_bytes"`
				Damage         string `json:"damage"`
			}
			path := fmt.Sprintf("%s/partitions/%s/repair", topicPath(args[0]), args[1])
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", path, "", nil, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("repaired %s partition %d: the log now ends at offset %d\n", out.Topic, out.Partition, out.NextOffset)
			if out.Damage != "" {
				fmt.Printf("damage: %s\n", out.Damage)
			}
			fmt.Printf("lost: offsets %d to %d (%d records, %d bytes)\n", out.DroppedFrom, out.DroppedTo, out.DroppedRecords, out.DroppedBytes)
			return nil
		},
	}
	outputFlag(repair, new(string))
	cmd.AddCommand(checksum, repair)
	for _, c := range []*cobra.Command{list, describe} {
		outputFlag(c, &format)
	}
	cmd.AddCommand(create, list, describe, del, newSetTransform(), newClearTransform(), newTopicAlterConfig(), newTopicAddPartitions(), newTopicDeleteRecords())
	return cmd
}

// ctxTimeout bounds one CLI request. The timer is released by the deadline
// itself; CLI calls are few and short-lived.
func ctxTimeout() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	time.AfterFunc(61*time.Second, cancel)
	return ctx
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
