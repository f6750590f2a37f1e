package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// benchResult is what a bench prints (text, or one JSON object with --json).
type benchResult struct {
	Mode          string  `json:"mode"`
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	Requests      int     `json:"requests"`
	Retries       int64   `json:"retries"`
}

func (r *benchResult) print(o *benchOut) error {
	return o.print(r, func() {
		fmt.Printf("%s: %d records in %.2fs: %.0f records/s, %.2f MB/s; request latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms (%d requests, %d retried)\n",
			r.Mode, r.Records, r.Seconds, r.RecordsPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.Requests, r.Retries)
	})
}

// benchOut is how a bench prints its result: -o text|json|yaml, or --json
// (one JSON object on one line, what the scripts in scripts/ read).
type benchOut struct {
	format string
	json   bool
}

// flags gives cmd -o and --json (after the command's own flags).
func (o *benchOut) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object on one line (the same as -o json, unindented)")
	outputFlag(cmd, &o.format)
}

func (o *benchOut) print(v any, text func()) error {
	if o.json {
		return json.NewEncoder(os.Stdout).Encode(v)
	}
	if err := checkOutput(o.format); err != nil {
		return err
	}
	if o.format != "text" {
		return printValue(o.format, v)
	}
	text()
	return nil
}

// latencies collects request latencies; percentiles are exact (sorted).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) float64 {
	if len(l.d) == 0 {
		return 0
	}
	i := min(int(float64(len(l.d))*p), len(l.d)-1)
	return float64(l.d[i].Microseconds()) / 1000
}

// sort orders the durations for pct.
func (l *latencies) sort() { sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] }) }

func (l *latencies) fill(r *benchResult) {
	l.sort()
	r.P50Ms, r.P99Ms, r.P999Ms, r.Requests = l.pct(0.50), l.pct(0.99), l.pct(0.999), len(l.d)
}

type benchFlags struct {
	topic       string
	records     int64
	size        int
	concurrency int
	batch       int
	duration    time.Duration
	partitions  int32
	rf          int
	out         benchOut
	format      string
	value       string
	keys        int
}

func newBench() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load-generate against a node (bounded by --records and --duration)"}
	var f benchFlags
	produce := &cobra.Command{
		Use:   "produce",
		Short: "Produce records as fast as the node acknowledges them",
		RunE:  func(cmd *cobra.Command, args []string) error { return benchProduce(cmd, f) },
	}
	consume := &cobra.Command{
		Use:   "consume",
		Short: "Read a topic from its start as fast as possible",
		RunE:  func(cmd *cobra.Command, args []string) error { return benchConsume(cmd, f) },
	}
	for _, c := range []*cobra.Command{produce, consume} {
		fl := c.Flags()
		fl.StringVar(&f.topic, "topic", "bench", "topic (created if missing)")
		fl.Int64Var(&f.records, "records", 200_000, "records to send or read, at most")
		fl.IntVar(&f.size, "size", 1024, "value size in bytes")
		fl.IntVar(&f.concurrency, "concurrency", 8, "concurrent requests")
		fl.IntVar(&f.batch, "batch", 100, "records per request")
		fl.DurationVar(&f.duration, "duration", 60*time.Second, "stop after this long, at most")
		fl.Int32Var(&f.partitions, "partitions", 1, "partitions, when the topic is created")
		fl.IntVar(&f.rf, "replication-factor", 1, "replication factor, when the topic is created")
	}
	produce.Flags().StringVar(&f.value, "value", "text", "text (random letters) or json (a JSON object of --size bytes, as sensors send)")
	produce.Flags().IntVar(&f.keys, "keys", 0, "key the records key-0 to key-N-1, in turn within each request (a compacted topic needs keys); 0: no keys")
	consume.Flags().StringVar(&f.format, "format", "json", "json (decode JSON records) or batches (Kafka record batches, decoded client-side)")
	f.out.flags(produce)
	f.out.flags(consume)
	cmd.AddCommand(produce, consume, newBenchMQTT(), newBenchGroup(), newBenchKafka(), newBenchDisk())
	return cmd
}

