package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eddy-broker/eddy"
)

// BridgeConfig is one upstream MQTT broker Eddy drains: it subscribes with
// a shared subscription (so several Eddy nodes split the load), keeps a
// persistent session under a stable client id, and acknowledges each
// message only after its record is committed.
type BridgeConfig struct {
	Name     string   `yaml:"name" json:"name"`
	URL      string   `yaml:"url" json:"url"` // mqtt://host:1883 or tls://host:8883
	Username string   `yaml:"username" json:"username,omitempty"`
	Password string   `yaml:"password" json:"-"`
	Filters  []string `yaml:"filters" json:"filters"` // e.g. sensors/#
	// Tenant owns the Eddy topics the messages go to (mapped like the
	// listener's: first level the topic, the rest the key).
	Tenant string `yaml:"tenant" json:"tenant"`
	// Group is the shared subscription group: $share/<group>/<filter>.
	// Default "eddy".
	Group string `yaml:"group" json:"group"`
	// ClientID must be stable across restarts (the upstream keeps the
	// session's unacknowledged messages for it). Default
	// eddy-<name>-<node id>.
	ClientID string `yaml:"client_id" json:"client_id"`
	// MaxInFlight bounds the messages received and not yet acknowledged.
	// Default 1,000.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// SessionExpiry is how long the upstream keeps the session while the
	// bridge is away. Default 1h.
	SessionExpiry time.Duration `yaml:"session_expiry" json:"session_expiry"`
}

// Bridge drains one upstream broker into Eddy.
type Bridge struct {
	cfg    BridgeConfig
	ingest Ingest
	log    *slog.Logger
	m      *metrics.Set
	cm     *autopaho.ConnectionManager
	conn   atomic.Pointer[net.Conn] // the connection up now, closed to force a reconnect
	cancel context.CancelFunc
	done   chan struct{}

	queue chan received // bounded: MaxInFlight
	gen   atomic.Uint64 // connection generation; acks of an old one are dropped

	connected, subscribed     atomic.Bool
	received, appended, acked atomic.Int64
	dropped, wedged           atomic.Int64
	mu                        sync.Mutex
	lastErr                   string
}

type received struct {
	pr  autopaho.PublishReceived
	gen uint64
}

// NewBridge validates cfg; Start connects.
func NewBridge(cfg BridgeConfig, nodeID uint64, ingest Ingest, m *metrics.Set, log *slog.Logger) (*Bridge, error) {
	if cfg.Name == "" || cfg.URL == "" || len(cfg.Filters) == 0 || cfg.Tenant == "" {
		return nil, fmt.Errorf("mqtt bridge: name, url, filters and tenant are required")
	}
	if err := eddy.TenantID(cfg.Tenant).Validate(); err != nil {
		return nil, fmt.Errorf("mqtt bridge %s: %w", cfg.Name, err)
	}
	if cfg.Group == "" {
		cfg.Group = "eddy"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("eddy-%s-%d", cfg.Name, nodeID)
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1000
	}
	if cfg.SessionExpiry <= 0 {
		cfg.SessionExpiry = time.Hour
	}
	if u, err := url.Parse(cfg.URL); err != nil {
		return nil, fmt.Errorf("mqtt bridge %s: url: %w", cfg.Name, err)
	} else if _, ok := bridgeSchemes[u.Scheme]; !ok {
		return nil, fmt.Errorf("mqtt bridge %s: url %s: the scheme must be mqtt (tcp) or mqtts (TLS)", cfg.Name, cfg.URL)
	}
	b := &Bridge{cfg: cfg, ingest: ingest, m: m, log: log.With("bridge", cfg.Name), done: make(chan struct{}),
		queue: make(chan received, cfg.MaxInFlight)}
	for name, v := range map[string]func() float64{
		"eddy_bridge_received_total": func() float64 { return float64(b.received.Load()) },
		"eddy_bridge_appended_total": func() float64 { return float64(b.appended.Load()) },
		"eddy_bridge_acked_total":    func() float64 { return float64(b.acked.Load()) },
		"eddy_bridge_queued":         func() float64 { return float64(len(b.queue)) },
		"eddy_bridge_wedged_total":   func() float64 { return float64(b.wedged.Load()) },
		"eddy_bridge_connected": func() float64 {
			if b.connected.Load() {
				return 1
			}
			return 0
		},
	} {
		m.GetOrCreateGauge(fmt.Sprintf(`%s{bridge=%q}`, name, cfg.Name), v)
	}
	return b, nil
}

// WedgeTimeout is how long the bridge keeps failing to append before it
// disconnects from the upstream: connected and not acknowledging, it would
// keep being assigned half the group's messages and hold them.
var WedgeTimeout = 30 * time.Second

