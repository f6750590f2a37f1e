package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// MQTT ingest through a real node, with Debian's mosquitto clients.

func (p *proc) mqttPort() string {
	_, port, _ := strings.Cut(p.mqttAddr, ":")
	return port
}

// pub runs mosquitto_pub against the node; it returns the combined output
// and whether it exited 0.
func (p *proc) pub(version, user, password, topic, msg string, qos int, extra ...string) (string, bool) {
	p.tb.Helper()
	args := append([]string{"-h", "127.0.0.1", "-p", p.mqttPort(), "-V", version, "-u", user, "-P", password,
		"-t", topic, "-m", msg, "-q", fmt.Sprint(qos), "-i", fmt.Sprintf("e2e-%d", time.Now().UnixNano())}, extra...)
	cmd := exec.Command("mosquitto_pub", args...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
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
		{"wrong password", "mqttv5", "default", "not-a-token", "sensors/x", "m", "not authorised"},
		{"v311 wrong password", "mqttv311", "default", "not-a-token", "sensors/x", "m", "not authorised"},
		{"another tenant's name", "mqttv5", "default", acme, "sensors/x", "m", "not authorised"},
		{"no produce scope", "mqttv5", "default", device, "small/x", "m", "Not authorized"},
		{"missing topic", "mqttv5", "default", device, "nope/x", "m", "Not authorized"}, // no scope for it either
		{"missing topic in its tenant", "mqttv5", "acme", acme, "sensors/x", "m", "Topic name invalid"},
		{"oversized payload", "mqttv5", "default", p.token, "small/x", strings.Repeat("x", 500), "Packet too large"},
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
}
