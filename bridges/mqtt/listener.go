// Package mqtt is Eddy's MQTT ingest: an embedded listener (mochi-mqtt) that
// turns devices' publishes into records, acknowledged only after commit.
// It is the only importer of mochi (and, for the bridge, paho).
package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/deadline"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/eddy-broker/eddy/internal/readslots"
	"github.com/eddy-broker/eddy/tenants"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Ingest appends a publish's records. The node implements it: tenant
// quotas, the topic's transform, then the produce path; it returns once
// the records are committed (or refused, with an *eddy.Error).
type Ingest interface {
	Ingest(ctx context.Context, ref eddy.TopicRef, recs []eddy.Record) error
	// MaxMessageBytes is the topic's max.message.bytes, or CodeNotFound.
	MaxMessageBytes(ref eddy.TopicRef) (int64, error)
	// Mapping is the tenant's MQTT topic mapping (nil: the default).
	Mapping(tenant eddy.TenantID) *tenants.MQTTMapping
	// CreateTopic creates a topic for a mapping with auto_create.
	CreateTopic(ctx context.Context, ref eddy.TopicRef, partitions int32) error
	// MaxConnections is the tenant's connection quota on this node (0:
	// unlimited).
	MaxConnections(tenant eddy.TenantID) int64
}

// Config configures the listener. Zero values mean the defaults.
type Config struct {
	// Addr is the listen address. Default :1883.
	Addr string
	// TLS, when set, serves MQTT over TLS (mqtts).
	TLS *tls.Config
	// MaxPacketBytes bounds an MQTT packet; a larger one disconnects the
	// client (0x95). Default 1 MiB.
	MaxPacketBytes int
	// Bodies is the node's request memory (shared with the other
	// listeners): a packet of 64 KiB or more is read once it holds its
	// size (meter.go). Defaults to a budget of its own of 8 packets of
	// MaxPacketBytes.
	Bodies *membudget.Budget
	// Reads bounds the reads one tenant runs at once (shared with the
	// other listeners): a catch-up reader's read takes one of them (not
	// its sending, which waits on the device). nil bounds none.
	Reads *readslots.Slots
	// PublishTimeout bounds how long a QoS 1/2 publish waits for its
	// commit before it is refused (0x80). Default 30s.
	PublishTimeout time.Duration
	// QoS0Records and QoS0Bytes bound the queue of QoS 0 publishes not yet
	// appended; a publish that finds it full waits up to QoS0Wait (holding
	// its own connection), then is dropped (and counted). Defaults 10,000
	// records, 16 MiB and 1s.
	QoS0Records int
	QoS0Bytes   int
	QoS0Wait    time.Duration
	// ReceiveMaximum is how many QoS 1/2 publishes a client may have
	// unacknowledged. Default 64.
	ReceiveMaximum uint16
	// QoS1Bytes bounds the bytes of a connection's QoS 1 publishes not yet
	// acknowledged (a larger publish goes alone); past it the node reads
	// no more of the connection until some are. Default 1 MiB.
	QoS1Bytes int
	// PublishRate bounds the publishes a connection may send a second
	// (and at once); past it the connection is not read until the rate
	// allows (pace.go). 0: no bound.
	PublishRate float64
	// ConnectTimeout bounds the time from accept to an authenticated
	// CONNECT. Default 5s.
	ConnectTimeout time.Duration
	// MaxConnectBytes bounds the CONNECT packet, the only one read before
	// authentication (username, a token as password, a will). Default
	// 64 KiB.
	MaxConnectBytes int
	// MaxConnections and MaxConnectionsPerIP bound the listener's open
	// connections, and those from one source address; more are closed at
	// accept. Defaults 10,000 and 1,000.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxUserProperties bounds a publish's MQTT 5 user properties; more is
	// refused (0x95). Default 64.
	MaxUserProperties int
	// MaxSubscriptions bounds a connection's subscriptions, and
	// MaxFilterBytes the length of a filter it subscribes to; a filter past
	// either is refused in the SUBACK (v5 0x97 with a reason, 3.1.1 0x80).
	// mochi keeps each filter in its tree, and a persistent session's go
	// to the controller: one connection with 200,000 filters took a node
	// from 20 to 490 MB. Defaults 100 and 1 KiB.
	MaxSubscriptions int
	MaxFilterBytes   int
	// MaxTopicAliases is the topic alias maximum offered to MQTT 5
	// clients (CONNACK); an alias past it is a protocol error (0x94).
	// mochi keeps each alias's topic for the connection's life: with its
	// default of 65,535, one connection's 20,000 aliases of 30 KB topics
	// took a node to 1.15 GB. Default 10, as mosquitto's.
	MaxTopicAliases int
	// RecheckInterval is how often live connections are checked against
	// revocation (key removed, tenant deleted, token expired); those that
	// lost their standing are disconnected (0x87). Default 1s.
	RecheckInterval time.Duration
	// WSAddr, when set, serves MQTT over WebSockets there too (websocket.go),
	// with the same TLS, limits and authentication.
	WSAddr string
	// Log backs subscriptions (subscribe.go); nil: subscribing is refused.
	Log Log
	// Sessions keep persistent sessions' filters and positions
	// (session.go); nil: every session is served as a clean one.
	Sessions Sessions
	// SessionExpiryMax bounds how long a persistent session is kept after
	// its device went (an MQTT 5 device asks for less; a 3.1.1 device gets
	// this). Default 7 days.
	SessionExpiryMax time.Duration
	// StuckTimeout is how long a subscriber may leave its whole window of
	// deliveries unacknowledged before it is disconnected (0x89, counted).
	// Default 60s.
	StuckTimeout time.Duration
	// RetainedBytes bounds the node's index of retained records (their
	// MQTT names and offsets, retained.go), a tenant's names at most half
	// of it; past it new names are not indexed (counted). Default 16 MiB.
	RetainedBytes int
	Verifier      *tenants.Verifier
	Metrics       *metrics.Set
	Logger        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":1883"
	}
	if c.MaxPacketBytes <= 0 {
		c.MaxPacketBytes = 1 << 20
	}
	if c.Bodies == nil {
		c.Bodies = membudget.New(8 * int64(c.MaxPacketBytes))
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.QoS0Records <= 0 {
		c.QoS0Records = 10_000
	}
	if c.QoS0Bytes <= 0 {
		c.QoS0Bytes = 16 << 20
	}
	if c.QoS0Wait <= 0 {
		c.QoS0Wait = time.Second
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 64
	}
	if c.QoS1Bytes <= 0 {
		c.QoS1Bytes = 1 << 20
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.SessionExpiryMax <= 0 {
		c.SessionExpiryMax = 7 * 24 * time.Hour
	}
	if c.StuckTimeout <= 0 {
		c.StuckTimeout = time.Minute
	}
	if c.RetainedBytes <= 0 {
		c.RetainedBytes = 16 << 20
	}
	if c.MaxConnectBytes <= 0 {
		c.MaxConnectBytes = 64 << 10
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 10_000
	}
	if c.MaxConnectionsPerIP <= 0 {
		c.MaxConnectionsPerIP = 1_000
	}
	if c.MaxUserProperties <= 0 {
		c.MaxUserProperties = 64
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.MaxFilterBytes <= 0 {
		c.MaxFilterBytes = 1 << 10
	}
	if c.MaxTopicAliases <= 0 {
		c.MaxTopicAliases = 10
	}
	if c.RecheckInterval <= 0 {
		c.RecheckInterval = time.Second
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Listener is the embedded MQTT listener.
type Listener struct {
	cfg      Config
	ingest   Ingest
	srv      *mochi.Server
	ln       *guardedListener
	log      *slog.Logger
	m        *metrics.Set
	q0       *qos0Queue
	fan      *fanout // nil without a Log
	retained *retainedIndex
	ws       *guardedListener // nil without a WSAddr
	stop     chan struct{}
	done     chan struct{}
	// publishDeadline bounds a QoS 1 publish's wait for its commit
	// (PublishTimeout), a context shared by the waits of each tick.
	publishDeadline *deadline.Shared

	// byClient finds a connection's session without a lock: hooks ask for
	// it on every delivery.
	byClient sync.Map // *mochi.Client -> *session

	mu        sync.Mutex
	clients   map[*mochi.Client]*session
	perTenant map[eddy.TenantID]int64 // connections, for the quota

	wills wills // delayed last wills (will.go)

	// repeats keeps the warnings a tenant's devices can cause, connecting
	// and subscribing in a loop, to one of a kind per tenant a window.
	repeats *logkey.Repeats
}

// warnSession logs a warning about a session, as repeats admits it.
func (l *Listener) warnSession(s *session, msg string, err error) {
	l.repeats.Log(l.log, slog.LevelWarn, msg+"|"+string(s.tenant), msg, logkey.Tenant, s.tenant, logkey.Client, s.client, logkey.Err, err)
}

// session is an authenticated connection: its token and the tenant it acts
// in (its username).
type session struct {
	p          *tenants.Principal
	tenant     eddy.TenantID
	inc        int64 // the tenant's incarnation at CONNECT
	stats      sessionStats
	client     string                 // the client id as the device sent it
	persistent bool                   // its session outlives the connection
	stream     atomic.Pointer[stream] // what it is sent; nil until it subscribes
	swaps      idSwaps
	pub        *publisher    // pipelines its QoS 1 publishes (pipeline.go); nil until one does not come alone
	alone      acker         // appends a QoS 1 publish that comes alone, on the read loop
	gone       chan struct{} // closed at disconnect
	version    byte          // MQTT protocol version
	expiry     atomic.Uint32 // the session expiry an MQTT 5 device asked for (CONNECT, DISCONNECT)
	will       *will         // its last will (will.go); nil without one
	pace       pace          // its publish rate (pace.go), on its read loop
	// overQuota: the filters of the SUBSCRIBE being answered that were
	// past MaxSubscriptions or MaxFilterBytes, or whose persistent session
	// the tenant had no room for (overReason says so), by index, for its
	// SUBACK (both on the connection's read loop).
	overQuota  []int
	overReason string
	// saidGoodbye: the device sent DISCONNECT with reason 0, so its will
	// is dropped.
	saidGoodbye atomic.Bool
}

// tenantAlive reports whether the session's tenant still exists as the
// incarnation it connected to (an operator's token names another tenant,
// so Recheck alone does not see its session's tenant go).
func (s *session) tenantAlive(l *Listener) bool {
	if l.cfg.Verifier.Incarnation == nil {
		return true
	}
	inc, ok := l.cfg.Verifier.Incarnation(s.tenant)
	return ok && inc.Number == s.inc
}

// New builds a listener; Start listens.
func New(cfg Config, ingest Ingest) *Listener {
	cfg.setDefaults()
	l := &Listener{cfg: cfg, ingest: ingest, log: cfg.Logger, m: cfg.Metrics, clients: map[*mochi.Client]*session{}, perTenant: map[eddy.TenantID]int64{},
		repeats: logkey.NewRepeats(30 * time.Second),
		stop:    make(chan struct{}), done: make(chan struct{}), publishDeadline: deadline.New(cfg.PublishTimeout)}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPacketBytes)
	caps.ReceiveMaximum = cfg.ReceiveMaximum
	// A stream keeps within the receive maximum; the rest of mochi's
	// inflight room is for a session taken over while connected, whose
	// unacknowledged deliveries mochi hands to the new connection (a
	// session that went drops them: OnDisconnect).
	caps.MaximumInflight = uint16(min(2*int(cfg.ReceiveMaximum), 65535))
	caps.TopicAliasMaximum = uint16(min(cfg.MaxTopicAliases, 65535))
	caps.RetainAvailable = 1 // retained publishes are records (retained.go); mochi keeps none
	// A persistent session lives in the log (session.go); mochi's client
	// object, which it keeps after a disconnect for this long, is not it.
	// At 3,600 s each connect with a new client id and clean session off
	// left 15 KB behind for an hour: 20,000 connects in 10 s, 313 MB.
	caps.MaximumSessionExpiryInterval = 2
	caps.MaximumClientWritesPending = 1024
	caps.SharedSubAvailable = 0
	if cfg.Log != nil {
		caps.SharedSubAvailable = 1 // $share/group/filter: each record to one member
	}
	// Acknowledgements carry no properties of the publish: mochi would
	// otherwise echo every user property back (700 KB for 100,000).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	l.srv = mochi.New(&mochi.Options{Capabilities: caps, Logger: cfg.Logger.With("component", "mqtt"), InlineClient: false})
	// Live deliveries a subscriber's bounds (64 in flight, 1,024 queued)
	// could not take: counted, not held.
	cfg.Metrics.GetOrCreateGauge("eddy_mqtt_delivery_dropped_total", func() float64 {
		return float64(atomic.LoadInt64(&l.srv.Info.InflightDropped) + atomic.LoadInt64(&l.srv.Info.MessagesDropped))
	})
	cfg.Metrics.RegisterMetricsWriter(l.writeConnectionCounts)
	l.q0 = newQoS0Queue(l, cfg.QoS0Records, cfg.QoS0Bytes, cfg.QoS0Wait)
	if cfg.Log != nil {
		l.fan = newFanout(l, cfg.Log)
		l.retained = &retainedIndex{l: l, parts: map[partAt]*retainedPart{}, byTenant: map[eddy.TenantID]int{}}
	}
	return l
}

// Start listens and serves in the background.
func (l *Listener) Start() error {
	var err error
	if l.ln, err = l.listen("tcp", "mqtt", l.cfg.Addr, nil); err != nil {
		return err
	}
	go l.recheckLoop() // Close stops it once l.ln is set
	if err := l.srv.AddHook(&hook{l: l}, nil); err != nil {
		l.ln.ln.Close()
		return err
	}
	if err := l.srv.AddListener(l.ln); err != nil {
		l.ln.ln.Close()
		return err
	}
	if l.cfg.WSAddr != "" {
		ws := func(inner net.Listener) net.Listener {
			return newWSListener(inner, l.cfg.ConnectTimeout, int64(l.cfg.MaxPacketBytes)+5)
		}
		if l.ws, err = l.listen("ws", "mqtt-ws", l.cfg.WSAddr, ws); err == nil {
			err = l.srv.AddListener(l.ws)
		}
		if err != nil {
			l.ln.ln.Close()
			return err
		}
	}
	if err := l.srv.Serve(); err != nil {
		l.ln.ln.Close()
		return err
	}
	l.q0.start()
	return nil
}

// listen binds addr behind the connection guard (and TLS), wrapped (the
// WebSocket upgrade) when wrap is set, with the pre-authentication bounds
// of guardedListener: every way in is bounded alike.
func (l *Listener) listen(id, name, addr string, wrap func(net.Listener) net.Listener) (*guardedListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen %s: %w", name, addr, err)
	}
	guard := netguard.Wrap(ln, netguard.Config{Name: name, MaxConns: l.cfg.MaxConnections, MaxConnsPerIP: l.cfg.MaxConnectionsPerIP,
		Logger: l.log, OnRefused: func(reason string) {
			l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_connections_refused_total{listener=%q,reason=%q}`, name, reason)).Inc()
		}})
	var inner net.Listener = guard
	if l.cfg.TLS != nil {
		inner = tls.NewListener(guard, l.cfg.TLS)
	}
	if wrap != nil {
		inner = wrap(inner)
	}
	return &guardedListener{id: id, ln: inner, guard: guard, timeout: l.cfg.ConnectTimeout, maxConn: l.cfg.MaxConnectBytes, log: l.log,
		onDrop: func(reason string) {
			l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_preauth_dropped_total{reason=%q}`, reason)).Inc()
		}, onPanic: l.endPanicked}, nil
}

// WSAddr is the bound WebSocket address ("" when off).
func (l *Listener) WSAddr() string {
	if l.ws == nil {
		return ""
	}
	return l.ws.Address()
}

// Status is the listener's state, for /readyz.
func (l *Listener) Status() netguard.Status {
	if l.ln == nil {
		return netguard.Status{Name: "mqtt"}
	}
	return l.ln.Status()
}

// Addr is the bound address.
func (l *Listener) Addr() string { return l.ln.Address() }

// Close disconnects every client and stops; QoS 0 publishes still queued
// are appended first, within ctx.
func (l *Listener) Close(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
		if l.ln != nil { // started: the recheck loop runs
			<-l.done
		}
	}
	err := l.srv.Close()
	l.wills.close()
	if l.fan != nil {
		l.fan.close()
	}
	l.q0.stop(ctx)
	return err
}

