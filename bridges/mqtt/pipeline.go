package mqtt

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/promtext"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// QoS 1 publishes are pipelined per connection: the read loop hands a
// publish's append to the partition's queue and goes on reading (the next
// append queues behind it, so order holds), while the connection's acker
// writes the PUBACKs in the order the publishes came, each once its
// record is committed. A device with several publishes in flight so gets
// them committed together (group commit) instead of one commit per round
// trip. At most the receive maximum are pending; past it the read loop
// waits. QoS 2 stays on the read loop (its PUBREC/PUBREL flow is mochi's).

// pending is a QoS 1 publish on its way to the log.
type pending struct {
	id    uint16
	ref   eddy.TopicRef
	start time.Time
	done  chan struct{}
	err   error
}

// acker answers one connection's pending publishes in order.
type acker struct {
	q    chan *pending
	gone chan struct{} // closed at disconnect
}

func newAcker(n int) *acker {
	return &acker{q: make(chan *pending, n), gone: make(chan struct{})}
}

// pipeline appends a QoS 1 publish without waiting for its commit; mochi
// is told to send nothing (the acker does).
func (h *hook) pipeline(cl *mochi.Client, s *session, pk packets.Packet, ref eddy.TopicRef, rec eddy.Record) error {
	l := h.l
	a := s.acker
	p := &pending{id: pk.PacketID, ref: ref, start: time.Now(), done: make(chan struct{})}
	select {
	case a.q <- p:
	case <-a.gone:
		return packets.ErrRejectPacket
	}
	queued := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(eddy.WithQueued(context.Background(), func() { close(queued) }), l.cfg.PublishTimeout)
		defer cancel()
		p.err = l.ingest.Ingest(ctx, ref, []eddy.Record{rec})
		eddy.Queued(ctx) // refused before it was queued
		close(p.done)
	}()
	<-queued
	return packets.ErrRejectPacket
}

// run writes the PUBACKs, in order, until the connection is gone.
func (a *acker) run(h *hook, cl *mochi.Client) {
	l := h.l
	// A device publishes to few topics: its counter is looked up when the
	// topic changes, not for each message.
	var last eddy.TopicRef
	var msgs *metrics.Counter
	commit := l.m.GetOrCreatePrometheusHistogramExt("eddy_mqtt_publish_commit_seconds", promtext.DurationBuckets)
	for {
		var p *pending
		select {
		case p = <-a.q:
		case <-a.gone:
			return
		}
		select {
		case <-p.done:
		case <-a.gone:
			return
		}
		if p.err != nil {
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: p.id, TopicName: p.ref.String()}
			if code, ok := h.refuse(cl, pk, p.err).(packets.Code); ok { // v5: the reason; 3.1.1: disconnected
				cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: p.id, ReasonCode: code.Code,
					Properties: packets.Properties{ReasonString: code.Reason}})
			}
			continue
		}
		if msgs == nil || p.ref != last {
			last, msgs = p.ref, l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_messages_total{topic=%q,qos="1"}`, p.ref.String()))
		}
		msgs.Inc()
		commit.UpdateDuration(p.start)
		if err := cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: p.id}); err != nil {
			return
		}
	}
}
