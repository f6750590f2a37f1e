package series

import (
	"fmt"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

func key(t, name, subject string) Key {
	return Key{Tenant: eddy.TenantID(t), Name: name, Subject: subject}
}

// TestRatesGapsAndTenants: a counter's totals become per-second rates from
// its second sample on, a missed step is a gap (nil), and a tenant reads
// only its own series.
func TestRatesGapsAndTenants(t *testing.T) {
	s := New(Config{Step: 10 * time.Second, Points: 6})
	t0 := time.UnixMilli(1_000_000_000_000)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }
	rec := func(i int, a, b float64) {
		s.Record(at(i), []Point{{key("acme", "produce_records", "t"), a}, {key("zeta", "produce_records", "t"), b}}, nil)
	}
	rec(0, 100, 5) // the bases
	rec(1, 200, 5) // acme: 10/s; zeta: 0, no series yet
	rec(2, 500, 5) // 30/s
	// step 3 is missed
	rec(4, 700, 5) // 200 over 20 s: 10/s
	got := s.Query("acme", "", "", at(0), at(4))
	if len(got) != 1 {
		t.Fatalf("acme's series: %+v", got)
	}
	want := []any{10.0, 30.0, nil, 10.0}
	vals := got[0].Values
	if got[0].StartMs != at(1).UnixMilli() || len(vals) != len(want) {
		t.Fatalf("series from %d, %d values: %+v", got[0].StartMs, len(vals), got[0])
	}
	for i, w := range want {
		switch {
		case w == nil && vals[i] != nil, w != nil && (vals[i] == nil || *vals[i] != w.(float64)):
			t.Fatalf("value %d: %v, want %v", i, deref(vals[i]), w)
		}
	}
	if z := s.Query("zeta", "", "", at(0), at(4)); len(z) != 0 {
		t.Fatalf("a counter that never moved has no series: %+v", z)
	}
	// A topic's counter made between two steps counts from 0.
	s.Record(at(5), []Point{{key("acme", "produce_records", "t"), 800}, {key("acme", "produce_records", "new"), 50}}, nil)
	if n := s.Query("acme", "produce_records", "new", at(0), at(5)); len(n) != 1 || *n[0].Values[0] != 5 {
		t.Fatalf("a new counter's first rate: %+v", n)
	}
	if other := s.Query("zeta", "produce_records", "t", at(0), at(4)); len(other) != 0 {
		t.Fatal("zeta reads acme's series")
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestBoundedMemory: series past MaxSeries are not kept (and counted), a
// series of zeros for a whole ring is dropped, and the counters' bases
// follow what is sampled, so memory stays proportional to what is in use.
func TestBoundedMemory(t *testing.T) {
	s := New(Config{Step: time.Second, Points: 10, MaxSeries: 50})
	t0 := time.UnixMilli(2_000_000_000_000)
	for i := 0; i < 3; i++ {
		var gauges []Point
		for g := 0; g < 200; g++ {
			gauges = append(gauges, Point{key("acme", "group_lag", fmt.Sprint("g", g)), 1})
		}
		s.Record(t0.Add(time.Duration(i)*time.Second), nil, gauges)
	}
	n, bytes, dropped := s.Stats()
	if n != 50 || bytes != 50*10*4 || dropped != 3*150 {
		t.Fatalf("over the cap: %d series, %d bytes, %d dropped", n, bytes, dropped)
	}
	// All at zero: gone after a ring's length.
	for i := 3; i < 3+10; i++ {
		var gauges []Point
		for g := 0; g < 200; g++ {
			gauges = append(gauges, Point{key("acme", "group_lag", fmt.Sprint("g", g)), 0})
		}
		s.Record(t0.Add(time.Duration(i)*time.Second), nil, gauges)
	}
	if n, _, _ := s.Stats(); n != 0 {
		t.Fatalf("series of zeros kept: %d", n)
	}
	// Counters' bases: only for what was last sampled.
	s.Record(t0.Add(20*time.Second), []Point{{key("a", "produce_records", "x"), 1}, {key("a", "produce_records", "y"), 1}}, nil)
	s.Record(t0.Add(21*time.Second), []Point{{key("a", "produce_records", "x"), 2}}, nil)
	if len(s.totals) != 1 {
		t.Fatalf("bases of topics gone: %d", len(s.totals))
	}
}
