// Package consume is the one consume path for consumer groups: each
// member's session on this node (what it was handed and not yet committed,
// auto-commit, heartbeat throttling) and the poll over every partition
// assigned to it. The HTTP group handlers call it; the Kafka listener will.
// The group's membership, assignments and committed offsets live in the
// controller (multiraft); what a member was handed lives here, on the
// node it polls, and is lost with the node (the member resumes from its
// committed offsets: at-least-once).
//
// Delivery rules (docs/consumers.md): a poll first reads every assigned
// partition without waiting; when nothing is there it waits on all of them
// at once and answers with the first that has records. A member whose
// generation moved (a rebalance) starts again from the committed offsets.
package consume

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/eddy-broker/eddy/multiraft"
)

// Broker is what the consume path needs of the node.
type Broker interface {
	Heartbeat(ctx context.Context, tenant eddy.TenantID, group, member string) error
	CommitOffsets(ctx context.Context, tenant eddy.TenantID, group, member string, generation int64, offsets map[string]int64) (*catalog.GroupMeta, error)
	Offsets(ref eddy.TopicRef, p eddy.Partition) (multiraft.PartitionOffsets, error)
	Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*multiraft.FetchResult, error)
	// AwaitAny waits up to wait for a record at any of the places,
	// reading none of those this node holds.
	AwaitAny(ctx context.Context, at []multiraft.PartitionAt, wait time.Duration)
	// BatchBytesAt is the size of the stored batch holding offset
	// (asked of a node with a replica), which a read returns whole.
	BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) int
	// PartitionIncarnation tells one life of a partition from the next: a topic
	// deleted and made again under its name starts its offsets over.
	PartitionIncarnation(ref eddy.TopicRef, p eddy.Partition) (uint64, error)
}

// Member names one member of one group.
type Member struct {
	Tenant eddy.TenantID
	Group  string
	ID     string
}

func (m Member) key() string { return string(m.Tenant) + "/" + m.Group + "/" + m.ID }

// Sessions are the group members' sessions on this node.
type Sessions struct {
	b  Broker
	mu sync.Mutex
	m  map[string]*session
}

// New returns an empty set of sessions over b.
func New(b Broker) *Sessions { return &Sessions{b: b, m: map[string]*session{}} }

type session struct {
	mu      sync.Mutex // a member's requests on this node, one at a time
	gen     int64
	next    map[string]int64  // "topic/partition" -> the next offset to hand out
	life    map[string]uint64 // "topic/partition" -> the incarnation next is in
	auto    bool              // auto_commit: each poll commits what the previous handed out
	lastHB  time.Time         // the last heartbeat this node proposed
	touched time.Time
}

// maxSessions bounds the sessions kept; beyond it, those idle for 10
// minutes are dropped.
const maxSessions = 10_000

func (s *Sessions) get(m Member) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := m.key()
	ss := s.m[k]
	if ss == nil {
		if len(s.m) >= maxSessions {
			for k, v := range s.m {
				if time.Since(v.touched) > 10*time.Minute {
					delete(s.m, k)
				}
			}
		}
		ss = &session{next: map[string]int64{}, life: map[string]uint64{}}
		s.m[k] = ss
	}
	ss.touched = time.Now()
	return ss
}

// Joined starts a member's session: it joined in generation gen, and with
// autoCommit each poll commits what the previous one handed out.
func (s *Sessions) Joined(m Member, gen int64, autoCommit bool) {
	ss := s.get(m)
	ss.mu.Lock()
	ss.auto, ss.gen, ss.lastHB = autoCommit, gen, time.Now()
	ss.mu.Unlock()
}

// Left ends a member's session.
func (s *Sessions) Left(m Member) {
	s.mu.Lock()
	delete(s.m, m.key())
	s.mu.Unlock()
}

// Poll is one poll of a member.
type Poll struct {
	Group      *catalog.GroupMeta // as read for this request
	Member     Member
	MaxRecords int
	MaxBytes   int
	Wait       time.Duration // how long to wait when nothing is there; 0: answer at once
	// Room, when set, takes the request memory the poll's answer needs
	// before each pass reads, for reading readBytes: MaxBytes, or the
	// largest batch the pass could read first if larger (a batch is read
	// whole). It is not held while the poll waits.
	Room func(readBytes int) (membudget.Hold, error)
	// Slot, when set, takes one of the tenant's read slots for each pass
	// that reads (not through the wait); the answer's Done gives back the
	// one of the pass that read the records.
	Slot func() (release func(), err error)
}

// Fetched are one partition's records in a poll's answer.
type Fetched struct {
	TP      catalog.TopicPartition
	Records []eddy.FetchedRecord
}

// Polled is a poll's answer.
type Polled struct {
	Generation int64
	Fetched    []Fetched // partitions with records, in assignment order
	Records    int
	Assigned   []catalog.TopicPartition
	// Hold is what Room gave the pass that read the records; the caller
	// gives it back once the answer is written.
	Hold membudget.Hold
	// Done gives back the read slot of the pass that read the records,
	// once the caller made its answer (never nil).
	Done func()
}

