package mqtt

import (
	"context"
	"sync"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Retained messages are records: a record carrying the header
// mqtt.retain: true (an MQTT publish with the retain flag, or any producer
// that sets it) is the retained message of its MQTT name (mqttName) until
// a newer one; one with an empty value clears it. A subscription asking
// for retained messages (retain handling 0, or 1 when it is new; not a
// shared one) gets, for each matching name, the newest such record.
//
// The node keeps an index of them per partition, name -> offset, brought
// up to date from where it stopped each time a subscription asks (so the
// first ask reads the partition once), bounded by RetainedBytes.
type retainedIndex struct {
	l     *Listener
	mu    sync.Mutex
	parts map[partAt]*retainedPart
	bytes int
}

type retainedPart struct {
	mu    sync.Mutex
	next  int64
	names map[string]int64
}

func isRetained(r *eddy.FetchedRecord) bool {
	for _, h := range r.Headers {
		if h.Key == "mqtt.retain" {
			return string(h.Value) == "true"
		}
	}
	return false
}

// entryBytes is what an index entry is counted as.
func entryBytes(name string) int { return len(name) + 48 }

// matching brings a partition's index up to date and answers the offsets
// of the retained records whose names match filter.
func (x *retainedIndex) matching(ctx context.Context, a partAt, filter string) []int64 {
	x.mu.Lock()
	rp := x.parts[a]
	if rp == nil {
		rp = &retainedPart{names: map[string]int64{}}
		x.parts[a] = rp
	}
	x.mu.Unlock()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for ctx.Err() == nil {
		recs, next, err := x.l.cfg.Log.Read(ctx, a.ref, a.p, rp.next, tailReadBytes, 0)
		if err != nil {
			if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
				if start, _, err := x.l.cfg.Log.Bounds(a.ref, a.p); err == nil && start > rp.next {
					rp.next = start
					continue
				}
			}
			x.l.log.Debug("mqtt retained index", logkey.Topic, a.ref, logkey.Err, err)
			break
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			if isRetained(&recs[i]) {
				x.set(rp, x.l.mqttName(a.ref, &recs[i]), int64(recs[i].Offset), len(recs[i].Value) == 0)
			}
		}
		rp.next = next
	}
	var out []int64
	for name, off := range rp.names {
		if tenants.MatchFilter(filter, name) {
			out = append(out, off)
		}
	}
	return out
}

// set records (or, clear, removes) a name's retained record.
func (x *retainedIndex) set(rp *retainedPart, name string, off int64, clear bool) {
	_, had := rp.names[name]
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case clear && had:
		delete(rp.names, name)
		x.bytes -= entryBytes(name)
	case clear:
	case had:
		rp.names[name] = off
	case x.bytes+entryBytes(name) > x.l.cfg.RetainedBytes:
		x.l.m.GetOrCreateCounter("eddy_mqtt_retained_not_indexed_total").Inc()
	default:
		rp.names[name] = off
		x.bytes += entryBytes(name)
	}
}

// retained sends a SUBSCRIBE's retained records. Until they are sent the
// stream is gated: live records wait in the log (its places fall behind),
// so a newer record never arrives before an older retained one.
func (st *stream) retained(pk packets.Packet, codes []byte) {
	var filters []Filter
	for i, sub := range pk.Filters {
		if i < len(codes) && codes[i] < 0x80 && sub.RetainHandling < 2 && !isShared(sub.Filter) {
			filters = append(filters, Filter{Filter: unscopeFilter(st.s.tenant, sub.Filter), QoS: min(sub.Qos, 1)})
		}
	}
	if len(filters) == 0 {
		return
	}
	gate := make(chan struct{})
	st.gate.Store(&gate)
	st.fol.wg.Add(1)
	go func() {
		defer st.fol.wg.Done()
		defer func() {
			st.gate.Store(nil)
			close(gate)
		}()
		ctx := st.fol.ctx
		for _, a := range st.partitions() {
			for _, f := range filters {
				for _, off := range st.l.retained.matching(ctx, a, f.Filter) {
					recs, _, err := st.l.cfg.Log.Read(ctx, a.ref, a.p, off, 1, 0) // the one record
					if err != nil || len(recs) == 0 || int64(recs[0].Offset) != off {
						continue // gone with retention
					}
					if !st.take(ctx, true) {
						return
					}
					if !st.inject(a.ref, &recs[0], int(f.QoS), originRetained) {
						<-st.window
					}
				}
			}
		}
	}()
}