// Start connects (and keeps reconnecting) in the background.
func (b *Bridge) Start(ctx context.Context) error {
	u, _ := url.Parse(b.cfg.URL)
	ctx, b.cancel = context.WithCancel(ctx)
	recvMax := uint16(min(b.cfg.MaxInFlight, 65535))
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(b.cfg.SessionExpiry.Seconds()),
		ConnectRetryDelay:             time.Second,
		ReconnectBackoff:              func(n int) time.Duration { return min(time.Duration(n+1)*500*time.Millisecond, 10*time.Second) },
		ConnectTimeout:                10 * time.Second,
		ConnectUsername:               b.cfg.Username,
		ConnectPassword:               []byte(b.cfg.Password),
		ConnectPacketBuilder: func(c *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if c.Properties == nil {
				c.Properties = &paho.ConnectProperties{}
			}
			c.Properties.ReceiveMaximum = &recvMax
			return c, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			b.gen.Add(1)
			b.connected.Store(true)
			go b.subscribe(ctx, cm)
		},
		OnConnectionDown: func() bool {
			b.connected.Store(false)
			b.subscribed.Store(false)
			return true
		},
		OnConnectError:    func(err error) { b.setErr("connect: " + err.Error()) },
		AttemptConnection: b.dial,
		ClientConfig: paho.ClientConfig{
			ClientID:                   b.cfg.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           5 * time.Millisecond,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){b.onPublish},
			OnClientError:              func(err error) { b.setErr(err.Error()) },
		},
	}
	cm, err := autopaho.NewConnection(ctx, cc)
	if err != nil {
		b.cancel()
		return fmt.Errorf("mqtt bridge %s: %w", b.cfg.Name, err)
	}
	b.cm = cm
	go b.run(ctx)
	return nil
}

func (b *Bridge) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) {
	subs := make([]paho.SubscribeOptions, len(b.cfg.Filters))
	for i, f := range b.cfg.Filters {
		subs[i] = paho.SubscribeOptions{Topic: "$share/" + b.cfg.Group + "/" + f, QoS: 1}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		b.setErr("subscribe: " + err.Error())
		return
	}
	b.subscribed.Store(true)
}

func (b *Bridge) setErr(s string) {
	b.mu.Lock()
	b.lastErr = s
	b.mu.Unlock()
	b.log.Warn("mqtt bridge", logkey.Err, s)
}

// onPublish hands a message to the appender. It runs on paho's reading
// goroutine; the queue is bounded by MaxInFlight, which is also the
// ReceiveMaximum the bridge asks the upstream for, so it does not block
// unless the upstream ignores that.
func (b *Bridge) onPublish(pr paho.PublishReceived) (bool, error) {
	b.received.Add(1)
	r := received{pr: autopaho.PublishReceived{PublishReceived: pr}, gen: b.gen.Load()}
	select {
	case b.queue <- r:
	default:
		// The upstream sends more than ReceiveMaximum: wait, bounded.
		t := time.NewTimer(WedgeTimeout)
		defer t.Stop()
		select {
		case b.queue <- r:
		case <-t.C:
			b.wedged.Add(1)
			b.setErr("the in-flight queue stayed full; disconnecting")
			b.dropConnection() // reconnects after the backoff
		}
	}
	return true, nil
}

