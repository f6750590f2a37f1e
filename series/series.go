// Package series keeps the last hour of a few numbers per topic and group
// in memory, so the console draws charts without Prometheus (as EMQX's
// dashboard samples itself). A sampler records every step (10 s): counters
// as cumulative totals, kept as per-second rates, and gauges as they are.
// A series exists only while it has something to show: it is made at its
// first non-zero point and dropped after a ring of zeros, so memory
// follows the topics and groups in use, within MaxSeries.
package series

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
)

// Key names a series: a tenant's topic or group, and what is measured
// (produce_records, produce_bytes, fetch_records: per second;
// group_lag: records, group_lag_ms).
type Key struct {
	Tenant  eddy.TenantID
	Name    string
	Subject string // the topic or the group
}

// Point is one value of a series at the current step.
type Point struct {
	Key
	Value float64
}

// Config sizes a store. Zero values mean the defaults.
type Config struct {
	Step      time.Duration // 10 s
	Points    int           // a ring's length: 360 (an hour of 10 s steps)
	MaxSeries int           // 4096; more are not kept (Dropped counts them)
}

// Store holds the rings.
type Store struct {
	cfg     Config
	mu      sync.Mutex
	rings   map[Key]*ring
	totals  map[Key]float64 // each counter's last total, for its rate
	lastAt  int64           // the step of the last Record
	dropped int64
}

// ring is a series' values, one per step, the newest at step `last`;
// NaN marks a step with no value.
type ring struct {
	vals    []float32
	first   int64 // the step of the first value
	last    int64 // the step of the newest value
	nonZero int64 // the step of the newest non-zero value
}

func New(cfg Config) *Store {
	if cfg.Step <= 0 {
		cfg.Step = 10 * time.Second
	}
	if cfg.Points <= 0 {
		cfg.Points = 360
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = 4096
	}
	return &Store{cfg: cfg, rings: map[Key]*ring{}, totals: map[Key]float64{}}
}

// Step is the store's step.
func (s *Store) Step() time.Duration { return s.cfg.Step }

func (s *Store) step(t time.Time) int64 { return t.UnixMilli() / s.cfg.Step.Milliseconds() }

// Record takes one sample at now: counters' cumulative totals and gauges'
// values. The first sample only sets the counters' bases; a counter that
// appears later started at 0 since the last step (as Prometheus' rate()
// takes a reset). A counter or gauge not in this sample gets no value at
// this step.
func (s *Store) Record(now time.Time, counters, gauges []Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.step(now)
	elapsed := float64(at-s.lastAt) * s.cfg.Step.Seconds()
	seen := make(map[Key]bool, len(counters))
	for _, c := range counters {
		seen[c.Key] = true
		prev, known := s.totals[c.Key]
		s.totals[c.Key] = c.Value
		if s.lastAt == 0 || elapsed <= 0 {
			continue // the first sample: every total is a base
		}
		if !known || c.Value < prev {
			prev = 0 // a counter made (or restarted) since the last step
		}
		s.put(c.Key, at, (c.Value-prev)/elapsed)
	}
	for k := range s.totals {
		if !seen[k] {
			delete(s.totals, k) // its topic is gone
		}
	}
	for _, g := range gauges {
		s.put(g.Key, at, g.Value)
	}
	s.lastAt = at
	for k, r := range s.rings {
		if at-r.nonZero >= int64(len(r.vals)) {
			delete(s.rings, k) // a ring of zeros
		}
	}
}

func (s *Store) put(k Key, at int64, v float64) {
	r := s.rings[k]
	if r == nil {
		if v == 0 {
			return // nothing to show yet
		}
		if len(s.rings) >= s.cfg.MaxSeries {
			s.dropped++
			return
		}
		r = &ring{vals: make([]float32, s.cfg.Points), first: at, last: at - 1}
		for i := range r.vals {
			r.vals[i] = float32(math.NaN())
		}
		s.rings[k] = r
	}
	if at <= r.last {
		return // one value per step
	}
	n := int64(len(r.vals))
	for st := max(r.last+1, at-n+1); st < at; st++ {
		r.vals[st%n] = float32(math.NaN()) // steps with no sample
	}
	r.vals[at%n] = float32(v)
	r.last = at
	if v != 0 {
		r.nonZero = at
	}
}

// Series is one series' last hour: Values[i] is at StartMs + i*StepMs
// (nil where no value was taken).
type Series struct {
	Name    string     `json:"name"`
	Subject string     `json:"subject"`
	StartMs int64      `json:"start_ms"`
	StepMs  int64      `json:"step_ms"`
	Values  []*float64 `json:"values"`
}

// Query returns the tenant's series named name (any if empty) about
// subject (any if empty), from since on, up to now, sorted by name and
// subject.
func (s *Store) Query(tenant eddy.TenantID, name, subject string, since, now time.Time) []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Series{}
	stepMs := s.cfg.Step.Milliseconds()
	end := s.step(now)
	for k, r := range s.rings {
		if k.Tenant != tenant || (name != "" && k.Name != name) || (subject != "" && k.Subject != subject) {
			continue
		}
		n := int64(len(r.vals))
		from := max(end-n+1, s.step(since), r.first)
		se := Series{Name: k.Name, Subject: k.Subject, StartMs: from * stepMs, StepMs: stepMs}
		for st := from; st <= end; st++ {
			var v *float64
			if st <= r.last && st > r.last-n {
				if f := float64(r.vals[st%n]); !math.IsNaN(f) {
					v = &f
				}
			}
			se.Values = append(se.Values, v)
		}
		out = append(out, se)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}

// Stats are the store's size: series kept, bytes their rings hold, and
// series not kept for the cap.
func (s *Store) Stats() (series int, bytes int64, dropped int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rings), int64(len(s.rings)) * int64(s.cfg.Points) * 4, s.dropped
}
