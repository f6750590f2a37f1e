package mqtt

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/membudget"
)

// A receiver (a session's stream, a shared group) follows each partition
// of its tenant from a place in the log. While it keeps up, the tenant's
// tail offers it the matching records as they are read, once for every
// receiver; when it cannot take one at once (its window is full), it
// falls behind: a reader of its own goes on from that record, at the
// receiver's pace, and hands back to the tail once it has caught up. So a
// slow device never slows the others or the tail, and no record is
// dropped for it: the log is its queue.
//
// The handover needs no coordination with the tail beyond the follower's
// lock: while behind, the offers it ignores are remembered (ignored),
// and the reader hands back only past the last of them; back live, an
// offer below next was already sent by the reader.

// A reader behind reads little at a time: its receiver takes at most its
// window (64 records) before it waits, and what the reader read meanwhile
// waits with it. At 1 MiB a read, 200 devices that stopped reading a
// topic of 8 partitions held 1.1 GB of a node; the tail, one reader per
// partition for all the tenant's receivers, reads more.
const (
	catchUpReadBytes = 64 << 10
	tailReadBytes    = 1 << 20
)

// receiver is what a follower delivers to.
type receiver interface {
	// qos is the QoS a record named name goes out with: the highest of the
	// receiver's matching filters', -1 if none matches.
	qos(name string) int
	// send delivers a record; with wait false only if it has room now.
	// False when it does not (or the receiver is gone).
	send(ctx context.Context, ref eddy.TopicRef, part string, rec *eddy.FetchedRecord, qos int, wait bool) bool
	// passed: every record of part below next was sent or did not match.
	passed(part string, next int64)
}

// place is a receiver's position in one partition.
type place struct {
	next    int64 // the offset after the last record handled
	behind  bool  // a reader of its own feeds it
	ignored int64 // the highest offer ignored while behind
}

// follower keeps a receiver's places and runs its readers.
type follower struct {
	l      *Listener
	tenant eddy.TenantID
	r      receiver
	tracks bool // the receiver keeps positions: the tail tells it what it passed
	// beforeHandback, set only by tests, runs between a reader's last read
	// and its handback check (where an offer may slip in).
	beforeHandback func()
	ctx            context.Context
	cancel         context.CancelFunc
	wg             sync.WaitGroup

	// reading is held by the reader that reads and sends: one at a time,
	// so a receiver behind on many partitions holds one read, not one a
	// partition (its window takes one read's records at most anyway).
	reading chan struct{}

	mu     sync.Mutex
	places map[string]*place
}

func newFollower(l *Listener, tenant eddy.TenantID, r receiver) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	return &follower{l: l, tenant: tenant, r: r, ctx: ctx, cancel: cancel, places: map[string]*place{}, reading: make(chan struct{}, 1)}
}

// stop ends the readers.
func (f *follower) stop() {
	f.cancel()
	f.wg.Wait()
}

func partKey(topic eddy.TopicName, p eddy.Partition) string {
	return string(topic) + "/" + strconv.Itoa(int(p))
}

// place puts the receiver at offset in a partition whose end is end:
// live if that is the end, else behind, with a reader from offset. A
// place it already has is kept.
func (f *follower) place(ref eddy.TopicRef, p eddy.Partition, offset, end int64) {
	key := partKey(ref.Name, p)
	f.mu.Lock()
	if _, ok := f.places[key]; ok {
		f.mu.Unlock()
		return
	}
	behind := offset < end
	f.places[key] = &place{next: offset, behind: behind, ignored: -1}
	f.mu.Unlock()
	if behind {
		f.wg.Add(1)
		go f.catchUp(ref, p, key)
	}
}

// forget drops the places in topic's partitions (the topic went, or was
// made again): a reader behind in one stops at its next read.
func (f *follower) forget(topic eddy.TopicName) {
	prefix := string(topic) + "/" // a topic's name has no "/"
	f.mu.Lock()
	for k := range f.places {
		if strings.HasPrefix(k, prefix) {
			delete(f.places, k)
		}
	}
	f.mu.Unlock()
}

