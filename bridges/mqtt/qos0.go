package mqtt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
)

// qos0Queue holds QoS 0 publishes until they are appended, in batches per
// topic. It is bounded in records and bytes (what is queued and what is
// being appended). A publish that finds it full waits, up to a bound,
// holding only its own connection (TCP slows that device down); past the
// bound it is dropped and counted (QoS 0 is best effort). Appends are
// pipelined: up to qos0Depth batches in flight, each queued on its
// partitions before the next starts, so a device's messages keep their
// order.
type qos0Queue struct {
	l          *Listener
	maxRecords int
	maxBytes   int
	wait       time.Duration

	mu    sync.Mutex
	items []q0item
	// pending and bytes count what is queued or being appended: the bound
	// covers both.
	pending int
	bytes   int
	room    chan struct{} // closed (and replaced) when room is made
	wake    chan struct{}
	done    chan struct{}
	quit    chan struct{}
}

// qos0Depth is how many QoS 0 batches may be in flight at once.
const qos0Depth = 4

type q0item struct {
	ref eddy.TopicRef
	rec eddy.Record
}

func newQoS0Queue(l *Listener, maxRecords, maxBytes int, wait time.Duration) *qos0Queue {
	return &qos0Queue{l: l, maxRecords: maxRecords, maxBytes: maxBytes, wait: wait, room: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
}

// push queues a record, waiting up to the queue's wait for room; false
// when there was none.
func (q *qos0Queue) push(ref eddy.TopicRef, rec eddy.Record) bool {
	sz := rec.Size()
	var timer *time.Timer
	for {
		q.mu.Lock()
		if q.pending < q.maxRecords && q.bytes+sz <= q.maxBytes {
			break
		}
		room := q.room
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(q.wait)
			defer timer.Stop()
		}
		select {
		case <-room:
		case <-timer.C:
			return false
		case <-q.quit:
			return false
		}
	}
	q.items = append(q.items, q0item{ref, rec})
	q.pending++
	q.bytes += sz
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *qos0Queue) start() { go q.run() }

func (q *qos0Queue) run() {
	defer close(q.done)
	inflight := make(chan struct{}, qos0Depth)
	defer func() { // the batches in flight finish
		for range qos0Depth {
			inflight <- struct{}{}
		}
	}()
	for {
		select {
		case <-q.wake:
		case <-q.quit:
			q.flush(inflight)
			return
		}
		q.flush(inflight)
	}
}

// flush appends everything queued, one batch per topic, each started once
// the one before is queued on its partitions.
func (q *qos0Queue) flush(inflight chan struct{}) {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	if len(items) == 0 {
		return
	}
	byRef := map[eddy.TopicRef][]eddy.Record{}
	var order []eddy.TopicRef
	for _, it := range items {
		if _, ok := byRef[it.ref]; !ok {
			order = append(order, it.ref)
		}
		byRef[it.ref] = append(byRef[it.ref], it.rec)
	}
	for _, ref := range order {
		inflight <- struct{}{}
		queued := make(chan struct{})
		go func(ref eddy.TopicRef, recs []eddy.Record) {
			defer func() { <-inflight }()
			defer q.release(recs)
			ctx, cancel := context.WithTimeout(eddy.WithQueued(context.Background(), func() { close(queued) }), 30*time.Second)
			defer cancel()
			defer eddy.Queued(ctx) // a refusal before queueing
			if err := q.l.ingest.Ingest(ctx, ref, recs); err != nil {
				q.l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_qos0_failed_total{topic=%q,code=%q}`, ref.String(), eddy.ErrorCode(err))).Add(len(recs))
				return
			}
			q.l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_messages_total{topic=%q,qos="0"}`, ref.String())).Add(len(recs))
		}(ref, byRef[ref])
		<-queued
	}
}

// release uncounts appended (or failed) records and wakes the waiting.
func (q *qos0Queue) release(recs []eddy.Record) {
	sz := 0
	for i := range recs {
		sz += recs[i].Size()
	}
	q.mu.Lock()
	q.pending -= len(recs)
	q.bytes -= sz
	close(q.room)
	q.room = make(chan struct{})
	q.mu.Unlock()
}

// stop appends what is queued and stops the worker, within ctx.
func (q *qos0Queue) stop(ctx context.Context) {
	select {
	case <-q.quit:
		return
	default:
	}
	close(q.quit)
	select {
	case <-q.done:
	case <-ctx.Done():
	}
}
