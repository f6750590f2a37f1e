package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// LoadConfig is a Kafka load against a node (eddy bench kafka): franz-go
// clients, each with its default batching, idempotent, acks=all.
type LoadConfig struct {
	Addr, Tenant, Token, Topic string
	// Consume reads the topic from its start instead of producing.
	Consume  bool
	Records  int64
	Size     int
	Clients  int
	Duration time.Duration
	// Rate, when positive, paces production at so many records a second
	// in all (for latency below the maximum rate).
	Rate float64
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
}

// LoadResult is what a load did.
type LoadResult struct {
	Mode          string         `json:"mode"`
	Records       int64          `json:"records"`
	Seconds       float64        `json:"seconds"`
	RecordsPerSec float64        `json:"records_per_sec"`
	MBPerSec      float64        `json:"mb_per_sec"`
	P50Ms         float64        `json:"p50_ms"`
	P99Ms         float64        `json:"p99_ms"`
	Errors        map[string]int `json:"errors,omitempty"`
}

func (cfg LoadConfig) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Addr),
		kgo.SASL(plain.Auth{User: cfg.Tenant, Pass: cfg.Token}.AsMechanism())}, extra...)
	return kgo.NewClient(opts...)
}

// RunLoad produces or consumes until Records or Duration.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	if cfg.Consume {
		return consumeLoad(ctx, cfg)
	}
	return produceLoad(ctx, cfg)
}

func produceLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	res := LoadResult{Mode: "kafka produce", Errors: map[string]int{}}
	codec := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	c, ok := codec[cfg.Compression]
	if !ok {
		return res, fmt.Errorf("compression %q: use none, gzip, snappy, lz4 or zstd", cfg.Compression)
	}
	value := make([]byte, cfg.Size)
	for i := range value {
		value[i] = 'a' + byte(rand.IntN(26))
	}
	var sent, acked atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Clients) / cfg.Rate)
	}
	start := time.Now()
	for range cfg.Clients {
		cl, err := cfg.client(kgo.ProducerBatchCompression(c), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(cfg.Topic))
		if err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			next := time.Now()
			for ctx.Err() == nil && sent.Add(1) <= cfg.Records {
				if interval > 0 {
					next = next.Add(interval)
					time.Sleep(time.Until(next))
				}
				t0 := time.Now()
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						res.Errors[err.Error()]++
						mu.Unlock()
						return
					}
					acked.Add(1)
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				})
			}
			cl.Flush(context.Background())
		}()
	}
	wg.Wait()
	res.finish(acked.Load(), cfg.Size, time.Since(start))
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50Ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		res.P99Ms = float64(lat[min(len(lat)*99/100, len(lat)-1)].Microseconds()) / 1000
	}
	return res, nil
}

func consumeLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	res := LoadResult{Mode: "kafka consume", Errors: map[string]int{}}
	cl, err := cfg.client(kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	var n, bytes int64
	start := time.Now()
	for n < cfg.Records && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				res.Errors[fe.Err.Error()]++
			}
		}
		fs.EachRecord(func(r *kgo.Record) { n++; bytes += int64(len(r.Value)) })
	}
	res.finish(n, int(bytes/max(n, 1)), time.Since(start))
	return res, nil
}

func (r *LoadResult) finish(n int64, size int, d time.Duration) {
	r.Records, r.Seconds = n, d.Seconds()
	r.RecordsPerSec = float64(n) / d.Seconds()
	r.MBPerSec = float64(n) * float64(size) / d.Seconds() / 1e6
}
