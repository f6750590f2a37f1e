package eddy

// TransformStatus is a topic's transform as one node runs it: the version,
// the circuit breaker, the counters.
type TransformStatus struct {
	Version             int            `json:"version"`
	Breaker             string         `json:"breaker"` // closed, open, half-open
	ConsecutiveFailures int            `json:"consecutive_failures"`
	LastError           string         `json:"last_error,omitempty"`
	OpenedTimes         int64          `json:"breaker_opened_total"`
	InstancesLive       int64          `json:"instances_live"`
	RecordsIn           uint64         `json:"records_in"`
	RecordsOut          uint64         `json:"records_out"`
	RecordsDropped      uint64         `json:"records_dropped"`
	Errors              map[string]int `json:"errors,omitempty"`
}
