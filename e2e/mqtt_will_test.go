package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Last wills (docs/mqtt.md), with Debian's mosquitto clients against a
// real node: a device that vanishes (SIGKILL, no DISCONNECT) has its will
// appended to the log and delivered; one that says goodbye does not; a
// will delay is honoured and cancelled by a return; a will can never
// reach another tenant.

// device runs mosquitto_sub as a device that stays connected (subscribed
// to a topic nothing is sent to) with the given options (its will), and
// returns it to be killed or to end by itself (-W).
func (p *proc) device(version, user, password string, opts ...string) *subscriber {
	p.tb.Helper()
	return p.subWith(opts, version, user, password, 0, 30, "quiet/nothing")
}

// vanish kills a device (SIGKILL: no DISCONNECT; the node sees the TCP
// connection close).
func (s *subscriber) vanish() {
	s.cmd.Process.Kill()
	<-s.done
}

// keyValues is records as "key=value".
func keyValues(recs []fullRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, jsonString(r.Key)+"="+jsonString(r.Value))
	}
	return out
}

// statusValues is what the status topic holds, as "key=value".
func (p *proc) statusValues() []string { return keyValues(p.records("", "status", 0)) }

func TestMQTTWill(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("status", 1)
	will := func(id, payload string, extra ...string) []string {
		return append([]string{"-i", id, "--will-topic", "status/" + id, "--will-payload", payload, "--will-qos", "1"}, extra...)
	}
	watcher := p.sub("mqttv5", "default", p.token, 1, 20, "status/#")
	p.subscribed(1)

	// A device that vanishes: its will is a record, delivered to the
	// watcher, and retained (a device subscribing later gets it).
	gone := p.device("mqttv5", "default", p.token, will("dev-1", "offline", "--will-retain")...)
	p.subscribed(2)
	gone.vanish()
	if got := watcher.lines(t); len(got) != 1 || got[0] != "status/dev-1 offline" {
		t.Fatalf("the watcher got %q, want the will", got)
	}
	if got := keyValues(p.waitRecords("status", 0, 1)); len(got) != 1 || got[0] != "dev-1=offline" {
		t.Fatalf("the status topic holds %q", got)
	}
	if got := p.sub("mqttv5", "default", p.token, 1, 10, "status/dev-1").lines(t); len(got) != 1 || got[0] != "status/dev-1 offline" {
		t.Fatalf("a later subscriber got %q, want the retained will", got)
	}

	// A device that says goodbye (mosquitto_sub sends DISCONNECT when -W
	// ends it), MQTT 5 and 3.1.1: no will.
	p.subWith(will("dev-2", "offline"), "mqttv5", "default", p.token, 0, 1, "quiet/nothing").lines(t)
	p.subWith(will("dev-3", "offline"), "mqttv311", "default", p.token, 0, 1, "quiet/nothing").lines(t)

	// A will delay of 3 s on a persistent session (expiry 60 s): a device
	// back within it cancels its will; one that stays away has it
	// published after the delay, not before.
	delayed := func(id string) []string {
		return will(id, "late", "-c", "-x", "60", "-D", "will", "will-delay-interval", "3")
	}
	back := p.device("mqttv5", "default", p.token, delayed("dev-4")...)
	away := p.device("mqttv5", "default", p.token, delayed("dev-5")...)
	p.subscribed(2)
	back.vanish()
	away.vanish()
	p.device("mqttv5", "default", p.token, delayed("dev-4")...) // back at once
	time.Sleep(time.Second)
	if got := p.statusValues(); len(got) != 1 {
		t.Fatalf("a delayed will was published before its delay: %q", got)
	}
	p.waitRecords("status", 0, 2)
	time.Sleep(4 * time.Second) // dev-4's delay is long past
	if got := p.statusValues(); len(got) != 2 || got[1] != "dev-5=late" {
		t.Fatalf("after the delay the status topic holds %q, want dev-1's and dev-5's wills only", got)
	}

	// A will to a topic the token may not produce to refuses the CONNECT,
	// with the reason (v5) or "not authorized" (3.1.1).
	reader := p.tenantToken("default", "consume:status")
	for _, v := range []string{"mqttv5", "mqttv311"} {
		out, _ := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", p.mqttPort(), "-V", v, "-u", "default", "-P", reader,
			"-t", "quiet/nothing", "-W", "3", "--will-topic", "status/dev-6", "--will-payload", "x").CombinedOutput()
		if !strings.Contains(strings.ToLower(string(out)), "not authori") {
			t.Errorf("%s: a will the token may not produce was not refused: %s", v, out)
		}
	}
}

// TestMQTTWillTenantsApart: another tenant's device names its will after
// every way default's records reach default's subscribers inside the
// node ($eddy/<stream>/default/..., default/<topic>/..., $share, $SYS):
// default's subscriber receives nothing, and default's topic holds
// nothing of it.
func TestMQTTWillTenantsApart(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("status", 1)
	globex := p.tenantToken("globex", "admin")
	watcher := p.sub("mqttv5", "default", p.token, 0, 8, "status/#", "#")
	p.subscribed(1)
	var topics []string
	for n := 1; n <= 8; n++ { // the stream numbers a node hands out first
		topics = append(topics, fmt.Sprintf("$eddy/%d/default/status/dev-1", n))
	}
	topics = append(topics, "default/status/status/dev-1", "default/+/status", "$share/g/status/dev-1", "$SYS/status",
		"/status/dev-1", "default/status", "default/#")
	refused := 0 // by the node, or by mosquitto_sub itself (a wildcard)
	for i, topic := range topics {
		d := p.device("mqttv5", "globex", globex, "-i", fmt.Sprintf("evil-%d", i), "--will-topic", topic, "--will-payload", "INJECTED")
		time.Sleep(300 * time.Millisecond)
		select {
		case <-d.done:
			refused++ // its CONNECT was refused
		default:
			d.vanish()
		}
	}
	leaks := 0
	for _, l := range watcher.lines(t) {
		if strings.Contains(l, "INJECTED") {
			leaks++
			t.Errorf("default's subscriber received globex's will: %q", l)
		}
	}
	if got := p.statusValues(); len(got) > 0 {
		leaks += len(got)
		t.Errorf("default's topic holds globex's wills: %q", got)
	}
	t.Logf("%d will topics of another tenant (%d refused at CONNECT): %d wills reached default", len(topics), refused, leaks)
}
