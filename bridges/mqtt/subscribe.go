package mqtt

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
	// Bounds are a partition's log start and high watermark.
	Bounds(ref eddy.TopicRef, p eddy.Partition) (start, end int64, err error)
	// PartitionIncarnation tells one life of a partition from the next: a
	// topic deleted and made again under its name starts its offsets over.
	PartitionIncarnation(ref eddy.TopicRef, p eddy.Partition) (uint64, error)
	// Read answers the committed records from offset, about maxBytes of
	// them (at least one; waiting up to wait for one), and the offset
	// after them.
	Read(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset int64, maxBytes int, wait time.Duration) ([]eddy.FetchedRecord, int64, error)
	// BatchBytesAt is the size of the stored batch holding offset, which
	// Read reads whole whatever its maxBytes (0: none).
	BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset int64) int
}

// fanout tails the topics of the tenants that have subscribers on this
// node, each partition read once, and offers each record to the
// receivers whose filters match it (mochi's topic index finds them).
type fanout struct {
	l      *Listener
	src    Log
	inline *mochi.Client
	base   context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	tenants map[eddy.TenantID]*feed
	groups  map[string]*group // shared subscriptions by scoped filter
	// ver counts changes to the subscriptions: the feeds' caches of what
	// a name matches hold for one version.
	ver atomic.Uint64
}

// changed: a subscription came or went.
func (f *fanout) changed() { f.ver.Add(1) }

// feed is a tenant's tail and the followers it offers to: a session's by
// its (scoped) client id, a shared group's by its scoped filter.
type feed struct {
	cancel    context.CancelFunc
	followers sync.Map // string -> *follower
	n         int

	mu       sync.Mutex
	matches  map[string][]match // scoped name -> who its records go to, at version cacheVer
	cached   int                // the receivers in matches, all names together
	cacheVer uint64
}

// match is a receiver a name's records go to: a session's by client id,
// a shared group's by its filter, at the QoS it asked for.
type match struct {
	key string
	qos int
}

// maxMatches bounds a feed's cache: the receivers of all its names
// together. (Bounded by names alone, 4,096 names each matching 200
// devices' "#" took 26 MB; matching 10,000, it would take a gigabyte.)
const maxMatches = 1 << 16

// match answers who a scoped name's records go to, from mochi's topic
// index (4 maps a lookup) or the cache of this subscription version.
func (fd *feed) match(f *fanout, name string) []match {
	ver := f.ver.Load()
	fd.mu.Lock()
	if fd.cacheVer != ver || fd.cached >= maxMatches {
		fd.matches, fd.cached, fd.cacheVer = map[string][]match{}, 0, ver
	}
	m, ok := fd.matches[name]
	fd.mu.Unlock()
	if ok {
		return m
	}
	subs := f.l.srv.Topics.Subscribers(name)
	for id, sub := range subs.Subscriptions {
		m = append(m, match{id, int(min(sub.Qos, 1))})
	}
	for filter, members := range subs.Shared {
		q := 0
		for _, sub := range members {
			q = max(q, int(min(sub.Qos, 1)))
		}
		m = append(m, match{filter, q})
	}
	fd.mu.Lock()
	if fd.cacheVer == ver {
		fd.matches[name] = m
		fd.cached += max(len(m), 1)
	}
	fd.mu.Unlock()
	return m
}

func newFanout(l *Listener, src Log) *fanout {
	base, stop := context.WithCancel(context.Background())
	return &fanout{l: l, src: src, inline: l.srv.NewClient(nil, "eddy", "eddy-fanout", true), base: base, stop: stop,
		tenants: map[eddy.TenantID]*feed{}, groups: map[string]*group{}}
}

// add registers a follower of t under key; the first starts t's tail.
func (f *fanout) add(t eddy.TenantID, key string, fol *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(t, key, fol)
}

func (f *fanout) addLocked(t eddy.TenantID, key string, fol *follower) {
	defer f.changed()
	fd := f.tenants[t]
	if fd == nil {
		ctx, cancel := context.WithCancel(f.base)
		fd = &feed{cancel: cancel}
		f.tenants[t] = fd
		f.wg.Add(1)
		go f.feed(ctx, t, fd)
	}
	if _, had := fd.followers.Swap(key, fol); !had {
		fd.n++
	}
}

