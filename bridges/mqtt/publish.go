package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/promtext"
	"github.com/eddy-broker/eddy/tenants"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The publish path: a device's PUBLISH becomes a record of the Eddy topic
// its tenant's mapping names, appended through Ingest (QoS 0 through the
// node's queue, qos0.go; QoS 1 through the connection's pipeline,
// pipeline.go; QoS 2 at once), or refused with a reason code.

// resolve maps an MQTT topic (and payload) of a tenant to its Eddy topic
// and key, creating the topic (within timeout) when the tenant's mapping
// says so; it returns the topic's max.message.bytes.
func resolve(timeout time.Duration, in Ingest, tenant eddy.TenantID, name string, payload []byte) (eddy.TopicRef, string, bool, int64, error) {
	m := in.Mapping(tenant)
	ref, key, hasKey, err := m.Map(tenant, name, payload)
	if err != nil {
		return ref, "", false, 0, err
	}
	maxBytes, err := in.MaxMessageBytes(ref)
	if eddy.ErrorCode(err) == eddy.CodeNotFound && m != nil && m.AutoCreate {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err = in.CreateTopic(ctx, ref, max(m.AutoCreatePartitions, 1)); err == nil || eddy.ErrorCode(err) == eddy.CodeTopicExists {
			maxBytes, err = in.MaxMessageBytes(ref)
		}
	}
	return ref, key, hasKey, maxBytes, err
}

// produceTarget is the Eddy topic a publish of the session to an MQTT
// topic goes to, through its tenant's mapping: an error when the topic
// maps to none (CodeInvalid, or the mapping's) or the token may neither
// produce to it nor publish to the MQTT topic (CodeForbidden).
func (l *Listener) produceTarget(s *session, topic string, payload []byte) (eddy.TopicRef, error) {
	ref, _, _, err := l.ingest.Mapping(s.tenant).Map(s.tenant, topic, payload)
	if err == nil && !s.p.Can(tenants.Produce, ref.Tenant, ref.Name) && !s.p.MQTTPublishes(topic) {
		err = eddy.Errorf(eddy.CodeForbidden, "the token may not produce to %s nor publish to %s", ref, topic)
	}
	return ref, err
}

// OnPublish turns the publish into a record and appends it. QoS 1 is
// acknowledged by the connection's acker once committed (pipeline.go);
// QoS 2 returns only once it is committed, so the PUBREC follows the
// commit. A refusal becomes a v5 reason code, or a disconnect for 3.1.1.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	l := h.l
	if cl.Net.Inline {
		return pk, nil // a record of the log on its way to subscribers
	}
	s := l.session(cl)
	if s == nil {
		return pk, h.refuse(cl, pk, eddy.Errorf(eddy.CodeUnauthenticated, "not authenticated"))
	}
	if err := refusal(pk.TopicName); err != nil {
		pk.TopicName = pk.TopicName[2:]
		return pk, h.refuse(cl, pk, err)
	}
	if err := l.cfg.Verifier.Recheck(s.p); err != nil {
		return pk, h.refuse(cl, pk, err)
	}
	if l.cfg.PublishRate > 0 {
		l.paceWait(s)
	}
	ref, key, hasKey, max, err := resolve(l.cfg.PublishTimeout, l.ingest, s.tenant, pk.TopicName, pk.Payload)
	if err != nil {
		return pk, h.refuse(cl, pk, err)
	}
	rec := record(pk, key, hasKey)
	if n := countReserved(pk.Properties.User); n > 0 {
		l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_reserved_properties_dropped_total{tenant=%q}`, s.tenant)).Add(n)
	}
	if st := s.stream.Load(); st != nil && st.noLocal.Load() {
		rec.Headers = append(rec.Headers, eddy.Header{Key: headerClientID, Value: []byte(s.client)})
	}
	s.stats.published(len(pk.Payload))
	if sz := rec.Size(); int64(sz) > max {
		return pk, h.refuse(cl, pk, eddy.Errorf(eddy.CodeRecordTooLarge, "the message is %d bytes, over topic %s's max.message.bytes of %d", sz, ref.Name, max))
	}
	if pk.FixedHeader.Qos == 0 {
		if !l.q0.push(ref, rec) {
			l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_qos0_dropped_total{tenant=%q}`, s.tenant)).Inc()
		}
		return pk, packets.CodeSuccessIgnore
	}
	if pk.FixedHeader.Qos == 1 {
		return h.publishQoS1(s, cl, pk, ref, rec)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
	defer cancel()
	if err := l.ingest.Ingest(ctx, ref, []eddy.Record{rec}); err != nil {
		return pk, h.refuse(cl, pk, err)
	}
	l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_messages_total{topic=%q,qos="%d"}`, ref.String(), pk.FixedHeader.Qos)).Inc()
	l.m.GetOrCreatePrometheusHistogramExt("eddy_mqtt_publish_commit_seconds", promtext.DurationBuckets).UpdateDuration(start)
	return pk, packets.CodeSuccessIgnore // acknowledge; no fan-out, no retain
}

// refuse answers a refused publish: a v5 client gets a PUBACK (PUBREC)
// with the reason code; a 3.1.1 client, which has no way to hear a reason,
// is disconnected (its publish is not acknowledged, so it sends it again).
// A QoS 0 publish has no acknowledgement: it is dropped and counted.
func (h *hook) refuse(cl *mochi.Client, pk packets.Packet, err error) error {
	l := h.l
	e := eddy.AsError(err)
	rc := ReasonCode(e.Code)
	l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_refused_total{code=%q,reason="0x%02x"}`, e.Code, rc.Code)).Inc()
	l.log.Debug("mqtt publish refused", logkey.Client, cl.ID, logkey.Topic, pk.TopicName, logkey.Code, e.Code, "reason", rc.Code, "msg", e.Message)
	if pk.FixedHeader.Qos == 0 {
		return packets.ErrRejectPacket
	}
	if cl.Properties.ProtocolVersion == 5 {
		return packets.Code{Code: rc.Code, Reason: truncate(e.Message, 200)}
	}
	cl.Stop(errors.New("eddy: " + string(e.Code) + ": " + e.Message))
	return packets.ErrRejectPacket
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ReasonCode maps an Eddy error code to the MQTT 5 reason code a device
// sees in its PUBACK.
func ReasonCode(c eddy.Code) packets.Code {
	switch c {
	case eddy.CodeForbidden, eddy.CodeUnauthenticated, eddy.CodeTokenExpired, eddy.CodeTokenRevoked:
		return packets.ErrNotAuthorized // 0x87
	case eddy.CodeNotFound, eddy.CodeInvalid:
		return packets.ErrTopicNameInvalid // 0x90
	case eddy.CodeQuotaExceeded, eddy.CodeStorageQuota, eddy.CodeBackpressure, eddy.CodeStorageFull:
		return packets.ErrQuotaExceeded // 0x97
	case eddy.CodeRecordTooLarge, eddy.CodeRequestTooLarge:
		return packets.ErrPacketTooLarge // 0x95
	case eddy.CodeTransformError, eddy.CodeTransformBadOutput:
		return packets.ErrPayloadFormatInvalid // 0x99: the transform refused the payload
	case eddy.CodeTransformTimeout, eddy.CodeTransformTrap, eddy.CodeTransformMemory, eddy.CodeTransformCircuitOpen, eddy.CodeInvalidModule:
		return packets.ErrImplementationSpecificError // 0x83: the transform itself failed
	}
	return packets.ErrUnspecifiedError // 0x80: unavailable, no quorum, timeout, internal
}

