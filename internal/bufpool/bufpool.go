// Package bufpool reuses large byte buffers: a Kafka request frame, a
// proposal. A 1 MiB batch used to be copied into new buffers on its way
// to the log; the collector freed them a moment later, Go's scavenger
// gave the pages back to the kernel, and the next buffer touched them
// anew: a page fault every 4 KiB, and the whole buffer zeroed. On a
// virtual machine a fault is dear (a node spent 12% of its CPU in them
// under Kafka produce, and a fifth in zeroing and growing request
// frames).
//
// Buffers are pooled by power-of-two capacity from Min to Max; a smaller
// one is cheap to make (one of Go's small size classes), a larger one is
// rare and would pin memory in the pool. (With Min at 64 KiB, a proposal
// of fifty one-record requests, about 53 KiB, was a new large object each
// Raft round.) A buffer is Put back only once nothing refers to it; the
// caller owns that rule.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	// Min is the smallest pooled capacity.
	Min     = 4 << 10
	classes = 12 // 4 KiB to 8 MiB
	// Max is the largest pooled capacity.
	Max = Min << (classes - 1)
)

var pools [classes]sync.Pool

// class is the pool of buffers of at least n bytes, or -1.
func class(n int) int {
	if n < Min || n > Max {
		return -1
	}
	return bits.Len(uint((n - 1) / Min))
}

// Get returns an empty buffer of at least n bytes of capacity: from a
// pool (its capacity a power of two, at most 2n) when n is in [Min, Max],
// else made to measure.
func Get(n int) []byte {
	i := class(n)
	if i < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := pools[i].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, Min<<i)
}

// Cap is the capacity of a buffer Get(n) returns: what holding it costs.
func Cap(n int) int {
	if i := class(n); i >= 0 {
		return Min << i
	}
	return n
}

// Put gives back a buffer Get made, once nothing refers to it; any other
// is left to the collector.
func Put(b []byte) {
	c := cap(b)
	if i := class(c); i >= 0 && c == Min<<i {
		pools[i].Put(&b)
	}
}

// Grow returns b's bytes in a buffer of at least capacity bytes (b itself
// when it is large enough); b, replaced, goes back to the pool.
func Grow(b []byte, capacity int) []byte {
	if cap(b) >= capacity {
		return b
	}
	grown := append(Get(capacity), b...)
	Put(b)
	return grown
}
