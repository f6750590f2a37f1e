package promtext

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriteGroupsAndAnnotates: samples of one family written apart end up
// together under one HELP and TYPE; histograms and summaries are typed
// from their samples, counters from _total.
func TestWriteGroupsAndAnnotates(t *testing.T) {
	src := `eddy_tenant_topics{tenant="a"} 1
eddy_tenant_storage_bytes{tenant="a"} 10
eddy_tenant_topics{tenant="b"} 2
eddy_produce_request_duration_seconds_bucket{topic="a/t",le="0.1"} 3
eddy_produce_request_duration_seconds_bucket{topic="a/t",le="+Inf"} 4
eddy_produce_request_duration_seconds_sum{topic="a/t"} 0.5
eddy_produce_request_duration_seconds_count{topic="a/t"} 4
eddy_produce_records_total{topic="a/t"} 7
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 3
# a comment from a writer
`
	var b bytes.Buffer
	Write(&b, []byte(src))
	want := `# HELP eddy_tenant_topics Topics of a tenant.
# TYPE eddy_tenant_topics gauge
eddy_tenant_topics{tenant="a"} 1
eddy_tenant_topics{tenant="b"} 2
# HELP eddy_tenant_storage_bytes Bytes a tenant's partitions retain, as their leaders last reported.
# TYPE eddy_tenant_storage_bytes gauge
eddy_tenant_storage_bytes{tenant="a"} 10
# HELP eddy_produce_request_duration_seconds Time from a produce request's arrival to its commit, by topic.
# TYPE eddy_produce_request_duration_seconds histogram
eddy_produce_request_duration_seconds_bucket{topic="a/t",le="0.1"} 3
eddy_produce_request_duration_seconds_bucket{topic="a/t",le="+Inf"} 4
eddy_produce_request_duration_seconds_sum{topic="a/t"} 0.5
eddy_produce_request_duration_seconds_count{topic="a/t"} 4
# HELP eddy_produce_records_total Records appended, by topic.
# TYPE eddy_produce_records_total counter
eddy_produce_records_total{topic="a/t"} 7
# HELP go_gc_duration_seconds Go runtime: gc duration seconds (see https://pkg.go.dev/runtime/metrics).
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 3
`
	if got := b.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if Known("go_gc_duration_seconds") || !Known("eddy_produce_records_total") || strings.HasPrefix(Help("eddy_nope"), "Eddy metric eddy_nope") == false {
		t.Fatal("Known/Help")
	}
}
