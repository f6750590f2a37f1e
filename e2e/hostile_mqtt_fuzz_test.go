package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestMQTTHostilePackets: devices of two tenants (3.1.1 and 5) send every
// kind of packet a device may send, and some only a server may, with
// random fields: topics and filters of other tenants, of $SYS, with
// wildcards where none may be, shared and empty; QoS 3, retain and dup
// on anything; packet ids reused and zero; every MQTT 5 property at its
// edges (topic aliases past the maximum, subscription identifiers of 0,
// expiry intervals, megabyte user properties); a second CONNECT; some
// packets then torn at random. The node closes what breaks the protocol,
// stays up throughout, and a well-formed device is served at the end.
// EDDY_FUZZ_SEED replays a run.
func TestMQTTHostilePackets(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sensors", 2)
	acme := p.otherTenant()
	m := &mfuzz{rng: fuzzRand(t)}
	deadline := time.Now().Add(60 * time.Second)
	sent, conns := 0, 0
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		version := byte(4 + m.rng.IntN(2))
		user, pass := "default", p.token
		if i%3 == 1 {
			user, pass = "acme", acme
		}
		nc, err := net.DialTimeout("tcp", p.mqttAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d packets: %v\n%s", sent, err, p.diag())
		}
		conns++
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, nc); close(drained) }() // the node's answers, unread here
		connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: m.rng.IntN(2) == 0, Keepalive: 30,
				ClientIdentifier: fmt.Sprintf("fuzz-%d", m.rng.IntN(8)), UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}}
		if version == 5 && m.rng.IntN(3) == 0 {
			m.properties(&connect.Properties)
		}
		if m.rng.IntN(6) == 0 {
			connect.Connect.WillFlag, connect.Connect.WillTopic, connect.Connect.WillPayload = true, m.topic(), []byte("bye")
			connect.Connect.WillQos, connect.Connect.WillRetain = byte(m.rng.IntN(3)), m.rng.IntN(2) == 0
		}
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		m.send(nc, connect)
		for range 1 + m.rng.IntN(40) {
			pk := m.packet(version)
			sent++
			if !m.send(nc, pk) {
				break // closed by the node
			}
			if !p.alive() {
				t.Fatalf("the node died at a %s packet\n%s", packets.PacketNames[pk.FixedHeader.Type], p.diag())
			}
		}
		// Sent all: the node reads to the end, answers, and closes. (A
		// close from here at once would meet its first answer with a
		// reset, and the packets not yet read would be lost.)
		nc.(*net.TCPConn).CloseWrite()
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: the node neither closed it nor answered within 10 s after its last packet", i)
		}
		nc.Close()
	}
	t.Logf("%d packets over %d connections", sent, conns)
	// The fuzz reached past the login and the parser: records stored from
	// devices, refusals answered, sessions accepted.
	stored, connects := p.metric("eddy_mqtt_messages_total"), p.metric("eddy_mqtt_connects_total")
	t.Logf("%.0f sessions, %.0f messages stored, %.0f refused", connects, stored, p.metric("eddy_mqtt_refused_total"))
	if stored < 100 || connects < float64(conns)/2 {
		t.Fatalf("%.0f sessions, %.0f messages stored: the fuzzer asks mostly what the listener refuses at once", connects, stored)
	}
	if !p.alive() {
		t.Fatalf("the node died\n%s", p.diag())
	}
	// A well-formed device is served as before.
	p.pubWithin(10*time.Second, "mqttv5", "sensors/after", "ok")
}

// mfuzz makes hostile MQTT packets.
type mfuzz struct{ rng *rand.Rand }

var mqttTopics = []string{"sensors/x", "sensors", "theirs/x", "acme/theirs", "#", "+/+", "sensors/#", "sensors/+/x",
	"$share/g/sensors/#", "$share//#", "$share/g", "$SYS/x", "", "/", "//", "sensors/\u0000", "ü/ü", strings.Repeat("l/", 2000)}

func (m *mfuzz) topic() string {
	if m.rng.IntN(8) > 0 {
		return fmt.Sprintf("sensors/d%d", m.rng.IntN(10))
	}
	if m.rng.IntN(50) == 0 {
		return strings.Repeat("t", 60000)
	}
	return mqttTopics[m.rng.IntN(len(mqttTopics))]
}

func (m *mfuzz) u16() uint16 {
	return []uint16{0, 1, 2, 10, 11, 65535, uint16(m.rng.IntN(65536))}[m.rng.IntN(7)]
}
func (m *mfuzz) u32() uint32 {
	return []uint32{0, 1, 4294967295, uint32(m.rng.IntN(1 << 20))}[m.rng.IntN(4)]
}