// remove unregisters it (unless another took its key); the last stops
// the tail.
func (f *fanout) remove(t eddy.TenantID, key string, fol *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(t, key, fol)
}

func (f *fanout) removeLocked(t eddy.TenantID, key string, fol *follower) {
	defer f.changed()
	fd := f.tenants[t]
	if fd == nil || !fd.followers.CompareAndDelete(key, fol) {
		return
	}
	if fd.n--; fd.n <= 0 {
		fd.cancel()
		delete(f.tenants, t)
	}
}

func (f *fanout) close() {
	f.stop()
	f.wg.Wait()
}

// feed tails every partition of t's topics: from their ends, and a topic
// found later (within 2 s) from its start. A topic gone, or deleted and
// made again (a new life: its offsets start over), is forgotten by the
// followers, so the new life's records are not taken for ones they had.
func (f *fanout) feed(ctx context.Context, t eddy.TenantID, fd *feed) {
	defer f.wg.Done()
	tails := map[partAt]context.CancelFunc{}
	lives := map[eddy.TopicName]uint64{}
	defer func() {
		for _, cancel := range tails {
			cancel()
		}
	}()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for first := true; ; first = false {
		want := map[partAt]bool{}
		seen := map[eddy.TopicName]bool{}
		for topic, n := range f.src.Topics(t) {
			ref := eddy.TopicRef{Tenant: t, Name: topic}
			life, err := f.src.PartitionIncarnation(ref, 0)
			if err != nil {
				continue // gone since Topics looked
			}
			if old, ok := lives[topic]; ok && old != life {
				f.forget(fd, tails, topic)
			}
			lives[topic], seen[topic] = life, true
			for p := int32(0); p < n; p++ {
				want[partAt{ref, eddy.Partition(p)}] = true
			}
		}
		for topic := range lives {
			if !seen[topic] {
				f.forget(fd, tails, topic)
				delete(lives, topic)
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
				go f.tail(tctx, fd, k.ref, k.p, !first)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// forget stops topic's tails (a new life's start from its start) and has
// every follower drop its places in it.
func (f *fanout) forget(fd *feed, tails map[partAt]context.CancelFunc, topic eddy.TopicName) {
	for k, cancel := range tails {
		if k.ref.Name == topic {
			cancel()
			delete(tails, k)
		}
	}
	fd.followers.Range(func(_, v any) bool {
		v.(*follower).forget(topic)
		return true
	})
}

// tail reads one partition and offers its records.
func (f *fanout) tail(ctx context.Context, fd *feed, ref eddy.TopicRef, p eddy.Partition, fromStart bool) {
	defer f.wg.Done()
	key := partKey(ref.Name, p)
	off := int64(-1)
	for ctx.Err() == nil {
		if off < 0 {
			start, end, err := f.src.Bounds(ref, p)
			if err != nil {
				sleep(ctx, time.Second)
				continue
			}
			off = end
			if fromStart {
				off = start
			}
		}
		recs, next, err := f.src.Read(ctx, ref, p, off, tailReadBytes, 10*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				f.l.log.Debug("mqtt subscription feed", logkey.Topic, ref, logkey.Err, err)
				if start, ok := retentionPassed(f.src, ref, p, off, err); ok {
					off = start
					continue
				}
				// Past the end: a replica behind the one read before
				// answered (this node holds none). The same offset again
				// (from the log start, every subscriber got the whole log
				// once more); a new life of the topic is feed's to find.
				sleep(ctx, time.Second)
			}
			continue
		}
		f.offer(fd, ref, p, key, recs)
		off = next
		fd.followers.Range(func(_, v any) bool {
			if fol := v.(*follower); fol.tracks {
				fol.passed(key, next)
			}
			return true
		})
	}
}

// retentionPassed answers, for a read at off that err refused as out of
// range, the log start to go on from when retention removed off; false
// for any other error, or when off is past the end (a lagging replica
// answered: read off again later).
func retentionPassed(log Log, ref eddy.TopicRef, p eddy.Partition, off int64, err error) (int64, bool) {
	if eddy.ErrorCode(err) != eddy.CodeOffsetOutOfRange {
		return 0, false
	}
	start, _, berr := log.Bounds(ref, p)
	return start, berr == nil && start > off
}

// offer hands a batch of records to the followers whose filters match
// them, each shared group once: receiver by receiver, each its records in
// order, so a receiver's deliveries queue up together and mochi writes
// them to its socket together (a write per batch, not per record).
func (f *fanout) offer(fd *feed, ref eddy.TopicRef, p eddy.Partition, key string, recs []eddy.FetchedRecord) {
	type offers struct {
		idx []int
		qos []int
	}
	var order []string
	to := map[string]*offers{}
	for i := range recs {
		for _, m := range fd.match(f, string(ref.Tenant)+"/"+string(ref.Name)+"/"+f.l.mqttName(ref, &recs[i])) {
			o := to[m.key]
			if o == nil {
				o = &offers{}
				to[m.key] = o
				order = append(order, m.key)
			}
			o.idx, o.qos = append(o.idx, i), append(o.qos, m.qos)
		}
	}
	for _, k := range order {
		v, ok := fd.followers.Load(k)
		if !ok {
			continue
		}
		fol, o := v.(*follower), to[k]
		for j, i := range o.idx {
			fol.offer(ref, p, key, &recs[i], o.qos[j])
		}
	}
}

// mqttName is the MQTT topic a record is delivered on: the one it was
// published to (mqtt.topic), else its topic's out rule, else topic/key,
// else the topic (tenants.MQTTMapping.OutName).
func (l *Listener) mqttName(ref eddy.TopicRef, r *eddy.FetchedRecord) string {
	name, _ := l.deliveryName(ref, r)
	return name
}

// deliveryName is mqttName, and whether the name is the record's own
// (its mqtt.topic header, which whoever produced it wrote) rather than
// one Eddy made of its topic and key.
func (l *Listener) deliveryName(ref eddy.TopicRef, r *eddy.FetchedRecord) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == "mqtt.topic" && len(h.Value) > 0 {
			return string(h.Value), true
		}
	}
	return l.ingest.Mapping(ref.Tenant).OutName(ref.Name, "", r.Key), false
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
// consume scope, or an mqtt-sub scope that covers it; a delivery, only
// ever on the session's own stream, the consume scope for its topic, or
// an mqtt-sub scope matching its MQTT topic. Anything outside the
// session's tenant is refused.
func (s *session) mayRead(name string) bool {
	if st := s.stream.Load(); st != nil && strings.HasPrefix(name, st.prefix) {
		rest, _ := strings.CutPrefix(name, st.prefix+string(s.tenant)+"/")
		topic, mqttName, _ := strings.Cut(rest, "/")
		return s.p.Can(tenants.Consume, s.tenant, eddy.TopicName(topic)) || s.p.MQTTSubscribes(mqttName)
	}
	rest, shared := strings.CutPrefix(name, "$share/")
	if shared {
		var ok bool
		if _, name, ok = strings.Cut(rest, "/"); !ok { // past the group
			return false
		}
	}
	rest, ok := strings.CutPrefix(name, string(s.tenant)+"/+/")
	if !ok {
		return false // another tenant's, $SYS, or not scoped
	}
	// Shared groups are live and per node: a persistent session may not
	// join one.
	return (s.p.Consumes() || s.p.MQTTSubscribes(rest)) && !(shared && s.persistent)
}

// OnSubscribe scopes the filters to the client's tenant and grants QoS 1
// at most (a QoS 2 subscription is served as QoS 1). Retain handling 1
// (retained messages only for a new subscription) of a filter the client
// has becomes 2 (none), for OnSubscribed. A new filter past the
// connection's bounds is marked, so mayRead refuses it and the SUBACK
// says why (OnPacketEncode).
func (h *hook) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if s := h.l.session(cl); s != nil && h.l.fan != nil {
		subscribe := pk.FixedHeader.Type == packets.Subscribe
		has := cl.State.Subscriptions.Len()
		s.overQuota, s.overReason = s.overQuota[:0], ""
		// A persistent session the tenant has no room for (its
		// max_mqtt_sessions) is refused here, in the SUBACK: granted, the
		// device would take the session for kept, and it would not be.
		var noSession error
		if subscribe && s.persistent && h.l.cfg.Sessions != nil {
			noSession = h.l.cfg.Sessions.Room(s.tenant, s.client)
		}
		for i := range pk.Filters {
			f := &pk.Filters[i]
			long := len(f.Filter) > h.l.cfg.MaxFilterBytes
			f.Filter = scopeFilter(s.tenant, f.Filter)
			_, had := cl.State.Subscriptions.Get(f.Filter)
			if subscribe && !had && noSession != nil {
				f.Filter = markOverQuota + f.Filter
				s.overQuota, s.overReason = append(s.overQuota, i), eddy.AsError(noSession).Message
				h.l.m.GetOrCreateCounter("eddy_mqtt_subscriptions_refused_total").Inc()
				continue
			}
			if subscribe && !had {
				if long || has >= h.l.cfg.MaxSubscriptions {
					f.Filter = markOverQuota + f.Filter
					s.overQuota = append(s.overQuota, i)
					h.l.m.GetOrCreateCounter("eddy_mqtt_subscriptions_refused_total").Inc()
					continue
				}
				has++
			}
			f.Qos = min(f.Qos, 1)
			if had && f.RetainHandling == 1 && subscribe {
				f.RetainHandling = 2
			}
		}
	}
	return pk
}

func isShared(filter string) bool { return strings.HasPrefix(filter, "$share/") }

// OnSubscribed starts the session's stream at its first granted filter,
// and records the filters (a persistent session stores them), joins the
// shared groups, and sends the retained records asked for.
func (h *hook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	l := h.l
	s := l.session(cl)
	if l.fan == nil || s == nil || !slices.ContainsFunc(codes, func(c byte) bool { return c < 0x80 }) {
		return
	}
	l.fan.changed()
	st := s.stream.Load()
	if st == nil {
		st = l.newStream(cl, s, false)
		s.stream.Store(st)
	}
	if err := st.setFilters(st.filterList(pk, codes, true)); err != nil {
		l.warnSession(s, "mqtt session filters not recorded", err)
	}
	for i, sub := range pk.Filters {
		if i < len(codes) && codes[i] < 0x80 && isShared(sub.Filter) {
			st.join(sub.Filter, sub.Qos, sub.Identifier)
		}
	}
	st.retained(pk, codes)
}

func (h *hook) OnUnsubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	return h.OnSubscribe(cl, pk)
}

