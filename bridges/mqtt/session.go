package mqtt

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/tenants"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Persistent sessions (MQTT 5 clean start false with a session expiry,
// 3.1.1 clean session false) keep their place in the log, not a queue:
// the session's filters and, per partition, the offset of the next record
// it has not acknowledged are a consumer group of the tenant
// (mqtt.<client id>, in `eddy group describe`), committed as PUBACKs
// arrive. Connected, the device is fed from those offsets by a replay of
// its own, in order per partition, at most its receive maximum
// unacknowledged; offline, nothing is held for it. When it comes back
// (to any node, after any restart) it gets what it missed. A clean start
// drops the session.

// Filter is a subscription of a persistent session.
type Filter struct {
	Filter string
	QoS    byte
}

// Sessions keep persistent sessions: filters and positions ("topic/p" ->
// the next offset), by tenant and client id.
type Sessions interface {
	Load(tenant eddy.TenantID, client string) (filters []Filter, positions map[string]int64, ok bool)
	// Save records the filters (nil: drops the session) and where
	// partitions without a position start.
	Save(ctx context.Context, tenant eddy.TenantID, client string, filters []Filter, starts map[string]int64) error
	Commit(ctx context.Context, tenant eddy.TenantID, client string, positions map[string]int64) error
}

// replay feeds one connected persistent session.
type replay struct {
	l      *Listener
	cl     *mochi.Client
	s      *session
	client string // as the device named itself
	prefix string // $eddy/<n>/: its deliveries' topics in mochi, reached by a hidden subscription
	cancel context.CancelFunc
	window chan struct{} // a slot per unacknowledged QoS 1 delivery
	// ready opens deliveries: at the session's first SUBSCRIBE, or a
	// second after CONNECT for a device that does not subscribe again.
	// (mochi checks a client's SUBSCRIBE packet id against the ids of its
	// own deliveries, so deliveries begun before it would refuse it.)
	ready     chan struct{}
	readyOnce sync.Once

	mu        sync.Mutex
	filters   []Filter
	inflight  map[uint16]partOffset // packet id -> what it carries
	parts     map[string]*partState
	next      map[string]int64 // partition -> the offset after the last read
	committed map[string]int64 // the positions: acknowledged up to here
	recorded  map[string]int64 // what the group holds
	wg        sync.WaitGroup
}

// partState is a partition's deliveries: sent but not acknowledged, and
// the offset after the last one sent or passed.
type partState struct {
	open map[int64]bool
	high int64
}

func (r *replay) part(key string) *partState { // under r.mu
	st := r.parts[key]
	if st == nil {
		st = &partState{open: map[int64]bool{}}
		r.parts[key] = st
	}
	return st
}

type partOffset struct {
	part string
	off  int64
}

func partKey(topic eddy.TopicName, p eddy.Partition) string {
	return string(topic) + "/" + strconv.Itoa(int(p))
}

// persistent reports whether the client asked for a session that outlives
// its connection.
func persistent(cl *mochi.Client) bool {
	return !cl.Properties.Clean && (cl.Properties.ProtocolVersion < 5 || cl.Properties.Props.SessionExpiryInterval > 0)
}

// startReplay begins feeding a persistent session from its stored place.
func (l *Listener) startReplay(cl *mochi.Client, s *session) *replay {
	filters, positions, _ := l.cfg.Sessions.Load(s.tenant, s.client)
	window := int(l.cfg.ReceiveMaximum)
	if rm := int(cl.Properties.Props.ReceiveMaximum); rm > 0 && rm < window {
		window = rm
	}
	// The replay keeps the device's receive maximum itself (window);
	// mochi's own quota, which holds deliveries past it and then loses
	// track of their acknowledgements, stays out of the way.
	cl.State.Inflight.ResetSendQuota(0)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replay{l: l, cl: cl, s: s, client: s.client, cancel: cancel, window: make(chan struct{}, window), filters: filters,
		prefix: "$eddy/" + strconv.FormatUint(replays.Add(1), 10) + "/", ready: make(chan struct{}),
		inflight: map[uint16]partOffset{}, parts: map[string]*partState{}, next: map[string]int64{}, committed: positions, recorded: maps.Clone(positions)}
	if r.committed == nil {
		r.committed, r.recorded = map[string]int64{}, map[string]int64{}
	}
	// Deliveries go through mochi (its inflight, resends, write queue) on
	// a topic only this session is subscribed to.
	l.srv.Topics.Subscribe(cl.ID, packets.Subscription{Filter: r.prefix + "#", Qos: 1})
	r.wg.Add(2)
	go r.feed(ctx)
	go r.commits(ctx)
	time.AfterFunc(time.Second, r.open)
	return r
}

func (r *replay) open() { r.readyOnce.Do(func() { close(r.ready) }) }

// stop ends the replay and commits what was acknowledged.
func (r *replay) stop() {
	r.cancel()
	r.wg.Wait()
	r.l.srv.Topics.Unsubscribe(r.prefix+"#", r.cl.ID)
	r.commit()
}

