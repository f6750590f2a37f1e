package mqtt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
)

// qos0Queue holds QoS 0 publishes until a worker appends them, in batches
// per topic. It is bounded in records and bytes; a full queue drops (QoS 0
// is best effort) rather than slow the devices' connections.
type qos0Queue struct {
	l          *Listener
	maxRecords int
	maxBytes   int

	mu    sync.Mutex
	items []q0item
	// pending and bytes count what is queued or being appended: the bound
	// covers both.
	pending int
	bytes   int
	wake    chan struct{}
	done    chan struct{}
	quit    chan struct{}
}

type q0item struct {
	ref eddy.TopicRef
	rec eddy.Record
}

func newQoS0Queue(l *Listener, maxRecords, maxBytes int) *qos0Queue {
	return &qos0Queue{l: l, maxRecords: maxRecords, maxBytes: maxBytes,
		wake: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
}

// push queues a record; false when the queue is full.
func (q *qos0Queue) push(ref eddy.TopicRef, rec eddy.Record) bool {
	sz := rec.Size()
	q.mu.Lock()
	if q.pending >= q.maxRecords || q.bytes+sz > q.maxBytes {
		q.mu.Unlock()
		return false
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
	for {
		select {
		case <-q.wake:
		case <-q.quit:
			q.flush()
			return
		}
		q.flush()
	}
}

// flush appends everything queued, one batch per topic.
func (q *qos0Queue) flush() {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	if len(items) == 0 {
		return
	}
	defer func() {
		sz := 0
		for i := range items {
			sz += items[i].rec.Size()
		}
		q.mu.Lock()
		q.pending -= len(items)
		q.bytes -= sz
		q.mu.Unlock()
	}()
	byRef := map[eddy.TopicRef][]eddy.Record{}
	var order []eddy.TopicRef
	for _, it := range items {
		if _, ok := byRef[it.ref]; !ok {
			order = append(order, it.ref)
		}
		byRef[it.ref] = append(byRef[it.ref], it.rec)
	}
	for _, ref := range order {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := q.l.ingest.Ingest(ctx, ref, byRef[ref])
		cancel()
		if err != nil {
			q.l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_qos0_failed_total{topic=%q,code=%q}`, ref.String(), eddy.ErrorCode(err))).Add(len(byRef[ref]))
			continue
		}
		q.l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_messages_total{topic=%q,qos="0"}`, ref.String())).Add(len(byRef[ref]))
	}
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
