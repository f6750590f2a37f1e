package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Attacks on the MQTT listener (issue 12), each against a real node.

// tenantToken creates tenant t (if needed) and returns an operator-signed
// token of it with scopes.
func (p *proc) tenantToken(t string, scopes ...string) string {
	p.tb.Helper()
	p.do("POST", "/v1/tenants", "application/json", []byte(fmt.Sprintf(`{"name":%q}`, t)), nil)
	body, _ := json.Marshal(map[string]any{"scopes": scopes, "ttl_seconds": 3600})
	var out struct{ Token string }
	if code, err := p.do("POST", "/v1/tenants/"+t+"/tokens", "application/json", body, &out); err != nil || code != 201 {
		p.tb.Fatalf("token for %s: %d %v", t, code, err)
	}
	return out.Token
}

// pubWithin publishes (QoS 1, the operator token) until the node
// acknowledges, for at most d: a listener recovering from an attack.
func (p *proc) pubWithin(d time.Duration, version, topic, msg string) {
	p.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		out, ok := p.pub(version, "default", p.token, topic, msg, 1)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("publish after the attack: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric sums the values of the /metrics lines that start with prefix.
func (p *proc) metric(prefix string) float64 {
	var sum float64
	for _, line := range strings.Split(p.metricsText(), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}

// TestMQTTClientIDsPerTenant: a device of globex connecting with acme's
// client id neither disconnects acme's device nor learns that the id
// exists; within one tenant a client id still takes its session over.
func TestMQTTClientIDsPerTenant(t *testing.T) {
	p := newProc(t)
	p.start()
	acme := p.tenantToken("acme", "produce:*")
	globex := p.tenantToken("globex", "produce:*")

	a := dialMQTT(t, p)
	if sp, rc := a.connect(t, 4, "sn-1", "acme", acme, false); rc != 0 || sp {
		t.Fatalf("acme connect: session present %v, rc %d", sp, rc)
	}
	b := dialMQTT(t, p)
	if sp, rc := b.connect(t, 4, "sn-1", "globex", globex, false); rc != 0 || sp {
		t.Fatalf("globex with acme's client id: session present %v (leaks that the id exists), rc %d", sp, rc)
	}
	if a.closedWithin(time.Second) {
		t.Fatal("globex's connection with acme's client id disconnected acme's device")
	}
	// acme's own second connection takes the session over, as MQTT says.
	a2 := dialMQTT(t, p)
	if sp, rc := a2.connect(t, 4, "sn-1", "acme", acme, false); rc != 0 || !sp {
		t.Fatalf("acme takes over its own session: session present %v, rc %d", sp, rc)
	}
	if !a.closedWithin(3 * time.Second) {
		t.Fatal("the taken-over connection stayed open")
	}
	if b.closedWithin(500 * time.Millisecond) {
		t.Fatal("acme's takeover disconnected globex's device")
	}
}

// TestMQTTBeforeLogin: sockets that never log in cost neither memory nor
// descriptors for long. A CONNECT declaring 16 MiB is dropped before any
// of it is allocated, a silent socket is closed after mqtt_connect_timeout,
// connections from one address are capped, and the listener serves
// devices throughout.
func TestMQTTBeforeLogin(t *testing.T) {
	p := newProc(t)
	p.env = []string{"EDDY_MQTT_CONNECT_TIMEOUT=1s", "EDDY_MAX_CONNECTIONS_PER_IP=100"}
	p.start()
	p.mustCreateTopic("sensors", 1)
	before := rss(t, p.cmd.Process.Pid)

	// 60 CONNECTs declaring 16 MiB each (the old code allocated them all).
	huge := append([]byte{0x10}, mqttLen(16<<20-1)...)
	var socks []*rawMQTT
	for i := 0; i < 60; i++ {
		m := dialMQTT(t, p)
		m.c.Write(append(huge, make([]byte, 1024)...))
		socks = append(socks, m)
	}
	for i, m := range socks {
		if !m.closedWithin(3 * time.Second) {
			t.Fatalf("socket %d with a 16 MiB CONNECT stayed open", i)
		}
	}
	if grew := rss(t, p.cmd.Process.Pid) - before; grew > 64<<20 {
		t.Fatalf("RSS grew by %d MiB for 60 unauthenticated sockets", grew>>20)
	}

	// Silent sockets are closed after the connect timeout.
	socks = socks[:0]
	for i := 0; i < 50; i++ {
		socks = append(socks, dialMQTT(t, p))
	}
	for i, m := range socks {
		if !m.closedWithin(4 * time.Second) {
			t.Fatalf("silent socket %d still open after the 1s connect timeout", i)
		}
	}

	// 150 sockets from one address: 100 are let in, the rest closed at once.
	var held []net.Conn
	for i := 0; i < 150; i++ {
		c, err := net.Dial("tcp", p.mqttAddr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(300 * time.Millisecond)
	if n := p.metric(`eddy_connections_refused_total{listener="mqtt",reason="max_connections_per_ip"}`); n < 50 {
		t.Fatalf("%v connections refused over the per-address cap of 100, want 50", n)
	}
	for _, c := range held {
		c.Close()
	}
	if n := p.metric(`eddy_mqtt_preauth_dropped_total{reason="connect_too_large"}`); n < 60 {
		t.Fatalf("connect_too_large counted %v times, want 60", n)
	}
	// The held sockets free their places once the node reads their close.
	p.pubWithin(5*time.Second, "mqttv5", "sensors/dev-1", "still here")
}

// TestMQTTPacketBound: a device's packet is read whole, so its size is
// bounded (mqtt_max_packet_bytes, 1 MiB): 900 KiB is taken, a declared
// 2 MiB closes the connection before it is read.
func TestMQTTPacketBound(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("big", 1)
	publish := func(size int) []byte {
		body := append(mqttStr("big/x"), 0, 1, 0) // packet id 1, no properties
		return append(append([]byte{0x32}, mqttLen(len(body)+size)...), body...)
	}
	m := dialMQTT(t, p)
	if _, rc := m.connect(t, 5, "big-1", "default", p.token, true); rc != 0 {
		t.Fatalf("connect: rc %d", rc)
	}
	m.c.Write(append(publish(900<<10), make([]byte, 900<<10)...))
	if h, body, err := m.packet(10 * time.Second); err != nil || h>>4 != 4 || len(body) < 2 || (len(body) > 2 && body[2] != 0) {
		t.Fatalf("PUBACK of a 900 KiB publish: %x %x %v", h, body, err)
	}
	m2 := dialMQTT(t, p)
	if _, rc := m2.connect(t, 5, "big-2", "default", p.token, true); rc != 0 {
		t.Fatalf("connect: rc %d", rc)
	}
	m2.c.Write(append(publish(2<<20), make([]byte, 1024)...))
	if !m2.closedWithin(3 * time.Second) {
		t.Fatal("a publish declaring 2 MiB did not close its connection")
	}
}

// TestMQTTKeepAlive: a device silent for 1.5 times its keep-alive is
// disconnected, at most a second late (the listener moves a connection's
// deadline about once a second, not at every packet); one that pings in
// time stays.
func TestMQTTKeepAlive(t *testing.T) {
	p := newProc(t)
	p.start()
	silent, pinging := dialMQTT(t, p), dialMQTT(t, p)
	for i, m := range []*rawMQTT{silent, pinging} {
		if _, rc := m.connectKeepAlive(t, 4, fmt.Sprintf("ka-%d", i), "default", p.token, true, 2); rc != 0 {
			t.Fatalf("connect: rc %d", rc)
		}
	}
	start := time.Now()
	pings := make(chan error, 1)
	go func() { // a PINGREQ a second for 7 s, each answered
		for range 7 {
			time.Sleep(time.Second)
			if _, err := pinging.c.Write([]byte{0xC0, 0}); err != nil {
				pings <- err
				return
			}
			if h, _, err := pinging.packet(2 * time.Second); err != nil || h != 0xD0 {
				pings <- fmt.Errorf("PINGRESP: %x %v", h, err)
				return
			}
		}
		pings <- nil
	}()
	if silent.closedWithin(2500 * time.Millisecond) {
		t.Fatalf("a silent device with a keep-alive of 2 s was disconnected after %v, before 3 s", time.Since(start))
	}
	if !silent.closedWithin(3 * time.Second) {
		t.Fatalf("a silent device with a keep-alive of 2 s still connected after %v; want at most 4 s", time.Since(start))
	}
	if err := <-pings; err != nil {
		t.Fatalf("a device pinging every second within its keep-alive of 2 s: %v", err)
	}
}

// TestMQTTRevocationReachesLiveConnections: removing a tenant's key
// disconnects the devices connected with tokens it signed, and deleting a
// tenant disconnects its sessions; the re-created tenant does not accept
// the old tenant's tokens.
func TestMQTTRevocationReachesLiveConnections(t *testing.T) {
	p := newProc(t)
	p.start()
	p.tenantToken("acme", "admin")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	key, _ := json.Marshal(map[string]string{"kid": "acme-1", "alg": "EdDSA", "public_key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	if code, err := p.do("POST", "/v1/tenants/acme/keys", "application/json", key, nil); err != nil || code != 201 {
		t.Fatalf("add key: %d %v", code, err)
	}
	claims := jwt.MapClaims{"tenant": "acme", "iss": "acme", "aud": "eddy", "sub": "dev-1", "scopes": []string{"produce:*"},
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "acme-1"
	device, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	d := dialMQTT(t, p)
	if _, rc := d.connect(t, 5, "dev-1", "acme", device, true); rc != 0 {
		t.Fatalf("device connect: rc 0x%x", rc)
	}
	if code, err := p.do("DELETE", "/v1/tenants/acme/keys/acme-1", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("remove key: %d %v", code, err)
	}
	if !d.closedWithin(5 * time.Second) {
		t.Fatal("a device whose key was removed is still connected")
	}

	old := p.tenantToken("gone", "produce:*")
	g := dialMQTT(t, p)
	if _, rc := g.connect(t, 4, "dev-2", "gone", old, true); rc != 0 {
		t.Fatalf("connect: rc %d", rc)
	}
	if code, err := p.do("DELETE", "/v1/tenants/gone?force=true", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("delete tenant: %d %v", code, err)
	}
	if !g.closedWithin(5 * time.Second) {
		t.Fatal("a session of a deleted tenant is still connected")
	}
	p.tenantToken("gone", "produce:*") // created again
	g2 := dialMQTT(t, p)
	if _, rc := g2.connect(t, 4, "dev-2", "gone", old, true); rc == 0 {
		t.Fatal("the re-created tenant accepted the deleted tenant's token")
	}
}

// TestMQTTRefusalsAreAnswered: a QoS 1 publish to $SYS gets a PUBACK with
// 0x90 instead of silence; a PUBACK echoes no property; a publish with more
// user properties than allowed is refused with 0x95; the connection serves
// on after each. A wildcard in a topic name is a protocol error: a
// DISCONNECT with 0x82.
func TestMQTTRefusalsAreAnswered(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 1)
	m := dialMQTT(t, p)
	if _, rc := m.connect(t, 5, "dev-9", "default", p.token, true); rc != 0 {
		t.Fatalf("connect: 0x%x", rc)
	}
	if rc, _ := m.publish5(t, 1, "$SYS/broker/clients", 0, "x"); rc != 0x90 {
		t.Fatalf("$SYS publish: reason 0x%x, want 0x90", rc)
	}
	if rc, n := m.publish5(t, 3, "sensors/dev-9", 10, "ok"); rc != 0 || n > 4 {
		t.Fatalf("publish with 10 user properties: reason 0x%x, PUBACK of %d bytes (echoed properties?)", rc, n)
	}
	if rc, n := m.publish5(t, 4, "sensors/dev-9", 1000, "too many"); rc != 0x95 || n > 64 {
		t.Fatalf("publish with 1,000 user properties: reason 0x%x, PUBACK of %d bytes", rc, n)
	}
	if rc, _ := m.publish5(t, 5, "sensors/dev-9", 0, "after"); rc != 0 {
		t.Fatalf("publish after the refusals: 0x%x", rc)
	}
	if got := p.records("", "sensors", 0); len(got) != 2 {
		t.Fatalf("%d records stored, want the 2 accepted", len(got))
	}
	body := append(mqttStr("sensors/+"), 0, 6, 0)
	m.c.Write(append(append([]byte{0x32}, mqttLen(len(body))...), body...))
	if h, b, err := m.packet(5 * time.Second); err != nil || h>>4 != 14 || len(b) < 1 || b[0] != 0x82 {
		t.Fatalf("wildcard publish: %x %x %v, want DISCONNECT 0x82", h, b, err)
	}
}

// TestTenantDefaultQuotas: a tenant created without quotas gets the node's
// safe defaults (a 64-partition topic used to take 4 GB of a gateway in a
// second); an operator lifts one with 0; the default tenant stays
// unlimited. The MQTT connection quota refuses with 0x97.
func TestTenantDefaultQuotas(t *testing.T) {
	p := newProc(t)
	p.start()
	admin := p.tenantToken("acme", "admin")
	var tj struct {
		Quotas map[string]int64 `json:"quotas"`
	}
	if code, err := p.do("GET", "/v1/tenants/acme", "", nil, &tj); err != nil || code != 200 || tj.Quotas["max_partitions"] != 128 || tj.Quotas["max_connections"] != 1000 {
		t.Fatalf("acme's quotas: %d %v %v", code, err, tj.Quotas)
	}
	req, _ := json.Marshal(map[string]any{"name": "big", "partitions": 129})
	acme := *p
	acme.token = admin
	var out map[string]any
	if code, _ := acme.do("POST", "/v1/topics", "application/json", req, &out); code != 409 {
		t.Fatalf("129 partitions past the default quota of 128: %d %v", code, out)
	}
	if code, err := p.do("PATCH", "/v1/tenants/acme", "application/json", []byte(`{"quotas":{"max_partitions":0,"max_connections":2}}`), nil); err != nil || code != 200 {
		t.Fatalf("lift the quota: %d %v", code, err)
	}
	if code, _ := acme.do("POST", "/v1/topics", "application/json", []byte(`{"name":"big","partitions":2}`), &out); code != 201 {
		t.Fatalf("after the operator lifted the quota: %d %v", code, out)
	}
	tj.Quotas = nil
	if code, err := p.do("GET", "/v1/tenants/default", "", nil, &tj); err != nil || code != 200 || len(tj.Quotas) != 0 {
		t.Fatalf("the default tenant has quotas: %v", tj.Quotas)
	}
	for i := 0; i < 2; i++ {
		m := dialMQTT(t, p)
		if _, rc := m.connect(t, 5, fmt.Sprint("d", i), "acme", admin, true); rc != 0 {
			t.Fatalf("connection %d: 0x%x", i, rc)
		}
	}
	m := dialMQTT(t, p)
	if _, rc := m.connect(t, 5, "d3", "acme", admin, true); rc != 0x97 {
		t.Fatalf("a third connection over max_connections 2: 0x%x, want 0x97", rc)
	}
}

// TestMQTTSubscriptionBound: a connection's subscriptions are bounded
// (mqtt_max_subscriptions, 100; mqtt_max_filter_bytes, 1 KiB). A device
// sending 200,000 filters gets 100 and a refusal for the rest (v5: 0x97
// with a reason string; 3.1.1: 0x80), the node's memory stays put (it
// grew 470 MB before the bound), and another device is served meanwhile.
func TestMQTTSubscriptionBound(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	before := rss(t, p.cmd.Process.Pid)
	m := dialMQTT(t, p)
	if _, rc := m.connect(t, 5, "many", "default", p.token, true); rc != 0 {
		t.Fatalf("connect: rc %d", rc)
	}
	granted, refused := 0, 0
	var reason string
	for r := range 20 {
		filters := make([]string, 10_000)
		for i := range filters {
			filters[i] = fmt.Sprintf("cmd/f%d/%d", r, i)
		}
		codes, why := m.subscribe(t, 5, uint16(r+1), filters)
		for _, c := range codes {
			switch c {
			case 1:
				granted++
			case 0x97:
				refused++
				reason = why
			default:
				t.Fatalf("a SUBACK code 0x%x", c)
			}
		}
	}
	if granted != 100 || refused != 199_900 || !strings.Contains(reason, "mqtt_max_subscriptions") {
		t.Fatalf("granted %d, refused %d (%q); want 100 and 199,900 with the reason", granted, refused, reason)
	}
	if codes, _ := m.subscribe(t, 5, 21, []string{"cmd/f0/7"}); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("a filter the connection has, again: %x", codes)
	}
	p.pubWithin(5*time.Second, "mqttv5", "cmd/dev-1", "still served")
	if grew := rss(t, p.cmd.Process.Pid) - before; grew > 100<<20 {
		t.Errorf("the node grew %d MB for one connection's filters", grew>>20)
	}
	m3 := dialMQTT(t, p)
	if _, rc := m3.connect(t, 4, "long", "default", p.token, true); rc != 0 {
		t.Fatalf("connect: rc %d", rc)
	}
	if codes, _ := m3.subscribe(t, 4, 1, []string{"cmd/" + strings.Repeat("x", 2000), "cmd/short"}); len(codes) != 2 || codes[0] != 0x80 || codes[1] != 1 {
		t.Fatalf("3.1.1, a 2 KB filter and a short one: %x, want 80 01", codes)
	}
}

// TestMQTTTopicAliasBound: the node offers MQTT 5 clients 10 topic aliases
// (mqtt_max_topic_aliases), which mochi keeps a topic for each for the
// connection's life: with its default of 65,535, one connection's 20,000
// aliases of 30 KB topics took a node to 1.15 GB. Alias 10 works; alias
// 11 is a protocol error that closes the connection.
func TestMQTTTopicAliasBound(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	m := dialMQTT(t, p)
	if _, err := m.c.Write(connectPacket(5, "aliases", "default", p.token, true, 60)); err != nil {
		t.Fatal(err)
	}
	h, ack, err := m.packet(5 * time.Second)
	if err != nil || h>>4 != 2 || len(ack) < 3 || ack[1] != 0 {
		t.Fatalf("connack: %x %x %v", h, ack, err)
	}
	aliasMax := -1
	if v, ok := connackProperty(ack, 0x22); ok {
		aliasMax = int(binary.BigEndian.Uint16(v))
	}
	if aliasMax != 10 {
		t.Fatalf("CONNACK's topic alias maximum: %d, want 10", aliasMax)
	}
	publishAlias := func(id uint16, alias uint16) {
		props := []byte{0x23, byte(alias >> 8), byte(alias)}
		body := append(mqttStr(fmt.Sprintf("cmd/dev-%d", alias)), byte(id>>8), byte(id), byte(len(props)))
		body = append(append(body, props...), "v"...)
		m.c.Write(append(append([]byte{0x32}, mqttLen(len(body))...), body...))
	}
	publishAlias(1, 10)
	if h, ack, err := m.packet(10 * time.Second); err != nil || h>>4 != 4 || (len(ack) > 2 && ack[2] != 0) {
		t.Fatalf("a publish setting alias 10: %x %x %v", h, ack, err)
	}
	publishAlias(2, 11)
	if !m.closedWithin(5 * time.Second) {
		t.Fatal("a publish setting alias 11 did not close the connection")
	}
	p.pubWithin(5*time.Second, "mqttv5", "cmd/dev-1", "still served")
}

// connackProperty finds an MQTT 5 CONNACK property (flags, code, then
// the properties) and returns its value's bytes.
func connackProperty(ack []byte, want byte) ([]byte, bool) {
	n, i, mult := 0, 2, 1
	for ; i < len(ack); i++ { // the properties' length, a variable byte integer
		n += int(ack[i]&127) * mult
		mult *= 128
		if ack[i]&128 == 0 {
			i++
			break
		}
	}
	props := ack[i:min(len(ack), i+n)]
	for i := 0; i < len(props); {
		id := props[i]
		i++
		size := 0
		switch id {
		case 0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A:
			size = 1
		case 0x13, 0x21, 0x22, 0x23:
			size = 2
		case 0x02, 0x11, 0x18, 0x27:
			size = 4
		case 0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F:
			size = 2 + int(binary.BigEndian.Uint16(props[i:]))
		case 0x26: // a user property: two strings
			size = 2 + int(binary.BigEndian.Uint16(props[i:]))
			size += 2 + int(binary.BigEndian.Uint16(props[i+size:]))
		default:
			return nil, false
		}
		if id == want {
			return props[i : i+size], true
		}
		i += size
	}
	return nil, false
}

// TestMQTTStalledSubscribersBounded: 200 devices subscribe with QoS 1 and
// stop reading their sockets, then 40 MB of records go to the 8
// partitions they follow. Each falls behind; the node's peak stays within
// 384 MB (950-1,182 MB before: each device's readers held a 1 MiB read
// for every partition behind, and a cache of who a name's records go to
// grew with names times devices), and a device that reads gets every
// record meanwhile.
func TestMQTTStalledSubscribersBounded(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("m", 8)
	const clients, batches, perBatch = 8, 50, 100
	healthy := p.sub("mqttv5", "default", p.token, clients*batches*perBatch, 120, "m/#")
	stalledSubscribers(t, p, 200, "m/#")
	p.subscribed(201)
	if err := appendKiBRecords(p, "m", clients, batches, perBatch); err != nil {
		t.Fatal(err)
	}
	got := len(healthy.lines(t))
	peak := peakRSS(t, p)
	t.Logf("200 stalled subscribers, 40 MB of records: the reading device got %d of %d; the node's peak RSS %d MB", got, clients*batches*perBatch, peak>>20)
	if got != clients*batches*perBatch {
		t.Fatalf("the device that reads got %d of %d records", got, clients*batches*perBatch)
	}
	if !p.alive() {
		t.Fatalf("the node died\n%s", p.log)
	}
	if limit := int64(384) << 20; peak > limit {
		t.Fatalf("peak RSS %d MB, over %d MB", peak>>20, limit>>20)
	}
}

// TestMQTTStalledSubscribersLargeBatches: a read returns a stored batch
// whole, and one HTTP request's records are one batch (4 MB here). Each
// of 100 devices that subscribed and stopped reading kept the whole batch
// its reader had decoded while its window held 64 of the records:
// 100 x 4 MB (the node grew by 921-1,041 MB). Its reader now keeps a
// quarter of the batch, copied out of it, and reads a batch that large
// only with room for it in the node's request memory (+309-355 MB).
func TestMQTTStalledSubscribersLargeBatches(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("big", 1)
	const requests, perRequest = 5, 4000
	healthy := p.sub("mqttv5", "default", p.token, requests*perRequest, 120, "big/#")
	stalledSubscribers(t, p, 100, "big/#")
	p.subscribed(101)
	before := peakRSS(t, p)
	recs := make([]string, perRequest)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"key":"k%d","value":%q}`, i, strings.Repeat("x", 1000))
	}
	body := []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)
	for range requests {
		if code, err := p.do("POST", "/v1/topics/big/records", "application/json", body, nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	got := len(healthy.lines(t))
	peak := peakRSS(t, p)
	t.Logf("100 stalled subscribers, 20 MB in batches of 4 MB: the reading device got %d of %d; the node's peak RSS %d MB (%d MB before)", got, requests*perRequest, peak>>20, before>>20)
	if got != requests*perRequest {
		t.Fatalf("the device that reads got %d of %d records", got, requests*perRequest)
	}
	if grew := peak - before; grew > 480<<20 {
		t.Fatalf("the node grew by %d MB", grew>>20)
	}
}

// stalledSubscribers connects n devices that subscribe to filter with
// QoS 1 and never read their sockets again.
func stalledSubscribers(t *testing.T, p *proc, n int, filter string) {
	t.Helper()
	for i := range n {
		m := dialMQTT(t, p)
		if _, rc := m.connect(t, 5, fmt.Sprintf("stalled-%d", i), "default", p.token, true); rc != 0 {
			t.Fatalf("connect %d: 0x%02x", i, rc)
		}
		m.subscribe(t, 5, 1, []string{filter})
	}
}

// TestMQTTSessionsQuota: a tenant's MQTT persistent sessions are bounded
// by max_mqtt_sessions, apart from its consumer groups (max_groups): with
// one group and two sessions allowed, two devices keep sessions beside a
// group, and a third device's SUBSCRIBE is refused until one session
// ends with a clean start.
func TestMQTTSessionsQuota(t *testing.T) {
	p := newProc(t)
	p.start()
	tok := p.tenantToken("fleet", "produce:*", "consume:*")
	if code, err := p.do("POST", "/v1/tenants/fleet/topics", "application/json", []byte(`{"name":"cmd"}`), nil); err != nil || code != 201 {
		t.Fatalf("topic: %d %v", code, err)
	}
	if code, err := p.do("PATCH", "/v1/tenants/fleet", "application/json", []byte(`{"quotas":{"max_groups":1,"max_mqtt_sessions":2}}`), nil); err != nil || code != 200 {
		t.Fatalf("quotas: %d %v", code, err)
	}
	if code, err := p.do("POST", "/v1/tenants/fleet/groups/dash/members", "application/json", []byte(`{"topics":["cmd"]}`), nil); err != nil || code != 201 {
		t.Fatalf("a consumer group beside the sessions: %d %v", code, err)
	}
	subscribe := func(client string, clean bool) byte {
		t.Helper()
		m := dialMQTT(t, p)
		if _, rc := m.connect(t, 4, client, "fleet", tok, clean); rc != 0 {
			t.Fatalf("%s: CONNACK 0x%x", client, rc)
		}
		body := append([]byte{0, 1}, append(mqttStr("cmd/"+client), 1)...)
		m.c.Write(append(append([]byte{0x82}, mqttLen(len(body))...), body...))
		_, b, err := m.packet(5 * time.Second)
		if err != nil || len(b) != 3 {
			t.Fatalf("%s: SUBACK %x %v", client, b, err)
		}
		m.c.Close()
		return b[2]
	}
	for _, c := range []string{"d1", "d2"} {
		if rc := subscribe(c, false); rc != 1 {
			t.Fatalf("%s's session: SUBACK 0x%x, want 0x01", c, rc)
		}
	}
	if rc := subscribe("d3", false); rc != 0x80 {
		t.Fatalf("a third session over max_mqtt_sessions 2: SUBACK 0x%x, want 0x80", rc)
	}
	subscribe("d1", true) // a clean start ends d1's session
	if rc := subscribe("d3", false); rc != 1 {
		t.Fatalf("d3 after d1's session ended: SUBACK 0x%x, want 0x01", rc)
	}
}
