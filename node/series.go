package node

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/series"
)

// The console's charts come from an in-node sampler (package series):
// every step it reads the per-topic counters this node keeps and each
// group's lag, in records and in time. What a node samples is what it
// saw: produce and fetch rates count this node's clients.

// seriesCounters maps a per-topic counter to its series.
var seriesCounters = map[string]string{
	"eddy_produce_records_total": "produce_records",
	"eddy_produce_bytes_total":   "produce_bytes",
	"eddy_fetch_records_total":   "fetch_records",
}

// maxSampledGroups bounds a step's lag reads (each lagging partition of a
// group costs a one-record read for its lag in time).
const maxSampledGroups = 1024

func (n *Node) sampleSeries(ctx context.Context) {
	defer n.sampling.Done()
	t := time.NewTicker(n.series.Step())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.series.Record(now, n.topicCounters(), n.groupLags(ctx, now))
		}
	}
}

// topicCounters are the per-topic counters' totals, from the metric names
// ("eddy_produce_records_total{topic=\"acme/sensors\"}").
func (n *Node) topicCounters() []series.Point {
	var out []series.Point
	for _, name := range n.metrics.ListMetricNames() {
		metric, labels, ok := strings.Cut(name, `{topic=`)
		sname, known := seriesCounters[metric]
		if !ok || !known || !strings.HasSuffix(labels, "}") {
			continue
		}
		ref, err := strconv.Unquote(strings.TrimSuffix(labels, "}"))
		tenant, topic, ok := strings.Cut(ref, "/")
		if err != nil || !ok {
			continue
		}
		out = append(out, series.Point{Key: series.Key{Tenant: eddy.TenantID(tenant), Name: sname, Subject: topic},
			Value: float64(n.metrics.GetOrCreateCounter(name).Get())})
	}
	return out
}

// groupLags are every group's lag, in records and in time.
func (n *Node) groupLags(ctx context.Context, now time.Time) []series.Point {
	var out []series.Point
	sampled := 0
	for _, t := range n.host.Tenants() {
		for _, g := range n.host.Groups(t.Name) {
			if sampled++; sampled > maxSampledGroups {
				return out
			}
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, lag, lagMs := consume.GroupLag(c, n.host, g, true, now)
			cancel()
			out = append(out,
				series.Point{Key: series.Key{Tenant: t.Name, Name: "group_lag", Subject: g.Name}, Value: float64(lag)},
				series.Point{Key: series.Key{Tenant: t.Name, Name: "group_lag_ms", Subject: g.Name}, Value: float64(lagMs)})
		}
	}
	return out
}
