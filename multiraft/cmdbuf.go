package multiraft

import (
	"math/bits"
	"sync"
)

// Large proposals are built in reused buffers. A Kafka producer's 1 MiB
// batch, or a group commit of many HTTP records, was copied into a new
// buffer for each proposal; the collector freed it a moment later, Go's
// scavenger gave the pages back to the kernel, and the next buffer
// touched them anew: a page fault every 4 KiB. On a virtual machine a
// fault is dear (a node spent 12% of its CPU in them under Kafka
// produce). A proposal's bytes are Eddy's only until it is settled:
// dragonboat copies them into its entry when it takes the proposal, so
// the buffer goes back to its pool once proposeWithRetry returns.
//
// Buffers are pooled by power-of-two capacity from minPooledCmd to
// maxPooledCmd; a smaller one is cheap to make, a larger one is rare and
// would pin memory in the pool.
const (
	minPooledCmd = 64 << 10
	cmdClasses   = 8 // 64 KiB to 8 MiB
	maxPooledCmd = minPooledCmd << (cmdClasses - 1)
)

var cmdPools [cmdClasses]sync.Pool

// cmdClass is the pool of buffers of at least n bytes, or -1.
func cmdClass(n int) int {
	if n < minPooledCmd || n > maxPooledCmd {
		return -1
	}
	return bits.Len(uint((n - 1) / minPooledCmd))
}

// getCmd returns an empty buffer of at least n bytes of capacity.
func getCmd(n int) []byte {
	i := cmdClass(n)
	if i < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := cmdPools[i].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, minPooledCmd<<i)
}

// putCmd gives a buffer getCmd made back, once nothing refers to it;
// others are left to the collector.
func putCmd(b []byte) {
	c := cap(b)
	if i := cmdClass(c); i >= 0 && c == minPooledCmd<<i {
		cmdPools[i].Put(&b)
	}
}