// Poll hands a member the records after what it was handed before, from
// every partition assigned to it: the heartbeat (at most every third of
// its session timeout), the auto-commit of the previous poll, a restart
// from committed offsets after a rebalance, and the long poll.
func (s *Sessions) Poll(ctx context.Context, req Poll) (Polled, error) {
	g, id, t := req.Group, req.Member.ID, req.Member.Tenant
	ss := s.get(req.Member)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	m := g.Members[id]
	lives := s.dropStale(t, ss)
	if ss.auto && ss.gen == g.Generation && len(ss.next) > 0 {
		if ng, err := s.b.CommitOffsets(ctx, t, g.Name, id, g.Generation, ss.next); err == nil {
			g = ng
			ss.lastHB = time.Now()
		}
	}
	if time.Since(ss.lastHB) > time.Duration(m.SessionTimeoutMs/3)*time.Millisecond {
		if err := s.b.Heartbeat(ctx, t, g.Name, id); err != nil {
			return Polled{}, err
		}
		ss.lastHB = time.Now()
	}
	if ss.gen != g.Generation { // rebalanced: start from the committed offsets
		ss.gen, ss.next = g.Generation, map[string]int64{}
	}
	assigned := g.Assignments[id]
	parts := make([]*part, 0, len(assigned))
	for _, tp := range assigned {
		ref := eddy.TopicRef{Tenant: t, Name: eddy.TopicName(tp.Topic)}
		life, ok := lives[tp.Key()]
		if !ok {
			var err error
			life, err = s.b.PartitionIncarnation(ref, tp.Partition)
			if eddy.ErrorCode(err) == eddy.CodeNotFound {
				continue // the topic was deleted: the next rebalance drops it
			}
			if err != nil {
				return Polled{}, err
			}
		}
		off, ok := ss.next[tp.Key()]
		if !ok {
			if off, ok = g.Offsets[tp.Key()]; !ok {
				po, err := s.b.Offsets(ref, tp.Partition)
				if eddy.ErrorCode(err) == eddy.CodeNotFound {
					continue // the topic was deleted: the next rebalance drops it
				}
				if err != nil {
					return Polled{}, err
				}
				off = int64(po.HighWatermark)
				if m.FromEarliest {
					off = int64(po.LogStart)
				}
			}
		}
		parts = append(parts, &part{tp: tp, off: off, life: life})
	}
	// A pass without waiting; then, if it found nothing, a wait for a
	// record in any of them (reading none) and another pass.
	var hold membudget.Hold
	done := func() {}
	total, err := s.pass(ctx, t, parts, req, &hold, &done)
	if err != nil {
		return Polled{}, err
	}
	if total == 0 && req.Wait > 0 {
		hold = hold.Shrink(0)
		if s.await(ctx, t, parts, req.Wait) {
			if total, err = s.pass(ctx, t, parts, req, &hold, &done); err != nil {
				return Polled{}, err
			}
		}
	}
	out := Polled{Generation: g.Generation, Records: total, Assigned: assigned, Hold: hold, Done: done}
	for _, pt := range parts {
		if pt.res == nil || len(pt.res.Records) == 0 && !pt.skipped {
			continue
		}
		if len(pt.res.Records) > 0 {
			out.Fetched = append(out.Fetched, Fetched{TP: pt.tp, Records: pt.res.Records})
		}
		// Past what it was handed, or past a compacted topic's gap it
		// read nothing in.
		ss.next[pt.tp.Key()] = int64(pt.res.NextOffset)
		ss.life[pt.tp.Key()] = pt.life
	}
	return out, nil
}

// Commit commits a member's offsets: the given ones ("topic/partition" ->
// the next offset to read), or, when offsets is nil, what it was handed in
// its session. gen is the generation the member commits for (nil: its
// session's). It returns the group after the commit and how many offsets
// were committed.
func (s *Sessions) Commit(ctx context.Context, g *catalog.GroupMeta, m Member, gen *int64, offsets map[string]int64) (*catalog.GroupMeta, int, error) {
	ss := s.get(m)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	g2 := ss.gen
	if gen != nil {
		g2 = *gen
	}
	if offsets == nil {
		s.dropStale(m.Tenant, ss)
		if g2 != ss.gen {
			return nil, 0, eddy.Errorf(eddy.CodeStaleGeneration, "generation %d is stale: this member was last handed records in generation %d", g2, ss.gen)
		}
		offsets = make(map[string]int64, len(ss.next))
		for k, v := range ss.next {
			offsets[k] = v
		}
	}
	ng, err := s.b.CommitOffsets(ctx, m.Tenant, g.Name, m.ID, g2, offsets)
	if err != nil {
		return nil, 0, err
	}
	ss.lastHB = time.Now()
	return ng, len(offsets), nil
}