// replays numbers replays, for their delivery topics.
var replays atomic.Uint64

// setFilters replaces the session's filters (SUBSCRIBE, UNSUBSCRIBE) and
// records them; new partitions start at their ends.
func (r *replay) setFilters(filters []Filter) error {
	starts := map[string]int64{}
	for topic, n := range r.l.cfg.Log.Topics(r.s.tenant) {
		for p := int32(0); p < n; p++ {
			if end, err := r.l.cfg.Log.End(eddy.TopicRef{Tenant: r.s.tenant, Name: topic}, eddy.Partition(p)); err == nil {
				starts[partKey(topic, eddy.Partition(p))] = end
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.l.cfg.PublishTimeout)
	defer cancel()
	if err := r.l.cfg.Sessions.Save(ctx, r.s.tenant, r.client, filters, starts); err != nil {
		return err
	}
	_, positions, _ := r.l.cfg.Sessions.Load(r.s.tenant, r.client)
	r.mu.Lock()
	r.filters = filters
	for k, v := range positions {
		if _, ok := r.committed[k]; !ok {
			r.committed[k] = v
		}
	}
	r.mu.Unlock()
	return nil
}

// feed runs a reader per partition of the tenant's topics the token may
// consume (new topics within 2 s).
func (r *replay) feed(ctx context.Context) {
	defer r.wg.Done()
	select {
	case <-r.ready:
	case <-ctx.Done():
		return
	}
	running := map[string]bool{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		for topic, n := range r.l.cfg.Log.Topics(r.s.tenant) {
			if !r.s.p.Can(tenants.Consume, r.s.tenant, topic) {
				continue
			}
			for p := int32(0); p < n; p++ {
				if k := partKey(topic, eddy.Partition(p)); !running[k] {
					running[k] = true
					r.wg.Add(1)
					go r.read(ctx, eddy.TopicRef{Tenant: r.s.tenant, Name: topic}, eddy.Partition(p))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// read delivers one partition from the session's position, in order.
func (r *replay) read(ctx context.Context, ref eddy.TopicRef, p eddy.Partition) {
	defer r.wg.Done()
	key := partKey(ref.Name, p)
	for ctx.Err() == nil {
		r.mu.Lock()
		off, ok := r.next[key]
		if !ok {
			off, ok = r.committed[key]
		}
		subscribed := len(r.filters) > 0
		r.mu.Unlock()
		if !ok || !subscribed { // not subscribed when it was made: wait for a SUBSCRIBE to place it
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		recs, next, err := r.l.cfg.Log.Read(ctx, ref, p, off, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				r.l.log.Debug("mqtt session replay", logkey.Client, r.client, logkey.Topic, ref, logkey.Err, err)
				if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange { // retention passed it
					if end, err := r.l.cfg.Log.End(ref, p); err == nil {
						r.mu.Lock()
						r.next[key], r.committed[key] = end, end
						r.mu.Unlock()
					}
				}
				sleep(ctx, time.Second)
			}
			continue
		}
		for i := range recs {
			if !r.deliver(ctx, ref, key, &recs[i]) {
				return
			}
		}
		r.mu.Lock()
		r.next[key] = next
		r.mu.Unlock()
	}
}

// deliver sends one record if it matches a filter (QoS 1 within the
// window); false once the replay ends.
func (r *replay) deliver(ctx context.Context, ref eddy.TopicRef, key string, rec *eddy.FetchedRecord) bool {
	name := mqttName(ref.Name, rec)
	qos := -1 // the highest of the matching filters', at most 1
	r.mu.Lock()
	for _, f := range r.filters {
		if tenants.MatchFilter(f.Filter, name) {
			qos = max(qos, int(min(f.QoS, 1)))
		}
	}
	st := r.part(key)
	st.high = int64(rec.Offset) + 1
	if qos >= 0 {
		st.open[int64(rec.Offset)] = true
	}
	r.mu.Unlock()
	if qos < 0 {
		r.ack(key, int64(rec.Offset), false) // not for this device: passed
		return true
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: byte(qos)}, PacketID: 1,
		TopicName: r.prefix + string(ref.Tenant) + "/" + string(ref.Name) + "/" + name, Payload: rec.Value,
		// What it carries, read back by OnQosPublish: a publish has no
		// filters, mochi copies them along, and encodes none (it sets
		// Origin itself).
		Filters: packets.Subscriptions{{Filter: key + "@" + strconv.FormatInt(int64(rec.Offset), 10)}}}
	withHeaders(&pk, rec)
	if qos == 1 {
		select {
		case r.window <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	if err := r.l.srv.InjectPacket(r.l.fan.inline, pk); err != nil {
		return false
	}
	if qos == 0 {
		r.ack(key, int64(rec.Offset), false)
	}
	return true
}

// sent: mochi gave a replayed record a packet id (OnQosPublish); origin is
// "partition@offset".
func (r *replay) sent(id uint16, origin string) {
	key, off, ok := strings.Cut(origin, "@")
	n, err := strconv.ParseInt(off, 10, 64)
	if !ok || err != nil {
		return
	}
	r.mu.Lock()
	r.inflight[id] = partOffset{key, n}
	r.mu.Unlock()
}

// acked: the device acknowledged packet id (mochi's OnQosComplete).
func (r *replay) acked(id uint16) {
	r.mu.Lock()
	po, ok := r.inflight[id]
	delete(r.inflight, id)
	r.mu.Unlock()
	r.l.log.Debug("DBG acked", "id", id, "known", ok, "window", len(r.window))
	if ok {
		r.ack(po.part, po.off, true)
	}
}

// ack marks an offset done: the position is then the lowest offset still
// open, or the offset after the last one sent or passed.
func (r *replay) ack(key string, off int64, slot bool) {
	if slot {
		<-r.window
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.part(key)
	delete(st.open, off)
	pos := st.high
	for o := range st.open {
		pos = min(pos, o)
	}
	if pos > r.committed[key] {
		r.committed[key] = pos
	}
}

// commits records the acknowledged positions every second.
func (r *replay) commits(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.commit()
		}
	}
}

// commit records the positions that moved since the last record.
func (r *replay) commit() {
	r.mu.Lock()
	moved := map[string]int64{}
	for k, v := range r.committed {
		if r.recorded[k] != v {
			moved[k] = v
		}
	}
	r.mu.Unlock()
	if len(moved) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.l.cfg.PublishTimeout)
	defer cancel()
	if err := r.l.cfg.Sessions.Commit(ctx, r.s.tenant, r.client, moved); err != nil {
		r.l.log.Debug("mqtt session commit", logkey.Client, r.client, logkey.Err, err)
		return
	}
	r.mu.Lock()
	for k, v := range moved {
		r.recorded[k] = v
	}
	r.mu.Unlock()
}

// withHeaders carries a record's headers as MQTT 5 properties.
func withHeaders(pk *packets.Packet, r *eddy.FetchedRecord) {
	for _, h := range r.Headers {
		switch {
		case h.Key == "content-type":
			pk.Properties.ContentType = string(h.Value)
		case !strings.HasPrefix(h.Key, "mqtt."):
			pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: h.Key, Val: string(h.Value)})
		}
	}
}

// OnSessionEstablished starts a persistent session's replay; a clean
// start drops a session the device had.
func (h *hook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	l := h.l
	s := l.session(cl)
	if s == nil || l.cfg.Sessions == nil || l.cfg.Log == nil {
		return
	}
	if !persistent(cl) {
		if _, _, had := l.cfg.Sessions.Load(s.tenant, s.client); had {
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
			defer cancel()
			if err := l.cfg.Sessions.Save(ctx, s.tenant, s.client, nil, nil); err != nil {
				l.log.Warn("mqtt session not dropped", logkey.Client, s.client, logkey.Err, err)
			}
		}
		return
	}
	s.replay.Store(l.startReplay(cl, s))
}

// sessionFilters updates a persistent session's filters after a SUBSCRIBE
// (add) or UNSUBSCRIBE (remove), from the scoped filters of the packet.
func (h *hook) sessionFilters(cl *mochi.Client, pk packets.Packet, codes []byte, add bool) {
	s := h.l.session(cl)
	if s == nil || s.replay.Load() == nil {
		return
	}
	r := s.replay.Load()
	r.mu.Lock()
	filters := slices.Clone(r.filters)
	r.mu.Unlock()
	for i, sub := range pk.Filters {
		f := unscopeFilter(s.tenant, sub.Filter)
		filters = slices.DeleteFunc(filters, func(x Filter) bool { return x.Filter == f })
		if add && i < len(codes) && codes[i] < 0x80 {
			filters = append(filters, Filter{Filter: f, QoS: min(sub.Qos, 1)})
		}
	}
	if err := r.setFilters(filters); err != nil {
		h.l.log.Warn("mqtt session filters not recorded", logkey.Client, s.client, logkey.Err, err)
	}
	r.open()
}

func (h *hook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	h.sessionFilters(cl, pk, nil, false)
}

// OnQosPublish: mochi sent a replayed record with a packet id.
func (h *hook) OnQosPublish(cl *mochi.Client, pk packets.Packet, sent int64, resends int) {
	if s := h.l.session(cl); s != nil && resends == 0 && len(pk.Filters) == 1 {
		if r := s.replay.Load(); r != nil {
			r.sent(pk.PacketID, pk.Filters[0].Filter)
		}
	}
}

// OnQosComplete: a PUBACK for a replayed record.
func (h *hook) OnQosComplete(cl *mochi.Client, pk packets.Packet) {
	if s := h.l.session(cl); s != nil {
		if r := s.replay.Load(); r != nil {
			r.acked(pk.PacketID)
		}
	}
}

// unscopeFilter is the device's own filter back from its scoped form.
func unscopeFilter(t eddy.TenantID, f string) string {
	return strings.TrimPrefix(f, string(t)+"/+/")
}
