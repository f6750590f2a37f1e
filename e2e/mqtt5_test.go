package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// mqtt5 connects an MQTT 5 client (paho.golang) of the default tenant
// with c (its credentials filled in); what it receives goes to got.
func (p *proc) mqtt5(ctx context.Context, c *paho.Connect, got chan<- *paho.Publish) *paho.Client {
	p.tb.Helper()
	return p.mqtt5As(ctx, p.token, c, got)
}

// mqtt5As is mqtt5 with token as the password.
func (p *proc) mqtt5As(ctx context.Context, token string, c *paho.Connect, got chan<- *paho.Publish) *paho.Client {
	p.tb.Helper()
	conn, err := net.Dial("tcp", p.mqttAddr)
	if err != nil {
		p.tb.Fatal(err)
	}
	cl := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			got <- pr.Packet
			return true, nil
		}}})
	c.KeepAlive, c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = 30, "default", true, []byte(token), true
	if _, err := cl.Connect(ctx, c); err != nil {
		p.tb.Fatal(err)
	}
	p.tb.Cleanup(func() { cl.Disconnect(&paho.Disconnect{}) })
	return cl
}

// mqtt5Client is mqtt5 with a clean start, subscribed to filter at QoS 1.
func (p *proc) mqtt5Client(ctx context.Context, id, filter string, got chan<- *paho.Publish) *paho.Client {
	p.tb.Helper()
	c := p.mqtt5(ctx, &paho.Connect{ClientID: id, CleanStart: true}, got)
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		p.tb.Fatalf("subscribe %s: %v", filter, err)
	}
	return c
}

// receive is the next publish on got, within 10 s.
func receive(t *testing.T, got <-chan *paho.Publish, who string) *paho.Publish {
	t.Helper()
	select {
	case pk := <-got:
		return pk
	case <-time.After(10 * time.Second):
		t.Fatalf("%s received nothing", who)
		return nil
	}
}

