package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MQTT ingest through a real node, with Debian's mosquitto clients.

func (p *proc) mqttPort() string {
	_, port, _ := strings.Cut(p.mqttAddr, ":")
	return port
}

// pub runs mosquitto_pub against the node; it returns the combined output
// and whether the publish was acknowledged (mosquitto_pub exits 0 on a v5
// PUBACK with a failure reason code, and says "Publish 1 failed").
func (p *proc) pub(version, user, password, topic, msg string, qos int, extra ...string) (string, bool) {
	p.tb.Helper()
	args := append([]string{"-h", "127.0.0.1", "-p", p.mqttPort(), "-V", version, "-u", user, "-P", password,
		"-t", topic, "-m", msg, "-q", fmt.Sprint(qos), "-i", fmt.Sprintf("e2e-%d", time.Now().UnixNano())}, extra...)
	cmd := exec.Command("mosquitto_pub", args...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil && !strings.Contains(string(out), "failed")
}

// waitRecords polls a partition until it holds n records (QoS 0 is
// appended asynchronously).
func (p *proc) waitRecords(topic string, part, n int) []fullRecord {
	p.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.records("", topic, part)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMQTTPublish(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 1)
	tok := p.token
	// MQTT 5, QoS 1: topic, key, user properties and content type.
	out, ok := p.pub("mqttv5", "default", tok, "sensors/dev-17/temp", `{"t":21.5}`, 1,
		"-D", "publish", "user-property", "unit", "C", "-D", "publish", "content-type", "application/json")
	if !ok {
		t.Fatalf("v5 qos1: %s", out)
	}
	got := p.records("", "sensors", 0)
	if len(got) != 1 {
		t.Fatalf("stored %d records, want 1 (QoS 1 is acknowledged after the commit)", len(got))
	}
	r := got[0]
	if jsonString(r.Key) != "dev-17/temp" || string(r.Value) != `{"t":21.5}` || r.header("unit") != "C" || r.header("mqtt.topic") != "sensors/dev-17/temp" ||
		r.header("mqtt.qos") != "1" || r.header("mqtt.retain") != "false" || r.header("content-type") != "application/json" {
		t.Fatalf("record %+v", r)
	}
	// MQTT 3.1.1, QoS 1; a single-level topic has no key.
	if out, ok := p.pub("mqttv311", "default", tok, "sensors", "plain", 1); !ok {
		t.Fatalf("v311 qos1: %s", out)
	}
	got = p.records("", "sensors", 0)
	if len(got) != 2 || string(got[1].Key) != "null" || jsonString(got[1].Value) != "plain" {
		t.Fatalf("v311 record %+v", got)
	}
	// QoS 0, both versions: best effort, appended shortly after.
	for _, v := range []string{"mqttv5", "mqttv311"} {
		if out, ok := p.pub(v, "default", tok, "sensors/q0", "zero-"+v, 0); !ok {
			t.Fatalf("%s qos0: %s", v, out)
		}
	}
	got = p.waitRecords("sensors", 0, 4)
	if len(got) != 4 || got[2].header("mqtt.qos") != "0" {
		t.Fatalf("qos0 records %+v", got)
	}
}

func TestMQTTRefusals(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 1)
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"small","partitions":1,"config":{"max.message.bytes":"200"}}`), nil); err != nil || code != 201 {
		t.Fatalf("create small: %d %v", code, err)
	}
	p.mustCLI("", "tenant", "create", "acme")
	acme := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "acme", "--scopes", "produce:*", "--ttl", "1h"))
	device := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "default", "--scopes", "produce:sensors", "--ttl", "1h"))
	for _, c := range []struct {
		name, version, user, password, topic, msg string
		want                                      string
	}{
		{"wrong password", "mqttv5", "default", "not-a-token", "sensors/x", "m", "Bad User Name or Password"},
		{"v311 wrong password", "mqttv311", "default", "not-a-token", "sensors/x", "m", "not authorised"},
		{"another tenant's name", "mqttv5", "default", acme, "sensors/x", "m", "Bad User Name or Password"},
		{"no produce scope", "mqttv5", "default", device, "small/x", "m", "Publish 1 failed: Not authorized"},
		{"missing topic", "mqttv5", "default", device, "nope/x", "m", "Publish 1 failed: Not authorized"}, // no scope for it either
		{"missing topic in its tenant", "mqttv5", "acme", acme, "sensors/x", "m", "Topic Name invalid.\ntopic sensors does not exist"},
		{"oversized payload", "mqttv5", "default", p.token, "small/x", strings.Repeat("x", 500), "over topic small's max.message.bytes of 200"},
		{"v311 no produce scope", "mqttv311", "default", device, "small/x", "m", ""},
		{"v311 oversized payload", "mqttv311", "default", p.token, "small/x", strings.Repeat("x", 500), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := p.pub(c.version, c.user, c.password, c.topic, c.msg, 1)
			if ok {
				t.Fatalf("accepted: %s", out)
			}
			if c.want != "" && !strings.Contains(out, c.want) {
				t.Fatalf("refusal %q does not say %q", out, c.want)
			}
		})
	}
	for _, topic := range []string{"sensors", "small"} {
		if n := len(p.records("", topic, 0)); n != 0 {
			t.Fatalf("%d refused records stored in %s", n, topic)
		}
	}
	if out, ok := p.pub("mqttv5", "default", device, "sensors/ok", "fine", 1); !ok {
		t.Fatalf("a good publish after the refusals: %s", out)
	}
	// The load generator (examples/devices, eddy bench mqtt) counts each
	// refused publish with its reason, and goes on.
	acked, out := p.devices("small", 4, 40, "--size", "500", "--inflight", "4")
	var res struct {
		Acked, Failed int64
		Errors        map[string]int
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &res); err != nil {
		t.Fatalf("devices: %v\n%s", err, out)
	}
	reason := false
	for e := range res.Errors {
		reason = reason || strings.Contains(e, "reason 0x95") && strings.Contains(e, "max.message.bytes")
	}
	if len(acked) != 0 || res.Acked != 0 || res.Failed != 40 || !reason {
		t.Fatalf("40 oversized publishes: %d acknowledged, result %+v", len(acked), res)
	}
}

var (
	devicesOnce sync.Once
	devicesBin  string
)

// devices runs examples/devices against the node and returns the sequence
// numbers it had acknowledged.
func (p *proc) devices(topic string, devices, messages int, extra ...string) (map[int]bool, string) {
	p.tb.Helper()
	devicesOnce.Do(func() {
		devicesBin = filepath.Join(filepath.Dir(eddyBin), "devices")
		if out, err := exec.Command("go", "build", "-o", devicesBin, "../examples/devices").CombinedOutput(); err != nil {
			p.tb.Fatalf("build devices: %v\n%s", err, out)
		}
	})
	acked := filepath.Join(p.tb.TempDir(), "acked")
	args := append([]string{"--addr", p.mqttAddr, "--token", p.token, "--topic", topic, "--devices", fmt.Sprint(devices),
		"--messages", fmt.Sprint(messages), "--rate", "0", "--duration", "60s", "--acked", acked}, extra...)
	out, _ := exec.Command(devicesBin, args...).CombinedOutput()
	b, err := os.ReadFile(acked)
	if err != nil {
		p.tb.Fatalf("devices: %v\n%s", err, out)
	}
	seqs := map[int]bool{}
	for _, l := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(l)
		seqs[n] = true
	}
	return seqs, string(out)
}

// storedSeqs counts each "seq" stored in a topic's partitions.
func (p *proc) storedSeqs(topic string, partitions int) map[int]int {
	p.tb.Helper()
	seen := map[int]int{}
	for part := 0; part < partitions; part++ {
		for _, r := range p.readPartition(topic, part) {
			var v struct{ Seq int }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				p.tb.Fatalf("value %s: %v", r.Value, err)
			}
			seen[v.Seq]++
		}
	}
	return seen
}

// TestMQTTManyDevices: 200 devices (examples/devices) publish QoS 1 at once; every
// acknowledged message is in the log exactly once.
func TestMQTTManyDevices(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("fleet", 4)
	acked, out := p.devices("fleet", 200, 6000)
	if len(acked) != 6000 {
		t.Fatalf("%d of 6000 acknowledged: %s", len(acked), out)
	}
	seen := p.storedSeqs("fleet", 4)
	for s := range acked {
		if seen[s] != 1 {
			t.Fatalf("acknowledged message %d stored %d times", s, seen[s])
		}
	}
	if len(seen) != len(acked) {
		t.Fatalf("%d messages stored, %d acknowledged", len(seen), len(acked))
	}
}

// TestMQTTKillNode: kill -9 the node while devices publish QoS 1; after a
// restart every PUBACKed message is there.
func TestMQTTKillNode(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("fleet", 2)
	type result struct {
		acked map[int]bool
		out   string
	}
	done := make(chan result, 1)
	go func() {
		a, o := p.devices("fleet", 50, 200_000, "--inflight", "4")
		done <- result{a, o}
	}()
	time.Sleep(1500 * time.Millisecond)
	p.kill()
	r := <-done
	if len(r.acked) < 100 {
		t.Fatalf("only %d messages acknowledged before the kill: %s", len(r.acked), r.out)
	}
	p.start()
	seen := p.storedSeqs("fleet", 2)
	for s := range r.acked {
		if seen[s] < 1 {
			t.Fatalf("message %d was acknowledged (PUBACK) but is not stored after the restart", s)
		}
	}
	t.Logf("%d acknowledged before the kill, %d stored", len(r.acked), len(seen))
}

// TestMQTTTransform: a topic's transform runs on MQTT publishes; a
// refusal by the transform is 0x99 for MQTT 5.
func TestMQTTTransform(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("enriched", 1)
	p.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	p.mustBind("enriched", `{"module":"enrich","config":{"fields":{"site":"edge-01"}}}`)
	if out, ok := p.pub("mqttv5", "default", p.token, "enriched/dev-1", `{"t":1}`, 1); !ok {
		t.Fatalf("publish: %s", out)
	}
	got := p.records("", "enriched", 0)
	if len(got) != 1 || string(got[0].Value) != `{"t":1,"site":"edge-01"}` || got[0].header("site") != "edge-01" || got[0].header("mqtt.topic") != "enriched/dev-1" {
		t.Fatalf("stored %+v", got)
	}
	out, ok := p.pub("mqttv5", "default", p.token, "enriched/dev-1", `not json`, 1)
	if ok || !strings.Contains(out, "Payload format invalid") || !strings.Contains(out, "not a JSON object") {
		t.Fatalf("a payload the transform refuses: %s", out)
	}
	if n := len(p.records("", "enriched", 0)); n != 1 {
		t.Fatalf("%d records stored", n)
	}
}

// TestMQTTMappingRules: a tenant's mapping rules, auto-create, QoS 2.
func TestMQTTMappingRules(t *testing.T) {
	p := newProc(t)
	p.start()
	mapping := `{"rules":[{"filter":"factory/+/line/#","topic":"lines","key":"level:1"},{"filter":"meters/#","key":"json:meter"}],
		"auto_create":true,"auto_create_partitions":2}`
	var ten struct {
		MQTT *struct {
			AutoCreate bool `json:"auto_create"`
		} `json:"mqtt"`
	}
	if code, err := p.do("PUT", "/v1/tenants/default/mqtt", "application/json", []byte(mapping), &ten); err != nil || code != 200 || ten.MQTT == nil || !ten.MQTT.AutoCreate {
		t.Fatalf("set mapping: %d %v %+v", code, err, ten)
	}
	var bad apiError
	if code, _ := p.do("PUT", "/v1/tenants/default/mqtt", "application/json", []byte(`{"rules":[{"filter":"a/#/b"}]}`), &bad); code != 400 || bad.Error.Code != "invalid_request" {
		t.Fatalf("a bad filter: %d %+v", code, bad)
	}
	if out, ok := p.pub("mqttv5", "default", p.token, "factory/berlin/line/7/temp", `{"t":1}`, 1); !ok {
		t.Fatalf("publish: %s", out)
	}
	if out, ok := p.pub("mqttv5", "default", p.token, "meters/x", `{"meter":"m-1","kwh":3}`, 2); !ok { // QoS 2
		t.Fatalf("publish qos 2: %s", out)
	}
	var topic struct{ Partitions int }
	if code, err := p.do("GET", "/v1/topics/lines", "", nil, &topic); err != nil || code != 200 || topic.Partitions != 2 {
		t.Fatalf("auto-created topic: %d %v %+v", code, err, topic)
	}
	var lines, meters []fullRecord
	for part := 0; part < 2; part++ {
		lines = append(lines, p.records("", "lines", part)...)
		meters = append(meters, p.records("", "meters", part)...)
	}
	if len(lines) != 1 || jsonString(lines[0].Key) != "berlin" || lines[0].header("mqtt.topic") != "factory/berlin/line/7/temp" {
		t.Fatalf("lines %+v", lines)
	}
	if len(meters) != 1 || jsonString(meters[0].Key) != "m-1" || meters[0].header("mqtt.qos") != "2" {
		t.Fatalf("meters %+v", meters)
	}
	// Back to the default: no auto-create, a missing topic is refused.
	if code, err := p.do("DELETE", "/v1/tenants/default/mqtt", "", nil, nil); err != nil || code != 200 {
		t.Fatalf("clear mapping: %d %v", code, err)
	}
	if out, ok := p.pub("mqttv5", "default", p.token, "fresh/x", "m", 1); ok || !strings.Contains(out, "Topic Name invalid") {
		t.Fatalf("after clearing: %s", out)
	}
}

// TestMQTTTLS: with a certificate configured the listener speaks MQTT
// over TLS.
func TestMQTTTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	p := newProc(t)
	p.env = []string{"EDDY_MQTT_TLS_CERT=" + certFile, "EDDY_MQTT_TLS_KEY=" + keyFile}
	p.start()
	p.mustCreateTopic("secure", 1)
	if out, ok := p.pub("mqttv5", "default", p.token, "secure/d", "over tls", 1, "--cafile", certFile); !ok {
		t.Fatalf("publish over TLS: %s", out)
	}
	if out, ok := p.pub("mqttv5", "default", p.token, "secure/d", "plain", 1); ok {
		t.Fatalf("a plain-text client was served: %s", out)
	}
	if got := p.records("", "secure", 0); len(got) != 1 || jsonString(got[0].Value) != "over tls" {
		t.Fatalf("stored %+v", got)
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}