// run appends what arrives, in batches, and acknowledges each message
// after its record is committed, in the order received.
func (b *Bridge) run(ctx context.Context) {
	defer close(b.done)
	batch := make([]received, 0, 256)
	for {
		batch = batch[:0]
		select {
		case r := <-b.queue:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if !b.appendBatch(ctx, batch) {
			return
		}
		gen := b.gen.Load()
		for _, r := range batch {
			if r.gen != gen {
				continue // received on a connection that is gone: the upstream sends it again
			}
			if err := r.pr.Client.Ack(r.pr.Packet); err == nil {
				b.acked.Add(1)
			}
		}
	}
}

// appendBatch appends a batch, one Ingest per Eddy topic, retrying what
// may succeed later; it returns false when the bridge is stopping.
func (b *Bridge) appendBatch(ctx context.Context, batch []received) bool {
	type group struct {
		ref  eddy.TopicRef
		recs []eddy.Record
	}
	var groups []*group
	idx := map[eddy.TopicRef]*group{}
	for _, r := range batch {
		p := r.pr.Packet
		ref, key, hasKey, _, err := resolve(30*time.Second, b.ingest, eddy.TenantID(b.cfg.Tenant), p.Topic, p.Payload)
		if err != nil {
			b.drop(eddy.ErrorCode(err), p.Topic, err)
			continue
		}
		g := idx[ref]
		if g == nil {
			g = &group{ref: ref}
			idx[ref] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, bridgeRecord(p, key, hasKey, b.cfg.Name))
	}
	for _, g := range groups {
		start := time.Now()
		backoff := 100 * time.Millisecond
		for {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := b.ingest.Ingest(actx, g.ref, g.recs)
			cancel()
			if err == nil {
				b.appended.Add(int64(len(g.recs)))
				break
			}
			code := eddy.ErrorCode(err)
			if !code.Retriable() && code != eddy.CodeTimeout {
				// Waiting will not help (no such topic, no scope, too
				// large, a transform refused it): drop and count, or the
				// upstream would hold the session forever.
				for range g.recs {
					b.drop(code, string(g.ref.Name), err)
				}
				break
			}
			if time.Since(start) > WedgeTimeout && b.connected.Load() {
				b.wedged.Add(1)
				b.setErr("appending failed for " + WedgeTimeout.String() + " (" + err.Error() + "); disconnecting")
				b.dropConnection()
				start = time.Now()
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
	return true
}

func (b *Bridge) drop(code eddy.Code, topic string, err error) {
	b.dropped.Add(1)
	b.m.GetOrCreateCounter(fmt.Sprintf(`eddy_bridge_dropped_total{bridge=%q,code=%q}`, b.cfg.Name, code)).Inc()
	b.setErr("dropped a message to " + topic + ": " + err.Error())
}

// bridgeRecord is the record a bridged message becomes (see mqttRecord),
// with mqtt.bridge, the bridge's name.
func bridgeRecord(p *paho.Publish, key string, hasKey bool, bridge string) eddy.Record {
	var user []eddy.Header
	contentType := ""
	if p.Properties != nil {
		mp := pahoProps(p.Properties)
		user = make([]eddy.Header, 0, len(p.Properties.User)+4+mp.count())
		for _, u := range p.Properties.User {
			if !reserved(u.Key) { // as a device's (props.go)
				user = append(user, eddy.Header{Key: u.Key, Value: []byte(u.Value)})
			}
		}
		user = mp.appendTo(user)
		contentType = p.Properties.ContentType
	}
	payload := append([]byte{}, p.Payload...) // paho's, not ours to keep
	return mqttRecord(p.Topic, payload, p.QoS, user, eddy.Header{Key: "mqtt.bridge", Value: []byte(bridge)}, contentType, key, hasKey)
}

// BridgeStatus is a bridge as GET /v1/bridges shows it.
type BridgeStatus struct {
	Name       string   `json:"name"`
	URL        string   `json:"url"`
	ClientID   string   `json:"client_id"`
	Tenant     string   `json:"tenant"`
	Filters    []string `json:"filters"`
	Group      string   `json:"group"`
	Connected  bool     `json:"connected"`
	Subscribed bool     `json:"subscribed"`
	Received   int64    `json:"received"`
	Appended   int64    `json:"appended"`
	Acked      int64    `json:"acked"`
	Dropped    int64    `json:"dropped"`
	Wedged     int64    `json:"wedged_disconnects"`
	Queued     int      `json:"queued"`
	LastError  string   `json:"last_error,omitempty"`
}

// Status reports the bridge.
func (b *Bridge) Status() BridgeStatus {
	b.mu.Lock()
	le := b.lastErr
	b.mu.Unlock()
	return BridgeStatus{Name: b.cfg.Name, URL: redactURL(b.cfg.URL), ClientID: b.cfg.ClientID, Tenant: b.cfg.Tenant,
		Filters: b.cfg.Filters, Group: b.cfg.Group, Connected: b.connected.Load(), Subscribed: b.subscribed.Load(), Received: b.received.Load(),
		Appended: b.appended.Load(), Acked: b.acked.Load(), Dropped: b.dropped.Load(), Wedged: b.wedged.Load(),
		Queued: len(b.queue), LastError: le}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// Close stops the bridge: it disconnects (the upstream keeps the session
// and resends what was not acknowledged) and stops appending.
func (b *Bridge) Close(ctx context.Context) {
	if b.cm != nil {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b.cm.Disconnect(dctx)
		cancel()
	}
	if b.cancel != nil {
		b.cancel()
		select {
		case <-b.done:
		case <-ctx.Done():
		}
	}
}

// bridgeSchemes are the URL schemes a bridge dials, TLS or not.
var bridgeSchemes = map[string]bool{"mqtt": false, "tcp": false, "mqtts": true, "ssl": true, "tls": true}

// dial connects to the upstream broker and keeps the connection, so that
// dropConnection can close it.
func (b *Bridge) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if bridgeSchemes[u.Scheme] {
		tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = packets.NewThreadSafeConn(tc)
	}
	b.conn.Store(&conn)
	return conn, nil
}

// dropConnection closes the connection up now: autopaho sees it lost and
// connects again after its backoff, resuming the session (what was not
// acknowledged is delivered again).
func (b *Bridge) dropConnection() {
	if c := b.conn.Load(); c != nil {
		(*c).Close()
	}
}