func (h *hook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	if h.l.fan != nil {
		h.l.fan.changed()
	}
	s := h.l.session(cl)
	if s == nil || s.stream.Load() == nil {
		return
	}
	st := s.stream.Load()
	if err := st.setFilters(st.filterList(pk, nil, false)); err != nil {
		h.l.warnSession(s, "mqtt session filters not recorded", err)
	}
	for _, sub := range pk.Filters {
		if isShared(sub.Filter) {
			st.leave(sub.Filter)
		}
	}
}

// OnPacketEncode takes the stream and tenant levels off what a
// subscriber receives, and marks a retained delivery as retained.
func (h *hook) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if pk.TopicName != "" {
			pk.TopicName = unscope(pk.TopicName)
		}
		pk.FixedHeader.Retain = len(pk.Filters) == 1 && (pk.Filters[0].Filter == originRetained || pk.Filters[0].RetainAsPublished)
		if len(pk.Filters) == 1 && len(pk.Filters[0].Identifiers) > 0 {
			pk.Properties.SubscriptionIdentifier = slices.Sorted(maps.Values(pk.Filters[0].Identifiers))
		}
	case packets.Suback, packets.Unsuback:
		if s := h.l.session(cl); s != nil {
			pk.PacketID = s.ownID(pk.PacketID)
			if pk.FixedHeader.Type == packets.Suback && len(s.overQuota) > 0 {
				h.overQuota(s, &pk)
			}
		}
	case packets.Connack:
		h.connack(cl, &pk)
	}
	return pk
}