// record is the record a publish becomes (see mqttRecord), with
// mochi.retain. Its value is the packet's payload: mochi reads each packet
// into a buffer of its own and, once Eddy took the publish (taken,
// CodeSuccessIgnore), keeps nothing of it, so a large publish is not
// copied again (a QoS 0 flood of 60 KB publishes allocated 5.6 bytes per
// byte received, and the collector let the heap grow in proportion).
func record(pk packets.Packet, key string, hasKey bool) eddy.Record {
	mp := propsOf(&pk.Properties)
	user := make([]eddy.Header, 0, len(pk.Properties.User)+4+mp.count())
	for _, u := range pk.Properties.User {
		if !reserved(u.Key) {
			user = append(user, eddy.Header{Key: u.Key, Value: []byte(u.Val)})
		}
	}
	user = mp.appendTo(user)
	retain := retainValues[0]
	if pk.FixedHeader.Retain {
		retain = retainValues[1]
	}
	return mqttRecord(pk.TopicName, pk.Payload, pk.FixedHeader.Qos, user,
		eddy.Header{Key: "mqtt.retain", Value: retain}, pk.Properties.ContentType, key, hasKey)
}

// countReserved is how many of a publish's user properties record left
// out (reserved names).
func countReserved(user []packets.UserProperty) int {
	n := 0
	for _, u := range user {
		if reserved(u.Key) {
			n++
		}
	}
	return n
}

// The values of the mqtt.qos and mqtt.retain headers, shared by every
// record (header values are never written to once made; a batch's
// encoding copies them), so a message does not allocate them. Each is
// capped at its length: an append to one makes a new value.
var (
	qosValues    = [3][]byte{sharedValue("0"), sharedValue("1"), sharedValue("2")}
	retainValues = [2][]byte{sharedValue("false"), sharedValue("true")}
)

func sharedValue(s string) []byte {
	b := []byte(s)
	return b[:len(b):len(b)]
}

// mqttRecord is the record an MQTT message becomes, on the listener and
// the bridge alike: the payload as value (not copied: the caller gives it
// up), the MQTT 5 user properties and message properties (props.go) as
// headers (user, whose spare capacity is used), then mqtt.topic,
// mqtt.qos, the caller's extra header and, when set, content-type.
func mqttRecord(topic string, payload []byte, qos byte, user []eddy.Header, extra eddy.Header, contentType, key string, hasKey bool) eddy.Record {
	r := eddy.Record{Timestamp: time.Now().UnixMilli(), Value: payload}
	if hasKey {
		r.Key = []byte(key)
	}
	var q []byte
	if int(qos) < len(qosValues) {
		q = qosValues[qos]
	} else {
		q = []byte{'0' + qos} // not a QoS MQTT has (mochi and paho refuse one)
	}
	r.Headers = append(user,
		eddy.Header{Key: "mqtt.topic", Value: []byte(topic)},
		eddy.Header{Key: "mqtt.qos", Value: q},
		extra)
	if contentType != "" {
		r.Headers = append(r.Headers, eddy.Header{Key: "content-type", Value: []byte(contentType)})
	}
	return r
}