// dropStale forgets the places a session holds in a life of a partition
// that is over: a topic deleted (or deleted and made again, its offsets
// starting over; its group's commits went with the old life). Neither
// handed out nor committed again, they would skip the new life's first
// records. It returns the current lives of the partitions it kept (a
// poll looks up only the others).
func (s *Sessions) dropStale(t eddy.TenantID, ss *session) map[string]uint64 {
	lives := make(map[string]uint64, len(ss.next))
	for k := range ss.next {
		topic, p, _ := strings.Cut(k, "/") // a topic's name has no "/"
		n, err := strconv.Atoi(p)
		if err == nil {
			var life uint64
			life, err = s.b.PartitionIncarnation(eddy.TopicRef{Tenant: t, Name: eddy.TopicName(topic)}, eddy.Partition(n))
			if err == nil && life == ss.life[k] {
				lives[k] = life
				continue
			}
		}
		if err != nil && eddy.ErrorCode(err) != eddy.CodeNotFound {
			continue // not known now: kept
		}
		delete(ss.next, k)
		delete(ss.life, k)
	}
	return lives
}

// part is one assigned partition of a poll: where it reads from, and what
// the poll read of it.
type part struct {
	tp    catalog.TopicPartition
	life  uint64 // the partition's incarnation
	off   int64
	res   *multiraft.FetchResult
	batch int // the size of the stored batch at off, which a read returns whole (pass)
	// skipped: a read moved off past a compacted topic's gap, holding
	// no record, that the session moves past too.
	skipped bool
}

func (pt *part) ref(t eddy.TenantID) eddy.TopicRef {
	return eddy.TopicRef{Tenant: t, Name: eddy.TopicName(pt.tp.Topic)}
}

// pass reads the parts without waiting, in order, up to the poll's
// records and bytes together (at least one record), once req.Room has
// given it room (into hold, which it empties when it fails) and req.Slot a
// read slot (into done, when it read records; given back at once when
// not), and returns the records it read.
func (s *Sessions) pass(ctx context.Context, t eddy.TenantID, parts []*part, req Poll, hold *membudget.Hold, done *func()) (int, error) {
	if len(parts) == 0 {
		return 0, nil
	}
	first := 0
	for _, pt := range parts {
		pt.batch = s.b.BatchBytesAt(pt.ref(t), pt.tp.Partition, eddy.Offset(pt.off))
		first = max(first, pt.batch)
	}
	if req.Room != nil {
		h, err := req.Room(max(req.MaxBytes, first))
		if err != nil {
			return 0, err
		}
		*hold = h
	}
	release := func() {}
	if req.Slot != nil {
		var err error
		if release, err = req.Slot(); err != nil {
			hold.Release()
			*hold = membudget.Hold{}
			return 0, err
		}
	}
	n, err := s.read(ctx, t, parts, req)
	if err != nil {
		hold.Release()
		*hold = membudget.Hold{}
	}
	if err != nil || n == 0 {
		release()
	} else {
		*done = release
	}
	return n, err
}

// read is a pass's reading.
func (s *Sessions) read(ctx context.Context, t eddy.TenantID, parts []*part, req Poll) (int, error) {
	records, bytes := 0, 0
	for _, pt := range parts {
		if records >= req.MaxRecords || bytes >= req.MaxBytes {
			break
		}
		ref := pt.ref(t)
		if bytes > 0 && pt.batch > req.MaxBytes-bytes {
			continue // its next batch, read whole, would not fit: only the first read may exceed
		}
		res, err := s.b.Fetch(ctx, ref, pt.tp.Partition, eddy.Offset(pt.off), req.MaxRecords-records, req.MaxBytes-bytes, 0)
		if eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
			po, perr := s.b.Offsets(ref, pt.tp.Partition)
			if perr != nil {
				return records, perr
			}
			if pt.off >= int64(po.LogStart) {
				// Past the end, which the replica read caught up to
				// first (multiraft's poll): nothing there yet, as at
				// the end (the poll failed).
				continue
			}
			pt.off = int64(po.LogStart) // retention removed what it had not read
			res, err = s.b.Fetch(ctx, ref, pt.tp.Partition, eddy.Offset(pt.off), req.MaxRecords-records, req.MaxBytes-bytes, 0)
		}
		if eddy.ErrorCode(err) == eddy.CodeNotFound {
			continue // the topic was deleted
		}
		if err != nil {
			return records, err
		}
		pt.res = res
		if len(res.Records) == 0 && int64(res.NextOffset) > pt.off {
			pt.off, pt.skipped = int64(res.NextOffset), true // a compacted gap: the next pass reads on from there
		}
		records += len(res.Records)
		for i := range res.Records {
			bytes += res.Records[i].Size()
		}
	}
	return records, nil
}

// await waits up to wait for a record in any of the parts, reading none
// of those this node holds. It reports whether one may have come: the
// parts are worth another pass.
func (s *Sessions) await(ctx context.Context, t eddy.TenantID, parts []*part, wait time.Duration) bool {
	if len(parts) == 0 {
		select { // nothing assigned (more members than partitions): an idle member long-polls instead of spinning
		case <-time.After(wait):
		case <-ctx.Done():
		}
		return false
	}
	at := make([]multiraft.PartitionAt, len(parts))
	for i, pt := range parts {
		at[i] = multiraft.PartitionAt{Ref: pt.ref(t), P: pt.tp.Partition, Offset: eddy.Offset(pt.off)}
	}
	s.b.AwaitAny(ctx, at, wait)
	return true
}