// TestMQTTRequestResponse: MQTT 5's request/response through the log. A
// service produces a command over HTTP with a response topic, correlation
// data, a message expiry and the UTF-8 payload format as headers; the
// device receives them as its publish's properties (the expiry as what is
// left of it) and answers on the response topic with the correlation
// data, which an MQTT 5 client and an HTTP reader of the response topic
// both get back. A command whose expiry passed before it could be
// delivered is not delivered, and counted.
func TestMQTTRequestResponse(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	p.mustCreateTopic("resp", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	devGot, svcGot := make(chan *paho.Publish, 16), make(chan *paho.Publish, 16)
	device := p.mqtt5Client(ctx, "dev-17", "cmd/dev-17", devGot)
	p.mqtt5Client(ctx, "svc", "resp/#", svcGot)

	p.produceRecords("cmd",
		fmt.Sprintf(`{"key":"dev-17","value":"stale","timestamp":%d,"headers":{"mqtt.message_expiry_interval":"5"}}`, time.Now().UnixMilli()-10_000),
		`{"key":"dev-17","value":"reboot","headers":{"mqtt.response_topic":"resp/dev-17","mqtt.correlation_data":"req-42","mqtt.message_expiry_interval":"60","mqtt.payload_format":"1"}}`)
	cmd := receive(t, devGot, "the device")
	pr := cmd.Properties
	if string(cmd.Payload) != "reboot" || pr == nil || pr.ResponseTopic != "resp/dev-17" || string(pr.CorrelationData) != "req-42" ||
		pr.MessageExpiry == nil || *pr.MessageExpiry < 55 || *pr.MessageExpiry > 60 || pr.PayloadFormat == nil || *pr.PayloadFormat != 1 {
		t.Fatalf("the command: %s %+v", cmd.Payload, pr)
	}
	if n := p.metric("eddy_mqtt_expired_total"); n != 1 {
		t.Fatalf("expired messages counted: %v, want 1 (the stale command)", n)
	}

	if _, err := device.Publish(ctx, &paho.Publish{Topic: pr.ResponseTopic, QoS: 1, Payload: []byte("rebooting"),
		Properties: &paho.PublishProperties{CorrelationData: pr.CorrelationData}}); err != nil {
		t.Fatal(err)
	}
	resp := receive(t, svcGot, "the service")
	if resp.Topic != "resp/dev-17" || string(resp.Payload) != "rebooting" || resp.Properties == nil || string(resp.Properties.CorrelationData) != "req-42" {
		t.Fatalf("the answer: %s %s %+v", resp.Topic, resp.Payload, resp.Properties)
	}
	var out struct {
		Records []struct {
			Value   string
			Headers []struct{ Key, Value string }
		}
	}
	if code, err := p.do("GET", "/v1/topics/resp/partitions/0/records?offset=0", "", nil, &out); err != nil || code != 200 || len(out.Records) != 1 {
		t.Fatalf("the answer over HTTP: %d %v %+v", code, err, out)
	}
	correlated := false
	for _, h := range out.Records[0].Headers {
		correlated = correlated || h.Key == "mqtt.correlation_data" && h.Value == "req-42"
	}
	if !correlated {
		t.Fatalf("the answer's headers over HTTP: %+v", out.Records[0].Headers)
	}
	select {
	case pk := <-devGot:
		t.Fatalf("the device got %q too", pk.Payload)
	default:
	}
}

// TestMQTTSubscriptionIdentifiers: a delivery carries the subscription
// identifier of the device's matching filter (MQTT 5 3.3.4; the CONNACK
// says they are available), a shared group's member its shared filter's,
// none for a filter without one, and a persistent session keeps its
// filters' identifiers across a reconnect.
func TestMQTTSubscriptionIdentifiers(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	withID, without := make(chan *paho.Publish, 16), make(chan *paho.Publish, 16)
	expiry := uint32(600)
	persistent := &paho.Connect{ClientID: "dev-sid", Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	c := p.mqtt5(ctx, persistent, withID)
	seven := 7
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &seven},
		Subscriptions: []paho.SubscribeOptions{{Topic: "cmd/+", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	p.mqtt5Client(ctx, "plain", "cmd/+", without)
	shared := make(chan *paho.Publish, 16)
	sc := p.mqtt5(ctx, &paho.Connect{ClientID: "member", CleanStart: true}, shared)
	eleven := 11
	if _, err := sc.Subscribe(ctx, &paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &eleven},
		Subscriptions: []paho.SubscribeOptions{{Topic: "$share/g/cmd/+", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	id := func(pk *paho.Publish) int {
		if pk.Properties == nil || pk.Properties.SubscriptionIdentifier == nil {
			return 0
		}
		return *pk.Properties.SubscriptionIdentifier
	}
	p.produceRecords("cmd", `{"key":"dev-1","value":"first"}`)
	if pk := receive(t, withID, "the device with an identifier"); string(pk.Payload) != "first" || id(pk) != 7 {
		t.Fatalf("delivered %q with identifier %d, want 7", pk.Payload, id(pk))
	}
	if pk := receive(t, without, "the device without"); string(pk.Payload) != "first" || id(pk) != 0 {
		t.Fatalf("delivered %q with identifier %d, want none", pk.Payload, id(pk))
	}
	if pk := receive(t, shared, "the shared group's member"); string(pk.Payload) != "first" || id(pk) != 11 {
		t.Fatalf("delivered %q with identifier %d, want 11", pk.Payload, id(pk))
	}

	// Away, then back without subscribing again: its session has the
	// filter, and the filter its identifier.
	c.Disconnect(&paho.Disconnect{})
	p.produceRecords("cmd", `{"key":"dev-1","value":"missed"}`)
	again := make(chan *paho.Publish, 16)
	p.mqtt5(ctx, &paho.Connect{ClientID: "dev-sid", Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}, again)
	for { // "first" may come again (at least once), then "missed"
		pk := receive(t, again, "the device back")
		if id(pk) != 7 {
			t.Fatalf("after the reconnect: %q with identifier %d, want 7", pk.Payload, id(pk))
		}
		if string(pk.Payload) == "missed" {
			break
		}
	}
}

// TestMQTTNoLocalRetainAsPublished: a device's own publishes do not come
// back through its no local subscription (another device's do, and its
// own come back to a device without the option); a live delivery keeps
// its retain flag only through a subscription with retain as published.
func TestMQTTNoLocalRetainAsPublished(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("chat", 1)
	p.mustCreateTopic("cfg", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	aGot, bGot := make(chan *paho.Publish, 16), make(chan *paho.Publish, 16)
	a := p.mqtt5(ctx, &paho.Connect{ClientID: "dev-a", CleanStart: true}, aGot)
	b := p.mqtt5(ctx, &paho.Connect{ClientID: "dev-b", CleanStart: true}, bGot)
	for c, opts := range map[*paho.Client][]paho.SubscribeOptions{
		a: {{Topic: "chat/#", QoS: 1, NoLocal: true}, {Topic: "cfg/#", QoS: 1}},
		b: {{Topic: "chat/#", QoS: 1}, {Topic: "cfg/#", QoS: 1, RetainAsPublished: true}},
	} {
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts}); err != nil {
			t.Fatal(err)
		}
	}
	for c, text := range map[*paho.Client]string{a: "from-a", b: "from-b"} {
		if _, err := c.Publish(ctx, &paho.Publish{Topic: "chat/room-1", QoS: 1, Payload: []byte(text)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Publish(ctx, &paho.Publish{Topic: "cfg/dev-1", QoS: 1, Retain: true, Payload: []byte("interval=30")}); err != nil {
		t.Fatal(err)
	}
	seen := func(got <-chan *paho.Publish, who string, n int) map[string]bool {
		out := map[string]bool{}
		for range n {
			pk := receive(t, got, who)
			out[fmt.Sprintf("%s %s retain=%v", pk.Topic, pk.Payload, pk.Retain)] = true
		}
		select {
		case pk := <-got:
			t.Fatalf("%s got %s %q too", who, pk.Topic, pk.Payload)
		case <-time.After(time.Second):
		}
		return out
	}
	if got := seen(aGot, "dev-a", 2); !got["chat/room-1 from-b retain=false"] || !got["cfg/dev-1 interval=30 retain=false"] {
		t.Fatalf("dev-a (no local on chat/#) received %v", got)
	}
	if got := seen(bGot, "dev-b", 3); !got["chat/room-1 from-a retain=false"] || !got["chat/room-1 from-b retain=false"] || !got["cfg/dev-1 interval=30 retain=true"] {
		t.Fatalf("dev-b (retain as published on cfg/#) received %v", got)
	}
}
