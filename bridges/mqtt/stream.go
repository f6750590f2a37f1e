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
	"github.com/eddy-broker/eddy/tenants"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// stream is what a subscribed session is sent: the records of its
// filters, at most its window unacknowledged (QoS 1) or unwritten (QoS 0).
// Deliveries go through mochi (packet ids, inflight, resends, the write
// queue) on a topic only this session is subscribed to, $eddy/<n>/...;
// the window keeps mochi's queues from ever filling, so nothing is dropped
// there: what does not fit waits in the log (follow.go).
//
// Each delivery carries where it came from (partition@offset) in the
// publish's Filters, which a publish does not otherwise use and mochi
// copies along. A persistent session's positions move as PUBACKs arrive
// (session.go); a clean session's are not kept.
type stream struct {
	l      *Listener
	cl     *mochi.Client
	s      *session
	prefix string // $eddy/<n>/
	window chan struct{}
	fol    *follower
	store  bool        // a persistent session: positions are committed
	fanned atomic.Bool // counted in its tenant's fanout
	// options: a filter has an MQTT 5 subscription option; noLocal: a
	// filter is no local (its device's publishes carry its client id).
	options, noLocal atomic.Bool
	// gate, while set, holds deliveries back (retained.go).
	gate atomic.Pointer[chan struct{}]
	// stuck is how long a full window may go without an acknowledgement
	// before the device is disconnected.
	stuck   time.Duration
	commits sync.WaitGroup

	mu        sync.Mutex
	groups    map[string]bool // the shared groups it is a member of
	filters   []Filter
	inflight  map[uint16]sentRecord // packet id -> what it carries
	parts     map[string]*partState
	committed map[string]int64 // acknowledged up to here, by partition
	recorded  map[string]int64 // what the stored session holds
}

// sentRecord is what a delivery carries: a partition's record of a
// persistent session, or a delivery that moves no position (part "").
type sentRecord struct {
	part string
	off  int64
}

// partState is a partition's deliveries: sent but not acknowledged, and
// the offset after the last one sent or passed.
type partState struct {
	open map[int64]bool
	high int64
}

// Origins carried by deliveries that move no position: retained ones,
// and those of shared groups and clean sessions.
const (
	originRetained  = "retained"
	originUntracked = "-"
)

// streams numbers streams, for their delivery topics.
var streams atomic.Uint64

// newStream starts a session's stream; its followers start with the
// session's first filter.
func (l *Listener) newStream(cl *mochi.Client, s *session, store bool) *stream {
	window := int(l.cfg.ReceiveMaximum)
	if rm := int(cl.Properties.Props.ReceiveMaximum); rm > 0 && rm < window {
		window = rm
	}
	// The stream keeps the device's receive maximum itself (window);
	// mochi's own quota, which holds deliveries past it and then loses
	// track of their acknowledgements, stays out of the way.
	cl.State.Inflight.ResetSendQuota(0)
	st := &stream{l: l, cl: cl, s: s, store: store, window: make(chan struct{}, window), stuck: l.cfg.StuckTimeout,
		prefix: "$eddy/" + strconv.FormatUint(streams.Add(1), 10) + "/",
		groups: map[string]bool{}, inflight: map[uint16]sentRecord{}, parts: map[string]*partState{}, committed: map[string]int64{}, recorded: map[string]int64{}}
	st.fol = newFollower(l, s.tenant, st)
	st.fol.tracks = store
	l.srv.Topics.Subscribe(cl.ID, packets.Subscription{Filter: st.prefix + "#", Qos: 1})
	return st
}

// close ends the stream's deliveries and records a persistent session's
// positions.
func (st *stream) close() {
	if st.fanned.Load() {
		st.l.fan.remove(st.s.tenant, st.cl.ID, st.fol)
	}
	st.mu.Lock()
	groups := slices.Collect(maps.Keys(st.groups))
	st.mu.Unlock()
	for _, key := range groups {
		st.l.fan.leave(st.s.tenant, key, st)
	}
	st.fol.stop()
	st.commits.Wait()
	st.commit()
	if st.store {
		st.gone()
	}
	st.l.srv.Topics.Unsubscribe(st.prefix+"#", st.cl.ID)
}

// join makes the session a member of a shared group (a scoped filter).
func (st *stream) join(key string, qos byte, id int) {
	st.mu.Lock()
	st.groups[key] = true
	st.mu.Unlock()
	st.l.fan.join(st.s.tenant, key, qos, id, st)
}