func ensureTopic(c *client, name string, partitions int32, rf int) error {
	body, _ := json.Marshal(map[string]any{"name": name, "partitions": partitions, "replication_factor": rf})
	err := c.do(ctxTimeout(), "POST", "/v1/topics", "application/json", body, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "topic_exists" {
		return nil
	}
	return err
}

func benchProduce(cmd *cobra.Command, f benchFlags) error {
	if f.records <= 0 || f.size < 0 || f.concurrency <= 0 || f.batch <= 0 {
		return errors.New("--records, --concurrency and --batch must be positive")
	}
	c := newClient(cmd)
	if err := ensureTopic(c, f.topic, f.partitions, f.rf); err != nil {
		return err
	}
	if f.value != "text" && f.value != "json" {
		return fmt.Errorf("--value %q: use text or json", f.value)
	}
	if f.keys < 0 {
		return errors.New("--keys must be 0 or more")
	}
	// One request body, reused: batch records of size printable bytes.
	letters := func(n int) []byte {
		b := make([]byte, max(n, 0))
		for i := range b {
			b[i] = 'a' + byte(rand.IntN(26))
		}
		return b
	}
	recs := make([][]byte, f.batch)
	for i := range recs {
		var r bytes.Buffer
		r.WriteString(`{`)
		if f.keys > 0 {
			fmt.Fprintf(&r, `"key":"key-%d",`, i%f.keys)
		}
		if f.value == "json" {
			obj := fmt.Sprintf(`{"device":"dev-%03d","seq":%d,"temp":%.1f,"hum":%d,"pad":"`, i%1000, i, 15+rand.Float64()*10, rand.IntN(100))
			r.WriteString(`"value":`)
			r.WriteString(obj)
			r.Write(letters(f.size - len(obj) - 2))
			r.WriteString(`"}}`)
		} else {
			r.WriteString(`"value":"`)
			r.Write(letters(f.size))
			r.WriteString(`"}`)
		}
		recs[i] = r.Bytes()
	}
	bodyOf := func(n int) []byte { // the first n records as one request
		return append(append([]byte(`{"records":[`), bytes.Join(recs[:n], []byte(","))...), "]}"...)
	}
	payload := bodyOf(f.batch)
	// The last request carries what is left, so exactly --records go.
	rest := int(f.records % int64(f.batch))
	last := bodyOf(rest)
	path := topicPath(f.topic) + "/records"

	ctx, cancel := context.WithTimeout(context.Background(), f.duration)
	defer cancel()
	var sent, done, retries atomic.Int64
	var lat latencies
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < f.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				claimed := sent.Add(int64(f.batch))
				if claimed-int64(f.batch) >= f.records {
					return
				}
				body, n := payload, int64(f.batch)
				if claimed > f.records {
					body, n = last, int64(rest)
				}
				for ctx.Err() == nil {
					t0 := time.Now()
					err := c.do(ctx, "POST", path, "application/json", body, nil)
					if err == nil {
						lat.add(time.Since(t0))
						done.Add(n)
						break
					}
					var ae *apiError
					if errors.As(err, &ae) && (ae.Status == 429 || ae.Status == 503) {
						retries.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
						cancel()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	r := benchResult{Mode: "produce", Records: done.Load(), Seconds: el, Retries: retries.Load()}
	r.RecordsPerSec = float64(r.Records) / el
	r.MBPerSec = float64(r.Records) * float64(f.size) / el / 1e6
	lat.fill(&r)
	return r.print(&f.out)
}

func benchConsume(cmd *cobra.Command, f benchFlags) error {
	if f.format != "json" && f.format != "batches" {
		return fmt.Errorf("--format %q: use json or batches", f.format)
	}
	c := newClient(cmd)
	var t topicInfo
	if err := c.getJSON(ctxTimeout(), topicPath(f.topic), &t); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.duration)
	defer cancel()
	var got, bytesRead atomic.Int64
	var lat latencies
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range t.PartitionInfo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := p.LogStart
			for off < p.HighWatermark && ctx.Err() == nil && got.Load() < f.records {
				t0 := time.Now()
				if f.format == "batches" {
					n, b, next, err := c.fetchBatches(ctx, f.topic, p.Partition, off)
					if err != nil {
						if ctx.Err() == nil {
							firstErr.CompareAndSwap(nil, err)
						}
						return
					}
					lat.add(time.Since(t0))
					got.Add(n)
					bytesRead.Add(b)
					off = next
					continue
				}
				var fr struct {
					Records []struct {
						Value json.RawMessage `json:"value"`
					} `json:"records"`
					NextOffset int64 `json:"next_offset"`
				}
				path := fmt.Sprintf("%s/partitions/%d/records?offset=%d&max=%d&max_bytes=%d", topicPath(f.topic), p.Partition, off, max(f.batch, 1000), 8<<20)
				if err := c.getJSON(ctx, path, &fr); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				lat.add(time.Since(t0))
				for _, r := range fr.Records {
					bytesRead.Add(int64(len(r.Value)))
				}
				got.Add(int64(len(fr.Records)))
				off = fr.NextOffset
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	r := benchResult{Mode: "consume (" + f.format + ")", Records: got.Load(), Seconds: el}
	r.RecordsPerSec = float64(r.Records) / el
	r.MBPerSec = float64(bytesRead.Load()) / el / 1e6
	lat.fill(&r)
	return r.print(&f.out)
}
