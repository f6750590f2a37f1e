// Package membudget bounds the bytes of request bodies a node holds in
// memory at once, across its listeners, as Kafka's
// queued.max.request.bytes and Redpanda's memory semaphore do. Each
// listener bounds one request (max_body_bytes) and its connections, but
// not their product: forty clients each sending a 30 MiB body held
// 1.3 GB of a node's memory, before any of them was authenticated.
//
// A request takes its bytes before its body is read and gives them back
// once it is served; a request that finds no room waits, and its client
// with it (its body stays in the socket, and TCP slows the client down).
// One tenant may hold at most half the budget, so another tenant's
// requests still find room while one sends large bodies slowly.
package membudget

import (
	"context"
	"sync"
)

// Budget is the node's bytes of request bodies. Its zero value is not
// usable; New makes one.
type Budget struct {
	total, perTenant int64

	mu       sync.Mutex
	used     int64
	byTenant map[string]int64
	changed  chan struct{} // closed (and replaced) when bytes are given back to a waiter
	waiting  bool
}

// New makes a budget of total bytes, at most half of them a tenant's.
func New(total int64) *Budget {
	return &Budget{total: total, perTenant: total / 2, byTenant: map[string]int64{}, changed: make(chan struct{})}
}

// Total is the budget's size.
func (b *Budget) Total() int64 { return b.total }

// Used is the bytes taken now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Hold is bytes taken of a budget; its zero value holds nothing.
type Hold struct {
	b      *Budget
	tenant string
	n      int64
}

// Release gives the bytes back (once; a Hold is a value, so its owner
// releases it once).
func (h Hold) Release() {
	if h.b != nil {
		h.b.release(h.tenant, h.n)
	}
}

// Shrink gives back what h holds beyond n bytes and returns the hold of
// what is left (h when it holds n or fewer): a reader that took room for
// as much as it might read keeps room for what it read.
func (h Hold) Shrink(n int64) Hold {
	if h.b == nil || n >= h.n {
		return h
	}
	n = max(n, 0)
	h.b.release(h.tenant, h.n-n)
	if n == 0 {
		return Hold{}
	}
	return Hold{h.b, h.tenant, n}
}

// Acquire takes n bytes for tenant, waiting until they fit the node's
// and the tenant's share, or until ctx ends (then it returns ctx's
// error and takes nothing). A request larger than a tenant's share is
// let in when the tenant holds nothing else and the node has room.
func (b *Budget) Acquire(ctx context.Context, tenant string, n int64) (Hold, error) {
	for {
		b.mu.Lock()
		if b.fitsLocked(tenant, n) {
			b.mu.Unlock()
			return Hold{b, tenant, n}, nil
		}
		ch := b.changed
		b.waiting = true
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Hold{}, ctx.Err()
		}
	}
}

// TryAcquire takes n bytes for tenant if they fit now.
func (b *Budget) TryAcquire(tenant string, n int64) (Hold, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fitsLocked(tenant, n) {
		return Hold{b, tenant, n}, true
	}
	return Hold{}, false
}

// fitsLocked takes n bytes for tenant if they fit.
func (b *Budget) fitsLocked(tenant string, n int64) bool {
	mine := b.byTenant[tenant]
	if b.used+n > b.total || (mine+n > b.perTenant && mine != 0) {
		return false
	}
	b.used += n
	b.byTenant[tenant] = mine + n
	return true
}

func (b *Budget) release(tenant string, n int64) {
	b.mu.Lock()
	b.used -= n
	if left := b.byTenant[tenant] - n; left > 0 {
		b.byTenant[tenant] = left
	} else {
		delete(b.byTenant, tenant)
	}
	if b.waiting {
		close(b.changed)
		b.changed, b.waiting = make(chan struct{}), false
	}
	b.mu.Unlock()
}
