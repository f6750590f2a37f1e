package mqtt

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Last wills are Eddy's, not mochi's. mochi publishes a will to its own
// subscribers by topic name, outside the log, the tenant and the token's
// scopes: a will named like another tenant's delivery topic reached that
// tenant's subscribers. So at CONNECT a will is checked as a publish
// would be (a topic name without wildcards, NUL or a leading $, that the
// token may produce to; else the CONNECT is refused: v5 0x90 or 0x87 with
// a reason, 3.1.1 not authorized) and taken off mochi's client, which so
// never sends one. When the connection ends without a DISCONNECT of
// reason 0 (an I/O error, the keep-alive passing, a protocol error,
// DISCONNECT 0x04, the node closing it, another connection taking the
// client id over), the will is appended as a publish is: through the
// tenant's mapping, with the token checked again then, retained (the last
// record of its key) if the device asked. An MQTT 5 will delay holds it
// for the delay or the session's expiry, whichever is shorter; a
// connection of the same client id within it cancels it. Held wills are
// bounded (maxHeldWills, maxHeldWillBytes): past a bound, a will goes at
// once. A node that stops publishes none.

const (
	maxHeldWills     = 10_000
	maxHeldWillBytes = 16 << 20
)

// will is a device's last will, as its CONNECT gave it.
type will struct {
	pk    packets.Packet // a publish: topic, payload, QoS, retain, user properties, content type
	delay time.Duration
}

// wills holds the delayed wills of a node's MQTT listener, by scoped
// client id.
type wills struct {
	mu     sync.Mutex
	held   map[string]*heldWill
	bytes  int
	closed bool
}

type heldWill struct {
	t     *time.Timer
	bytes int
}

// takeWill checks a CONNECT's will and takes it off mochi's client; when
// it is refused, ok is false and code is the MQTT 5 CONNACK's.
func (l *Listener) takeWill(cl *mochi.Client, s *session, pk packets.Packet) (w *will, code packets.Code, ok bool) {
	c := pk.Connect
	refuse := func(code packets.Code, format string, args ...any) (*will, packets.Code, bool) {
		l.m.GetOrCreateCounter(`eddy_mqtt_wills_total{outcome="refused_at_connect"}`).Inc()
		code.Reason = fmt.Sprintf(format, args...)
		return nil, code, false
	}
	if c.WillTopic == "" || strings.HasPrefix(c.WillTopic, "$") || !validTopicName(c.WillTopic) {
		return refuse(packets.ErrTopicNameInvalid, "the will's topic %q cannot be published to (empty, a $ topic, a wildcard or a NUL)", c.WillTopic)
	}
	if _, err := l.produceTarget(s, c.WillTopic, c.WillPayload); eddy.ErrorCode(err) == eddy.CodeForbidden {
		return refuse(packets.ErrNotAuthorized, "the will's topic %q: %v", c.WillTopic, err)
	} else if err != nil {
		return refuse(packets.ErrTopicNameInvalid, "the will's topic %q: %v", c.WillTopic, err)
	}
	wp := c.WillProperties
	w = &will{pk: packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(c.WillQos, 1), Retain: c.WillRetain},
		TopicName: c.WillTopic, Payload: c.WillPayload,
		Properties: packets.Properties{User: wp.User, ContentType: wp.ContentType, ResponseTopic: wp.ResponseTopic,
			CorrelationData: wp.CorrelationData, MessageExpiryInterval: wp.MessageExpiryInterval,
			PayloadFormat: wp.PayloadFormat, PayloadFormatFlag: wp.PayloadFormatFlag}}}
	if s.version == 5 {
		w.delay = time.Duration(wp.WillDelayInterval) * time.Second
	}
	cl.Properties.Will = mochi.Will{} // mochi never sends it
	return w, packets.CodeSuccess, true
}

// willGone runs as a connection ends: its will goes now, or is held for
// its delay. It is dropped when the device said goodbye (DISCONNECT 0),
// when the node is stopping, and, with a delay, when another connection
// already continues its session.
func (l *Listener) willGone(cl *mochi.Client, s *session) {
	w := s.will
	if w == nil || s.saidGoodbye.Load() {
		return
	}
	select {
	case <-l.stop:
		return
	default:
	}
	delay := w.delay
	if !persistent(cl) {
		delay = 0 // the session ends with the connection
	} else {
		delay = min(delay, time.Duration(l.sessionExpiry(s))*time.Second)
	}
	if delay > 0 && l.connectedElsewhere(cl, s) {
		l.m.GetOrCreateCounter(`eddy_mqtt_wills_total{outcome="cancelled"}`).Inc()
		return
	}
	if delay > 0 && l.wills.hold(cl.ID, len(w.pk.Payload), delay, func() { l.publishWill(s, w) }) {
		return
	}
	l.publishWill(s, w)
}

// hold keeps a will for delay, or drops it if the node is stopping; false
// when a bound is reached (the caller publishes it now). A will the
// client id left before is replaced.
func (ws *wills) hold(id string, bytes int, delay time.Duration, publish func()) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.dropLocked(id)
	if ws.closed {
		return true
	}
	if len(ws.held) >= maxHeldWills || ws.bytes+bytes > maxHeldWillBytes {
		return false
	}
	if ws.held == nil {
		ws.held = map[string]*heldWill{}
	}
	h := &heldWill{bytes: bytes}
	h.t = time.AfterFunc(delay, func() {
		ws.mu.Lock()
		mine := ws.held[id] == h && !ws.closed
		if mine {
			ws.dropLocked(id)
		}
		ws.mu.Unlock()
		if mine {
			publish()
		}
	})
	ws.held[id] = h
	ws.bytes += bytes
	return true
}

// cancel drops the will a client id left, if one is held: the device is
// back within the delay.
func (ws *wills) cancel(id string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.dropLocked(id)
}

func (ws *wills) dropLocked(id string) bool {
	h, ok := ws.held[id]
	if ok {
		h.t.Stop()
		delete(ws.held, id)
		ws.bytes -= h.bytes
	}
	return ok
}

// close drops every held will.
func (ws *wills) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	for id := range ws.held {
		ws.dropLocked(id)
	}
}

// publishWill appends a will as a QoS 1 publish of the device would be,
// with its token checked again, and counts the outcome.
func (l *Listener) publishWill(s *session, w *will) {
	outcome := "published"
	if err := l.appendWill(s, w); err != nil {
		outcome = "refused"
		l.log.Debug("mqtt will not published", logkey.Client, s.client, logkey.Tenant, s.tenant, logkey.Err, err)
	}
	l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_wills_total{outcome=%q}`, outcome)).Inc()
}

func (l *Listener) appendWill(s *session, w *will) error {
	if err := l.cfg.Verifier.Recheck(s.p); err != nil {
		return err
	}
	if !s.tenantAlive(l) {
		return eddy.Errorf(eddy.CodeUnauthenticated, "the tenant is gone")
	}
	if _, err := l.produceTarget(s, w.pk.TopicName, w.pk.Payload); err != nil {
		return err
	}
	ref, key, hasKey, max, err := resolve(l.cfg.PublishTimeout, l.ingest, s.tenant, w.pk.TopicName, w.pk.Payload)
	if err != nil {
		return err
	}
	rec := record(w.pk, key, hasKey)
	if sz := rec.Size(); int64(sz) > max {
		return eddy.Errorf(eddy.CodeRecordTooLarge, "the will is %d bytes, over topic %s's max.message.bytes of %d", sz, ref.Name, max)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
	defer cancel()
	return l.ingest.Ingest(ctx, ref, []eddy.Record{rec})
}