// overQuota answers the filters OnSubscribe found past the connection's
// bounds: quota exceeded (3.1.1 has only failure, which mochi gave them).
func (h *hook) overQuota(s *session, pk *packets.Packet) {
	if s.version >= 5 {
		for _, i := range s.overQuota {
			if i < len(pk.ReasonCodes) {
				pk.ReasonCodes[i] = packets.ErrQuotaExceeded.Code
			}
		}
		pk.Properties.ReasonString = s.overReason
		if s.overReason == "" {
			pk.Properties.ReasonString = fmt.Sprintf("a connection may have %d subscriptions (mqtt_max_subscriptions) of filters up to %d bytes (mqtt_max_filter_bytes)",
				h.l.cfg.MaxSubscriptions, h.l.cfg.MaxFilterBytes)
		}
	}
	s.overQuota, s.overReason = s.overQuota[:0], ""
}

// connack offers an MQTT 5 device the topic aliases it may use (mochi
// takes them up to its maximum but does not say so, and a device told
// nothing may use none), and tells a persistent session's device the
// truth: the session is present if the node keeps it (in the log,
// whatever mochi remembers), and it is kept for the node's expiry
// (mochi's own, for its memory, is shorter).
func (h *hook) connack(cl *mochi.Client, pk *packets.Packet) {
	l := h.l
	s := l.session(cl)
	if s == nil || pk.ReasonCode != 0 {
		return
	}
	if s.version == 5 {
		pk.Properties.TopicAliasMaximum = uint16(min(l.cfg.MaxTopicAliases, 65535))
	}
	if l.cfg.Sessions == nil || !persistent(cl) {
		return
	}
	if _, _, ok := l.cfg.Sessions.Load(s.tenant, s.client); ok {
		pk.SessionPresent = true
	}
	if s.version == 5 {
		pk.Properties.SessionExpiryInterval = uint32(l.sessionExpiry(s))
		pk.Properties.SessionExpiryIntervalFlag = true
	}
}

