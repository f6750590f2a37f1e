package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
)

func newConsume() *cobra.Command {
	var fromBeginning, follow bool
	var offset int64
	var partition int32
	var format, group string
	var max int
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Print records from every partition (or --partition). Like Kafka's console
consumer it starts at the end unless given --from-beginning or --offset;
without --follow it stops at the end of each partition as it was when it
started, with --follow it waits for new records until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "text" {
				return fmt.Errorf("--format %q: use json or text", format)
			}
			if group != "" {
				if partition >= 0 || cmd.Flags().Changed("offset") {
					return fmt.Errorf("--group takes its partitions and offsets from the group: no --partition or --offset")
				}
				return consumeGroup(cmd, args[0], group, format, fromBeginning, follow, max)
			}
			c := newClient(cmd)
			var t topicInfo
			if err := c.getJSON(ctxTimeout(), topicPath(args[0]), &t); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out := bufio.NewWriter(os.Stdout)
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make(chan error, len(t.PartitionInfo))
			var count atomic.Int64
			for _, p := range t.PartitionInfo {
				if partition >= 0 && p.Partition != partition {
					continue
				}
				start := p.HighWatermark
				switch {
				case cmd.Flags().Changed("offset"):
					start = offset
				case fromBeginning:
					start = p.LogStart
				}
				end := p.HighWatermark
				wg.Add(1)
				go func() {
					defer wg.Done()
					off := start
					for (follow || off < end) && (max <= 0 || count.Load() < int64(max)) {
						wait := 0
						if follow {
							wait = 10000
						}
						fr, err := c.fetch(ctx, args[0], p.Partition, off, 500, wait)
						if err != nil {
							if ctx.Err() == nil {
								errs <- fmt.Errorf("partition %d: %w", p.Partition, err)
							}
							return
						}
						mu.Lock()
						for _, r := range fr.Records {
							if max > 0 && count.Load() >= int64(max) {
								break
							}
							printRecord(out, p.Partition, &r, format)
							count.Add(1)
						}
						out.Flush()
						mu.Unlock()
						off = fr.NextOffset
					}
				}()
			}
			wg.Wait()
			out.Flush()
			select {
			case err := <-errs:
				return err
			default:
			}
			if count.Load() == 0 && !follow && !fromBeginning && !cmd.Flags().Changed("offset") {
				fmt.Fprintln(os.Stderr, "no new records (use --from-beginning, --offset or --follow)")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset")
	f.Int64Var(&offset, "offset", 0, "start at this offset (in every selected partition)")
	f.Int32VarP(&partition, "partition", "p", -1, "only this partition")
	f.BoolVarP(&follow, "follow", "F", false, "keep waiting for new records")
	f.StringVar(&format, "format", "json", "json (one object per line) or text (values only)")
	f.IntVarP(&max, "max", "n", 0, "stop after this many records")
	f.StringVarP(&group, "group", "g", "", "consume as a member of this consumer group (committed offsets; a new group starts at the end, or the beginning with --from-beginning)")
	return cmd
}

func printRecord(w *bufio.Writer, p int32, r *fetchedRecord, format string) {
	if format == "text" {
		w.Write(rawValue(r.Value, r.ValueEncoding))
		w.WriteByte('\n')
		return
	}
	b, _ := json.Marshal(struct {
		Partition int32 `json:"partition"`
		*fetchedRecord
	}{p, r})
	w.Write(b)
	w.WriteByte('\n')
}

// rawValue returns a value's bytes as produced.
func rawValue(v json.RawMessage, enc string) []byte {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	if v[0] == '"' {
		var s string
		json.Unmarshal(v, &s)
		if enc == "base64" {
			b, _ := base64.StdEncoding.DecodeString(s)
			return b
		}
		return []byte(s)
	}
	return v
}
