package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestMessagePropsRoundTrip: a publish's response topic, correlation
// data, message expiry and payload format become its record's headers,
// and a delivery of that record carries them back as properties (the
// expiry as what is left of it); user properties stay user properties.
func TestMessagePropsRoundTrip(t *testing.T) {
	in := packets.Packet{TopicName: "cmd/dev-17", Payload: []byte("reboot"), Properties: packets.Properties{
		ResponseTopic: "resp/dev-17", CorrelationData: []byte{0, 1, 2}, MessageExpiryInterval: 60,
		PayloadFormat: 1, PayloadFormatFlag: true, User: []packets.UserProperty{{Key: "unit", Val: "C"}}}}
	r := eddy.FetchedRecord{Record: record(in, "", false)}
	r.Timestamp -= 5_000 // it waited 5 s in the log
	var out packets.Packet
	withHeaders(&out, &r)
	p := out.Properties
	if p.ResponseTopic != "resp/dev-17" || string(p.CorrelationData) != "\x00\x01\x02" || p.MessageExpiryInterval != 55 ||
		!p.PayloadFormatFlag || p.PayloadFormat != 1 || len(p.User) != 1 || p.User[0] != (packets.UserProperty{Key: "unit", Val: "C"}) {
		t.Fatalf("delivered with %+v", p)
	}
	if left, ok := expiryLeft(&r, time.Now()); !ok || left != 55 {
		t.Fatalf("expiry left: %d %v", left, ok)
	}
	if left, ok := expiryLeft(&r, time.Now().Add(time.Minute)); !ok || left > 0 {
		t.Fatalf("a minute later: %d %v", left, ok)
	}

	// What a producer over HTTP or Kafka could put there that a publish
	// may not carry is left out; the rest is delivered.
	for _, bad := range []eddy.Header{
		{Key: headerResponseTopic, Value: []byte("resp/#")},
		{Key: headerResponseTopic, Value: []byte("a\x00b")},
		{Key: headerResponseTopic, Value: []byte(strings.Repeat("r", 70_000))},
		{Key: headerCorrelationData, Value: make([]byte, 70_000)},
		{Key: headerMessageExpiry, Value: []byte("soon")},
		{Key: headerPayloadFormat, Value: []byte("7")},
	} {
		var pk packets.Packet
		withHeaders(&pk, &eddy.FetchedRecord{Record: eddy.Record{Timestamp: time.Now().UnixMilli(), Headers: []eddy.Header{bad}}})
		if q := pk.Properties; q.ResponseTopic != "" || q.CorrelationData != nil || q.MessageExpiryInterval != 0 || q.PayloadFormatFlag || len(q.User) != 0 {
			t.Fatalf("%s=%.20q delivered as %+v", bad.Key, bad.Value, q)
		}
	}
}

// TestSubscriptionIdentifiersEncoded: a delivery matching filters with
// identifiers carries every one of them, sorted, as MQTT 5 asks; one
// matching none carries none.
func TestSubscriptionIdentifiersEncoded(t *testing.T) {
	ids := func(st *stream, name string) map[string]int {
		m, _, _ := st.matching(name)
		return m
	}
	st := &stream{}
	st.filters = []Filter{{Filter: "cmd/+", QoS: 1, ID: 9}, {Filter: "cmd/dev-17", QoS: 1, ID: 7}, {Filter: "#", QoS: 1}}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "t/cmd/dev-17",
		Filters: packets.Subscriptions{{Filter: "-", Identifiers: ids(st, "cmd/dev-17")}}}
	out := (&hook{}).OnPacketEncode(nil, pk)
	if got := out.Properties.SubscriptionIdentifier; len(got) != 2 || got[0] != 7 || got[1] != 9 {
		t.Fatalf("identifiers %v, want [7 9]", got)
	}
	pk.Filters = packets.Subscriptions{{Filter: "-", Identifiers: ids(st, "other/x")}}
	if got := (&hook{}).OnPacketEncode(nil, pk).Properties.SubscriptionIdentifier; len(got) != 0 {
		t.Fatalf("identifiers %v for a name only # matches, want none", got)
	}
}
