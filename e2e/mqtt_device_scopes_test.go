package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// deviceToken mints a token of the default tenant for subject with
// scopes.
func (p *proc) deviceToken(subject string, scopes ...string) string {
	p.tb.Helper()
	body, _ := json.Marshal(map[string]any{"scopes": scopes, "ttl_seconds": 3600, "subject": subject})
	var out struct{ Token string }
	if code, err := p.do("POST", "/v1/tenants/default/tokens", "application/json", body, &out); err != nil || code != 201 {
		p.tb.Fatalf("token for %s: %d %v", subject, code, err)
	}
	return out.Token
}

// mqtt5Device connects a clean MQTT 5 session with token and a receive
// maximum of 10; what it receives goes to got.
func (p *proc) mqtt5Device(ctx context.Context, token, id string, got chan<- *paho.Publish) *paho.Client {
	p.tb.Helper()
	rm := uint16(10)
	return p.mqtt5As(ctx, token, &paho.Connect{ClientID: id, CleanStart: true, Properties: &paho.ConnectProperties{ReceiveMaximum: &rm}}, got)
}

// subscribeCodes subscribes to each filter at QoS 1 and answers the
// SUBACK's reason codes.
func subscribeCodes(t *testing.T, ctx context.Context, c *paho.Client, filters ...string) []byte {
	t.Helper()
	var subs []paho.SubscribeOptions
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	if sa == nil {
		t.Fatalf("subscribe %v: %v", filters, err)
	}
	return sa.Reasons
}

