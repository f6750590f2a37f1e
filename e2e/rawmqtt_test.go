package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A raw MQTT client: the hostile tests need bytes no well-behaved client
// library sends (a huge declared length, no CONNECT at all), and read what
// the server answers byte for byte (session present, a PUBACK's length).

func mqttLen(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 128
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func mqttStr(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// connectPacket is a CONNECT of version 4 (3.1.1) or 5, with username and
// password, and a keep-alive of keepAlive seconds.
func connectPacket(version byte, clientID, user, pass string, clean bool, keepAlive uint16) []byte {
	flags := byte(0xC0)
	if clean {
		flags |= 0x02
	}
	vh := append(mqttStr("MQTT"), version, flags, byte(keepAlive>>8), byte(keepAlive))
	if version == 5 {
		vh = append(vh, 0) // no properties
	}
	body := append(append(append(vh, mqttStr(clientID)...), mqttStr(user)...), mqttStr(pass)...)
	return append(append([]byte{0x10}, mqttLen(len(body))...), body...)
}

type rawMQTT struct {
	c net.Conn
	r *bufio.Reader
}

func dialMQTT(t *testing.T, p *proc) *rawMQTT {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.mqttAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawMQTT{c: c, r: bufio.NewReader(c)}
}

// packet reads one packet: its type byte and body.
func (m *rawMQTT) packet(timeout time.Duration) (byte, []byte, error) {
	m.c.SetReadDeadline(time.Now().Add(timeout))
	h, err := m.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for {
		d, err := m.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&127) * mult
		mult *= 128
		if d&128 == 0 {
			break
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(m.r, body)
	return h, body, err
}

// connect sends a CONNECT (keep-alive 60 s) and returns the CONNACK's
// session-present flag and return (reason) code.
func (m *rawMQTT) connect(t *testing.T, version byte, clientID, user, pass string, clean bool) (bool, byte) {
	t.Helper()
	return m.connectKeepAlive(t, version, clientID, user, pass, clean, 60)
}

func (m *rawMQTT) connectKeepAlive(t *testing.T, version byte, clientID, user, pass string, clean bool, keepAlive uint16) (bool, byte) {
	t.Helper()
	if _, err := m.c.Write(connectPacket(version, clientID, user, pass, clean, keepAlive)); err != nil {
		t.Fatal(err)
	}
	h, body, err := m.packet(5 * time.Second)
	if err != nil || h>>4 != 2 || len(body) < 2 {
		t.Fatalf("connack: %x %x %v", h, body, err)
	}
	return body[0]&1 == 1, body[1]
}

// closedWithin reports whether the server closes the connection within d
// (anything it sends first, a DISCONNECT say, is skipped).
func (m *rawMQTT) closedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		_, _, err := m.packet(time.Until(deadline))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// publish5 sends an MQTT 5 QoS 1 PUBLISH with n user properties and returns
// the PUBACK's reason code and remaining length.
func (m *rawMQTT) publish5(t *testing.T, id uint16, topic string, userProps int, payload string) (byte, int) {
	t.Helper()
	var props []byte
	for i := 0; i < userProps; i++ {
		props = append(append(append(props, 0x26), mqttStr(fmt.Sprint("k", i))...), mqttStr("v")...)
	}
	body := append(mqttStr(topic), byte(id>>8), byte(id))
	body = append(append(append(body, mqttLen(len(props))...), props...), payload...)
	if _, err := m.c.Write(append(append([]byte{0x32}, mqttLen(len(body))...), body...)); err != nil {
		t.Fatal(err)
	}
	h, ack, err := m.packet(10 * time.Second)
	if err != nil || h>>4 != 4 || len(ack) < 2 || binary.BigEndian.Uint16(ack) != id {
		t.Fatalf("publish to %q: no PUBACK (%x %x %v)", topic, h, ack, err)
	}
	if len(ack) == 2 {
		return 0, 2
	}
	return ack[2], len(ack)
}

// rss is a process's resident memory in bytes.
func rss(t *testing.T, pid int) int64 { return procStatusBytes(t, pid, "VmRSS") }

// procStatusBytes is a kB field of /proc/PID/status, in bytes.
func procStatusBytes(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestMQTTPipelinedPublishes: a device sends its whole receive maximum of
// QoS 1 publishes in one write, switching topics twice; the node answers
// every one, in the order sent, and stores each topic's in order. In
// MQTT 3.1.1 and 5 alike (the listener writes the PUBACKs of a batch
// itself). The publishes are 8 times the node's bound on a connection's
// unacknowledged bytes, and one is larger than the bound alone: the node
// reads on as they are acknowledged. No PUBACK comes twice.
func TestMQTTPipelinedPublishes(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_MQTT_QOS1_BYTES=2000")
	p.start()
	p.mustCreateTopic("sensors", 1)
	p.mustCreateTopic("other", 1)
	for _, version := range []byte{4, 5} {
		m := dialMQTT(t, p)
		if _, rc := m.connect(t, version, fmt.Sprint("pipe-", version), "default", p.token, true); rc != 0 {
			t.Fatalf("v%d connect: 0x%x", version, rc)
		}
		var out []byte
		want := map[string][]string{}
		for i := range 64 {
			topic := "sensors/dev-1"
			if i >= 32 && i < 48 {
				topic = "other/dev-1"
			}
			payload := fmt.Sprintf(`{"v":%d,"n":%d,"pad":"%s"}`, version, i, strings.Repeat("x", 150))
			if i == 40 {
				payload = fmt.Sprintf(`{"v":%d,"n":%d,"pad":"%s"}`, version, i, strings.Repeat("x", 3000))
			}
			name, _, _ := strings.Cut(topic, "/")
			want[name] = append(want[name], payload)
			body := append(mqttStr(topic), 0, byte(i+1))
			if version == 5 {
				body = append(body, 0) // no properties
			}
			body = append(body, payload...)
			out = append(append(append(out, 0x32), mqttLen(len(body))...), body...)
		}
		if _, err := m.c.Write(out); err != nil {
			t.Fatal(err)
		}
		for i := range 64 {
			h, ack, err := m.packet(10 * time.Second)
			if err != nil || h != 0x40 || len(ack) != 2 || int(binary.BigEndian.Uint16(ack)) != i+1 {
				t.Fatalf("v%d: PUBACK %d: %x %x %v, want id %d, success, 2 bytes", version, i, h, ack, err, i+1)
			}
		}
		// One PUBACK each: mochi, told the publishes were taken, sends none.
		if h, ack, err := m.packet(300 * time.Millisecond); err == nil {
			t.Fatalf("v%d: a packet after the 64 PUBACKs: %x %x", version, h, ack)
		}
		for topic, payloads := range want {
			var got []string
			for _, r := range p.records("", topic, 0) {
				var v struct{ V int }
				if json.Unmarshal(r.Value, &v); v.V == int(version) {
					got = append(got, string(r.Value))
				}
			}
			if strings.Join(got, " ") != strings.Join(payloads, " ") {
				t.Fatalf("v%d: topic %s holds\n%v\nwant\n%v", version, topic, got, payloads)
			}
		}
	}
}

// subscribe sends a SUBSCRIBE (QoS 1 filters) and returns the SUBACK's
// reason codes and, for MQTT 5, its reason string.
func (m *rawMQTT) subscribe(t *testing.T, version byte, id uint16, filters []string) ([]byte, string) {
	t.Helper()
	body := []byte{byte(id >> 8), byte(id)}
	if version == 5 {
		body = append(body, 0) // no properties
	}
	for _, f := range filters {
		body = append(append(body, mqttStr(f)...), 1)
	}
	if _, err := m.c.Write(append(append([]byte{0x82}, mqttLen(len(body))...), body...)); err != nil {
		t.Fatal(err)
	}
	for {
		h, ack, err := m.packet(30 * time.Second)
		if err != nil {
			t.Fatalf("no SUBACK: %v", err)
		}
		if h>>4 != 9 || len(ack) < 2 || binary.BigEndian.Uint16(ack) != id {
			continue // a delivery, say
		}
		ack = ack[2:]
		if version != 5 {
			return ack, ""
		}
		n, reason := int(ack[0]), ""
		props := ack[1 : 1+n] // properties shorter than 128 bytes: one length byte
		if len(props) > 3 && props[0] == 0x1F {
			reason = string(props[3 : 3+int(binary.BigEndian.Uint16(props[1:]))])
		}
		return ack[1+n:], reason
	}
}
