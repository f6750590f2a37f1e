// Package promtext finishes Eddy's /metrics for Prometheus: the samples
// written by the metrics library and by hand are grouped by family, each
// family once, with its # HELP (help.go) and # TYPE lines, as the text
// exposition format asks (a family split in two, or without metadata,
// is what Prometheus' parser and promtool complain about). Stdlib only.
package promtext

import (
	"bytes"
	"io"
	"strings"
)

// Buckets for histograms with Prometheus' `le` bounds (fixed, so
// histogram_quantile and rate() agree across scrapes and nodes).
var (
	// DurationBuckets, in seconds: from 0.25 ms (a produce's commit on
	// this hardware) to 10 s.
	DurationBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// SyncBuckets, in seconds, for one write and fsync: from 0.1 ms (an
	// NVMe disk) to 1 s (an SD card at its worst).
	SyncBuckets = []float64{.0001, .0002, .0003, .0005, .00075, .001, .002, .005, .01, .025, .05, .1, .25, 1}
	// CountBuckets for records per proposal: powers of 2 to 4,096.
	CountBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
	// ByteBuckets: powers of 4 from 256 B to 16 MiB.
	ByteBuckets = []float64{256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20}
)

type family struct {
	name  string
	typ   string
	lines []string
}

// Write writes the samples in src (Prometheus text, any order, comments
// dropped) to w grouped by family, each with its HELP and TYPE.
func Write(w io.Writer, src []byte) {
	var order []*family
	byName := map[string]*family{}
	var samples []string
	hist, summ := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		samples = append(samples, line)
		name := sampleName(line)
		if base, ok := strings.CutSuffix(name, "_bucket"); ok && strings.Contains(line, `le="`) {
			hist[base] = true
		}
		if strings.Contains(line, `quantile="`) {
			summ[name] = true
		}
	}
	for _, line := range samples {
		name := sampleName(line)
		fam, typ := name, "gauge"
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && (hist[base] || summ[base]) {
				fam = base
			}
		}
		switch {
		case hist[fam]:
			typ = "histogram"
		case summ[fam]:
			typ = "summary"
		case strings.HasSuffix(fam, "_total"):
			typ = "counter"
		}
		f := byName[fam]
		if f == nil {
			f = &family{name: fam, typ: typ}
			byName[fam] = f
			order = append(order, f)
		}
		f.lines = append(f.lines, line)
	}
	var b bytes.Buffer
	for _, f := range order {
		b.WriteString("# HELP " + f.name + " " + Help(f.name) + "\n")
		b.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, l := range f.lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	w.Write(b.Bytes())
}

func sampleName(line string) string {
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		return line[:i]
	}
	return line
}

// Help is a family's help text: Eddy's own from the table, the Go
// runtime's and the process's described by their prefix.
func Help(name string) string {
	if h, ok := help[name]; ok {
		return h
	}
	switch {
	case strings.HasPrefix(name, "go_"):
		return "Go runtime: " + strings.ReplaceAll(strings.TrimPrefix(name, "go_"), "_", " ") + " (see https://pkg.go.dev/runtime/metrics)."
	case strings.HasPrefix(name, "process_"):
		return "The process: " + strings.ReplaceAll(strings.TrimPrefix(name, "process_"), "_", " ") + " (from /proc)."
	}
	return "Eddy metric " + name + " (no description yet)."
}

// Known reports whether name has a help text of its own.
func Known(name string) bool { _, ok := help[name]; return ok }