// recheckLoop disconnects, every RecheckInterval, the connections whose
// token lost its standing: its key was removed or replaced, its tenant
// deleted (or deleted and created again), or it expired. Revocation thus
// reaches live connections within a second, not at their next CONNECT.
func (l *Listener) recheckLoop() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.RecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		type live struct {
			cl *mochi.Client
			s  *session
		}
		l.mu.Lock()
		all := make([]live, 0, len(l.clients))
		for cl, s := range l.clients {
			all = append(all, live{cl, s})
		}
		l.mu.Unlock()
		var revoked []*mochi.Client
		for _, c := range all {
			if l.cfg.Verifier.Recheck(c.s.p) != nil || !c.s.tenantAlive(l) {
				revoked = append(revoked, c.cl)
			}
		}
		for _, cl := range revoked {
			l.m.GetOrCreateCounter("eddy_mqtt_revoked_disconnects_total").Inc()
			l.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		}
	}
}

func (l *Listener) session(cl *mochi.Client) *session {
	if s, ok := l.byClient.Load(cl); ok {
		return s.(*session)
	}
	return nil
}

// hook is the listener's mochi hook: authentication, ACL and ingest.
type hook struct {
	mochi.HookBase
	l *Listener
}

func (h *hook) ID() string { return "eddy" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnDisconnect, mochi.OnPacketRead, mochi.OnClientExpired,
		mochi.OnSubscribe, mochi.OnSubscribed, mochi.OnUnsubscribe, mochi.OnPacketEncode, mochi.OnPublishDropped,
		mochi.OnSessionEstablished, mochi.OnUnsubscribed, mochi.OnQosComplete, mochi.OnQosPublish, mochi.OnQosDropped, mochi.OnPacketSent:
		return true
	}
	return false
}

