package multiraft

import (
	"context"
	"sync"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/multiraft/catalog"
)

// A connected MQTT persistent session records its positions once a
// second (bridges/mqtt's commitEvery), so a tenant's fleet of subscribed
// devices on a node made as many controller entries a second as it had
// devices, each answered with the whole group, and within the tenant's
// share of the controller (fairshare.go) its devices' commits queued
// behind each other. They are grouped instead, as the partitions'
// proposer groups records: a tenant's sessions commit in one entry
// (OpSessionCommits) when none of its is in flight, and those that
// arrive meanwhile go in the next, up to maxSessionsPerEntry an entry.

// maxSessionsPerEntry bounds one entry's sessions (about 200 bytes each).
const maxSessionsPerEntry = 1000

// sessionCommits groups the tenants' session commits.
type sessionCommits struct {
	h  *Host
	mu sync.Mutex
	by map[eddy.TenantID]*sessionQueue // tenants with commits in flight or waiting
}

type sessionQueue struct {
	waiting []*sessionCommit
}

type sessionCommit struct {
	c    *catalog.GroupCmd
	done chan error // buffered: the flusher never waits on a caller gone
}

// commit records c with the tenant's other commits, and waits for it.
func (s *sessionCommits) commit(ctx context.Context, tenant eddy.TenantID, c *catalog.GroupCmd) error {
	w := &sessionCommit{c: c, done: make(chan error, 1)}
	s.mu.Lock()
	if s.by == nil {
		s.by = map[eddy.TenantID]*sessionQueue{}
	}
	q := s.by[tenant]
	if q == nil {
		q = &sessionQueue{}
		s.by[tenant] = q
		go s.flush(tenant, q)
	}
	q.waiting = append(q.waiting, w)
	s.mu.Unlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return &eddy.Error{Code: eddy.CodeTimeout, Message: "the session's positions were not recorded in time"}
	}
}

// flush proposes the tenant's waiting commits, an entry at a time, until
// none waits.
func (s *sessionCommits) flush(tenant eddy.TenantID, q *sessionQueue) {
	for {
		s.mu.Lock()
		n := min(len(q.waiting), maxSessionsPerEntry)
		if n == 0 {
			delete(s.by, tenant)
			s.mu.Unlock()
			return
		}
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		s.mu.Unlock()
		cmd := &catalog.Cmd{Op: catalog.OpSessionCommits, Sessions: make([]*catalog.GroupCmd, n)}
		for i, w := range batch {
			cmd.Sessions[i] = w.c
		}
		res, err := s.h.tenantPropose(context.Background(), tenant, cmd)
		for i, w := range batch {
			switch {
			case err != nil:
				w.done <- err
			case i < len(res.Errs):
				w.done <- res.Errs[i].AsError()
			default:
				w.done <- nil
			}
		}
	}
}
