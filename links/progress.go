package links

import (
	"context"
	"sync"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// A link's runners on this node write their progress to the controller
// through one committer: what they hand it while an entry is in flight
// goes as the next entry, all together. Each runner used to propose its
// own entry per batch sent, so a link of many busy partitions made as
// many controller entries (each a Raft round and an fsync on every
// node, and a copy of the link's partition map) as batches.
//
// An entry is all or none (catalog.State.linkProgress): when it is
// refused as a conflict (a runner lost its partition) and held more than
// one update, each update is proposed alone, so the others are not
// refused with it.

// commitFunc proposes one controller entry of updates.
type commitFunc func(ctx context.Context, ups []catalog.LinkProgress) error

type committer struct {
	commit  commitFunc
	entries func(n int) // counts entries and updates (metrics)

	mu      sync.Mutex
	pending []*pendingUpdate
	busy    bool // drain runs
}

type pendingUpdate struct {
	ctx  context.Context
	up   catalog.LinkProgress
	done chan error // buffered: the committer never waits on it
}

func newCommitter(commit commitFunc, entries func(n int)) *committer {
	return &committer{commit: commit, entries: entries}
}

// write commits up with whatever else is waiting, and returns its
// outcome; ctx bounds the wait. An entry is proposed under its first
// update's ctx (a runner that stops ends it; the others are told so and
// write again).
func (c *committer) write(ctx context.Context, up catalog.LinkProgress) error {
	p := &pendingUpdate{ctx: ctx, up: up, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, p)
	if !c.busy {
		c.busy = true
		go c.drain()
	}
	c.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return eddy.Errorf(eddy.CodeTimeout, "gave up waiting for the link's progress to commit: %v", ctx.Err())
	}
}

// drain commits what is pending, entry after entry, until nothing is;
// it runs on its own goroutine while there is work.
func (c *committer) drain() {
	for {
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		if len(batch) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.commitAll(batch)
	}
}

func (c *committer) commitAll(batch []*pendingUpdate) {
	live := batch[:0]
	for _, p := range batch {
		if p.ctx.Err() == nil { // its writer gave up: not written
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return
	}
	ups := make([]catalog.LinkProgress, len(live))
	for i, p := range live {
		ups[i] = p.up
	}
	err := c.propose(live[0].ctx, ups)
	if eddy.ErrorCode(err) == eddy.CodeConflict && len(live) > 1 {
		for _, p := range live {
			p.done <- c.propose(p.ctx, []catalog.LinkProgress{p.up})
		}
		return
	}
	for _, p := range live {
		p.done <- err
	}
}

func (c *committer) propose(ctx context.Context, ups []catalog.LinkProgress) error {
	c.entries(len(ups))
	return c.commit(ctx, ups)
}
