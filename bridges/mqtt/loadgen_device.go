package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// A simulated device of RunLoad: one MQTT 5 connection over TCP whose
// publishes are written as bytes and whose PUBACKs are read as bytes. It
// replaced paho's client (2026-12-06), which cost the load generator
// 39-92 us of CPU a message against mosquitto where this one costs 23-42,
// more than either broker it loaded spent: on the 2-core machine the
// brokers' figures measured how much CPU each left to the generator. A
// device writes what it may send (up to InFlight unacknowledged) in one
// write, and its reader reads PUBACKs through a buffer. CONNECT, CONNACK
// and a PUBACK with a reason are coded by mochi's packets; the common
// PUBACK is read by hand.

// device is one connection of a load.
type device struct {
	i    int
	cfg  *LoadConfig
	conn net.Conn
	br   *bufio.Reader
	body []byte // the writer's: the payload being made
	// ids holds the packet ids free to use: InFlight of them (QoS 1).
	ids chan uint16
	mu  sync.Mutex
	// Under mu: by packet id, the message using it; the connection's
	// failure, if it failed.
	sent    []pending1
	lost    error
	closing bool // close began: the broker's closing after DISCONNECT is no loss
	// The reader's (QoS 1), or the writer's (QoS 0): read once run
	// returned.
	lat           []time.Duration
	acked, failed int64
	errs          map[string]int
}

// pending1 is a QoS 1 publish awaiting its PUBACK.
type pending1 struct {
	seq int
	at  time.Time
}

// connectRaw connects device i and reads its CONNACK; the device's
// in-flight window is capped at the broker's receive maximum.
func connectRaw(ctx context.Context, cfg *LoadConfig, i int, id string) (*device, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("device %d: %w", i, err)
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: id,
			UsernameFlag: true, Username: []byte(cfg.Tenant), PasswordFlag: true, Password: []byte(cfg.Token)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		conn.Close()
		return nil, err
	}
	dev := &device{i: i, cfg: cfg, conn: conn, br: bufio.NewReaderSize(conn, 4096), errs: map[string]int{}}
	ack, body, err := dev.exchange(ctx, buf.Bytes(), packets.Connack)
	if err == nil {
		err = ack.ConnackDecode(body)
	}
	if err == nil && ack.ReasonCode >= 0x80 {
		err = fmt.Errorf("connect refused: reason 0x%02x %s", ack.ReasonCode, ack.Properties.ReasonString)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("device %d: %w", i, err)
	}
	w := cfg.InFlight
	if m := int(ack.Properties.ReceiveMaximum); m > 0 && m < w {
		w = m
	}
	dev.ids = make(chan uint16, w)
	dev.sent = make([]pending1, w+1)
	for id := 1; id <= w; id++ {
		dev.ids <- uint16(id)
	}
	return dev, nil
}

// exchange writes a request and reads its answer, of type want, within
// ctx's deadline: the answer's header (to decode the body into) and body.
func (dev *device) exchange(ctx context.Context, req []byte, want byte) (packets.Packet, []byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		dev.conn.SetDeadline(dl)
		defer dev.conn.SetDeadline(time.Time{})
	}
	if _, err := dev.conn.Write(req); err != nil {
		return packets.Packet{}, nil, err
	}
	fh, body, err := dev.readPacket(nil)
	if err == nil && fh.Type != want {
		err = fmt.Errorf("packet type %d where type %d was due", fh.Type, want)
	}
	return packets.Packet{FixedHeader: fh, ProtocolVersion: 5}, body, err
}

// readPacket reads one packet: its fixed header and its body, in buf
// when it fits (the reader's PUBACKs), else in a new slice.
func (dev *device) readPacket(buf []byte) (packets.FixedHeader, []byte, error) {
	var fh packets.FixedHeader
	b, err := dev.br.ReadByte()
	if err != nil {
		return fh, nil, err
	}
	if err := fh.Decode(b); err != nil {
		return fh, nil, err
	}
	n, _, err := packets.DecodeLength(dev.br)
	if err != nil {
		return fh, nil, err
	}
	fh.Remaining = n
	body := buf[:0]
	if n > cap(buf) {
		body = make([]byte, n)
	}
	body = body[:n]
	_, err = io.ReadFull(dev.br, body)
	return fh, body, err
}

