package mqtt

import (
	"context"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Persistent sessions (MQTT 5 clean start false with a session expiry,
// 3.1.1 clean session false) keep their place in the log, not a queue:
// the session's filters and, per partition, the offset of the next record
// it has not acknowledged are a consumer group of the tenant
// (mqtt.<client id>, in `eddy group describe`), committed as PUBACKs
// arrive. Connected, the device's stream starts from those offsets (its
// readers catch up, then the live tail feeds it); offline, nothing is
// held for it. When it comes back (to any node, after any restart) it
// gets what it missed. A clean start drops the session.

// Filter is a subscription of a session: its filter, QoS, and its MQTT 5
// options: the subscription identifier its SUBSCRIBE gave it (0: none),
// which each delivery it matches carries; no local (the device's own
// publishes do not come back through it); retain as published (a live
// delivery keeps the retain flag it was published with).
type Filter struct {
	Filter            string
	QoS               byte
	ID                int
	NoLocal           bool
	RetainAsPublished bool
}

// options reports whether f has any MQTT 5 option set.
func (f Filter) options() bool { return f.ID > 0 || f.NoLocal || f.RetainAsPublished }

// Sessions keep persistent sessions: filters and positions ("topic/p" ->
// the next offset), by tenant and client id.
type Sessions interface {
	Load(tenant eddy.TenantID, client string) (filters []Filter, positions map[string]int64, ok bool)
	// Save records the filters (nil: drops the session), where partitions
	// without a position start, and the session's expiry (seconds after
	// its device goes; 0 keeps what it had).
	Save(ctx context.Context, tenant eddy.TenantID, client string, filters []Filter, starts map[string]int64, expirySec int64) error
	// Room reports whether the tenant may keep the client's session: it
	// has one, or room for another (the error says why not).
	Room(tenant eddy.TenantID, client string) error
	// Commit records positions from the connected device (which is so
	// not gone), with the session's expiry.
	Commit(ctx context.Context, tenant eddy.TenantID, client string, positions map[string]int64, expirySec int64) error
	// Presence records the expiry and when the device went (zero: it is
	// connected); a session is dropped once it has been gone its expiry.
	Presence(ctx context.Context, tenant eddy.TenantID, client string, expirySec int64, gone time.Time) error
}

// sessionExpiry is the expiry the node keeps a persistent session for,
// in seconds: what an MQTT 5 device asked for (at CONNECT, or at its
// DISCONNECT), at most SessionExpiryMax; a 3.1.1 device's is the maximum.
func (l *Listener) sessionExpiry(s *session) int64 {
	max := int64(l.cfg.SessionExpiryMax / time.Second)
	if s.version < 5 {
		return max
	}
	return min(int64(s.expiry.Load()), max)
}

// persistent reports whether the client asked for a session that outlives
// its connection.
func persistent(cl *mochi.Client) bool {
	return !cl.Properties.Clean && (cl.Properties.ProtocolVersion < 5 || cl.Properties.Props.SessionExpiryInterval > 0)
}

// OnSessionEstablished starts a persistent session's stream from its
// stored place; a clean start drops a session the device had.
func (h *hook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	l := h.l
	s := l.session(cl)
	if s == nil || l.cfg.Sessions == nil || l.fan == nil {
		return
	}
	if !persistent(cl) {
		if _, _, had := l.cfg.Sessions.Load(s.tenant, s.client); had {
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
			defer cancel()
			if err := l.cfg.Sessions.Save(ctx, s.tenant, s.client, nil, nil, 0); err != nil {
				l.warnSession(s, "mqtt session not dropped", err)
			}
		}
		return
	}
	s.persistent = true
	filters, positions, _ := l.cfg.Sessions.Load(s.tenant, s.client)
	st := l.newStream(cl, s, true)
	s.stream.Store(st)
	// Places first, from the stored positions (a partition without one is
	// newer than the filters: from its start), then the filters, so the
	// tail offers nothing before the readers have their places.
	st.begin(filters, positions, true, nil)
	for _, f := range filters {
		sub := packets.Subscription{Filter: scopeFilter(s.tenant, f.Filter), Qos: f.QoS}
		l.srv.Topics.Subscribe(cl.ID, sub)
		cl.State.Subscriptions.Add(sub.Filter, sub)
	}
	l.fan.changed()
	if len(filters) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
		defer cancel()
		if err := l.cfg.Sessions.Presence(ctx, s.tenant, s.client, l.sessionExpiry(s), time.Time{}); err != nil {
			l.log.Debug("mqtt session presence", logkey.Client, s.client, logkey.Err, err)
		}
	}
	st.commits.Add(1)
	go st.commitEvery(time.Second)
}

// gone records that a persistent session's device went: its expiry runs
// from now; an MQTT 5 device that went with an expiry of 0 ends it.
func (st *stream) gone() {
	l, s := st.l, st.s
	if l.connectedElsewhere(st.cl, s) {
		return // taken over on this node: the new connection is the device
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
	defer cancel()
	var err error
	if expiry := l.sessionExpiry(s); expiry == 0 && s.version == 5 {
		err = l.cfg.Sessions.Save(ctx, s.tenant, s.client, nil, nil, 0)
	} else {
		err = l.cfg.Sessions.Presence(ctx, s.tenant, s.client, expiry, time.Now())
	}
	if err != nil && eddy.ErrorCode(err) != eddy.CodeNotFound {
		l.warnSession(s, "mqtt session presence not recorded", err)
	}
}

// commitEvery records the acknowledged positions until the stream closes.
func (st *stream) commitEvery(d time.Duration) {
	defer st.commits.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-st.fol.ctx.Done():
			return
		case <-t.C:
			st.commit()
		}
	}
}

// commit records the positions that moved since the last record.
func (st *stream) commit() {
	if !st.store {
		return
	}
	st.mu.Lock()
	moved := map[string]int64{}
	for k, v := range st.committed {
		if st.recorded[k] != v {
			moved[k] = v
		}
	}
	st.mu.Unlock()
	if len(moved) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.l.cfg.PublishTimeout)
	defer cancel()
	if err := st.l.cfg.Sessions.Commit(ctx, st.s.tenant, st.s.client, moved, st.l.sessionExpiry(st.s)); err != nil {
		st.l.log.Debug("mqtt session commit", logkey.Client, st.s.client, logkey.Err, err)
		return
	}
	st.mu.Lock()
	for k, v := range moved {
		st.recorded[k] = v
	}
	st.mu.Unlock()
}

// connectedElsewhere reports whether another connection of this node is
// the same device (a takeover).
func (l *Listener) connectedElsewhere(cl *mochi.Client, s *session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for other, o := range l.clients {
		if other != cl && o.tenant == s.tenant && o.client == s.client {
			return true
		}
	}
	return false
}
