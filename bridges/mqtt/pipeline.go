package mqtt

import (
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/promtext"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// QoS 1 publishes are batched per connection. The read loop takes a slot
// of the receive maximum and hands the publish to the connection's
// publisher, which appends everything that arrived while it waited for
// its last commit as one produce request (a batch: one topic, in order),
// and answers the batch with one write of its PUBACKs once it is
// committed. A device with several publishes in flight so gets them
// committed together and acknowledged with one syscall, instead of one
// produce request and one write each; the partition's group commit joins
// the batches of all its devices into one Raft entry. A batch holds only
// this device's publishes: a refusal (a quota, its transform failing on a
// payload) is never another device's. At most the receive maximum, and
// QoS1Bytes, are unacknowledged; past either the read loop waits, and TCP
// slows the device down. QoS 2 stays on the read
// loop (its PUBREC/PUBREL flow is mochi's).
//
// A publish that comes alone (nothing of the device's on its way to the
// log, nothing more of it read) is appended and answered on the read loop
// itself: there is nothing to batch it with, and a device with one
// publish in flight at a time, the common one, so costs no hand-over to
// another goroutine and no publisher at all (its goroutine and queue: a
// thousand such devices held a thousand goroutines more). The read loop
// waits for the commit, as the device does.

// pending is a QoS 1 publish on its way to the log.
type pending struct {
	id    uint16
	ref   eddy.TopicRef
	rec   eddy.Record
	size  int // rec.Size()
	start time.Time
}

// maxBatchBytes caps a batch (a publish larger than it goes alone).
const maxBatchBytes = 1 << 20

// publisher appends and acknowledges one connection's QoS 1 publishes.
type publisher struct {
	slots    chan struct{} // one per publish not yet acknowledged
	in       chan pending  // read loop -> run (by value: no allocation a message)
	gone     chan struct{} // closed at disconnect
	maxBytes int

	mu      sync.Mutex
	bytes   int           // of the publishes not yet acknowledged
	room    chan struct{} // closed (and replaced) when bytes are freed and the read loop waits
	waiting bool          // the read loop waits on room
}

func newPublisher(receiveMaximum, maxBytes int, gone chan struct{}) *publisher {
	return &publisher{slots: make(chan struct{}, receiveMaximum), in: make(chan pending, receiveMaximum), gone: gone,
		maxBytes: maxBytes, room: make(chan struct{})}
}

// reserve waits until n more bytes fit (a publish larger than the bound
// goes alone); false when the connection is gone.
func (pub *publisher) reserve(n int) bool {
	for {
		pub.mu.Lock()
		if pub.bytes == 0 || pub.bytes+n <= pub.maxBytes {
			pub.bytes += n
			pub.mu.Unlock()
			return true
		}
		room := pub.room
		pub.waiting = true
		pub.mu.Unlock()
		select {
		case <-room:
		case <-pub.gone:
			return false
		}
	}
}

// release frees a batch's slots and bytes.
func (pub *publisher) release(slots, n int) {
	for range slots {
		<-pub.slots
	}
	pub.mu.Lock()
	pub.bytes -= n
	if pub.waiting {
		close(pub.room)
		pub.room, pub.waiting = make(chan struct{}), false
	}
	pub.mu.Unlock()
}

// pipeline hands a QoS 1 publish to the connection's publisher, once it
// has a slot, and returns the packet mochi is to go on with: one it sends
// nothing for (the publisher answers), or an error when the connection is
// gone.
func (h *hook) pipeline(pub *publisher, pk packets.Packet, ref eddy.TopicRef, rec eddy.Record) (packets.Packet, error) {
	select {
	case pub.slots <- struct{}{}:
	case <-pub.gone:
		return pk, packets.ErrRejectPacket
	}
	size := rec.Size()
	if !pub.reserve(size) {
		return pk, packets.ErrRejectPacket
	}
	pub.in <- pending{id: pk.PacketID, ref: ref, rec: rec, size: size, start: time.Now()} // never blocks: in holds as many as there are slots
	return taken(pk), nil
}

// taken is a publish as mochi is to see one Eddy took over: QoS 0 (no
// PUBACK from mochi, no inflight entry), not retained, and ignored (no
// fan-out). mochi does nothing more with it. (ErrRejectPacket does the
// same, but mochi logs every rejection at debug level, and the packet
// passed to the logger escapes: 850 bytes of garbage a message, a sixth
// of what a QoS 1 publish made the node allocate.)
func taken(pk packets.Packet) packets.Packet {
	pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.Ignore = 0, false, true
	return pk
}

// publishQoS1 appends a QoS 1 publish: at once on the read loop when it
// came alone, else through the connection's publisher (made at the first
// publish that does not come alone).
func (h *hook) publishQoS1(s *session, cl *mochi.Client, pk packets.Packet, ref eddy.TopicRef, rec eddy.Record) (packets.Packet, error) {
	if rc, ok := cl.Net.Conn.(*replayConn); ok && rc.drained() && (s.pub == nil || s.pub.idle()) {
		one := [1]pending{{id: pk.PacketID, ref: ref, rec: rec, size: rec.Size(), start: time.Now()}}
		s.alone.commit(h, cl, ref, one[:])
		return taken(pk), nil
	}
	if s.pub == nil {
		s.pub = newPublisher(int(h.l.cfg.ReceiveMaximum), h.l.cfg.QoS1Bytes, s.gone)
		go s.pub.run(h, cl)
	}
	return h.pipeline(s.pub, pk, ref, rec)
}

// idle reports whether every publish handed to the publisher has been
// answered.
func (pub *publisher) idle() bool {
	pub.mu.Lock()
	defer pub.mu.Unlock()
	return pub.bytes == 0
}

// run appends the connection's publishes in batches, and answers them,
// until it is gone.
func (pub *publisher) run(h *hook, cl *mochi.Client) {
	var a acker
	var batch []pending
	var next pending
	held := false // next holds a publish that did not fit the last batch
	for {
		select {
		case <-pub.gone:
			return // a refusal stopped it: what is queued is not appended unanswered
		default:
		}
		if !held {
			select {
			case next = <-pub.in:
			case <-pub.gone:
				return
			}
		}
		batch = append(batch[:0], next)
		ref, size := next.ref, next.size
		next, held = pending{}, false
	more:
		for size < maxBatchBytes {
			select {
			case p := <-pub.in:
				if p.ref != ref || size+p.size > maxBatchBytes {
					next, held = p, true
					break more
				}
				batch = append(batch, p)
				size += p.size
			default:
				break more
			}
		}
		ok := a.commit(h, cl, ref, batch)
		n := len(batch)
		clear(batch)
		if !ok {
			return
		}
		pub.release(n, size)
	}
}

// acker appends batches of one connection's QoS 1 publishes and answers
// them; each goroutine that does (the read loop, the publisher) has its
// own, and reuses its buffers.
type acker struct {
	recs    []eddy.Record
	buf     []byte
	latency *metrics.PrometheusHistogram
	// A device publishes to few topics: its counter is looked up when the
	// topic changes, not for each message.
	last eddy.TopicRef
	msgs *metrics.Counter
}

// commit appends batch, publishes to ref in the order received, and
// answers it: success PUBACKs in one write once committed, or each
// publish's refusal. False when the connection is gone.
func (a *acker) commit(h *hook, cl *mochi.Client, ref eddy.TopicRef, batch []pending) bool {
	l := h.l
	a.recs = a.recs[:0]
	for i := range batch {
		a.recs = append(a.recs, batch[i].rec)
	}
	err := l.ingest.Ingest(l.publishDeadline.Context(), ref, a.recs)
	clear(a.recs) // the records are the log's now
	if err != nil {
		h.refuseBatch(cl, batch, ref, err)
		return true
	}
	if a.latency == nil {
		a.latency = l.m.GetOrCreatePrometheusHistogramExt("eddy_mqtt_publish_commit_seconds", promtext.DurationBuckets)
	}
	if a.msgs == nil || ref != a.last {
		a.last, a.msgs = ref, l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_messages_total{topic=%q,qos="1"}`, ref.String()))
	}
	a.msgs.Add(len(batch))
	a.buf = a.buf[:0]
	for i := range batch {
		p := &batch[i]
		a.latency.UpdateDuration(p.start)
		a.buf = append(a.buf, packets.Puback<<4, 2, byte(p.id>>8), byte(p.id))
	}
	return flush(cl, a.buf)
}

// flush writes success PUBACKs (a success without properties is the same
// 4 bytes in MQTT 3.1.1 and 5) in one write; false when the connection is
// gone.
func flush(cl *mochi.Client, buf []byte) bool {
	if cl.Closed() {
		return false
	}
	cl.Lock() // mochi's own writes hold it: packets never interleave
	_, err := cl.Net.Conn.Write(buf)
	cl.Unlock()
	return err == nil
}

// refuseBatch answers each publish of a refused batch: a v5 device gets a
// PUBACK with the reason; a 3.1.1 device is disconnected.
func (h *hook) refuseBatch(cl *mochi.Client, batch []pending, ref eddy.TopicRef, err error) {
	for _, p := range batch {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: p.id, TopicName: ref.String()}
		if code, ok := h.refuse(cl, pk, err).(packets.Code); ok {
			cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: p.id, ReasonCode: code.Code,
				Properties: packets.Properties{ReasonString: code.Reason}})
		}
	}
}