// OnConnectAuthenticate: username is the tenant, password a JWT of that
// tenant.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	l := h.l
	tenant := string(pk.Connect.Username)
	p, err := l.cfg.Verifier.VerifyFrom(pk.Connect.Password, tenants.RemoteAddr(cl.Net.Remote))
	if err != nil || (!p.Operator() && string(p.Tenant) != tenant) || eddy.TenantID(tenant).Validate() != nil {
		code := "token_tenant_mismatch"
		if err != nil {
			code = string(eddy.ErrorCode(err))
		}
		l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_connect_refused_total{code=%q}`, code)).Inc()
		l.log.Debug("mqtt connect refused", logkey.Client, cl.ID, logkey.Remote, cl.Net.Remote, logkey.Tenant, tenant, logkey.Code, code)
		return false
	}
	if !p.MQTTClientID(cl.ID) { // its mqtt-client scopes bind it to other ids: another device's
		l.m.GetOrCreateCounter(`eddy_mqtt_connect_refused_total{code="client_id_not_allowed"}`).Inc()
		l.refuseConnect(cl, packets.ErrClientIdentifierNotValid, packets.ErrClientIdentifierNotValid)
		return false
	}
	s := &session{p: p, tenant: eddy.TenantID(tenant), stats: sessionStats{connected: time.Now()}, client: cl.ID, gone: make(chan struct{}),
		version: cl.Properties.ProtocolVersion}
	s.expiry.Store(pk.Properties.SessionExpiryInterval)
	if incOf := l.cfg.Verifier.Incarnation; incOf != nil {
		inc, ok := incOf(s.tenant)
		s.inc = inc.Number
		if !ok {
			l.m.GetOrCreateCounter(`eddy_mqtt_connect_refused_total{code="not_found"}`).Inc()
			return false
		}
	}
	// Client ids are scoped by tenant: mochi keys sessions by cl.ID, so a
	// device can only ever take over (or learn of) its own tenant's
	// sessions. The tenant cannot contain "/", so the scoped ids of two
	// tenants never meet.
	cl.ID = tenant + "/" + cl.ID
	if rc, ok := cl.Net.Conn.(*replayConn); ok {
		rc.meter.start(l.cfg.Bodies, tenant, l.cfg.MaxPacketBytes)
	}
	if pk.Connect.WillFlag {
		w, code, ok := l.takeWill(cl, s, pk)
		if !ok {
			l.m.GetOrCreateCounter(`eddy_mqtt_connect_refused_total{code="will_refused"}`).Inc()
			l.refuseConnect(cl, code, packets.ErrBadUsernameOrPassword)
			return false
		}
		s.will = w
	}
	if l.wills.cancel(cl.ID) { // the device is back within its will's delay
		l.m.GetOrCreateCounter(`eddy_mqtt_wills_total{outcome="cancelled"}`).Inc()
	}
	l.mu.Lock()
	if q := l.ingest.MaxConnections(s.tenant); q > 0 && l.perTenant[s.tenant] >= q {
		l.mu.Unlock()
		l.m.GetOrCreateCounter(`eddy_mqtt_connect_refused_total{code="quota_exceeded"}`).Inc()
		l.refuseConnect(cl, packets.ErrQuotaExceeded, packets.ErrServerUnavailable)
		return false
	}
	l.clients[cl] = s
	l.byClient.Store(cl, s)
	l.perTenant[s.tenant]++
	l.mu.Unlock()
	l.m.GetOrCreateCounter("eddy_mqtt_connects_total").Inc()
	return true
}

// OnClientExpired: mochi forgets a client that went (after
// MaximumSessionExpiryInterval) but leaves its filters in its topic tree;
// they go with it.
func (h *hook) OnClientExpired(cl *mochi.Client) {
	h.l.srv.UnsubscribeClient(cl)
}

// refuseConnect answers a CONNECT with a CONNACK that says why, code for
// MQTT 5 and v3 for 3.1.1 (a code mochi turns into a 3.1.1 return code:
// ErrServerUnavailable is 3, ErrBadUsernameOrPassword 5, not authorized),
// and closes the connection; mochi's own refusal, which would say bad
// credentials, finds it closed.
func (l *Listener) refuseConnect(cl *mochi.Client, code, v3 packets.Code) {
	if cl.Properties.ProtocolVersion < 5 {
		code = v3
	}
	l.srv.SendConnack(cl, code, false, nil)
	cl.Stop(code)
}

// OnDisconnect ends the session: its stream commits what was
// acknowledged, mochi's copies of the deliveries that were not are
// dropped, and its will goes.
func (h *hook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.l.mu.Lock()
	s, ok := h.l.clients[cl]
	if !ok {
		h.l.mu.Unlock()
		return
	}
	delete(h.l.clients, cl)
	h.l.byClient.Delete(cl)
	close(s.gone)
	if h.l.perTenant[s.tenant]--; h.l.perTenant[s.tenant] <= 0 {
		delete(h.l.perTenant, s.tenant)
	}
	h.l.mu.Unlock()
	if st := s.stream.Load(); st != nil {
		st.close()
		// A persistent session gets what it did not acknowledge again
		// from the log. mochi would keep its copies with the offline
		// session, to send again, for as long as it keeps the session:
		// ten sessions that left 500 KB records unacknowledged held 293 MB.
		cl.ClearInflights()
	}
	h.l.willGone(cl, s)
}

// OnACLCheck: a client may publish to what its token's produce scopes
// allow, and read (subscribe; each delivery) what its consume scopes
// allow, within its tenant (subscribe.go).
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if !write {
		s := h.l.session(cl)
		return h.l.fan != nil && s != nil && s.mayRead(topic)
	}
	if refusal(topic) != nil {
		return true // OnPublish answers it with its reason code
	}
	s := h.l.session(cl)
	if s == nil {
		return false
	}
	_, err := h.l.produceTarget(s, topic, nil)
	return err == nil
}