// run publishes until the load's messages are sent (sent counts them for
// all devices) or ctx ends, waits for the PUBACKs still due, and
// disconnects.
func (dev *device) run(ctx context.Context, sent *atomic.Int64) {
	cfg := dev.cfg
	done := make(chan struct{})
	if cfg.QoS == 1 {
		go func() {
			defer close(done)
			dev.read()
		}()
	} else {
		close(done)
	}
	stop := context.AfterFunc(ctx, func() { dev.conn.Close() })
	defer func() {
		stop()
		dev.close()
		<-done
	}()
	var tick, ping *time.Ticker
	if cfg.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer tick.Stop()
		ping = time.NewTicker(15 * time.Second) // half the keep-alive
		defer ping.Stop()
	}
	// A write carries what may go at once: as many publishes as there
	// are ids free (QoS 1) or InFlight (QoS 0), up to 64 KiB; one a tick
	// when throttled.
	most := cap(dev.ids)
	if cfg.QoS == 0 {
		most = cfg.InFlight
	}
	topic := fmt.Sprintf("%s/dev-%04d", cfg.Topic, dev.i)
	var out []byte
	var seqs []int // QoS 0: the batch's, counted once written
	for {
		out, seqs = out[:0], seqs[:0]
		finished := false
		for n := 0; n < most && len(out) < 64<<10 && !finished; n++ {
			var id uint16
			if cfg.QoS == 1 {
				if n == 0 {
					select {
					case id = <-dev.ids:
					case <-ctx.Done():
					case <-done: // the connection failed
					}
				} else {
					select {
					case id = <-dev.ids:
					default:
					}
				}
				if id == 0 {
					finished = n == 0
					break
				}
			}
			if tick != nil && !dev.waitTick(ctx, tick, ping) {
				finished = true
			}
			seq := sent.Add(1)
			if finished || seq > int64(cfg.Messages) {
				if id != 0 {
					dev.ids <- id
				}
				finished = true
				break
			}
			if cfg.QoS == 1 {
				dev.mu.Lock()
				dev.sent[id] = pending1{seq: int(seq), at: time.Now()}
				dev.mu.Unlock()
			} else {
				seqs = append(seqs, int(seq))
			}
			out = dev.appendPublish(out, topic, id, int(seq))
			if tick != nil {
				break
			}
		}
		if len(out) > 0 {
			if _, err := dev.conn.Write(out); err != nil {
				dev.lose(err)
				return
			}
			if cfg.QoS == 0 { // written is all QoS 0 gets (the reader counts QoS 1)
				dev.acked += int64(len(seqs))
				for _, seq := range seqs {
					if cfg.OnAck != nil {
						cfg.OnAck(dev.i, seq)
					}
				}
			}
		}
		if finished || ctx.Err() != nil {
			break
		}
	}
	// Wait for the PUBACKs still due: every id back.
	for range cap(dev.ids) {
		select {
		case <-dev.ids:
		case <-done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitTick waits for a throttled device's next tick, keeping the
// connection alive meanwhile; false when ctx ended.
func (dev *device) waitTick(ctx context.Context, tick, ping *time.Ticker) bool {
	for {
		select {
		case <-tick.C:
			return true
		case <-ping.C:
			dev.conn.Write([]byte{packets.Pingreq << 4, 0})
		case <-ctx.Done():
			return false
		}
	}
}

// read reads PUBACKs until the connection ends, giving their ids back.
func (dev *device) read() {
	var buf [64]byte
	for {
		fh, body, err := dev.readPacket(buf[:])
		if err != nil {
			dev.lose(err)
			return
		}
		if fh.Type == packets.Puback && len(body) == 2 { // a success without properties: the common one
			if !dev.answered(uint16(body[0])<<8|uint16(body[1]), 0, "") {
				return
			}
			continue
		}
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 5}
		switch fh.Type {
		case packets.Puback:
			if err := pk.PubackDecode(body); err != nil {
				dev.lose(err)
				return
			}
			if !dev.answered(pk.PacketID, pk.ReasonCode, pk.Properties.ReasonString) {
				return
			}
		case packets.Disconnect:
			pk.DisconnectDecode(body)
			dev.lose(fmt.Errorf("disconnected by the broker: reason 0x%02x %s", pk.ReasonCode, pk.Properties.ReasonString))
			return
		case packets.Pingresp:
		default:
			dev.lose(fmt.Errorf("packet type %d from the broker", fh.Type))
			return
		}
	}
}

// answered settles the publish under packet id; false when no publish
// was (a broken broker: the device gives up).
func (dev *device) answered(id uint16, reason byte, why string) bool {
	dev.mu.Lock()
	var p pending1
	if int(id) < len(dev.sent) {
		p, dev.sent[id] = dev.sent[id], pending1{}
	}
	dev.mu.Unlock()
	if p.seq == 0 {
		dev.lose(fmt.Errorf("a PUBACK for packet id %d, which is not in flight", id))
		return false
	}
	if reason >= 0x80 {
		dev.failed++
		dev.errs[truncate(fmt.Sprintf("reason 0x%02x %s", reason, why), 80)]++
	} else {
		dev.acked++
		dev.lat = append(dev.lat, time.Since(p.at))
		if dev.cfg.OnAck != nil {
			dev.cfg.OnAck(dev.i, p.seq)
		}
	}
	dev.ids <- id
	return true
}

// lose records the connection's failure, if it is the first; closing it
// at the end of a run is none, nor is the broker's closing it after the
// DISCONNECT (an EOF the reader may see first).
func (dev *device) lose(err error) {
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if dev.lost == nil && !dev.closing && !errors.Is(err, net.ErrClosed) {
		dev.lost = err
	}
}

// result adds the device's counts to res: a publish still unanswered
// (the connection failed, or the run's time ended) is failed.
func (dev *device) result(res *LoadResult, lat *[]time.Duration) {
	dev.mu.Lock()
	defer dev.mu.Unlock()
	unanswered := 0
	for _, p := range dev.sent {
		if p.seq != 0 {
			unanswered++
		}
	}
	res.Acked += dev.acked
	res.Failed += dev.failed
	for e, n := range dev.errs {
		res.Errors[e] += n
	}
	if dev.lost != nil {
		res.Errors[truncate(dev.lost.Error(), 80)]++
		res.Failed += int64(unanswered)
	}
	*lat = append(*lat, dev.lat...)
}

// close sends DISCONNECT and closes the connection.
func (dev *device) close() {
	dev.mu.Lock()
	dev.closing = true
	dev.mu.Unlock()
	dev.conn.SetWriteDeadline(time.Now().Add(time.Second))
	dev.conn.Write([]byte{packets.Disconnect << 4, 0})
	dev.conn.Close()
}

// appendPublish appends a PUBLISH of a sensor reading to out: MQTT 5,
// no properties; QoS 1 with packet id id.
func (dev *device) appendPublish(out []byte, topic string, id uint16, seq int) []byte {
	dev.body = appendPayload(dev.body[:0], dev.i, seq, dev.cfg.Size)
	body, qos := dev.body, dev.cfg.QoS
	n := 2 + len(topic) + 1 + len(body) // topic, properties length, payload
	if qos > 0 {
		n += 2
	}
	out = append(out, packets.Publish<<4|qos<<1)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	out = append(out, byte(len(topic)>>8), byte(len(topic)))
	out = append(out, topic...)
	if qos > 0 {
		out = append(out, byte(id>>8), byte(id))
	}
	out = append(out, 0) // no properties
	return append(out, body...)
}