// OnPublishDropped: a subscriber's write queue is full (streams keep
// within it, so something else filled it); it is disconnected (counted).
func (h *hook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	h.l.m.GetOrCreateCounter("eddy_mqtt_slow_subscriber_disconnects_total").Inc()
	go h.l.srv.DisconnectClient(cl, packets.ErrServerBusy)
}

// OnQosPublish: mochi sent a delivery with a packet id (or keeps the
// acknowledgement of a device's publish, under the device's id: not ours).
func (h *hook) OnQosPublish(cl *mochi.Client, pk packets.Packet, sent int64, resends int) {
	s := h.l.session(cl)
	if s == nil || resends > 0 || pk.FixedHeader.Type != packets.Publish {
		return
	}
	s.swaps.last.Store(uint32(pk.PacketID))
	if st := s.stream.Load(); st != nil && len(pk.Filters) == 1 {
		st.sent(pk.PacketID, pk.Filters[0].Filter)
	}
}

// OnQosComplete: a PUBACK for a delivery.
func (h *hook) OnQosComplete(cl *mochi.Client, pk packets.Packet) {
	if s := h.l.session(cl); s != nil {
		if st := s.stream.Load(); st != nil {
			st.acked(pk.PacketID)
		}
	}
}

// OnQosDropped: mochi dropped a delivery from its inflight before its
// PUBACK. It says so twice, with the packet and then with its id alone;
// only the first, which names the delivery, counts.
func (h *hook) OnQosDropped(cl *mochi.Client, pk packets.Packet) {
	if pk.FixedHeader.Type != packets.Publish || len(pk.Filters) != 1 {
		return
	}
	if s := h.l.session(cl); s != nil {
		if st := s.stream.Load(); st != nil {
			st.dropped(pk.PacketID, pk.Filters[0].Filter)
		}
	}
}

// OnPacketSent: a QoS 0 delivery left; its window slot is free.
func (h *hook) OnPacketSent(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos != 0 || len(pk.Filters) != 1 {
		return
	}
	if s := h.l.session(cl); s != nil {
		if st := s.stream.Load(); st != nil {
			st.written(pk.Filters[0].Filter)
		}
	}
}

// unscopeFilter is the device's own filter back from its scoped form.
func unscopeFilter(t eddy.TenantID, f string) string {
	return strings.TrimPrefix(f, string(t)+"/+/")
}
