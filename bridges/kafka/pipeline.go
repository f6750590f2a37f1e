package kafka

import (
	"errors"
	"sync"

	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/membudget"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A connection's produce requests are pipelined, as Redpanda does. Kafka
// serves a connection's requests one at a time, which costs little where
// an answer waits for a page cache write. Here every answer waits for a
// Raft commit and its fsync, so a client with five requests in flight (an
// idempotent producer's max.in.flight) would see them committed one round
// after another. A produce request is read, checked and its batches queued
// on their partitions in order; the next request is read as soon as they
// are queued, and the answers are written in the order of the requests.
// Queued in order, the batches reach the Raft logs in order, so a
// producer's sequences arrive as it sent them and several requests share
// one fsync.
//
// Any other request waits until every produce before it is answered, and
// is served alone as before: it sees their records, and a connection's
// state (authentication, the client id) changes only between requests.

// maxPipelined bounds a connection's produce requests in flight: five, a
// Kafka producer's max.in.flight.requests.per.connection (the most an
// idempotent producer may use). Their frames together stay within
// max_request_bytes (the request being read is one more).
const maxPipelined = 5

// pipelinedFunc serves a request in the pipeline. It calls queued once
// the request's order is fixed, so the next request may be read. held
// reports that the request's bytes may still be referred to when it
// returns (it gave up waiting on records still queued for a partition);
// otherwise its frame goes back to the pool.
type pipelinedFunc func(c *conn, req kmsg.Request, queued func()) (resp kmsg.Response, held bool, err error)

// answer is a pipelined request's answer, written in its place in the
// connection's order once done is closed.
type answer struct {
	h    header
	size int
	done chan struct{}
	resp kmsg.Response // nil: no answer (acks=0)
	err  error         // closes the connection
}

// pipeline is a connection's requests in flight and the goroutine
// writing their answers.
type pipeline struct {
	mu      sync.Mutex
	changed sync.Cond // n or bytes fell
	n       int
	bytes   int
	answers chan *answer
	wrote   chan struct{} // closed when the writer has gone
}

// startPipeline starts c's answer writer; c.serve ends it.
func (c *conn) startPipeline() {
	c.pipe.changed.L = &c.pipe.mu
	c.pipe.answers = make(chan *answer, maxPipelined)
	c.pipe.wrote = make(chan struct{})
	go c.writeAnswers()
}

// stopPipeline lets the writer finish (its writes fail once the
// connection is closed) and waits for it.
func (c *conn) stopPipeline() {
	close(c.pipe.answers)
	<-c.pipe.wrote
}

// waitRoom waits until another request may be in flight: fewer than
// maxPipelined, and their frames under limit bytes.
func (p *pipeline) waitRoom(limit int) {
	p.mu.Lock()
	for p.n >= maxPipelined || (p.n > 0 && p.bytes >= limit) {
		p.changed.Wait()
	}
	p.mu.Unlock()
}

// drain waits until every request in flight is answered.
func (p *pipeline) drain() {
	p.mu.Lock()
	for p.n > 0 {
		p.changed.Wait()
	}
	p.mu.Unlock()
}

// serveInPipeline serves a checked request, read from frame, with serve
// in the pipeline: it returns once serve called queued (for a produce: its
// batches are queued on their partitions) or returned, and its answer is
// written in its turn. The frame goes back to the pool once serve is done
// with it.
func (c *conn) serveInPipeline(h header, serve pipelinedFunc, req kmsg.Request, frame []byte, hold membudget.Hold) {
	size := len(frame)
	a := &answer{h: h, size: size, done: make(chan struct{})}
	queued := make(chan struct{})
	signal := sync.OnceFunc(func() { close(queued) })
	c.pipe.mu.Lock()
	c.pipe.n++
	c.pipe.bytes += size
	c.pipe.mu.Unlock()
	c.pipe.answers <- a // never blocks: at most maxPipelined are in flight
	go func() {
		defer close(a.done)
		defer signal()
		var held bool
		a.resp, held, a.err = serve(c, req, signal)
		if !held {
			bufpool.Put(frame)
		}
		hold.Release() // a frame still held is the collector's now
		if a.resp != nil {
			a.resp.SetVersion(h.version)
		}
	}()
	<-queued
}

// writeAnswers writes the pipeline's answers in order, each once it is
// done. An error closes the connection; the rest are still waited for,
// so the pipeline's counts fall and drain returns.
func (c *conn) writeAnswers() {
	defer close(c.pipe.wrote)
	failed := false
	for a := range c.pipe.answers {
		<-a.done
		if !failed {
			err := a.err
			if err == nil && a.resp != nil {
				err = c.respond(a.h, a.resp)
			}
			if err != nil {
				failed = true
				if !errors.Is(err, errClose) {
					c.l.m.failed.Inc()
					c.l.log.Debug("kafka request refused; connection closed", logkey.Remote, c.remote, logkey.Err, err)
				}
				c.nc.Close()
			}
		}
		c.pipe.mu.Lock()
		c.pipe.n--
		c.pipe.bytes -= a.size
		c.pipe.changed.Broadcast()
		c.pipe.mu.Unlock()
	}
}
