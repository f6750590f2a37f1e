package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func newConsume() *cobra.Command {
	var fromBeginning, follow bool
	var offset int64
	var partition int32
	var format, group, fromTime string
	var max int
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Print records from every partition (or --partition). Like Kafka's console
consumer it starts at the end unless given --from-beginning or --offset;
without --follow it stops at the end of each partition as it was when it
started, with --follow it waits for new records until interrupted.

--offset -N starts N records before the end of each partition (as kcat's
-o -N); --from-timestamp starts at the first record stamped at or after a
time. --format takes a template as kcat's -f: %k key, %v value, %o offset,
%p partition, %t timestamp (ms), %h headers (k=v,...), \n, \t.`,
		Example: `  eddy consume sensors --from-beginning
  eddy consume sensors --offset -10 --format '%p:%o %k=%v\n'
  eddy consume sensors --from-timestamp 2026-11-30T06:00:00Z --max 100
  eddy consume sensors --group dashboards --follow`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "yaml" && format != "text" && !strings.Contains(format, "%") {
				return fmt.Errorf("--format %q: use json, yaml, text or a template with %%k %%v %%o %%p %%t %%h", format)
			}
			var fromMs int64
			if fromTime != "" {
				ts, err := parseTime(fromTime)
				if err != nil {
					return fmt.Errorf("--from-timestamp: %w", err)
				}
				fromMs = ts
			}
			if group != "" {
				if partition >= 0 || cmd.Flags().Changed("offset") || fromTime != "" {
					return fmt.Errorf("--group takes its partitions and offsets from the group: no --partition, --offset or --from-timestamp")
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
				case cmd.Flags().Changed("offset") && offset < 0:
					start = p.HighWatermark + offset
					if start < p.LogStart {
						start = p.LogStart
					}
				case cmd.Flags().Changed("offset"):
					start = offset
				case fromTime != "":
					var o struct {
						Offset int64 `json:"offset"`
					}
					path := fmt.Sprintf("%s/partitions/%d/offsets?timestamp=%d", topicPath(args[0]), p.Partition, fromMs)
					if err := c.getJSON(ctxTimeout(), path, &o); err != nil {
						return err
					}
					start = o.Offset
					if start < 0 { // no record that late
						start = p.HighWatermark
					}
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
			if count.Load() == 0 && !follow && !fromBeginning && !cmd.Flags().Changed("offset") && fromTime == "" {
				fmt.Fprintln(os.Stderr, "no new records (use --from-beginning, --offset or --follow)")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset")
	f.Int64VarP(&offset, "offset", "o", 0, "start at this offset in every selected partition; negative: that many records before the end")
	f.StringVar(&fromTime, "from-timestamp", "", "start at the first record at or after this time (RFC 3339, or Unix milliseconds)")
	f.Int32VarP(&partition, "partition", "p", -1, "only this partition")
	f.BoolVarP(&follow, "follow", "F", false, "keep waiting for new records")
	f.StringVar(&format, "format", "json", "json (one object per line, the API's fields), yaml (a document per record), text (values only), or a template: %k %v %o %p %t %h")
	f.StringVar(&format, "output", "json", "the same as --format (-o is --offset, as in kcat)")
	f.IntVarP(&max, "max", "n", 0, "stop after this many records")
	f.StringVarP(&group, "group", "g", "", "consume as a member of this consumer group (committed offsets; a new group starts at the end, or the beginning with --from-beginning)")
	return cmd
}

func printRecord(w *bufio.Writer, p int32, r *fetchedRecord, format string) {
	if strings.Contains(format, "%") {
		printTemplate(w, p, r, format)
		return
	}
	if format == "text" {
		w.Write(rawValue(r.Value, r.ValueEncoding))
		w.WriteByte('\n')
		return
	}
	b, _ := json.Marshal(struct {
		Partition int32 `json:"partition"`
		*fetchedRecord
	}{p, r})
	if format == "yaml" { // a document per record, the same keys
		y, _ := yamlOf(b)
		w.WriteString("---\n")
		w.Write(y)
		return
	}
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

// printTemplate writes a record through a kcat-style template.
func printTemplate(w *bufio.Writer, p int32, r *fetchedRecord, format string) {
	for i := 0; i < len(format); i++ {
		c := format[i]
		if (c != '%' && c != '\\') || i+1 == len(format) {
			w.WriteByte(c)
			continue
		}
		i++
		switch format[i-1 : i+1] {
		case "%k":
			w.Write(rawValue(r.Key, r.KeyEncoding))
		case "%v":
			w.Write(rawValue(r.Value, r.ValueEncoding))
		case "%o":
			w.WriteString(strconv.FormatInt(r.Offset, 10))
		case "%p":
			w.WriteString(strconv.Itoa(int(p)))
		case "%t":
			w.WriteString(strconv.FormatInt(r.Timestamp, 10))
		case "%h": // k=v,k2=v2, as kcat
			var hs []struct {
				Key         json.RawMessage `json:"key"`
				KeyEncoding string          `json:"key_encoding"`
				Value       json.RawMessage `json:"value"`
				Encoding    string          `json:"value_encoding"`
			}
			json.Unmarshal(r.Headers, &hs)
			for j, h := range hs {
				if j > 0 {
					w.WriteByte(',')
				}
				w.Write(rawValue(h.Key, h.KeyEncoding))
				w.WriteByte('=')
				w.Write(rawValue(h.Value, h.Encoding))
			}
		case "%%":
			w.WriteByte('%')
		case "\\n":
			w.WriteByte('\n')
		case "\\t":
			w.WriteByte('\t')
		default:
			w.WriteString(format[i-1 : i+1])
		}
	}
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither RFC 3339 (2026-11-30T06:00:00Z) nor Unix milliseconds", s)
	}
	return t.UnixMilli(), nil
}
