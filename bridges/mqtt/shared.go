package mqtt

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// A shared subscription ($share/<group>/<filter>) is a receiver of its
// own: each matching record goes to one member, the next with room in its
// window (round robin), and when none has room the group falls behind and
// reads from the log like a slow session. Groups are per node: members on
// different nodes form different groups. They are live only: a group
// starts at the partitions' ends and keeps no position.
type group struct {
	key    string // the scoped filter, $share/<group>/<tenant>/+/<filter>
	filter string // the device's filter
	fol    *follower

	mu      sync.Mutex
	members []*stream
	qos0    map[*stream]bool // members that subscribed at QoS 0
	ids     map[*stream]int  // members' subscription identifiers (nil until one has one)
	turn    int
}

func (g *group) qos(name string) int {
	if name != "" && !tenants.MatchFilter(g.filter, name) {
		return -1
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.qos0) == len(g.members) {
		return 0
	}
	return 1
}

// send hands the record to the next member with room; waiting, it tries
// again every few milliseconds.
func (g *group) send(ctx context.Context, ref eddy.TopicRef, _ string, rec *eddy.FetchedRecord, qos int, wait bool) bool {
	if g.fol.l.expired(rec) { // to no member
		return true
	}
	for {
		g.mu.Lock()
		members, ids := slices.Clone(g.members), maps.Clone(g.ids)
		g.turn++
		turn := g.turn
		g.mu.Unlock()
		readers := 0
		for i := range members {
			m := members[(turn+i)%len(members)]
			if !m.reads(ref, rec) {
				continue // a member whose token may not read it (stream.reads)
			}
			readers++
			if m.take(ctx, false) {
				var sid map[string]int // the member's identifier of the shared filter
				if id := ids[m]; id > 0 {
					sid = map[string]int{g.key: id}
				}
				if m.inject(ref, rec, qos, originUntracked, sid) {
					return true
				}
				<-m.window
			}
		}
		if readers == 0 {
			return true // to no member
		}
		if !wait || ctx.Err() != nil {
			return false
		}
		sleep(ctx, 2*time.Millisecond)
	}
}

func (g *group) passed(string, int64) {}

// join adds a member to the group of a scoped shared filter (made at its
// first member).
func (f *fanout) join(tenant eddy.TenantID, key string, qos byte, id int, st *stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[key]
	if g == nil {
		_, rest, _ := strings.Cut(strings.TrimPrefix(key, "$share/"), "/")
		g = &group{key: key, filter: unscopeFilter(tenant, rest), qos0: map[*stream]bool{}}
		g.fol = newFollower(f.l, tenant, g)
		f.groups[key] = g
		f.addLocked(tenant, key, g.fol)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.members, st) {
		g.members = append(g.members, st)
	}
	delete(g.qos0, st)
	if qos == 0 {
		g.qos0[st] = true
	}
	delete(g.ids, st)
	if id > 0 {
		if g.ids == nil {
			g.ids = map[*stream]int{}
		}
		g.ids[st] = id
	}
}

// leave takes a member out; the last ends the group.
func (f *fanout) leave(tenant eddy.TenantID, key string, st *stream) {
	f.mu.Lock()
	g := f.groups[key]
	if g == nil {
		f.mu.Unlock()
		return
	}
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(m *stream) bool { return m == st })
	delete(g.qos0, st)
	delete(g.ids, st)
	last := len(g.members) == 0
	g.mu.Unlock()
	if last {
		delete(f.groups, key)
		f.removeLocked(tenant, key, g.fol)
	}
	f.mu.Unlock()
	if last {
		g.fol.stop()
	}
}
