package e2e

import (
	"testing"
	"time"
)

// TestMQTTTruncatedSubscribe: an MQTT 5 SUBSCRIBE that ends after its
// filter, without the options byte, panicked the MQTT library's decoder
// (mochi-mqtt/server#501) and ended the node. Now it ends its connection:
// the node serves on, the tenant's connection is given back (a quota of
// one lets the device in again), a persistent session's subscription is
// kept, and the panic is counted.
func TestMQTTTruncatedSubscribe(t *testing.T) {
	p := newProc(t)
	p.start()
	acme := p.tenantToken("acme", "produce:*", "consume:*")
	if code, err := p.do("PATCH", "/v1/tenants/acme", "application/json", []byte(`{"quotas":{"max_connections":1}}`), nil); err != nil || code != 200 {
		t.Fatalf("quotas: %d %v", code, err)
	}
	truncated := func(clean bool) {
		m := dialMQTT(t, p)
		if _, code := m.connect(t, 5, "dev-1", "acme", acme, clean); code != 0 {
			t.Fatalf("connect: %d", code)
		}
		body := append([]byte{0, 7, 0}, mqttStr("sensors/#")...) // id 7, no properties, a filter, no options
		if _, err := m.c.Write(append(append([]byte{0x82}, mqttLen(len(body))...), body...)); err != nil {
			t.Fatal(err)
		}
		if !m.closedWithin(5 * time.Second) {
			t.Fatal("the truncated SUBSCRIBE's connection stays open")
		}
	}
	for _, clean := range []bool{true, false} {
		truncated(clean)
		if !p.alive() {
			t.Fatalf("the node died of a truncated SUBSCRIBE:\n%s", p.log.String()[max(0, p.log.Len()-3000):])
		}
		// As after any disconnect, the count follows the close.
		waitFor(t, "the connection given back", 5*time.Second, func() bool { return p.metric(`eddy_mqtt_connections{tenant="acme"}`) == 0 })
		m := dialMQTT(t, p)
		if _, code := m.connect(t, 5, "dev-1", "acme", acme, true); code != 0 {
			t.Fatalf("the device connects again: %d (its connection was not given back)", code)
		}
		if codes, _ := m.subscribe(t, 5, 1, []string{"sensors/#"}); len(codes) != 1 || codes[0] > 1 {
			t.Fatalf("subscribe after: %x", codes)
		}
		m.c.Close()
		waitFor(t, "the connection gone", 5*time.Second, func() bool { return p.metric(`eddy_mqtt_connections{tenant="acme"}`) == 0 })
	}
	if n := p.metric("eddy_mqtt_decoder_panics_total"); n != 2 {
		t.Fatalf("eddy_mqtt_decoder_panics_total %v, want 2", n)
	}
	p.mustCreateTopic("sensors", 1)
	p.pubWithin(5*time.Second, "mqttv5", "sensors/after", "another device still publishes")
}
