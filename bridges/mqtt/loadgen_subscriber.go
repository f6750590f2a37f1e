package mqtt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A subscriber of RunFanout: a device (loadgen_device.go) that subscribes
// and reads deliveries, each parsed in place from its reader's buffer, and
// answers QoS 1 ones with PUBACKs written together once what was read is
// handled, as mosquitto_sub does. paho's client cost the fan-out's 1,000
// subscribers more CPU than either broker they measured (as its
// publishing client did RunLoad's).

// subscribe subscribes the device to filter at qos and reads the SUBACK.
func (dev *device) subscribe(ctx context.Context, filter string, qos byte) error {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 5, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: filter, Qos: qos}}}
	var buf bytes.Buffer
	if err := pk.SubscribeEncode(&buf); err != nil {
		return err
	}
	ack, body, err := dev.exchange(ctx, buf.Bytes(), packets.Suback)
	if err == nil {
		err = ack.SubackDecode(body)
	}
	if err == nil && (len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] >= 0x80) {
		err = fmt.Errorf("subscribe refused: reasons %v %s", ack.ReasonCodes, ack.Properties.ReasonString)
	}
	return err
}

// deliveries reads publishes until the connection ends, calling got with
// each one's payload (valid during the call only).
func (dev *device) deliveries(got func(payload []byte)) {
	var buf [4096]byte
	var acks []byte
	for {
		fh, body, err := dev.readPacket(buf[:])
		if err != nil {
			dev.lose(err)
			return
		}
		switch fh.Type {
		case packets.Publish:
			payload, id, ok := publishPayload(body, fh.Qos)
			if !ok {
				dev.lose(fmt.Errorf("a malformed PUBLISH of %d bytes", len(body)))
				return
			}
			got(payload)
			if fh.Qos > 0 {
				acks = append(acks, packets.Puback<<4, 2, byte(id>>8), byte(id))
			}
		case packets.Pingresp:
		case packets.Disconnect:
			pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 5}
			pk.DisconnectDecode(body)
			dev.lose(fmt.Errorf("disconnected by the broker: reason 0x%02x %s", pk.ReasonCode, pk.Properties.ReasonString))
			return
		default:
			dev.lose(fmt.Errorf("packet type %d from the broker", fh.Type))
			return
		}
		if len(acks) > 0 && dev.br.Buffered() == 0 { // all read is answered, in one write
			if _, err := dev.conn.Write(acks); err != nil {
				dev.lose(err)
				return
			}
			acks = acks[:0]
		}
	}
}

// publishPayload is an MQTT 5 PUBLISH body's payload and packet id.
func publishPayload(body []byte, qos byte) ([]byte, uint16, bool) {
	if len(body) < 2 {
		return nil, 0, false
	}
	i := 2 + int(binary.BigEndian.Uint16(body))
	var id uint16
	if qos > 0 {
		if len(body) < i+2 {
			return nil, 0, false
		}
		id = binary.BigEndian.Uint16(body[i:])
		i += 2
	}
	if len(body) < i {
		return nil, 0, false
	}
	props, n := binary.Uvarint(body[i:]) // a variable byte integer reads as a uvarint
	if n <= 0 || uint64(len(body)-i-n) < props {
		return nil, 0, false
	}
	return body[i+n+int(props):], id, true
}
