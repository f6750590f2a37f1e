package mqtt

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/tenants"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Subscriptions are backed by the log. A device subscribes to MQTT
// filters; the records appended to its tenant's topics (from any ingress)
// are delivered to it. mochi does the MQTT side (matching, QoS 1 inflight,
// receive maximum, shared subscriptions); Eddy feeds it and keeps the
// tenants apart:
//
//   - Every filter a client of tenant T subscribes to is rewritten to
//     T/+/filter ($share/g/filter to $share/g/T/+/filter), and every record
//     of T's topic E is published into mochi as T/E/name, name being the
//     MQTT topic the record came from (its mqtt.topic header) or else
//     E/key (E without a key). So a filter of one tenant can never match
//     another's records, whatever its wildcards, empty levels or
//     characters; on the way out the T/E/ prefix is taken off again.
//   - Each delivery is checked against the receiving token's consume
//     scopes for E (mochi asks the ACL per delivery), so a wildcard
//     filter reaches only the topics the token may read.
//   - A tenant's topics are tailed on this node while it has subscribers
//     here, from their end: a subscription gets what is appended after it.
//   - A client too slow for its bounded write queue is disconnected (and
//     counted) rather than buffered for.

// Log is what subscriptions read: the tenant's topics and their records
// (the node wires its consume path).
type Log interface {
	// Topics are the tenant's topics with their partition counts.
	Topics(tenant eddy.TenantID) map[eddy.TopicName]int32
	// End is a partition's high watermark.
	End(ref eddy.TopicRef, p eddy.Partition) (int64, error)
	// Read answers the committed records from offset (waiting up to wait
	// for one) and the offset after them.
	Read(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, wait time.Duration) ([]eddy.FetchedRecord, int64, error)
}

// fanout feeds mochi with the records of the tenants that have
// subscribers on this node.
type fanout struct {
	l      *Listener
	src    Log
	inline *mochi.Client
	base   context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	tenants map[eddy.TenantID]*feed
}

type feed struct {
	subscribers int
	cancel      context.CancelFunc
}

func newFanout(l *Listener, src Log) *fanout {
	base, stop := context.WithCancel(context.Background())
	return &fanout{l: l, src: src, inline: l.srv.NewClient(nil, "eddy", "eddy-fanout", true), base: base, stop: stop,
		tenants: map[eddy.TenantID]*feed{}}
}

// add counts a subscribed client of t; the first starts t's feed.
func (f *fanout) add(t eddy.TenantID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.tenants[t]
	if fd == nil {
		ctx, cancel := context.WithCancel(f.base)
		fd = &feed{cancel: cancel}
		f.tenants[t] = fd
		f.wg.Add(1)
		go f.feed(ctx, t)
	}
	fd.subscribers++
}

// remove uncounts one; the last stops the feed.
func (f *fanout) remove(t eddy.TenantID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd := f.tenants[t]; fd != nil {
		if fd.subscribers--; fd.subscribers <= 0 {
			fd.cancel()
			delete(f.tenants, t)
		}
	}
}

func (f *fanout) close() {
	f.stop()
	f.wg.Wait()
}

