package wasm

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/eddy-broker/eddy"
)

// jsonRecords are 256-byte JSON records, as the figures ask.
func jsonRecords(n int) []eddy.Record {
	recs := make([]eddy.Record, n)
	for i := range recs {
		v := fmt.Sprintf(`{"device":"dev-%05d","temp":21.5,"unit":"C","pad":"`, i)
		for len(v) < 254 {
			v += "x"
		}
		recs[i] = eddy.Record{Key: []byte(fmt.Sprintf("dev-%05d", i)), Value: []byte(v + `"}`)}
	}
	return recs
}

// BenchmarkEnrich: records/s through the enrich guest at batch sizes 1, 64
// and 1024 (go test -bench Enrich ./wasm). Compare with BenchmarkEncodeOnly,
// the host's own work without a guest.
func BenchmarkEnrich(b *testing.B) {
	e, err := NewEngine(context.Background(), b.TempDir(), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	m, err := e.Compile(context.Background(), guests["enrich"])
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			in, err := m.Instantiate(context.Background(), []byte(`{"site":"edge-01"}`))
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			recs := jsonRecords(n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := in.Process(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkEncodeOnly(b *testing.B) {
	for _, n := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			recs := jsonRecords(n)
			buf := make([]byte, 0, EncodedSize(recs))
			for i := 0; i < b.N; i++ {
				buf = EncodeBatch(buf[:0], recs)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkCompile: compiling the Go enrich guest cold, and again through
// the on-disk cache with a fresh runtime (what a restarted node does).
func BenchmarkCompile(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			dir := b.TempDir()
			if cached {
				e, _ := NewEngine(context.Background(), dir, Limits{})
				if _, err := e.Compile(context.Background(), guests["enrich"]); err != nil {
					b.Fatal(err)
				}
				e.Close(context.Background())
			}
			for i := 0; i < b.N; i++ {
				d := dir
				if !cached {
					d = b.TempDir()
				}
				e, err := NewEngine(context.Background(), d, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Compile(context.Background(), guests["enrich"]); err != nil {
					b.Fatal(err)
				}
				e.Close(context.Background())
			}
		})
	}
}

// BenchmarkInstantiate: time and Go heap per instance of the enrich guest.
func BenchmarkInstantiate(b *testing.B) {
	e, _ := NewEngine(context.Background(), b.TempDir(), Limits{})
	defer e.Close(context.Background())
	m, err := e.Compile(context.Background(), guests["enrich"])
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var live []*Instance
	for i := 0; i < b.N; i++ {
		in, err := m.Instantiate(context.Background(), []byte(`{"site":"x"}`))
		if err != nil {
			b.Fatal(err)
		}
		live = append(live, in)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N)/(1<<20), "MiB/instance")
	for _, in := range live {
		in.Close()
	}
}
