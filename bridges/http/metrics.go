package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy/consume"
	"github.com/eddy-broker/eddy/internal/promtext"
	"github.com/valyala/fasthttp"
)

// maxLagGroups bounds the groups whose lag /metrics reports (the first
// by tenant and name): each costs an offset read per partition.
const maxLagGroups = 1000

// metrics answers GET /metrics: the node's metrics set, the tenants'
// usage, the cluster's health as this node sees it and, on the
// controller's leader, every group's lag, grouped by family with HELP and
// TYPE (internal/promtext).
func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	var buf bytes.Buffer
	s.m.WritePrometheus(&buf)
	for _, t := range s.b.Tenants() {
		u := s.b.Usage(t.Name)
		for _, g := range []struct {
			name string
			v    int64
		}{{"eddy_tenant_topics", u.Topics}, {"eddy_tenant_partitions", u.Partitions},
			{"eddy_tenant_storage_bytes", u.StorageBytes}, {"eddy_tenant_quota_storage_bytes", t.Quotas.StorageBytes}} {
			metrics.WriteGaugeUint64(&buf, fmt.Sprintf(`%s{tenant=%q}`, g.name, t.Name), uint64(g.v))
		}
	}
	for _, q := range s.b.Quarantined() {
		metrics.WriteGaugeUint64(&buf, fmt.Sprintf(`eddy_partition_quarantined{topic=%q,partition="%d"}`, q.Topic, q.Partition), 1)
	}
	h := s.b.Health()
	metrics.WriteGaugeUint64(&buf, "eddy_partitions_leaderless", uint64(h.Leaderless))
	metrics.WriteGaugeUint64(&buf, "eddy_partitions_under_replicated", uint64(h.UnderReplicated))
	metrics.WriteGaugeUint64(&buf, "eddy_disk_free_bytes", uint64(h.FreeBytes))
	metrics.WriteGaugeFloat64(&buf, "eddy_disk_headroom_bytes", float64(h.Headroom))
	metrics.WriteGaugeUint64(&buf, "eddy_raft_log_bytes", uint64(h.RaftLogBytes))
	metrics.WriteGaugeUint64(&buf, "eddy_raft_log_spare_bytes", uint64(h.RaftLogSpareBytes))
	metrics.WriteCounterUint64(&buf, "eddy_raft_log_carried_bytes_total", uint64(h.RaftLogCarriedBytes))
	if s.b.ControllerLeader() == s.b.NodeID() {
		s.writeGroupLag(&buf)
	}
	metrics.WriteProcessMetrics(&buf)
	promtext.Write(ctx, buf.Bytes())
}

// writeGroupLag writes each group's lag in records and seconds, within
// 5 s in all (a group not reached by then is left out of this scrape).
func (s *Server) writeGroupLag(buf *bytes.Buffer) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	for _, t := range s.b.Tenants() {
		for _, g := range s.b.Groups(t.Name) {
			if n++; n > maxLagGroups || c.Err() != nil {
				return
			}
			_, lag, lagMs := consume.GroupLag(c, s.b, g, true, time.Now())
			labels := fmt.Sprintf(`{tenant=%q,group=%q}`, t.Name, g.Name)
			metrics.WriteGaugeUint64(buf, "eddy_group_lag_records"+labels, uint64(lag))
			metrics.WriteGaugeFloat64(buf, "eddy_group_lag_seconds"+labels, float64(lagMs)/1000)
		}
	}
}