func (st *stream) leave(key string) {
	st.mu.Lock()
	delete(st.groups, key)
	st.mu.Unlock()
	st.l.fan.leave(st.s.tenant, key, st)
}

func (st *stream) part(key string) *partState { // under st.mu
	ps := st.parts[key]
	if ps == nil {
		ps = &partState{open: map[int64]bool{}}
		st.parts[key] = ps
	}
	return ps
}

// matching is what the session's filters that match name ask of a
// delivery: the subscription identifiers it carries (MQTT 5 3.3.4: every
// one; nil when none has one), whether every one is no local, and
// whether one keeps the retain flag as published.
func (st *stream) matching(name string) (ids map[string]int, noLocal, retainAsPublished bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	noLocal = true
	for _, f := range st.filters {
		if !tenants.MatchFilter(f.Filter, name) {
			continue
		}
		if f.ID > 0 {
			if ids == nil {
				ids = map[string]int{}
			}
			ids[f.Filter] = f.ID
		}
		noLocal = noLocal && f.NoLocal
		retainAsPublished = retainAsPublished || f.RetainAsPublished
	}
	return ids, noLocal, retainAsPublished
}

// echo reports whether rec is the device's own publish coming back
// through filters that are all no local: it is not sent.
func (st *stream) echo(ref eddy.TopicRef, rec *eddy.FetchedRecord) bool {
	if !st.noLocal.Load() {
		return false
	}
	for _, h := range rec.Headers {
		if h.Key == headerClientID {
			if string(h.Value) != st.s.client {
				return false
			}
			_, noLocal, _ := st.matching(st.l.mqttName(ref, rec))
			return noLocal
		}
	}
	return false
}

func (st *stream) qos(name string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	q := -1
	for _, f := range st.filters {
		if tenants.MatchFilter(f.Filter, name) {
			q = max(q, int(min(f.QoS, 1)))
		}
	}
	return q
}

// send takes a window slot (waiting if asked, up to the stuck timeout)
// and hands the record to mochi.
func (st *stream) send(ctx context.Context, ref eddy.TopicRef, part string, rec *eddy.FetchedRecord, qos int, wait bool) bool {
	if g := st.gate.Load(); g != nil {
		if !wait {
			return false
		}
		select {
		case <-*g:
		case <-ctx.Done():
			return false
		}
	}
	off := int64(rec.Offset)
	if st.l.expired(rec) || st.echo(ref, rec) || !st.reads(ref, rec) { // not sent: done with, as if acknowledged
		st.passed(part, off+1)
		return true
	}
	if !st.take(ctx, wait) {
		return false
	}
	origin := originUntracked // a clean session keeps no positions
	if st.store {
		st.mu.Lock()
		ps := st.part(part)
		ps.high = max(ps.high, off+1)
		ps.open[off] = true
		st.mu.Unlock()
		origin = part + "@" + strconv.FormatInt(off, 10)
	} else {
		part = ""
	}
	if !st.inject(ref, rec, qos, origin, nil) {
		st.ack(part, off)
		return false
	}
	return true
}

// reads reports whether the session may receive rec of ref: its consume
// scopes cover the topic, or its MQTT scopes the MQTT topic rec goes out
// on. mochi asks much the same of each delivery (mayRead, which cannot
// tell where a name came from) and drops one it refuses without a word,
// so a record the session may not read is never sent: it would hold a
// window slot for good, and a wildcard filter matching a topic the token
// may not read stalled the device after its receive maximum of such
// records.
//
// An mqtt-sub scope grants MQTT topics, whatever Eddy topic holds them,
// so a record's name must be one its topic may carry: one Eddy made of
// the topic and key, or an mqtt.topic header that the tenant's mapping
// sends to that topic (as a publish to it would have written). Else
// whoever may produce to one topic (sensors) could write a record whose
// header names another device's command topic (devices/dev-17/cmd).
func (st *stream) reads(ref eddy.TopicRef, rec *eddy.FetchedRecord) bool {
	p := st.s.p
	if p.Can(tenants.Consume, ref.Tenant, ref.Name) {
		return true
	}
	if !p.HasMQTTSubscribe() {
		return false
	}
	name, own := st.l.deliveryName(ref, rec)
	if !p.MQTTSubscribes(name) {
		return false
	}
	if !own {
		return true
	}
	to, _, _, err := st.l.ingest.Mapping(ref.Tenant).Map(ref.Tenant, name, nil)
	return err == nil && to == ref
}

