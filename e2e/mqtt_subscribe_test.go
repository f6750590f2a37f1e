package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// MQTT subscriptions backed by the log (issue 17), with Debian's
// mosquitto_sub against a real node.

// sub runs mosquitto_sub until it has count messages (-C) or timeout
// seconds passed (-W), and returns the "topic payload" lines it printed.
func (p *proc) sub(version, user, password string, count, timeout int, filters ...string) *subscriber {
	p.tb.Helper()
	return p.subWith([]string{"-i", fmt.Sprintf("sub-%d", time.Now().UnixNano())}, version, user, password, count, timeout, filters...)
}

// subWith is sub with mosquitto_sub options of its own (a client id, -c).
func (p *proc) subWith(opts []string, version, user, password string, count, timeout int, filters ...string) *subscriber {
	p.tb.Helper()
	args := append([]string{"-h", "127.0.0.1", "-p", p.mqttPort(), "-V", version, "-u", user, "-P", password, "-v", "-q", "1",
		"-W", fmt.Sprint(timeout)}, opts...)
	if count > 0 {
		args = append(args, "-C", fmt.Sprint(count))
	}
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	s := &subscriber{cmd: exec.Command("mosquitto_sub", args...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		p.tb.Fatalf("mosquitto_sub: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	p.tb.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	return s
}

type subscriber struct {
	cmd  *exec.Cmd
	out  testutil.SyncBuffer
	done chan struct{}
}

// lines waits for the subscriber to end and returns what it received.
func (s *subscriber) lines(tb testing.TB) []string {
	tb.Helper()
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		tb.Fatal("mosquitto_sub did not end")
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s.out.String()), "\n") {
		if l != "" && !strings.HasPrefix(l, "Timed out") {
			out = append(out, l)
		}
	}
	return out
}

// subscribed waits until the node lists n MQTT connections, so what is
// produced next reaches their subscriptions.
func (p *proc) subscribed(n int) {
	p.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out struct{ Connections []struct{} }
		if code, err := p.do("GET", "/v1/mqtt/connections?all=true", "", nil, &out); err == nil && code == 200 && len(out.Connections) >= n {
			time.Sleep(300 * time.Millisecond) // SUBSCRIBE follows CONNECT
			return
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("%d subscribers never connected", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMQTTSubscribe: devices subscribed with MQTT 5 and 3.1.1, with
// wildcards, receive records produced over HTTP (as topic/key) and over
// MQTT (on their own topic), in order per key; QoS 1 is granted for QoS 2.
func TestMQTTSubscribe(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 2)
	all := p.sub("mqttv5", "default", p.token, 5, 20, "cmd/#")
	one := p.sub("mqttv311", "default", p.token, 2, 20, "cmd/dev-1")
	plus := p.sub("mqttv5", "default", p.token, 3, 20, "+/dev-1/#", "cmd/+")
	p.subscribed(3)
	body := `{"records":[{"key":"dev-1","value":{"cmd":"reboot"}},{"key":"dev-2","value":"hello"},{"key":"dev-1","value":"second"}]}`
	if code, err := p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(body), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	if out, ok := p.pub("mqttv5", "default", p.token, "cmd/dev-1/raw", "from-mqtt", 1); !ok {
		t.Fatalf("publish: %s", out)
	}
	if code, err := p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(`{"records":[{"value":"no key"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	got := all.lines(t)
	sort.Strings(got)
	want := []string{"cmd no key", `cmd/dev-1 {"cmd":"reboot"}`, "cmd/dev-1 second", "cmd/dev-1/raw from-mqtt", "cmd/dev-2 hello"}
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("cmd/#: %q, want %q", got, want)
	}
	if got := one.lines(t); strings.Join(got, "|") != `cmd/dev-1 {"cmd":"reboot"}|cmd/dev-1 second` {
		t.Fatalf("cmd/dev-1 (3.1.1), in order: %q", got)
	}
	// +/dev-1/# and cmd/+ (a message matching both comes once, MQTT 5):
	// dev-1's two and dev-2's, or dev-1's raw one first.
	// A burst past the subscriber's window (mosquitto's receive maximum
	// is 20) does not stall it: a record after the burst still arrives.
	burstSub := p.subWith([]string{"-i", "burst"}, "mqttv5", "default", p.token, 0, 8, "cmd/burst/#")
	p.subscribed(1)
	time.Sleep(300 * time.Millisecond)
	var burst []string
	for i := 0; i < 200; i++ {
		burst = append(burst, fmt.Sprintf(`{"key":"burst/%d","value":"b%d"}`, i, i))
	}
	if code, err := p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(`{"records":[`+strings.Join(burst, ",")+`]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	time.Sleep(2 * time.Second)
	if code, err := p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(`{"records":[{"key":"burst/last","value":"after the burst"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	if b := burstSub.lines(t); len(b) < 20 || b[len(b)-1] != "cmd/burst/last after the burst" {
		t.Fatalf("after a burst of 200: %d received, the last %q", len(b), b[max(0, len(b)-1):])
	}

	got = plus.lines(t)
	sort.Strings(got)
	a := []string{`cmd/dev-1 {"cmd":"reboot"}`, "cmd/dev-1 second", "cmd/dev-2 hello"}
	b := []string{`cmd/dev-1 {"cmd":"reboot"}`, "cmd/dev-1 second", "cmd/dev-1/raw from-mqtt"}
	sort.Strings(a)
	sort.Strings(b)
	if g := strings.Join(got, "|"); g != strings.Join(a, "|") && g != strings.Join(b, "|") {
		t.Fatalf("+/dev-1/# and cmd/+: %q", got)
	}
}

// TestMQTTSubscribeTenantsApart: while tenant default produces, a device
// of tenant globex subscribed with every filter trick (wildcards, the
// other tenant's names as levels, empty levels, shared subscriptions,
// $SYS, look-alike characters) receives nothing; nor does a device of
// default whose token may consume another topic only. Each is counted.
func TestMQTTSubscribeTenantsApart(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	globex := p.tenantToken("globex", "admin")
	p.do("POST", "/v1/tenants/globex/topics", "application/json", []byte(`{"name":"cmd"}`), nil)
	tricks := []string{"#", "+", "+/#", "cmd/#", "default/#", "default/cmd/#", "/#", "+/+/#", "$share/g/#", "$share/g/cmd/#",
		"$SYS/#", "$share/default/#", "cmd\u200b/#", "ｃｍｄ/#", "cmd/+/#", "cmd/#/"}
	var subs []*subscriber
	for _, f := range tricks {
		subs = append(subs, p.sub("mqttv5", "globex", globex, 0, 4, f))
	}
	other := p.tenantToken("default", "consume:other", "produce:other")
	narrow := p.sub("mqttv5", "default", other, 0, 4, "#", "cmd/#", "$share/x/#")
	control := p.sub("mqttv5", "default", p.token, 20, 10, "cmd/#")
	// Filters the node refuses end their mosquitto_sub ("denied"); the
	// others stay connected. Wait for all to have been answered.
	time.Sleep(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(fmt.Sprintf(`{"records":[{"key":"dev-%d","value":"secret-%d"}]}`, i, i)), nil)
		}()
	}
	wg.Wait()
	if got := control.lines(t); len(got) != 20 {
		t.Fatalf("the control subscriber got %d of 20", len(got))
	}
	leaks, denied := 0, 0
	for i, s := range subs {
		got := s.lines(t)
		for _, l := range got {
			if strings.Contains(l, "secret-") {
				leaks++
				t.Errorf("globex's %q received default's record %q", tricks[i], l)
			}
		}
		if len(got) > 0 && strings.Contains(strings.Join(got, " "), "denied") {
			denied++ // refused at SUBSCRIBE
		}
	}
	if got := narrow.lines(t); len(got) > 0 {
		leaks += len(got)
		t.Errorf("a token without consume:cmd received %q", got)
	}
	t.Logf("%d filters of another tenant (%d refused at subscribe) and 3 of a token without the scope: %d records leaked of 20 produced", len(tricks), denied, leaks)
}

// TestMQTTSharedSubscription: three members of $share/workers/jobs/# get
// each record once among them.
func TestMQTTSharedSubscription(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("jobs", 2)
	var members []*subscriber
	for i := 0; i < 3; i++ {
		members = append(members, p.sub("mqttv5", "default", p.token, 0, 5, "$share/workers/jobs/#"))
	}
	p.subscribed(3)
	var recs []string
	for i := 0; i < 60; i++ {
		recs = append(recs, fmt.Sprintf(`{"key":"k%d","value":"job-%d"}`, i%7, i))
	}
	if code, err := p.do("POST", "/v1/topics/jobs/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	seen := map[string]int{}
	busy := 0
	for _, m := range members {
		got := m.lines(t)
		if len(got) > 0 {
			busy++
		}
		for _, l := range got {
			seen[l]++
		}
	}
	if len(seen) != 60 {
		t.Fatalf("%d distinct records of 60 reached the group", len(seen))
	}
	for l, n := range seen {
		if n != 1 {
			t.Fatalf("%q reached %d members", l, n)
		}
	}
	if busy < 2 {
		t.Fatalf("only %d of 3 members got records", busy)
	}
}

// TestMQTTWebSocket: MQTT.js (npm, pinned in testdata/mqttjs), as a browser
// dashboard runs it, connects over WebSockets with a token, subscribes,
// and receives a record produced over HTTP and its own publish (which is
// stored as any other).
func TestMQTTWebSocket(t *testing.T) {
	dir := npmCI(t, "testdata/mqttjs", "mqtt")
	p := newProc(t)
	ws := testutil.FreeAddr(t)
	p.args = append(p.args, "--mqtt-ws-addr", ws)
	p.start()
	p.mustCreateTopic("cmd", 1)
	cmd := exec.Command("node", filepath.Join(dir, "client.js"), "ws://"+ws+"/mqtt", p.token, "2")
	var out, stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stderr.String(), "subscribed") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("MQTT.js never subscribed: %s %s", out.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, err := p.do("POST", "/v1/topics/cmd/records", "application/json", []byte(`{"records":[{"key":"ws-dev","value":"from-http"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce: %d %v", code, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("MQTT.js: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	var res struct {
		Got   []string
		Error string
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("MQTT.js said %q", out.String())
	}
	sort.Strings(res.Got)
	if strings.Join(res.Got, "|") != "cmd/ws-dev from-http|cmd/ws-dev from-the-browser" {
		t.Fatalf("MQTT.js over WebSockets received %q (%s)", res.Got, res.Error)
	}
	if recs := p.records("", "cmd", 0); len(recs) != 2 {
		t.Fatalf("stored: %d records", len(recs))
	}
	// A client that starts an upgrade and stalls is cut off within the
	// connect timeout (5 s), as one that stalls its CONNECT over TCP.
	c, err := net.Dial("tcp", ws)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /mqtt HTTP/1.1\r\nHost: x\r\n"))
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c)
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("a stalled upgrade held its connection %v", waited)
	}
	// A request that is not an upgrade is answered and its connection
	// closed: kept alive and idle, it was held for good.
	c2, err := net.Dial("tcp", ws)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c2.SetReadDeadline(time.Now().Add(15 * time.Second))
	start = time.Now()
	answer, _ := io.ReadAll(c2)
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400") {
		t.Fatalf("a request that is not an upgrade was answered %q", answer)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("an idle connection after a request that is not an upgrade was held %v", waited)
	}
}

// TestMQTTPersistentSession: a device with a persistent session (3.1.1
// clean session false; MQTT 5 clean start false with an expiry) that was
// offline gets what it missed, in order, from the log: 10,000 records
// produced while it was away, across a kill -9 and restart of the node.
// Its place is a consumer group (mqtt.<client id>) whose lag ends at 0.
func TestMQTTPersistentSession(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("p", 3)
	produce := func(from, n int) {
		var recs []string
		for i := from; i < from+n; i++ {
			recs = append(recs, fmt.Sprintf(`{"key":"dev-%d","value":"%d"}`, i%10, i))
		}
		if code, err := p.do("POST", "/v1/topics/p/records", "application/json", []byte(`{"records":[`+strings.Join(recs, ",")+`]}`), nil); err != nil || code != 200 {
			t.Fatalf("produce: %d %v", code, err)
		}
	}
	// 3.1.1: subscribe, go away, come back for what was missed.
	v3 := []string{"-c", "-i", "dev-v3"}
	first := p.subWith(v3, "mqttv311", "default", p.token, 1, 20, "p/dev-1")
	p.subscribed(1)
	produce(1, 1)
	if got := first.lines(t); len(got) != 1 {
		t.Fatalf("3.1.1, first: %q", got)
	}
	produce(100, 30) // dev-1 gets 100+1, +11, +21: 3 records
	if got := p.subWith(v3, "mqttv311", "default", p.token, 3, 20, "p/dev-1").lines(t); strings.Join(got, "|") != "p/dev-1 101|p/dev-1 111|p/dev-1 121" {
		t.Fatalf("3.1.1 after an outage: %q", got)
	}

	// MQTT 5, 10,000 records while offline, and a kill -9.
	v5 := []string{"-c", "-x", "86400", "-i", "dev-v5"}
	first = p.subWith(v5, "mqttv5", "default", p.token, 1, 20, "p/#")
	p.subscribed(1)
	produce(0, 1)
	if got := first.lines(t); len(got) != 1 {
		t.Fatalf("v5, first: %q", got)
	}
	for b := 0; b < 10; b++ {
		produce(10_000+b*1000, 1000)
	}
	p.kill()
	p.start()
	got := p.subWith(v5, "mqttv5", "default", p.token, 10_000, 60, "p/#").lines(t)
	last := map[string]int{}
	seen := map[int]bool{}
	for _, l := range got {
		topic, v, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(v)
		if err != nil || n < 10_000 {
			t.Fatalf("unexpected %q in %q", l, got[:min(len(got), 12)])
		}
		if prev, ok := last[topic]; ok && n <= prev {
			t.Fatalf("%s: %d after %d, out of order", topic, n, prev)
		}
		last[topic], seen[n] = n, true
	}
	if len(got) != 10_000 || len(seen) != 10_000 {
		t.Fatalf("after the outage and a kill -9: %d records, %d distinct, of 10,000", len(got), len(seen))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var g struct {
			Protocol string
			Lag      int64
		}
		if code, err := p.do("GET", "/v1/groups/mqtt.dev-v5", "", nil, &g); err == nil && code == 200 && g.Lag == 0 && g.Protocol == "mqtt" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session's group: lag %d (%s)", g.Lag, g.Protocol)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMQTTTopicRecreated: a topic deleted and made again under its name
// starts its offsets over. A device subscribed throughout and a device
// whose persistent session was offline meanwhile both get the new
// topic's records: neither takes them for the ones it had (it was at
// offset 5, and the new records are at 0-2).
func TestMQTTTopicRecreated(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("cmd", 1)
	produce := func(vals ...string) {
		t.Helper()
		var recs []string
		for _, v := range vals {
			recs = append(recs, fmt.Sprintf(`{"key":"dev-1","value":%q}`, v))
		}
		p.produceRecords("cmd", recs...)
	}
	session := []string{"-c", "-x", "86400", "-i", "dev-1"}
	first := p.subWith(session, "mqttv5", "default", p.token, 5, 20, "cmd/#")
	live := p.sub("mqttv5", "default", p.token, 8, 20, "cmd/#")
	p.subscribed(2)
	produce("a1", "a2", "a3", "a4", "a5")
	if got := first.lines(t); len(got) != 5 {
		t.Fatalf("the session's first visit: %q", got)
	}
	if code, err := p.do("DELETE", "/v1/topics/cmd", "", nil, nil); err != nil || code != 204 {
		t.Fatalf("delete: %d %v", code, err)
	}
	p.mustCreateTopic("cmd", 1)
	produce("b1", "b2", "b3")
	want := "cmd/dev-1 b1|cmd/dev-1 b2|cmd/dev-1 b3"
	if got := p.subWith(session, "mqttv5", "default", p.token, 3, 10, "cmd/#").lines(t); strings.Join(got, "|") != want {
		t.Fatalf("the persistent session back after the topic was made again: %q, want %s", got, want)
	}
	if got := live.lines(t); strings.Join(got, "|") != "cmd/dev-1 a1|cmd/dev-1 a2|cmd/dev-1 a3|cmd/dev-1 a4|cmd/dev-1 a5|"+want {
		t.Fatalf("the device subscribed throughout: %q", got)
	}
}