// feed tails every partition of t's topics (new topics within 2 s).
func (f *fanout) feed(ctx context.Context, t eddy.TenantID) {
	defer f.wg.Done()
	type part struct {
		topic eddy.TopicName
		p     eddy.Partition
	}
	tails := map[part]context.CancelFunc{}
	defer func() {
		for _, cancel := range tails {
			cancel()
		}
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		want := map[part]bool{}
		for topic, n := range f.src.Topics(t) {
			for p := int32(0); p < n; p++ {
				want[part{topic, eddy.Partition(p)}] = true
			}
		}
		for k, cancel := range tails {
			if !want[k] {
				cancel()
				delete(tails, k)
			}
		}
		for k := range want {
			if tails[k] == nil {
				tctx, cancel := context.WithCancel(ctx)
				tails[k] = cancel
				f.wg.Add(1)
				go f.tail(tctx, eddy.TopicRef{Tenant: t, Name: k.topic}, k.p)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tail delivers one partition's records from its end on.
func (f *fanout) tail(ctx context.Context, ref eddy.TopicRef, p eddy.Partition) {
	defer f.wg.Done()
	off := int64(-1)
	for ctx.Err() == nil {
		if off < 0 {
			end, err := f.src.End(ref, p)
			if err != nil {
				sleep(ctx, time.Second)
				continue
			}
			off = end
		}
		recs, next, err := f.src.Read(ctx, ref, p, off, 10*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				f.l.log.Debug("mqtt subscription feed", logkey.Topic, ref, logkey.Err, err)
				if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
					off = -1 // retention passed it: go on from the end
				}
				sleep(ctx, time.Second)
			}
			continue
		}
		for i := range recs {
			f.deliver(ref, &recs[i])
		}
		off = next
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// deliver publishes a record into mochi under its tenant's namespace; mochi
// hands it to the matching subscribers (QoS 1 at most), each checked
// against its token.
func (f *fanout) deliver(ref eddy.TopicRef, r *eddy.FetchedRecord) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1,
		TopicName: string(ref.Tenant) + "/" + string(ref.Name) + "/" + mqttName(ref.Name, r), Payload: r.Value}
	withHeaders(&pk, r)
	if err := f.l.srv.InjectPacket(f.inline, pk); err != nil {
		f.l.log.Debug("mqtt delivery", logkey.Topic, ref, logkey.Err, err)
	}
}

// mqttName is the MQTT topic a record is delivered on: the one it was
// published to (mqtt.topic), else topic/key, else the topic.
func mqttName(topic eddy.TopicName, r *eddy.FetchedRecord) string {
	for _, h := range r.Headers {
		if h.Key == "mqtt.topic" && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	if len(r.Key) > 0 {
		return string(topic) + "/" + string(r.Key)
	}
	return string(topic)
}

// scopeFilter rewrites a client's filter into its tenant's namespace;
// other $ filters ($SYS) are left to be refused.
func scopeFilter(t eddy.TenantID, filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok {
			return filter // invalid: mochi refuses it
		}
		return "$share/" + group + "/" + string(t) + "/+/" + f
	}
	if strings.HasPrefix(filter, "$") {
		return filter
	}
	return string(t) + "/+/" + filter
}

// unscope takes the tenant and Eddy topic levels off a delivered topic
// (and a persistent session's $eddy/<n>/ before them).
func unscope(name string) string {
	if rest, ok := strings.CutPrefix(name, "$eddy/"); ok {
		if _, after, ok := strings.Cut(rest, "/"); ok {
			name = after
		}
	}
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if j := strings.IndexByte(name[i+1:], '/'); j >= 0 {
			return name[i+1+j+1:]
		}
	}
	return name
}

// mayRead is the ACL for reading: a scoped filter (subscribe) needs some
// consume scope; a delivery T/E/... needs the scope for topic E of the
// session's tenant. Anything outside the session's tenant is refused.
func (s *session) mayRead(name string) bool {
	if r := s.replay.Load(); r != nil && strings.HasPrefix(name, r.prefix) {
		// Its replay's delivery: still only the topics it may read.
		rest, _ := strings.CutPrefix(name, r.prefix+string(s.tenant)+"/")
		topic, _, _ := strings.Cut(rest, "/")
		return s.p.Can(tenants.Consume, s.tenant, eddy.TopicName(topic))
	}
	rest, shared := strings.CutPrefix(name, "$share/")
	if shared {
		var ok bool
		if _, name, ok = strings.Cut(rest, "/"); !ok { // past the group
			return false
		}
	}
	rest, ok := strings.CutPrefix(name, string(s.tenant)+"/")
	if !ok {
		return false // another tenant's, $SYS, or not scoped
	}
	topic, _, _ := strings.Cut(rest, "/")
	if topic == "+" {
		// A persistent session's filters are replayed from its place in
		// the log (session.go), shared groups are live only.
		return s.p.Consumes() && !(s.replay.Load() != nil && shared)
	}
	if s.replay.Load() != nil {
		return false // its replay delivers, not the live feed
	}
	return s.p.Can(tenants.Consume, s.tenant, eddy.TopicName(topic))
}

// OnSubscribe scopes the filters to the client's tenant and grants QoS 1
// at most (a QoS 2 subscription is served as QoS 1).
func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if s := h.l.session(cl); s != nil && h.l.fan != nil {
		for i := range pk.Filters {
			pk.Filters[i].Filter = scopeFilter(s.tenant, pk.Filters[i].Filter)
			pk.Filters[i].Qos = min(pk.Filters[i].Qos, 1)
		}
	}
	return pk
}

// OnSubscribed counts the client in its tenant's feed at its first
// granted subscription.
func (h *hook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	l := h.l
	if l.fan == nil || !slices.ContainsFunc(codes, func(c byte) bool { return c < 0x80 }) {
		return
	}
	h.sessionFilters(cl, pk, codes, true)
	if s := l.session(cl); s != nil && s.replay.Load() != nil {
		return // a persistent session is fed by its replay, not the live feed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.clients[cl]; s != nil && !s.subscribed {
		s.subscribed = true
		l.fan.add(s.tenant)
	}
}

func (h *hook) OnUnsubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	return h.OnSubscribe(cl, pk)
}

// OnPacketEncode takes the tenant and topic levels off what a subscriber
// receives.
func (h *hook) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Publish && pk.TopicName != "" {
		pk.TopicName = unscope(pk.TopicName)
	}
	return pk
}

// OnPublishDropped: a subscriber's write queue is full; it is disconnected
// (counted) rather than buffered for.
func (h *hook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	h.l.m.GetOrCreateCounter("eddy_mqtt_slow_subscriber_disconnects_total").Inc()
	go h.l.srv.DisconnectClient(cl, packets.ErrServerBusy)
}
