package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
)

// FanoutConfig drives a fan-out run: Subscribers connections subscribe
// to <Topic>/#, then one device publishes Messages to <Topic>/cmd (QoS,
// InFlight at once); each message carries its send time, so every
// delivery's latency from publish to receipt is measured. Against Eddy
// the path is publish, commit, tail, every subscriber; the same run
// against another broker is the reference.
type FanoutConfig struct {
	Addr        string
	Tenant      string
	Token       string
	Topic       string
	Subscribers int
	Messages    int
	Size        int
	QoS         byte
	InFlight    int
	Rate        float64       // messages/s published; 0: as fast as acknowledged
	Duration    time.Duration // at most
	// Hold is how long the subscribers stay connected, idle, before the
	// publishing starts (to measure what an idle subscriber costs).
	Hold time.Duration
}

// FanoutResult is what a fan-out run measured.
type FanoutResult struct {
	Subscribers      int     `json:"subscribers"`
	Published        int64   `json:"published"`
	Delivered        int64   `json:"delivered"`
	Expected         int64   `json:"expected"`
	Seconds          float64 `json:"seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	ConnectMs        float64 `json:"connect_ms"`
	// Errors counts the subscribers' connections lost before the end, by
	// cause.
	Errors map[string]int `json:"errors,omitempty"`
}

// RunFanout connects the subscribers, publishes, and waits until every
// subscriber has every message or Duration passes.
func RunFanout(ctx context.Context, cfg FanoutConfig) (*FanoutResult, error) {
	if cfg.Subscribers <= 0 || cfg.Messages <= 0 || cfg.QoS > 1 {
		return nil, errors.New("fanout: subscribers and messages must be positive, qos 0 or 1")
	}
	cfg.InFlight = max(cfg.InFlight, 1)
	if cfg.Duration <= 0 {
		cfg.Duration = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	expected := int64(cfg.Subscribers) * int64(cfg.Messages)
	var delivered atomic.Int64
	all := make(chan struct{})
	lats := make([][]time.Duration, cfg.Subscribers)
	conn := LoadConfig{Addr: cfg.Addr, Tenant: cfg.Tenant, Token: cfg.Token, InFlight: 1}
	subs, err := connectAll(cfg.Subscribers, func(i int) (*device, error) {
		dev, err := connectRaw(ctx, &conn, i, fmt.Sprintf("sub-%04d-%d", i, rand.Uint32()))
		if err == nil {
			if err = dev.subscribe(ctx, cfg.Topic+"/#", cfg.QoS); err != nil {
				err = fmt.Errorf("subscriber %d: %w", i, err)
			}
		}
		return dev, err
	})
	var readers sync.WaitGroup
	stop := sync.OnceFunc(func() { // the subscribers gone, their readers done
		for _, dev := range subs {
			if dev != nil {
				dev.close()
			}
		}
		readers.Wait()
	})
	defer stop()
	if err != nil {
		return nil, err
	}
	for i, dev := range subs {
		readers.Go(func() {
			dev.deliveries(func(payload []byte) {
				if sent, ok := sentAt(payload); ok {
					lats[i] = append(lats[i], time.Since(sent)) // its reader's alone
				}
				if delivered.Add(1) == expected {
					close(all)
				}
			})
		})
	}
	go pingAll(ctx, subs)
	sleep(ctx, cfg.Hold)
	pub, err := dial(ctx, cfg.Addr, cfg.Tenant, cfg.Token, fmt.Sprintf("pub-%d", rand.Uint32()), nil)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	defer pub.Disconnect(&paho.Disconnect{ReasonCode: 0})
	res := &FanoutResult{Subscribers: cfg.Subscribers, Expected: expected, ConnectMs: float64(time.Since(start).Microseconds()) / 1000,
		Errors: map[string]int{}}
	begin := time.Now()
	var published atomic.Int64
	var wg sync.WaitGroup
	var tick *time.Ticker
	if cfg.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer tick.Stop()
	}
	for w := 0; w < cfg.InFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := published.Add(1); n <= int64(cfg.Messages) && ctx.Err() == nil; n = published.Add(1) {
				if tick != nil {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return
					}
				}
				if _, err := pub.Publish(ctx, &paho.Publish{Topic: cfg.Topic + "/cmd", QoS: cfg.QoS, Payload: stamped(cfg.Size)}); err != nil {
					published.Add(-1)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-ctx.Done():
	}
	res.Seconds = time.Since(begin).Seconds()
	stop()
	res.Published = min(published.Load(), int64(cfg.Messages))
	res.Delivered = delivered.Load()
	for _, dev := range subs {
		dev.mu.Lock()
		if dev.lost != nil {
			res.Errors[truncate(dev.lost.Error(), 80)]++
		}
		dev.mu.Unlock()
	}
	res.DeliveriesPerSec = float64(res.Delivered) / res.Seconds
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	if len(lat) > 0 {
		res.P50Ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		res.P99Ms = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
	}
	return res, nil
}

// pingAll keeps idle subscribers' connections alive (keep-alive 30 s)
// until ctx ends.
func pingAll(ctx context.Context, subs []*device) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, dev := range subs {
				dev.conn.Write([]byte{packets.Pingreq << 4, 0})
			}
		}
	}
}

func dial(ctx context.Context, addr, tenant, token, id string, onMsg func(paho.PublishReceived) (bool, error)) (*paho.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cc := paho.ClientConfig{Conn: conn}
	if onMsg != nil {
		cc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onMsg}
	}
	c := paho.NewClient(cc)
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
		Username: tenant, UsernameFlag: true, Password: []byte(token), PasswordFlag: true})
	if err != nil {
		conn.Close()
		if ca != nil {
			return nil, fmt.Errorf("connect refused: reason 0x%02x", ca.ReasonCode)
		}
		return nil, err
	}
	return c, nil
}

// stamped is a payload of about size bytes that starts with its send time
// (unix nanoseconds) and a space.
func stamped(size int) []byte {
	b := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

func sentAt(p []byte) (time.Time, bool) {
	for i, c := range p {
		if c == ' ' {
			n, err := strconv.ParseInt(string(p[:i]), 10, 64)
			return time.Unix(0, n), err == nil
		}
	}
	return time.Time{}, false
}