// take waits for a window slot; a device whose full window sees no
// acknowledgement for the stuck timeout is disconnected.
func (st *stream) take(ctx context.Context, wait bool) bool {
	select {
	case st.window <- struct{}{}:
		return true
	default:
	}
	if !wait {
		return false
	}
	t := time.NewTimer(st.stuck)
	defer t.Stop()
	select {
	case st.window <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		st.l.m.GetOrCreateCounter("eddy_mqtt_slow_subscriber_disconnects_total").Inc()
		go st.l.srv.DisconnectClient(st.cl, packets.ErrServerBusy)
		return false
	}
}

// inject publishes a delivery on the stream's own topic; mochi sends it to
// this session only. ids are a shared group's subscription identifier for
// the delivery (nil: those of the session's own matching filters).
func (st *stream) inject(ref eddy.TopicRef, rec *eddy.FetchedRecord, qos int, origin string, ids map[string]int) bool {
	// A packet id only at QoS 1 (mochi refuses one at QoS 0, "surplus
	// packet id"); mochi gives each delivery the session's own.
	var id uint16
	if qos > 0 {
		id = 1
	}
	name := st.l.mqttName(ref, rec)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: byte(qos)}, PacketID: id,
		TopicName: st.prefix + string(ref.Tenant) + "/" + string(ref.Name) + "/" + name, Payload: rec.Value,
		// Read back by OnQosPublish and OnPacketSent, the subscription
		// identifiers and retain as published by OnPacketEncode (mochi
		// refuses a publish that carries identifiers); mochi copies the
		// filters of a publish along and encodes none.
		Filters: packets.Subscriptions{{Filter: origin}}}
	if st.options.Load() && ids == nil {
		own, _, rap := st.matching(name)
		ids, pk.Filters[0].RetainAsPublished = own, rap && isRetained(rec)
	}
	pk.Filters[0].Identifiers = ids
	withHeaders(&pk, rec)
	return st.l.srv.InjectPacket(st.l.fan.inline, pk) == nil
}

// sent: mochi gave a QoS 1 delivery its packet id (OnQosPublish).
func (st *stream) sent(id uint16, origin string) {
	st.mu.Lock()
	st.inflight[id] = parseOrigin(origin)
	st.mu.Unlock()
}

// written: a QoS 0 delivery left (OnPacketSent): its slot is free.
func (st *stream) written(origin string) {
	so := parseOrigin(origin)
	st.ack(so.part, so.off)
}

// acked: the device acknowledged packet id (OnQosComplete).
func (st *stream) acked(id uint16) {
	st.mu.Lock()
	so, ok := st.inflight[id]
	delete(st.inflight, id)
	st.mu.Unlock()
	if ok {
		st.ack(so.part, so.off)
	}
}

// dropped: mochi dropped delivery id from its inflight before its PUBACK
// (OnQosDropped: it caps an inflight delivery's age at a day): its window
// slot is free, so the deliveries behind it go on; a persistent session's
// position stays before it, so it is sent again after a reconnect. (Before,
// the slot was held for good.)
func (st *stream) dropped(id uint16, origin string) {
	so := parseOrigin(origin)
	st.mu.Lock()
	cur, ok := st.inflight[id]
	if ok = ok && cur == so; ok {
		delete(st.inflight, id)
	}
	st.mu.Unlock()
	if ok {
		<-st.window
	}
}

func parseOrigin(origin string) sentRecord {
	key, off, ok := strings.Cut(origin, "@")
	n, err := strconv.ParseInt(off, 10, 64)
	if !ok || err != nil {
		return sentRecord{off: -1}
	}
	return sentRecord{part: key, off: n}
}

