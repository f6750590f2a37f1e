package mqtt

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/internal/membudget"
)

// packetMeter counts a connection's large packets in the node's request
// memory (max_request_memory, shared with HTTP bodies and Kafka
// requests). mochi allocates a packet's declared size as soon as it has
// read the fixed header, then reads the body into it: a tenant's thousand
// devices each declaring 1 MiB and sending it slowly would hold 1 GB. So
// the bytes mochi reads are parsed here, packet by packet, and the fixed
// header of a packet of countFrom bytes or more is handed over only once
// the budget holds its size. It is given back at mochi's next read after
// the packet's last byte (mochi reads and handles a packet before it
// reads the next). Smaller packets are not counted: a connection holds
// few of them (the receive maximum, mqtt_qos1_bytes).
//
// mochi's read goroutine parses and takes: the CONNECT is read,
// authenticated (start) and followed by the read loop on that goroutine.
// close may come from another goroutine.
type packetMeter struct {
	budget *membudget.Budget // nil until start
	tenant string
	max    int // larger packets are mochi's to refuse, not counted
	ctx    context.Context
	cancel context.CancelFunc

	// The parse: a fixed header (type byte, then the remaining length's
	// bytes), then need bytes of body; counted: the packet holds room.
	inHeader bool
	length   int
	shift    uint
	need     int
	counted  bool
	// whole counts the packets handed over to their last byte.
	whole int

	mu     sync.Mutex
	holds  []heldPacket
	closed bool
}

type heldPacket struct {
	hold  membudget.Hold
	ended bool // its last byte was handed to mochi
}

// countFrom is the size from which a packet is counted.
const countFrom = 64 << 10

// meterWait bounds a wait for room in the budget; then the connection is
// closed.
const meterWait = 30 * time.Second

var errNoRoom = errors.New("mqtt: no room in the node's request memory (max_request_memory) for the packet")

// start counts the connection's packets from now on, as tenant's; packets
// over max bytes are left to mochi's own refusal.
func (m *packetMeter) start(b *membudget.Budget, tenant string, max int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budget, m.tenant, m.max = b, tenant, max
	m.ctx, m.cancel = context.WithCancel(context.Background())
}

// before is called at the start of each read: packets handed over whole
// by earlier reads have been read and handled by mochi.
func (m *packetMeter) before() {
	if m.budget != nil {
		m.releaseEnded()
	}
}

func (m *packetMeter) releaseEnded() {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.holds[:0]
	for _, h := range m.holds {
		if h.ended {
			h.hold.Release()
		} else {
			kept = append(kept, h)
		}
	}
	m.holds = kept
}

// scan follows the packets through b, bytes about to be handed to mochi,
// and takes room for each large packet whose fixed header ends in b.
func (m *packetMeter) scan(b []byte) error {
	for len(b) > 0 {
		if m.need > 0 {
			n := min(m.need, len(b))
			m.need -= n
			b = b[n:]
			if m.need == 0 {
				m.bodyEnded()
			}
			continue
		}
		c := b[0]
		b = b[1:]
		if !m.inHeader { // the type byte
			m.inHeader, m.length, m.shift = true, 0, 0
			continue
		}
		m.length |= int(c&127) << m.shift
		m.shift += 7
		if c&128 != 0 && m.shift < 28 {
			continue
		}
		m.inHeader = false
		m.need = m.length
		var err error
		if m.counted, err = m.take(m.length); err != nil {
			return err
		}
		if m.need == 0 {
			m.bodyEnded()
		}
	}
	return nil
}

// take holds n bytes for a packet whose header was just read, and
// reports whether it did (the packet is counted).
func (m *packetMeter) take(n int) (bool, error) {
	if m.budget == nil || n < countFrom || n > m.max || int64(n) > m.budget.Total()/2 {
		return false, nil
	}
	m.releaseEnded() // handed over with this read: never wait on our own
	h, ok := m.budget.TryAcquire(m.tenant, int64(n))
	if !ok {
		ctx, cancel := context.WithTimeout(m.ctx, meterWait)
		var err error
		h, err = m.budget.Acquire(ctx, m.tenant, int64(n))
		cancel()
		if err != nil {
			return false, errNoRoom
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		h.Release()
		return false, errNoRoom
	}
	m.holds = append(m.holds, heldPacket{hold: h})
	return true, nil
}

// between reports whether the bytes handed over end where a packet ends.
func (m *packetMeter) between() bool { return !m.inHeader && m.need == 0 }

// bodyEnded notes that the packet being parsed was handed over whole.
func (m *packetMeter) bodyEnded() {
	m.whole++
	if !m.counted {
		return
	}
	m.counted = false
	m.mu.Lock()
	m.holds[len(m.holds)-1].ended = true
	m.mu.Unlock()
}

// close gives back what the connection holds, and ends a wait.
func (m *packetMeter) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	if m.cancel != nil {
		m.cancel()
	}
	for _, h := range m.holds {
		h.hold.Release()
	}
	m.holds = nil
}