// TestMQTTUnreadableRecordsDoNotStall: a device whose token may read
// topic other (and, by an MQTT scope, its own MQTT topics), subscribed
// to #, is offered the records of every topic its filter matches: at
// SUBSCRIBE the retained ones, then the live ones. Those it may not read
// are not delivered, and do not take its window: after 100 retained and
// 300 live ones (40 times its receive maximum), a record of other still
// arrives; so too at a shared group's member.
func TestMQTTUnreadableRecordsDoNotStall(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("secret", 1)
	p.mustCreateTopic("other", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batch := func(retained bool) []string {
		var recs []string
		for j := 0; j < 100; j++ {
			r := fmt.Sprintf(`{"key":"k%d","value":"s%d"`, j, j)
			if retained {
				r += `,"headers":{"mqtt.retain":"true"}`
			}
			recs = append(recs, r+"}")
		}
		return recs
	}
	p.produceRecords("secret", batch(true)...)
	got := make(chan *paho.Publish, 500)
	c := p.mqtt5Device(ctx, p.deviceToken("narrow", "consume:other", "mqtt-sub:devices/{sub}/#"), "narrow", got)
	if codes := subscribeCodes(t, ctx, c, "#"); codes[0] >= 0x80 {
		t.Fatalf("subscribe #: 0x%02x", codes[0])
	}
	// A shared group's only member, likewise.
	gotShared := make(chan *paho.Publish, 500)
	member := p.mqtt5Device(ctx, p.tenantToken("default", "consume:other"), "member", gotShared)
	if codes := subscribeCodes(t, ctx, member, "$share/g/#"); codes[0] >= 0x80 {
		t.Fatalf("subscribe $share/g/#: 0x%02x", codes[0])
	}
	for i := 0; i < 3; i++ {
		p.produceRecords("secret", batch(false)...)
	}
	p.produceRecords("other", `{"key":"dev-1","value":"readable"}`)
	for who, got := range map[string]chan *paho.Publish{"the narrow device": got, "the shared group's member": gotShared} {
		pk := receive(t, got, who)
		if pk.Topic != "other/dev-1" || string(pk.Payload) != "readable" {
			t.Fatalf("%s received %s %q, want other/dev-1 readable (and nothing of secret)", who, pk.Topic, pk.Payload)
		}
	}
}

// statusAs is the HTTP status of a request made with token.
func (p *proc) statusAs(token, method, path, body string) int {
	p.tb.Helper()
	req, _ := http.NewRequest(method, p.url(path), bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.client().Do(req)
	if err != nil {
		p.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMQTTDeviceScopes: one token pattern per fleet, each device its own
// MQTT topics. dev-17's and dev-18's tokens hold only
// mqtt-pub:sensors/{sub}/#, mqtt-pub:devices/{sub}/status and
// mqtt-sub:devices/{sub}/#. dev-18 may publish its readings, not
// dev-17's (0x87), and cannot pass a message off as published on
// dev-17's command topic with a user property named mqtt.topic; dev-17
// may subscribe to its own commands, not to every device's (0x87), and
// receives exactly its own of the commands a service sends over HTTP,
// not a record of another topic whose header names its command topic.
// Neither token reads or writes a whole topic over HTTP.
func TestMQTTDeviceScopes(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 1)
	p.mustCreateTopic("devices", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scopes := []string{"mqtt-pub:sensors/{sub}/#", "mqtt-pub:devices/{sub}/status", "mqtt-sub:devices/{sub}/#"}
	tok17, tok18 := p.deviceToken("dev-17", scopes...), p.deviceToken("dev-18", scopes...)
	got17, got18 := make(chan *paho.Publish, 10), make(chan *paho.Publish, 10)
	dev17, dev18 := p.mqtt5Device(ctx, tok17, "dev-17", got17), p.mqtt5Device(ctx, tok18, "dev-18", got18)

	codes := subscribeCodes(t, ctx, dev17, "devices/dev-17/#", "devices/+/cmd", "#", "devices/dev-18/cmd", "$share/g/devices/+/cmd")
	if codes[0] >= 0x80 || codes[1] != 0x87 || codes[2] != 0x87 || codes[3] != 0x87 || codes[4] != 0x87 {
		t.Fatalf("dev-17's SUBACK: % x, want its own filter granted and 87 for the others", codes)
	}
	if codes := subscribeCodes(t, ctx, dev18, "devices/dev-18/cmd"); codes[0] >= 0x80 {
		t.Fatalf("dev-18's own filter: 0x%02x", codes[0])
	}

	publish := func(c *paho.Client, topic, payload string, user ...paho.UserProperty) byte {
		t.Helper()
		pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload),
			Properties: &paho.PublishProperties{User: user}})
		if pr == nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
		return pr.ReasonCode
	}
	if code := publish(dev18, "sensors/dev-17/temp", "forged"); code != 0x87 {
		t.Fatalf("dev-18 publishing dev-17's reading: 0x%02x, want 0x87", code)
	}
	if code := publish(dev18, "sensors/dev-18/temp", "21.5"); code != 0 {
		t.Fatalf("dev-18 publishing its own reading: 0x%02x", code)
	}
	if code := publish(dev18, "devices/dev-18/status", "open the door", paho.UserProperty{Key: "mqtt.topic", Value: "devices/dev-17/cmd"}); code != 0 {
		t.Fatalf("dev-18 publishing its status: 0x%02x", code)
	}
	var recs struct{ Records []fetchedRecord }
	if code, err := p.do("GET", "/v1/topics/sensors/partitions/0/records?offset=0", "", nil, &recs); err != nil || code != 200 ||
		len(recs.Records) != 1 || string(recs.Records[0].Key) != `"dev-18/temp"` {
		t.Fatalf("sensors: %d %v %+v, want dev-18's reading alone", code, err, recs.Records)
	}

	// A token that may write sensors (a whole topic) cannot reach dev-17
	// through a record of sensors whose header names dev-17's command
	// topic: its mapping sends that name to devices, not sensors.
	sensorsWriter := p.tenantToken("default", "produce:sensors")
	if code := p.statusAs(sensorsWriter, "POST", "/v1/topics/sensors/records",
		`{"records":[{"key":"x","value":"forged","headers":{"mqtt.topic":"devices/dev-17/cmd"}}]}`); code != 200 {
		t.Fatalf("produce to sensors: %d", code)
	}
	p.produceRecords("devices", `{"key":"dev-17/cmd","value":"open"}`, `{"key":"dev-18/cmd","value":"close"}`, `{"key":"dev-17/cmd","value":"last"}`)
	for _, want := range []string{"open", "last"} {
		pk := receive(t, got17, "dev-17")
		if pk.Topic != "devices/dev-17/cmd" || string(pk.Payload) != want {
			t.Fatalf("dev-17 received %s %q, want devices/dev-17/cmd %q (its own commands, nothing of dev-18's)", pk.Topic, pk.Payload, want)
		}
	}
	if pk := receive(t, got18, "dev-18"); pk.Topic != "devices/dev-18/cmd" || string(pk.Payload) != "close" {
		t.Fatalf("dev-18 received %s %q", pk.Topic, pk.Payload)
	}

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/topics/devices/partitions/0/records?offset=0", ""},
		{"POST", "/v1/topics/sensors/records", `{"records":[{"key":"dev-17/temp","value":"1"}]}`},
		{"GET", "/v1/topics/sensors", ""},
	} {
		if code := p.statusAs(tok17, c.method, c.path, c.body); code != 403 {
			t.Errorf("dev-17's token: %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	// The connections listing says what each device may do.
	var conns struct {
		Connections []struct {
			ClientID string `json:"client_id"`
			Subject  string
			Scopes   []string
		}
	}
	if code, err := p.do("GET", "/v1/mqtt/connections", "", nil, &conns); err != nil || code != 200 {
		t.Fatalf("connections: %d %v", code, err)
	}
	for _, c := range conns.Connections {
		if c.ClientID == "dev-17" && (c.Subject != "dev-17" || strings.Join(c.Scopes, " ") != strings.Join(scopes, " ")) {
			t.Errorf("dev-17's connection: %+v, want its subject and scopes %v", c, scopes)
		}
	}
	if n := p.metric(`eddy_mqtt_reserved_properties_dropped_total{tenant="default"}`); n != 1 {
		t.Errorf("reserved properties dropped: %v, want 1", n)
	}
}

// TestMQTTDeviceSession: a device of MQTT scopes bound to its client id
// (mqtt-client:{sub}) keeps a persistent session: offline while commands
// for it and for dev-18 are produced, it comes back to exactly its own,
// in order. dev-18 cannot connect under dev-17's client id (0x85), so it
// neither takes over dev-17's session nor moves its place.
func TestMQTTDeviceSession(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("devices", 2)
	scopes := []string{"mqtt-sub:devices/{sub}/#", "mqtt-client:{sub}"}
	tok17, tok18 := p.deviceToken("dev-17", scopes...), p.deviceToken("dev-18", scopes...)
	session := []string{"-c", "-x", "86400", "-i", "dev-17"}
	first := p.subWith(session, "mqttv5", "default", tok17, 1, 20, "devices/dev-17/#")
	p.subscribed(1)
	p.produceRecords("devices", `{"key":"dev-17/cmd","value":"0"}`)
	if got := first.lines(t); len(got) != 1 || got[0] != "devices/dev-17/cmd 0" {
		t.Fatalf("first: %q", got)
	}
	for i := 1; i <= 4; i++ {
		p.produceRecords("devices", fmt.Sprintf(`{"key":"dev-18/cmd","value":"%d"}`, i), fmt.Sprintf(`{"key":"dev-17/cmd","value":"%d"}`, i))
	}

	conn, err := net.Dial("tcp", p.mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, _ := paho.NewClient(paho.ClientConfig{Conn: conn}).Connect(ctx, &paho.Connect{ClientID: "dev-17", KeepAlive: 30,
		Username: "default", UsernameFlag: true, Password: []byte(tok18), PasswordFlag: true})
	if ca == nil || ca.ReasonCode != 0x85 {
		t.Fatalf("dev-18 under dev-17's client id: %+v, want CONNACK 0x85", ca)
	}
	conn.Close()
	if n := p.metric(`eddy_mqtt_connect_refused_total{code="client_id_not_allowed"}`); n != 1 {
		t.Errorf("refusals counted: %v", n)
	}

	got := p.subWith(session, "mqttv5", "default", tok17, 4, 20, "devices/dev-17/#").lines(t)
	want := "devices/dev-17/cmd 1|devices/dev-17/cmd 2|devices/dev-17/cmd 3|devices/dev-17/cmd 4"
	if g := strings.Join(got, "|"); g != want {
		t.Fatalf("dev-17 back: %q, want %q", g, want)
	}
}
