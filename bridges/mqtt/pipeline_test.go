package mqtt

import (
	"net"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// qos1Publish is an MQTT 3.1.1 QoS 1 PUBLISH of id to sensors/a.
func qos1Publish(id byte) []byte {
	body := append([]byte{0, 9}, "sensors/a"...)
	body = append(body, 0, id)
	body = append(body, `{"t":21.5}`...)
	return append([]byte{0x32, byte(len(body))}, body...)
}

// TestPublishAloneOnlyWhenDrained: a QoS 1 publish is appended on the
// read loop only when it came alone. mochi reads through the listener's
// hook and a replayConn; after each packet, drained reports whether
// mochi holds nothing more: not when a write brought three publishes, or
// the start of the next, until the last is read.
func TestPublishAloneOnlyWhenDrained(t *testing.T) {
	srv := mochi.New(nil)
	if err := srv.AddHook(&hook{l: &Listener{}}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	rc := &replayConn{Conn: a, r: a}
	cl := srv.NewClient(rc, "t", "dev", false)
	cl.Properties.ProtocolVersion = 4
	two := append(qos1Publish(4), qos1Publish(5)...)
	writes := [][]byte{
		append(append(qos1Publish(1), qos1Publish(2)...), qos1Publish(3)...), // three at once
		two[:len(qos1Publish(4))+5], two[len(qos1Publish(4))+5:], // the next begun
		qos1Publish(6), // alone
	}
	go func() {
		for _, w := range writes {
			if _, err := b.Write(w); err != nil {
				return
			}
		}
	}()
	want := []bool{false, false, true, false, true, true}
	for i, drained := range want {
		var fh packets.FixedHeader
		if err := cl.ReadFixedHeader(&fh); err != nil {
			t.Fatal(err)
		}
		pk, err := cl.ReadPacket(&fh)
		if err != nil {
			t.Fatal(err)
		}
		if pk.PacketID != uint16(i+1) {
			t.Fatalf("read publish %d, want %d", pk.PacketID, i+1)
		}
		if got := rc.drained(); got != drained {
			t.Fatalf("after publish %d: drained %v, want %v", i+1, got, drained)
		}
	}
}
