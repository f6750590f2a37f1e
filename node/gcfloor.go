package node

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// A floor under the collector's goal. Go collects once the heap has grown
// by GOGC percent (100) of what the last collection found live. A node's
// live heap is small, 4-6 MB under one-record HTTP requests, while it
// allocates quickly, so it collected every 40 ms (about 25 times a
// second), and each collection has costs that do not shrink with the heap:
// every goroutine's stack scanned (shrunk, then grown again), the
// scheduler's hand-offs, write barriers while marking. Keeping the goal at
// least gc_heap_floor (after each collection GOGC is set so that the next goal
// is the larger of the floor and twice the live heap) makes those
// collections several times rarer; a heap that is larger than half the
// floor is collected as before, and a quiet node's memory still goes back
// (memory_release_after). The cost is the floor itself: up to that much
// garbage waits for a collection under a light load.

// maxFloorPercent bounds the GOGC the floor sets (the goal of a nearly
// empty heap stays finite).
const maxFloorPercent = 1000

// gcFloor keeps the collector's goal at least floor bytes.
type gcFloor struct {
	floor   uint64
	base    int // the GOGC the process had, the least the floor sets
	percent int // the GOGC set last
	live    []metrics.Sample
}

// floorOnce: the floor is the process's, as Go's GOGC is; the first node
// started in a process sets it.
var floorOnce sync.Once

// sentinel is made unreachable at once; its finalizer runs after the next
// collection. (It holds a pointer so it is never one of the tiny
// allocations whose finalizers may not run.)
type sentinel struct {
	_ *gcFloor
	_ [2]uint64
}

// keepHeapFloor keeps a floor of floor bytes under the collector's goal
// for the life of the process, unless GOGC is set in the environment (an
// operator's own setting wins), floor is 0, or a node of this process
// started one before. It reports whether it started one.
func keepHeapFloor(floor int64) (started bool) {
	if floor <= 0 || os.Getenv("GOGC") != "" {
		return false
	}
	floorOnce.Do(func() {
		base := gcPercent()
		g := &gcFloor{floor: uint64(floor), base: base, percent: base,
			live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		g.arm()
		started = true
	})
	return started
}

// arm asks to be called after the next collection.
func (g *gcFloor) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) { g.collected() })
}

// collected sets GOGC for the goal after the collection that just ended,
// and arms again. It runs on the finalizer goroutine.
func (g *gcFloor) collected() {
	metrics.Read(g.live)
	if p := floorPercent(g.live[0].Value.Uint64(), g.floor, g.base); p != g.percent {
		g.percent = p
		debug.SetGCPercent(p)
	}
	g.arm()
}

// floorPercent is the GOGC that makes the goal after a collection that
// found live bytes at least floor: base when base already does, at most
// maxFloorPercent.
func floorPercent(live, floor uint64, base int) int {
	if live == 0 {
		return maxFloorPercent
	}
	if live*uint64(100+base)/100 >= floor {
		return base
	}
	return int(min((floor-live)*100/live, maxFloorPercent))
}

// gcPercent is the GOGC in effect.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
