package mqtt

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mqttPacket is a packet of type typ with a body of body zeros.
func mqttPacket(typ byte, body int) []byte {
	var b bytes.Buffer
	fh := packets.FixedHeader{Type: typ, Remaining: body}
	fh.Encode(&b)
	return append(b.Bytes(), make([]byte, body)...)
}

// chunky reads at most a random few bytes at a time, as a socket may.
type chunky struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c *chunky) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rnd.IntN(70_000))])
}

// TestMeterHoldsLargePackets: through any chunking of the stream, a
// packet of countFrom bytes or more holds its size of the budget from
// before its header is handed over until the read after its last byte;
// smaller packets, and packets before start, hold nothing.
func TestMeterHoldsLargePackets(t *testing.T) {
	sizes := []int{10, 0, 300, 100 << 10, 5, 64 << 10, 70 << 10, 2, 1 << 20, 0}
	var stream bytes.Buffer
	stream.Write(mqttPacket(packets.Connect, 200)) // a CONNECT, before start
	for _, n := range sizes {
		stream.Write(mqttPacket(packets.Publish, n))
	}
	for seed := range uint64(20) {
		b := membudget.New(8 << 20)
		c := &replayConn{r: &chunky{bytes.NewReader(stream.Bytes()), rand.New(rand.NewPCG(seed, 1))}}
		buf := make([]byte, 4096)
		got, peak := 0, int64(0)
		readOne := func(limit int) {
			n, err := c.Read(buf[:min(len(buf), limit)])
			if err != nil {
				t.Fatalf("seed %d: read: %v", seed, err)
			}
			got += n
			// At most one large packet is being handed over, or two
			// when one ended in this read and the next began in it.
			used := b.Used()
			if used > 2<<20 {
				t.Fatalf("seed %d: %d bytes held", seed, used)
			}
			peak = max(peak, used)
		}
		for got < 202 { // the CONNECT, before it is authenticated
			readOne(202 - got)
		}
		c.meter.start(b, "acme", 2<<20)
		for got < stream.Len() {
			readOne(len(buf))
		}
		if peak < 1<<20 {
			t.Fatalf("seed %d: at most %d bytes held while a 1 MiB packet was read", seed, peak)
		}
		c.Read(buf) // mochi's next read after the last packet
		if used := b.Used(); used != 0 {
			t.Fatalf("seed %d: %d bytes still held after every packet was read", seed, used)
		}
	}
}

// TestMeterWaitsForRoom: a large packet's header is not handed over while
// the tenant's share is taken; closing the connection ends the wait and
// gives back what it held.
func TestMeterWaitsForRoom(t *testing.T) {
	b := membudget.New(4 << 20) // 2 MiB a tenant
	other, err := b.Acquire(context.Background(), "acme", 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	c := &replayConn{r: bytes.NewReader(mqttPacket(packets.Publish, 100<<10))}
	c.meter.start(b, "acme", 1<<20)
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 4096))
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("a large packet read with the tenant's share taken: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	other.Release()
	if err := <-read; err != nil {
		t.Fatalf("read once there is room: %v", err)
	}
	if used := b.Used(); used != 100<<10 {
		t.Fatalf("%d bytes held while the packet is read; want its 100 KiB", used)
	}
	c.meter.close()
	if used := b.Used(); used != 0 {
		t.Fatalf("%d bytes held after close", used)
	}
}