// ack frees a slot and marks an offset done: the position is then the
// lowest offset still open, or the offset after the last one sent or
// passed.
func (st *stream) ack(part string, off int64) {
	<-st.window
	if part == "" {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ps := st.part(part)
	delete(ps.open, off)
	st.settle(part, ps)
}

func (st *stream) passed(part string, next int64) {
	if !st.store {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ps := st.part(part)
	ps.high = max(ps.high, next)
	st.settle(part, ps)
}

func (st *stream) settle(part string, ps *partState) { // under st.mu
	pos := ps.high
	for o := range ps.open {
		pos = min(pos, o)
	}
	if pos > st.committed[part] {
		st.committed[part] = pos
	}
}

// setFilters replaces the session's filters (SUBSCRIBE, UNSUBSCRIBE).
// Partitions it has no place in start at their ends (a persistent
// session records those starts with its filters).
func (st *stream) setFilters(filters []Filter) error {
	bounds := st.bounds()
	starts := make(map[string]int64, len(bounds))
	for a, b := range bounds {
		starts[partKey(a.ref.Name, a.p)] = b.end
	}
	if st.store {
		ctx, cancel := context.WithTimeout(context.Background(), st.l.cfg.PublishTimeout)
		defer cancel()
		if err := st.l.cfg.Sessions.Save(ctx, st.s.tenant, st.s.client, filters, starts, st.l.sessionExpiry(st.s)); err != nil {
			return err
		}
		_, stored, _ := st.l.cfg.Sessions.Load(st.s.tenant, st.s.client)
		for k := range starts {
			if v, ok := stored[k]; ok {
				starts[k] = v
			}
		}
	}
	st.begin(filters, starts, false, bounds)
	return nil
}

// begin sets the filters and places the stream in every partition
// (bounds: the partitions it may read, nil to look them up) before the
// tail offers it anything: at its position if it has one, else at the
// partition's end, or (fromStart: a persistent session coming back) at
// its start, the partition being newer than the session's filters.
func (st *stream) begin(filters []Filter, positions map[string]int64, fromStart bool, bounds map[partAt]logBounds) {
	st.mu.Lock()
	st.filters = filters
	st.options.Store(slices.ContainsFunc(filters, Filter.options))
	st.noLocal.Store(slices.ContainsFunc(filters, func(f Filter) bool { return f.NoLocal }))
	for k, v := range positions {
		if _, ok := st.committed[k]; !ok {
			st.committed[k], st.recorded[k] = v, v
		}
	}
	st.mu.Unlock()
	if len(filters) == 0 {
		return
	}
	if bounds == nil {
		bounds = st.bounds()
	}
	for a, b := range bounds {
		off, ok := positions[partKey(a.ref.Name, a.p)]
		if !ok && fromStart {
			off = b.start
		} else if !ok {
			off = b.end
		}
		st.fol.place(a.ref, a.p, off, b.end)
	}
	if !st.fanned.Swap(true) {
		st.l.fan.add(st.s.tenant, st.cl.ID, st.fol)
	}
}

type logBounds struct{ start, end int64 }

// bounds are the log start and end of each partition the session may
// read (those unavailable now are left out).
func (st *stream) bounds() map[partAt]logBounds {
	out := map[partAt]logBounds{}
	for _, a := range st.partitions() {
		if start, end, err := st.l.cfg.Log.Bounds(a.ref, a.p); err == nil {
			out[a] = logBounds{start, end}
		}
	}
	return out
}

type partAt struct {
	ref eddy.TopicRef
	p   eddy.Partition
}

// partitions are those of the tenant's topics the session may read.
func (st *stream) partitions() []partAt {
	var out []partAt
	for topic, n := range st.l.cfg.Log.Topics(st.s.tenant) {
		// With an mqtt-sub scope, any topic may hold records on the MQTT
		// topics it grants (send leaves out the others).
		if !st.s.p.Can(tenants.Consume, st.s.tenant, topic) && !st.s.p.HasMQTTSubscribe() {
			continue
		}
		for p := int32(0); p < n; p++ {
			out = append(out, partAt{eddy.TopicRef{Tenant: st.s.tenant, Name: topic}, eddy.Partition(p)})
		}
	}
	return out
}

// filterList is the session's filters after a SUBSCRIBE (add) or
// UNSUBSCRIBE of pk's scoped filters.
func (st *stream) filterList(pk packets.Packet, codes []byte, add bool) []Filter {
	st.mu.Lock()
	filters := slices.Clone(st.filters)
	st.mu.Unlock()
	for i, sub := range pk.Filters {
		if isShared(sub.Filter) {
			continue
		}
		f := unscopeFilter(st.s.tenant, sub.Filter)
		filters = slices.DeleteFunc(filters, func(x Filter) bool { return x.Filter == f })
		if add && i < len(codes) && codes[i] < 0x80 {
			filters = append(filters, Filter{Filter: f, QoS: min(sub.Qos, 1), ID: sub.Identifier, NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished})
		}
	}
	return filters
}