// offer is the tail's: a matching record, read live. It never waits.
func (f *follower) offer(ref eddy.TopicRef, p eddy.Partition, key string, rec *eddy.FetchedRecord, qos int) {
	off := int64(rec.Offset)
	f.mu.Lock()
	pl := f.places[key]
	if pl == nil {
		pl = &place{next: off, ignored: -1}
		f.places[key] = pl
	}
	switch {
	case pl.behind:
		pl.ignored = max(pl.ignored, off)
		f.mu.Unlock()
		return
	case off < pl.next: // its reader sent it
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	// Live, only the tail touches this place: no lock held while sending.
	if f.r.send(f.ctx, ref, key, rec, qos, false) {
		f.mu.Lock()
		pl.next = off + 1
		f.mu.Unlock()
		return
	}
	if f.ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	pl.behind, pl.next, pl.ignored = true, off, off
	f.mu.Unlock()
	f.wg.Add(1)
	go f.catchUp(ref, p, key)
}

// passed is the tail's: it has read a partition up to next (told only to
// a receiver that tracks positions).
func (f *follower) passed(key string, next int64) {
	f.mu.Lock()
	pl := f.places[key]
	live := pl != nil && !pl.behind
	if live {
		pl.next = max(pl.next, next)
	}
	f.mu.Unlock()
	if live {
		f.r.passed(key, next)
	}
}

// catchUp feeds a place that is behind from the log until it has caught
// up with what the tail offered, then hands it back. It reads and sends
// holding the follower's reading turn, and waits out an error without it.
func (f *follower) catchUp(ref eddy.TopicRef, p eddy.Partition, key string) {
	defer f.wg.Done()
	for f.ctx.Err() == nil {
		select {
		case f.reading <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		next := f.catchUpOnce(ref, p, key)
		<-f.reading
		switch next {
		case stopReading:
			return
		case backOff:
			sleep(f.ctx, time.Second)
		}
	}
}

// What a reader behind does after one read.
const (
	readAgain = iota
	backOff
	stopReading // caught up (handed back), the topic gone, or the receiver
)

// catchUpOnce reads from a place behind once and sends what it read.
func (f *follower) catchUpOnce(ref eddy.TopicRef, p eddy.Partition, key string) int {
	log := f.l.cfg.Log
	f.mu.Lock()
	pl := f.places[key]
	if pl == nil { // forgotten: the topic went, or was made again
		f.mu.Unlock()
		return stopReading
	}
	off := pl.next
	f.mu.Unlock()
	// A batch is read whole, however little is asked: one HTTP request's
	// records are one batch, up to 16 MiB. Reading one larger than a
	// read takes room in the node's request memory for it (and its
	// records, decoded) until the read has kept what it reads: 100
	// devices behind in batches of 4 MB read 400 MB at once.
	var hold membudget.Hold
	if n := log.BatchBytesAt(ref, p, off); n > catchUpReadBytes {
		var err error
		if hold, err = f.l.cfg.Bodies.Acquire(f.ctx, string(f.tenant), 2*int64(n)); err != nil {
			return stopReading
		}
	}
	// The read is one of the tenant's (tenant_read_slots): a thousand
	// sessions catching up after an outage share its part of the CPUs.
	release, err := f.l.cfg.Reads.Acquire(f.ctx, string(f.tenant))
	if err != nil {
		hold.Release()
		return stopReading
	}
	recs, next, err := log.Read(f.ctx, ref, p, off, catchUpReadBytes, 0)
	release()
	hold.Release()
	if err != nil {
		if f.ctx.Err() != nil {
			return stopReading
		}
		f.l.log.Debug("mqtt subscription reader", logkey.Topic, ref, logkey.Err, err)
		if eddy.ErrorCode(err) == eddy.CodeNotFound { // the topic is gone
			f.mu.Lock()
			delete(f.places, key)
			f.mu.Unlock()
			return stopReading
		}
		if start, ok := retentionPassed(log, ref, p, off, err); ok { // from the log start
			f.mu.Lock()
			pl.next = start
			f.mu.Unlock()
			f.r.passed(key, start)
			return readAgain
		}
		return backOff
	}
	for i := range recs {
		if q := f.r.qos(f.l.mqttName(ref, &recs[i])); q >= 0 && !f.r.send(f.ctx, ref, key, &recs[i], q, true) {
			return stopReading
		}
	}
	if f.beforeHandback != nil && len(recs) == 0 {
		f.beforeHandback()
	}
	f.mu.Lock()
	pl.next = max(pl.next, next)
	caught := len(recs) == 0 && pl.next > pl.ignored
	if caught {
		pl.behind = false
	}
	f.mu.Unlock()
	f.r.passed(key, next)
	if caught {
		return stopReading
	}
	return readAgain
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
