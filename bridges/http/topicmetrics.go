package httpapi

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
)

// topicMetrics are a topic's fetch series, looked up once per topic
// rather than formatted and looked up by name on every request (ingest
// keeps the produce series).
type topicMetrics struct {
	fetchRecords, fetchBytes *metrics.Counter
	fetchDuration            *metrics.Histogram
}

// topicMetricsCache holds each topic's series; a deleted topic's stay,
// as its series stay in the metrics set.
type topicMetricsCache struct{ m sync.Map } // eddy.TopicRef -> *topicMetrics

func (s *Server) topicMetrics(ref eddy.TopicRef) *topicMetrics {
	if tm, ok := s.tm.m.Load(ref); ok {
		return tm.(*topicMetrics)
	}
	name := ref.String()
	tm := &topicMetrics{
		fetchRecords:  s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_fetch_records_total{topic=%q}`, name)),
		fetchBytes:    s.m.GetOrCreateCounter(fmt.Sprintf(`eddy_fetch_bytes_total{topic=%q}`, name)),
		fetchDuration: s.m.GetOrCreateHistogram(fmt.Sprintf(`eddy_fetch_request_duration_seconds{topic=%q}`, name)),
	}
	got, _ := s.tm.m.LoadOrStore(ref, tm)
	return got.(*topicMetrics)
}
