package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// newTopicAlterConfig sets or resets topic config keys (PATCH, as
// kafka-configs --alter and rpk topic alter-config do).
func newTopicAlterConfig() *cobra.Command {
	var set, del []string
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC --set key=value [--delete key]",
		Short: "Change a topic's config (Kafka's names: retention.ms, retention.bytes, max.message.bytes, ...)",
		Example: `  eddy topic alter-config sensors --set retention.ms=86400000 --set retention.bytes=1073741824
  eddy topic alter-config sensors --delete retention.bytes   # back to the default`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := map[string]string{}
			for _, kv := range set {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--set %q: use key=value", kv)
				}
				cfg[k] = v
			}
			for _, k := range del {
				cfg[k] = "" // an empty value resets a key
			}
			if len(cfg) == 0 {
				return fmt.Errorf("nothing to change: give --set key=value or --delete key")
			}
			return patchTopic(cmd, args[0], map[string]any{"config": cfg})
		},
	}
	outputFlag(cmd, new(string))
	cmd.Flags().StringArrayVarP(&set, "set", "s", nil, "key=value to set (repeatable)")
	cmd.Flags().StringArrayVarP(&del, "delete", "d", nil, "key to reset to its default (repeatable)")
	return cmd
}

// newTopicAddPartitions grows a topic (partitions never shrink: a key's
// partition would move under its consumers).
func newTopicAddPartitions() *cobra.Command {
	var total int32
	cmd := &cobra.Command{
		Use:     "add-partitions TOPIC --total N",
		Short:   "Grow a topic to N partitions (never shrinks; keys map anew for new records, as in Kafka)",
		Example: `  eddy topic add-partitions sensors --total 6`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if total <= 0 {
				return fmt.Errorf("--total N: the partition count wanted")
			}
			return patchTopic(cmd, args[0], map[string]any{"partitions": total})
		},
	}
	outputFlag(cmd, new(string))
	cmd.Flags().Int32Var(&total, "total", 0, "the partition count wanted")
	return cmd
}

func patchTopic(cmd *cobra.Command, topic string, change map[string]any) error {
	body, _ := json.Marshal(change)
	var t topicInfo
	if done, err := newClient(cmd).sendOut(ctxTimeout(), http.MethodPatch, topicPath(topic), "application/json", body, outputOf(cmd), &t); done || err != nil {
		return err
	}
	fmt.Printf("topic %s: %d partitions", t.Name, t.Partitions)
	if cfg, ok := change["config"].(map[string]string); ok {
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			fmt.Printf(", %s=%s", k, t.Config[k])
		}
	}
	fmt.Println()
	return nil
}

// newTopicDeleteRecords moves partitions' log starts (Kafka's
// DeleteRecords, kafka-delete-records and rpk's trim-prefix do the same).
func newTopicDeleteRecords() *cobra.Command {
	var before, format string
	var partition int32
	cmd := &cobra.Command{
		Use:   "delete-records TOPIC --before OFFSET|end [--partition N]",
		Short: "Delete the records before an offset (end: all of them) of one partition, or of every partition; reads start there",
		Example: `  eddy topic delete-records sensors --partition 0 --before 1000
  eddy topic delete-records sensors --before end   # every partition emptied`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			off := int64(-1)
			if before != "end" {
				n, err := strconv.ParseInt(before, 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("--before %q: an offset, or end for the high watermark", before)
				}
				off = n
			}
			c := newClient(cmd)
			parts := []int32{partition}
			if partition < 0 {
				var topic struct{ Partitions int32 }
				if err := c.getJSON(ctxTimeout(), topicPath(args[0]), &topic); err != nil {
					return err
				}
				parts = parts[:0]
				for p := range topic.Partitions {
					parts = append(parts, p)
				}
			}
			for _, p := range parts {
				var raw json.RawMessage
				path := fmt.Sprintf("%s/partitions/%d/records?before=%d", topicPath(args[0]), p, off)
				if err := c.do(ctxTimeout(), "DELETE", path, "", nil, &raw); err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				if format != "text" { // one answer a partition, a line each in json
					if err := printAnswer(format, raw); err != nil {
						return err
					}
					continue
				}
				var out struct {
					LogStart int64 `json:"log_start_offset"`
				}
				if err := json.Unmarshal(raw, &out); err != nil {
					return err
				}
				fmt.Printf("partition %d: starts at offset %d\n", p, out.LogStart)
			}
			return nil
		},
	}
	outputFlag(cmd, &format)
	cmd.Flags().StringVar(&before, "before", "", "the offset the log is to start at, or end (required)")
	cmd.Flags().Int32Var(&partition, "partition", -1, "one partition (default: every partition)")
	cmd.MarkFlagRequired("before")
	return cmd
}
