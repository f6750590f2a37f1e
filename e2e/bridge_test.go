package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// The MQTT bridge against a real Debian mosquitto.

// mosquitto starts a mosquitto broker on a free port; it is killed (by
// its PID) when the test ends.
func mosquitto(t *testing.T) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n", port)), 0o644)
	cmd := exec.Command("/usr/sbin/mosquitto", "-c", conf)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	for i := 0; i < 100; i++ {
		if exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "probe", "-m", "x").Run() == nil {
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mosquitto did not start:\n%s", log.String())
	return ""
}

// publishUpstream publishes seqs [from, to) to mosquitto at QoS 1 from one
// connection (mosquitto_pub -l, a message per line); it returns once
// mosquitto acknowledged them all.
func publishUpstream(t *testing.T, addr string, from, to int) {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"seq\":%d}\n", i)
	}
	cmd := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "sensors/dev-1", "-l")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
}

func bridgeNode(t *testing.T, upstream string) *proc {
	t.Helper()
	p := newProc(t)
	conf := filepath.Join(t.TempDir(), "eddy.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`mqtt_bridges:
  - name: site
    url: mqtt://%s
    filters: ["sensors/#", "ghost/#"]
    tenant: default
    client_id: eddy-e2e-bridge
    max_in_flight: 200
`, upstream)), 0o644)
	p.args = []string{"--config", conf}
	p.start()
	return p
}

type bridgeView struct {
	Bridges []struct {
		Connected, Subscribed     bool
		Received, Appended, Acked int64
		LastError                 string `json:"last_error"`
	}
}

func (p *proc) waitBridge(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v bridgeView
		if code, err := p.do("GET", "/v1/bridges", "", nil, &v); err == nil && code == 200 && len(v.Bridges) == 1 && v.Bridges[0].Subscribed {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the bridge did not subscribe: %d %v %+v", code, err, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSeqs polls until every seq in [0, n) is stored; it returns the
// count of each.
func (p *proc) waitSeqs(t *testing.T, topic string, n int) map[int]int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := p.storedSeqs(topic, 1)
		missing, first, last := 0, -1, -1
		for i := 0; i < n; i++ {
			if seen[i] == 0 {
				missing++
				last = i
				if first < 0 {
					first = i
				}
			}
		}
		if missing == 0 {
			return seen
		}
		if time.Now().After(deadline) {
			// What the bridge counted tells a message mosquitto never
			// sent from one the bridge dropped or never appended.
			var status any
			p.do("GET", "/v1/bridges", "", nil, &status)
			t.Fatalf("%d of %d messages mosquitto accepted are missing in Eddy (seqs %d to %d among them); the bridges: %+v", missing, n, first, last, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMQTTBridge: everything published to mosquitto at QoS 1 arrives in
// Eddy; kill -9 Eddy mid-stream and restart it, and nothing mosquitto
// accepted is lost (duplicates are allowed: at least once).
func TestMQTTBridge(t *testing.T) {
	up := mosquitto(t)
	p := bridgeNode(t, up)
	p.mustCreateTopic("sensors", 1)
	p.waitBridge(t)
	publishUpstream(t, up, 0, 3000)
	seen := p.waitSeqs(t, "sensors", 3000)
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("seq %d stored %d times without a crash", s, n)
		}
	}
	var v bridgeView
	p.do("GET", "/v1/bridges", "", nil, &v)
	if b := v.Bridges[0]; b.Received < 3000 || b.Appended < 3000 || !b.Connected {
		t.Fatalf("status %+v", b)
	}
	// A message for a topic that does not exist (ghost) is dropped and
	// counted: waiting cannot fix it, and holding it would hold the session.
	_, port, _ := strings.Cut(up, ":")
	if out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "ghost/x", "-m", "x").CombinedOutput(); err != nil {
		t.Fatalf("publish: %v %s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var v struct {
			Bridges []struct {
				Dropped   int64  `json:"dropped"`
				LastError string `json:"last_error"`
			}
		}
		p.do("GET", "/v1/bridges", "", nil, &v)
		if len(v.Bridges) == 1 && v.Bridges[0].Dropped == 1 && strings.Contains(v.Bridges[0].LastError, "ghost") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message to a missing topic was not dropped and counted: %+v", v)
		}
	}
	recs := p.records("", "sensors", 0)
	if r := recs[0]; jsonString(r.Key) != "dev-1" || r.header("mqtt.bridge") != "site" || r.header("mqtt.topic") != "sensors/dev-1" {
		t.Fatalf("record %+v", r)
	}

	// Kill -9 mid-stream: mosquitto keeps the session's unacknowledged and
	// queued messages for the bridge's client id.
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishUpstream(t, up, 3000, 9000)
	}()
	time.Sleep(300 * time.Millisecond)
	p.kill()
	<-done
	p.start()
	seen = p.waitSeqs(t, "sensors", 9000)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("after the kill: 9000 messages, %d stored twice or more", dups)
}

// TestBridgeHostileUpstream: the broker a bridge drains is another
// party's, so its packets are untrusted input: an upstream that answers
// the bridge's CONNECT and SUBSCRIBE, then sends malformed PUBLISH packets
// (topic lengths past the body, garbage properties, random flags and
// types), costs the bridge its connection, which it makes again, and
// never the node.
func TestBridgeHostileUpstream(t *testing.T) {
	rng := fuzzRand(t)
	var conns atomic.Int64
	addr := serveLoopback(t, "127.0.0.1", func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		read := func() (byte, []byte, error) {
			h, err := br.ReadByte()
			if err != nil {
				return 0, nil, err
			}
			n, mult := 0, 1
			for {
				d, err := br.ReadByte()
				if err != nil {
					return 0, nil, err
				}
				n += int(d&127) * mult
				mult *= 128
				if d&128 == 0 {
					break
				}
			}
			b := make([]byte, n)
			_, err = io.ReadFull(br, b)
			return h, b, err
		}
		if _, _, err := read(); err != nil { // CONNECT
			return
		}
		c.Write([]byte{0x20, 3, 0, 0, 0})
		go func() {
			for {
				h, b, err := read()
				if err != nil {
					return
				}
				if h>>4 == 8 && len(b) >= 2 { // SUBACK granting QoS 1
					c.Write([]byte{0x90, 4, b[0], b[1], 0, 1})
				}
			}
		}()
		for i := 0; i < 300; i++ {
			body := make([]byte, rng.IntN(40))
			for j := range body {
				body[j] = byte(rng.IntN(256))
			}
			switch rng.IntN(4) {
			case 0: // a topic length past the body
				if len(body) >= 2 {
					binary.BigEndian.PutUint16(body, uint16(rng.IntN(65536)))
				}
			case 1: // a plausible topic, then garbage properties
				body = append(append([]byte{0, 9}, "sensors/x"...), body...)
			}
			flags := byte(rng.IntN(16))
			pk := append([]byte{0x30 | flags, byte(len(body))}, body...)
			if rng.IntN(10) == 0 {
				pk[0] = byte(rng.IntN(256))
			}
			if _, err := c.Write(pk); err != nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	})
	p := bridgeNode(t, addr)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && conns.Load() < 20 {
		if !p.alive() {
			t.Fatalf("the node died after %d upstream connections:\n%s", conns.Load(), p.log.String()[max(0, p.log.Len()-5000):])
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d upstream connections, 300 malformed PUBLISH packets each", conns.Load())
	if conns.Load() < 20 {
		t.Fatalf("the bridge connected %d times in 30 s: it stopped coming back", conns.Load())
	}
	if code, err := p.do("GET", "/readyz", "", nil, nil); err != nil || code != 200 {
		t.Fatalf("readyz after: %d %v", code, err)
	}
}
