package mqtt

import (
	"strconv"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eddy-broker/eddy"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The MQTT 5 properties of a message that go with it to its subscribers,
// kept as headers of its record: a request's response topic and
// correlation data (MQTT 5's request/response, so a device answers a
// command, and a service a device, through the log), its message expiry
// interval (counted from the record's timestamp: a message whose expiry
// has passed is not delivered) and its payload format indicator. A
// record produced over HTTP or Kafka with these headers is delivered
// with the properties too.
const (
	headerResponseTopic   = "mqtt.response_topic"
	headerCorrelationData = "mqtt.correlation_data"
	headerMessageExpiry   = "mqtt.message_expiry_interval" // seconds, decimal
	headerPayloadFormat   = "mqtt.payload_format"          // "1": UTF-8
	// headerClientID is the publishing device's client id, on the
	// publishes of a device that has a no local subscription (only
	// then: it is for that device's deliveries to leave out).
	headerClientID = "mqtt.client_id"
)

// reserved reports whether a header key is Eddy's (mqtt.*): the
// headers above and mqtt.topic, mqtt.qos, mqtt.retain and mqtt.bridge,
// which say where a record came from and how it is delivered. A
// publish's user property of such a name is left out of its record, so
// a device cannot pass its message off as published on another topic
// (mqtt.topic: a subscriber of that topic would get it), as retained, or
// as another device's (mqtt.client_id).
func reserved(key string) bool { return strings.HasPrefix(key, "mqtt.") }

// messageProps are those properties of one message.
type messageProps struct {
	responseTopic string
	correlation   []byte
	expiry        uint32 // seconds; 0: none
	utf8          bool
}

func propsOf(p *packets.Properties) messageProps {
	return messageProps{responseTopic: p.ResponseTopic, correlation: p.CorrelationData, expiry: p.MessageExpiryInterval,
		utf8: p.PayloadFormatFlag && p.PayloadFormat == 1}
}

// pahoProps are a bridged message's (paho's, not ours to keep: copied).
func pahoProps(p *paho.PublishProperties) messageProps {
	var mp messageProps
	if p == nil {
		return mp
	}
	mp.responseTopic, mp.correlation = p.ResponseTopic, append([]byte(nil), p.CorrelationData...)
	if p.MessageExpiry != nil {
		mp.expiry = *p.MessageExpiry
	}
	mp.utf8 = p.PayloadFormat != nil && *p.PayloadFormat == 1
	return mp
}

// count is how many headers appendTo adds.
func (mp messageProps) count() int {
	n := 0
	for _, set := range [...]bool{mp.responseTopic != "", len(mp.correlation) > 0, mp.expiry > 0, mp.utf8} {
		if set {
			n++
		}
	}
	return n
}

func (mp messageProps) appendTo(h []eddy.Header) []eddy.Header {
	if mp.responseTopic != "" {
		h = append(h, eddy.Header{Key: headerResponseTopic, Value: []byte(mp.responseTopic)})
	}
	if len(mp.correlation) > 0 {
		h = append(h, eddy.Header{Key: headerCorrelationData, Value: mp.correlation})
	}
	if mp.expiry > 0 {
		h = append(h, eddy.Header{Key: headerMessageExpiry, Value: strconv.AppendUint(nil, uint64(mp.expiry), 10)})
	}
	if mp.utf8 {
		h = append(h, eddy.Header{Key: headerPayloadFormat, Value: utf8Format})
	}
	return h
}

var utf8Format = sharedValue("1")

// expiryLeft is what is left of a record's message expiry at now: ok is
// false when it has none (or one that does not parse), left is at most 0
// when it has passed.
func expiryLeft(r *eddy.FetchedRecord, now time.Time) (left int64, ok bool) {
	for _, h := range r.Headers {
		if h.Key == headerMessageExpiry {
			n, err := strconv.ParseUint(string(h.Value), 10, 32)
			if err != nil || n == 0 {
				return 0, false
			}
			return int64(n) - (now.UnixMilli()-r.Timestamp)/1000, true
		}
	}
	return 0, false
}

// expired reports whether a record's message expiry has passed: it is
// not delivered (MQTT 5 3.3.2.3.3), and counted.
func (l *Listener) expired(r *eddy.FetchedRecord) bool {
	if left, ok := expiryLeft(r, time.Now()); ok && left <= 0 {
		l.m.GetOrCreateCounter("eddy_mqtt_expired_total").Inc()
		return true
	}
	return false
}

// withHeaders carries a record's headers as MQTT 5 properties: the
// message properties above (a response topic only if it is a topic name
// a publish may carry, correlation data only if it fits one), the content
// type, and the others as user properties.
func withHeaders(pk *packets.Packet, r *eddy.FetchedRecord) {
	for _, h := range r.Headers {
		switch {
		case h.Key == "content-type":
			pk.Properties.ContentType = string(h.Value)
		case h.Key == headerResponseTopic:
			if t := string(h.Value); len(t) <= 65535 && t != "" && validTopicName(t) {
				pk.Properties.ResponseTopic = t
			}
		case h.Key == headerCorrelationData:
			if len(h.Value) <= 65535 {
				pk.Properties.CorrelationData = h.Value
			}
		case h.Key == headerPayloadFormat:
			if string(h.Value) == "1" {
				pk.Properties.PayloadFormat, pk.Properties.PayloadFormatFlag = 1, true
			}
		case h.Key == headerMessageExpiry:
			if left, ok := expiryLeft(r, time.Now()); ok {
				pk.Properties.MessageExpiryInterval = uint32(max(left, 1))
			}
		case !strings.HasPrefix(h.Key, "mqtt."):
			pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: h.Key, Val: string(h.Value)})
		}
	}
}