// packet is a random packet a device might send (and some it may not).
func (m *mfuzz) packet(version byte) packets.Packet {
	kinds := []byte{packets.Publish, packets.Publish, packets.Publish, packets.Publish, packets.Publish, packets.Publish,
		packets.Subscribe, packets.Subscribe, packets.Unsubscribe, packets.Pingreq, packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp}
	kind := kinds[m.rng.IntN(len(kinds))]
	if m.rng.IntN(20) == 0 { // what ends a session, or may not come from a device at all
		kind = []byte{packets.Disconnect, packets.Auth, packets.Connect, packets.Connack, packets.Suback}[m.rng.IntN(5)]
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: kind}, ProtocolVersion: version,
		PacketID: m.u16(), ReasonCode: byte(m.rng.IntN(256))}
	switch pk.FixedHeader.Type {
	case packets.Subscribe, packets.Unsubscribe, packets.Pubrel:
		pk.FixedHeader.Qos = 1 // their fixed header's flags are 0010
		if m.rng.IntN(20) == 0 {
			pk.FixedHeader.Qos = 0
		}
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		pk.FixedHeader.Qos = byte(m.rng.IntN(3))
		if m.rng.IntN(20) == 0 {
			pk.FixedHeader.Qos = 3
		}
		pk.FixedHeader.Retain, pk.FixedHeader.Dup = m.rng.IntN(4) == 0, m.rng.IntN(8) == 0
		pk.TopicName = m.topic()
		pk.Payload = make([]byte, []int{0, 1, 100, 70000}[m.rng.IntN(4)])
	case packets.Subscribe, packets.Unsubscribe:
		for range m.rng.IntN(5) {
			sub := packets.Subscription{Filter: m.topic(), Qos: byte(m.rng.IntN(3)), NoLocal: m.rng.IntN(2) == 0,
				RetainAsPublished: m.rng.IntN(2) == 0, RetainHandling: byte(m.rng.IntN(3)), Identifier: 1 + m.rng.IntN(100)}
			if m.rng.IntN(15) == 0 { // out of range
				sub.Qos, sub.RetainHandling, sub.Identifier = 3, 3, []int{0, 268435456}[m.rng.IntN(2)]
			}
			pk.Filters = append(pk.Filters, sub)
		}
	case packets.Connect:
		pk.Connect = packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "again"}
	}
	if version == 5 && m.rng.IntN(4) == 0 {
		m.properties(&pk.Properties)
	}
	return pk
}

// properties sets MQTT 5 properties at their edges.
func (m *mfuzz) properties(pr *packets.Properties) {
	pr.TopicAlias, pr.TopicAliasFlag = m.u16(), m.rng.IntN(3) == 0
	pr.MessageExpiryInterval, pr.SessionExpiryInterval, pr.SessionExpiryIntervalFlag = m.u32(), m.u32(), m.rng.IntN(2) == 0
	pr.PayloadFormat, pr.PayloadFormatFlag = byte(m.rng.IntN(3)), m.rng.IntN(2) == 0
	pr.ReceiveMaximum, pr.TopicAliasMaximum, pr.MaximumPacketSize = m.u16(), m.u16(), m.u32()
	pr.ResponseTopic, pr.ContentType = m.topic(), mqttTopics[m.rng.IntN(len(mqttTopics))]
	pr.CorrelationData = make([]byte, m.rng.IntN(64))
	if m.rng.IntN(4) == 0 {
		pr.SubscriptionIdentifier = []int{[]int{0, 1, 268435455}[m.rng.IntN(3)]}
	}
	for range m.rng.IntN(4) {
		pr.User = append(pr.User, packets.UserProperty{Key: m.topic(), Val: m.topic()})
	}
	if m.rng.IntN(8) == 0 {
		pr.AuthenticationMethod, pr.AuthenticationData = "SCRAM-SHA-1", []byte("x")
	}
	pr.RequestProblemInfo, pr.RequestProblemInfoFlag = byte(m.rng.IntN(3)), m.rng.IntN(2) == 0
}

// send encodes pk (torn now and then) and writes it; false once the
// connection is closed.
func (m *mfuzz) send(nc net.Conn, pk packets.Packet) bool {
	var buf bytes.Buffer
	pk.Mods.AllowResponseInfo = true
	encode := map[byte]func(*bytes.Buffer) error{packets.Connect: pk.ConnectEncode, packets.Publish: pk.PublishEncode,
		packets.Subscribe: pk.SubscribeEncode, packets.Unsubscribe: pk.UnsubscribeEncode, packets.Pingreq: pk.PingreqEncode,
		packets.Puback: pk.PubackEncode, packets.Pubrec: pk.PubrecEncode, packets.Pubrel: pk.PubrelEncode, packets.Pubcomp: pk.PubcompEncode,
		packets.Disconnect: pk.DisconnectEncode, packets.Auth: pk.AuthEncode, packets.Connack: pk.ConnackEncode,
		packets.Suback: pk.SubackEncode}[pk.FixedHeader.Type]
	if encode(&buf) != nil {
		return true // not encodable: nothing sent
	}
	b := buf.Bytes()
	if m.rng.IntN(30) == 0 && len(b) > 2 {
		b[1+m.rng.IntN(len(b)-1)] ^= byte(1 + m.rng.IntN(255))
	}
	_, err := nc.Write(b)
	return err == nil
}
