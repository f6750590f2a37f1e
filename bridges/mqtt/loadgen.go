package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig drives simulated devices: each its own MQTT 5 connection,
// publishing sensor JSON to <Topic>/dev-NNNN. It is the engine of
// examples/devices and "eddy bench mqtt"; everything is bounded by
// Messages and Duration.
type LoadConfig struct {
	Addr     string
	Tenant   string
	Token    string
	Topic    string
	Devices  int
	Messages int           // in all, at most
	Duration time.Duration // at most
	Rate     float64       // per device, messages/s; 0: as fast as acknowledged
	Size     int           // payload bytes (JSON, padded)
	QoS      byte
	InFlight int // concurrent publishes per device (QoS 1); default 1
	// OnAck, when set, is called for each acknowledged message (QoS 1) or
	// each one written (QoS 0): device index and its sequence number.
	OnAck func(device, seq int)
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Devices    int            `json:"devices"`
	Acked      int64          `json:"acked"`
	Failed     int64          `json:"failed"`
	Seconds    float64        `json:"seconds"`
	MsgsPerSec float64        `json:"msgs_per_sec"`
	P50Ms      float64        `json:"p50_ms"`
	P99Ms      float64        `json:"p99_ms"`
	Errors     map[string]int `json:"errors,omitempty"`
	ConnectMs  float64        `json:"connect_ms"`
}

// RunLoad connects the devices, publishes until Messages or Duration, and
// reports. A device that cannot connect fails the run.
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	if cfg.Devices <= 0 || cfg.Messages <= 0 || cfg.QoS > 1 {
		return nil, errors.New("load: devices and messages must be positive, qos 0 or 1")
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	devices, err := connectAll(cfg.Devices, func(i int) (*device, error) {
		return connectRaw(ctx, &cfg, i, fmt.Sprintf("dev-%04d-%d", i, rand.Uint32()))
	})
	if err != nil {
		for _, d := range devices {
			if d != nil {
				d.close()
			}
		}
		return nil, err
	}
	res := &LoadResult{Devices: cfg.Devices, Errors: map[string]int{}, ConnectMs: float64(time.Since(start).Microseconds()) / 1000}
	var wg sync.WaitGroup
	var sent atomic.Int64
	begin := time.Now()
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(ctx, &sent)
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(begin).Seconds()
	var lat []time.Duration
	for _, d := range devices {
		d.result(res, &lat)
	}
	res.MsgsPerSec = float64(res.Acked) / res.Seconds
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	if len(lat) > 0 {
		res.P50Ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		res.P99Ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return res, nil
}

// connectAll connects n clients, 64 at a time; the first error fails it
// (the clients made are returned, to be disconnected).
func connectAll[C any](n int, connect func(i int) (C, error)) ([]C, error) {
	clients := make([]C, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := connect(i)
			clients[i] = c
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return clients, err
	default:
		return clients, nil
	}
}

// appendPayload appends a sensor reading of about size bytes to b.
func appendPayload(b []byte, device, seq, size int) []byte {
	start := len(b)
	b = fmt.Appendf(b, `{"device":"dev-%04d","seq":%d,"temp":%.1f,"pad":"`, device, seq, 15+rand.Float64()*10)
	for len(b)-start < size-2 {
		b = append(b, 'x')
	}
	return append(b, '"', '}')
}
