package mqtt

import (
	"context"
	"sync"
	"time"

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
// first ask reads the partition once), bounded by RetainedBytes, of which
// one tenant's names take at most half: a tenant that publishes names by
// the hundred thousand fills its half, and another tenant's names still
// find room (they used to find none, and its devices booted without their
// configuration). A partition's index belongs to one life of its topic
// (its incarnation): a topic deleted and made again under the same name
// starts over at offset 0, and the old life's offsets named other records
// (a device subscribed to one name got another name's record). The index
// of a topic no longer there is dropped when the bound is reached.
type retainedIndex struct {
	l        *Listener
	mu       sync.Mutex
	parts    map[partAt]*retainedPart
	bytes    int
	byTenant map[eddy.TenantID]int
	swept    time.Time // the last sweep (at most one a second)
}

type retainedPart struct {
	mu    sync.Mutex
	next  int64
	names map[string]int64
	// Under retainedIndex.mu too (a sweep reads them holding only that):
	life  uint64 // the topic's incarnation the index is of
	bytes int
	gone  bool // dropped from the index (its topic went)
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
	life, err := x.l.cfg.Log.PartitionIncarnation(a.ref, a.p)
	if err != nil {
		return nil
	}
	x.mu.Lock()
	rp := x.parts[a]
	if rp == nil {
		rp = &retainedPart{life: life, names: map[string]int64{}}
		x.parts[a] = rp
	}
	x.mu.Unlock()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.life != life { // the topic was made again: its offsets start over
		x.restart(a.ref.Tenant, rp, life)
	}
	for ctx.Err() == nil {
		recs, next, err := x.l.cfg.Log.Read(ctx, a.ref, a.p, rp.next, tailReadBytes, 0)
		if err != nil {
			if start, ok := retentionPassed(x.l.cfg.Log, a.ref, a.p, rp.next, err); ok {
				rp.next = start
				continue
			}
			x.l.log.Debug("mqtt retained index", logkey.Topic, a.ref, logkey.Err, err)
			break
		}
		if len(recs) == 0 && next <= rp.next {
			break // at the end (a compacted topic's gap reads as none, and moves next)
		}
		for i := range recs {
			if isRetained(&recs[i]) {
				x.set(a.ref.Tenant, rp, x.l.mqttName(a.ref, &recs[i]), int64(recs[i].Offset), len(recs[i].Value) == 0)
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

// set records (or, clear, removes) a name's retained record. rp.mu is
// held.
func (x *retainedIndex) set(t eddy.TenantID, rp *retainedPart, name string, off int64, clear bool) {
	_, had := rp.names[name]
	e := entryBytes(name)
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case rp.gone: // its topic went while this pass read it
	case clear && had:
		delete(rp.names, name)
		x.account(t, rp, -e)
	case clear:
	case had:
		rp.names[name] = off
	case !x.room(t, e):
		x.l.m.GetOrCreateCounter("eddy_mqtt_retained_not_indexed_total").Inc()
	default:
		rp.names[name] = off
		x.account(t, rp, e)
	}
}

// room reports whether tenant t may index e more bytes: the node's bound
// and the tenant's half of it. At the node's bound it first drops the
// index of topics no longer there. x.mu is held.
func (x *retainedIndex) room(t eddy.TenantID, e int) bool {
	limit := x.l.cfg.RetainedBytes
	if x.byTenant[t]+e > limit/2 {
		return false
	}
	if x.bytes+e > limit && time.Since(x.swept) >= time.Second {
		x.swept = time.Now()
		x.sweep()
	}
	return x.bytes+e <= limit
}

// sweep drops the index of partitions whose topic is gone (deleted, or
// made again: a new life indexes afresh). x.mu is held.
func (x *retainedIndex) sweep() {
	for a, rp := range x.parts {
		if life, err := x.l.cfg.Log.PartitionIncarnation(a.ref, a.p); err != nil || life != rp.life {
			x.account(a.ref.Tenant, rp, -rp.bytes)
			rp.gone = true
			delete(x.parts, a)
		}
	}
}

// restart empties rp's names for the topic's new life (rp.mu is held).
func (x *retainedIndex) restart(t eddy.TenantID, rp *retainedPart, life uint64) {
	x.mu.Lock()
	x.account(t, rp, -rp.bytes)
	rp.life = life
	x.mu.Unlock()
	rp.names, rp.next = map[string]int64{}, 0
}

// account counts n bytes more (or fewer) of tenant t's in rp. x.mu is
// held. A part dropped by a sweep counts nothing more.
func (x *retainedIndex) account(t eddy.TenantID, rp *retainedPart, n int) {
	if rp.gone {
		return
	}
	rp.bytes += n
	x.bytes += n
	if x.byTenant[t] += n; x.byTenant[t] == 0 {
		delete(x.byTenant, t)
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
					if !isRetained(&recs[0]) || !tenants.MatchFilter(f.Filter, st.l.mqttName(a.ref, &recs[0])) {
						continue // not the record indexed (its topic was made again since)
					}
					if st.l.expired(&recs[0]) {
						continue // as a broker drops a retained message once it expires
					}
					if !st.reads(a.ref, &recs[0]) {
						continue // an MQTT scope's token: not one of its topics (stream.reads)
					}
					if !st.take(ctx, true) {
						return
					}
					if !st.inject(a.ref, &recs[0], int(f.QoS), originRetained, nil) {
						<-st.window
					}
				}
			}
		}
	}()
}
