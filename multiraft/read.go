package multiraft

// Reading a partition: fetches of records and of stored batches, long
// polls that read nothing (Await, AwaitAny), and what a read keeps of
// the batches it reads whole.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/batch"
	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/eddy-broker/eddy/multiraft/segment"
)

// FetchResult is a fetch's answer.
type FetchResult struct {
	Records       []eddy.FetchedRecord
	NextOffset    eddy.Offset
	HighWatermark eddy.Offset
	LogStart      eddy.Offset
}

// Fetch reads up to maxRecords records and about maxBytes bytes from a
// partition's local replica, starting at offset. When nothing is there yet
// it waits up to wait for an Update to append something (long poll).
func (h *Host) Fetch(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxRecords, maxBytes int, wait time.Duration) (*FetchResult, error) {
	if meta, err := h.Topic(ref); err == nil && p.Validate(meta.Partitions) == nil && !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return nil, err
		}
		return h.cfg.Forwarder.Fetch(ctx, n, ref, p, offset, maxRecords, maxBytes, wait)
	}
	var res *FetchResult
	err := h.poll(ctx, ref, p, offset, wait, func(lg *segment.Log) (bool, error) {
		var err error
		res, err = h.readRecords(lg, int64(offset), maxRecords, maxBytes)
		return err != nil || len(res.Records) > 0, err
	})
	return res, err
}

// FetchBatches is Fetch for clients that take Kafka v2 record batches: it
// returns whole batches as stored (the first may start before offset) with
// no decoding or re-encoding, up to about maxBytes; from a node that holds
// the partition when this one does not.
func (h *Host) FetchBatches(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error) {
	return h.fetchBatches(ctx, ref, p, offset, maxBytes, wait, false)
}

// FetchBatchesPooled is FetchBatches reading into a buffer of
// internal/bufpool when the partition is read here (Pooled set), for a
// caller that gives the buffer back once it has written it (the Kafka
// listener, HTTP's format=batches): no buffer made and zeroed for each
// read.
func (h *Host) FetchBatchesPooled(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration) (eddy.FetchedBatches, error) {
	return h.fetchBatches(ctx, ref, p, offset, maxBytes, wait, true)
}

func (h *Host) fetchBatches(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, maxBytes int, wait time.Duration, pooled bool) (eddy.FetchedBatches, error) {
	if meta, err := h.Topic(ref); err == nil && p.Validate(meta.Partitions) == nil && !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return eddy.FetchedBatches{}, err
		}
		return h.cfg.Forwarder.FetchBatches(ctx, n, ref, p, offset, maxBytes, wait)
	}
	var rr eddy.FetchedBatches
	err := h.poll(ctx, ref, p, offset, wait, func(lg *segment.Log) (bool, error) {
		var err error
		if pooled {
			rr, err = lg.ReadPooled(int64(offset), maxBytes)
		} else {
			rr, err = lg.Read(int64(offset), maxBytes)
		}
		if rr.Pooled && len(rr.Batches) == 0 {
			bufpool.Put(rr.Batches) // nothing read: polled again, or answered empty
			rr.Batches, rr.Pooled = nil, false
		}
		return err != nil || len(rr.Batches) > 0, err
	})
	return rr, err
}

// BatchBytesAt is the size of the stored batch holding offset in the
// partition: what a read from offset returns at least, however small its
// max bytes (a batch is read whole). A reader takes room for it before
// reading. A node without a replica asks one that has it (the answer of
// a read forwarded there is as large, and held here until answered:
// counting max bytes alone, sixty fetches of max_bytes=1 inside an 8 MB
// batch held 480 MB on the node that forwarded them). It is 0 when there
// is nothing at offset, or no node to ask.
func (h *Host) BatchBytesAt(ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) int {
	meta, err := h.Topic(ref)
	if err != nil || p.Validate(meta.Partitions) != nil {
		return 0
	}
	if !h.IsLocal(meta, p) {
		n, err := h.remoteReplica(meta, p)
		if err != nil {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		size, _ := h.cfg.Forwarder.BatchBytesAt(ctx, n, ref, p, offset)
		return size
	}
	lg, err := h.replicaLog(meta, p)
	if err != nil {
		return 0
	}
	return lg.BatchBytesAt(int64(offset))
}

// StampedAt is when the records from offset on began: the time the stored
// batch holding offset was stamped with (its first record's, or its
// append time), from the batch's header alone on a node with a replica;
// elsewhere, the record at offset, fetched from a node with one. false
// when there is no record at offset. (A group's lag in time read a whole
// batch, up to 16 MiB, for every lagging partition at every scrape.)
func (h *Host) StampedAt(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset) (int64, bool) {
	if lg := h.localLog(ref, p); lg != nil {
		b, ok := lg.BatchAt(int64(offset))
		if !ok {
			return 0, false
		}
		if b.LogAppendTime() {
			return b.MaxTimestamp, true
		}
		return b.FirstTimestamp, true
	}
	res, err := h.Fetch(ctx, ref, p, offset, 1, 1, 0)
	if err != nil || len(res.Records) == 0 {
		return 0, false
	}
	return res.Records[0].Timestamp, true
}

// localLog is this node's replica's log of the partition (nil: none here,
// or not open).
func (h *Host) localLog(ref eddy.TopicRef, p eddy.Partition) *segment.Log {
	meta, err := h.Topic(ref)
	if err != nil || p.Validate(meta.Partitions) != nil || !h.IsLocal(meta, p) {
		return nil
	}
	lg, _ := h.replicaLog(meta, p)
	return lg
}

// replicaLog is this node's replica's log of the partition, or why there
// is none to read.
func (h *Host) replicaLog(meta *catalog.TopicMeta, p eddy.Partition) (*segment.Log, error) {
	lp, err := h.local(meta, p)
	if err != nil {
		return nil, err
	}
	return lp.sm.log()
}

// Await waits, up to wait, until this node's replica of the partition
// has a record at offset or later, without reading any: a long poll that
// takes memory for its answer only once there is one to read. It reports
// false, at once, when this node holds no replica of the partition (a
// read there long-polls on a node that does).
func (h *Host) Await(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration) bool {
	if meta, err := h.Topic(ref); err != nil || p.Validate(meta.Partitions) != nil || !h.IsLocal(meta, p) {
		return false
	}
	h.AwaitAny(ctx, []PartitionAt{{ref, p, offset}}, wait)
	return true
}

// PartitionAt is a place in a partition.
type PartitionAt struct {
	Ref    eddy.TopicRef
	P      eddy.Partition
	Offset eddy.Offset
}

// maxRemoteWaits bounds the places on other nodes one AwaitAny long-polls
// (a goroutine each); the read after the wait reads every place anyway.
const maxRemoteWaits = 256

// AwaitAny is Await for many places at once: it returns once any of them
// has a record at its offset or later (or is out of range), wait has
// passed, ctx ends or the host stops. It reads nothing of the places this
// node holds and waits on them all from the caller's goroutine (a fetch
// may name hundreds of partitions, the same one many times; a goroutine
// each took 8 KB or more); a place on another node is long-polled there,
// reading nothing (awaitRemote), a goroutine each, at most maxRemoteWaits.
func (h *Host) AwaitAny(ctx context.Context, at []PartitionAt, wait time.Duration) {
	if wait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	logs := make([]*localPartition, len(at))
	local, remote := 0, 0
	for i, a := range at {
		meta, err := h.Topic(a.Ref)
		if err == nil && a.P.Validate(meta.Partitions) == nil && h.IsLocal(meta, a.P) {
			if lp, err := h.local(meta, a.P); err == nil {
				logs[i], local = lp, local+1
				continue
			}
		}
		if remote++; remote > maxRemoteWaits {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if h.awaitRemote(ctx, a, wait) {
				cancel()
			}
		}()
	}
	if local == 0 {
		return // the remote reads end it
	}
	for {
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(h.stop)},
		}
		seen := map[<-chan struct{}]bool{}
		for i, lp := range logs {
			if lp == nil {
				continue
			}
			lg, err := lp.sm.log()
			if err != nil {
				cancel() // closing: the read after says so
				return
			}
			notify := lg.Wait() // before the offsets, so no append is missed
			if start, end := lg.Offsets(); int64(at[i].Offset) < start || int64(at[i].Offset) < end {
				cancel()
				return
			}
			if !seen[notify] {
				seen[notify] = true
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(notify)})
			}
		}
		if chosen, _, _ := reflect.Select(cases); chosen < 2 {
			cancel()
			return
		}
	}
}

// awaitRemote long-polls a place held on another node, reading nothing
// there, and reports whether a record is there. A node it cannot ask
// (down, or one that does not know the wait: during a rolling upgrade)
// is waited out, not asked again at once: the caller's read after the
// wait tells the client what there is.
func (h *Host) awaitRemote(ctx context.Context, a PartitionAt, wait time.Duration) bool {
	meta, err := h.Topic(a.Ref)
	if err != nil || a.P.Validate(meta.Partitions) != nil {
		return false // the read after says so
	}
	if n, err := h.remoteReplica(meta, a.P); err == nil {
		if there, err := h.cfg.Forwarder.Await(ctx, n, a.Ref, a.P, a.Offset, wait); err == nil {
			return there
		}
	}
	<-ctx.Done()
	return false
}

// poll calls read on the partition's local log until it reports that it
// found something (or failed), wait has passed, ctx ends or the host stops.
// Between tries it sleeps on the log's notification channel, which Update
// closes: a long poll is woken by the append, not by a timer loop.
//
// An offset past the replica's end may be one it has not applied yet (a
// follower behind the leader the reader had the offset from, a new
// leader, a replica a node without one reads after another): once, the
// replica catches up to what its shard has committed (a ReadIndex), and
// what is still past its end is out of range. A reader told so resets
// its position (a Kafka client on OFFSET_OUT_OF_RANGE, an HTTP 416): a
// follower a moment behind made readers skip or repeat records.
func (h *Host) poll(ctx context.Context, ref eddy.TopicRef, p eddy.Partition, offset eddy.Offset, wait time.Duration, read func(lg *segment.Log) (bool, error)) error {
	meta, err := h.Topic(ref)
	if err != nil {
		return err
	}
	lp, err := h.local(meta, p)
	if err != nil {
		return err
	}
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	caughtUp := false
	for {
		lg, err := lp.sm.log()
		if err != nil {
			return err
		}
		notify := lg.Wait() // before reading, so no append is missed
		done, err := read(lg)
		if !caughtUp && eddy.ErrorCode(err) == eddy.CodeOffsetOutOfRange {
			if _, end := lg.Offsets(); int64(offset) > end { // not before the start: retention's
				if err := h.catchUp(ctx, lp.shardID); err != nil {
					return err
				}
				caughtUp = true
				continue
			}
		}
		if done || err != nil || wait <= 0 {
			return err
		}
		select {
		case <-notify:
		case <-timer:
			return nil
		case <-ctx.Done():
			return nil
		case <-h.stop:
			return nil
		}
	}
}

// catchUp returns once the local replica of shard has applied what the
// shard had committed when it was called (a ReadIndex through its
// leader), within 2 s.
func (h *Host) catchUp(ctx context.Context, shard uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := h.nh.SyncRead(ctx, shard, offsetsQuery{}); err != nil {
		return &eddy.Error{Code: eddy.CodeUnavailable, RetryAfterMs: 500,
			Message: fmt.Sprintf("the offset is past this replica's end, and its leader did not confirm its own: %v", err)}
	}
	return nil
}

// firstRead bounds readRecords' first read, before it knows how large the
// partition's records are. Reading maxBytes at once, a fetch of 1,000
// records of 1 KiB with max_bytes=8 MiB (as eddy bench consume asks)
// read, checked and decoded 8 MiB to keep 1 MB of it.
const firstRead = 256 << 10

func (h *Host) readRecords(lg *segment.Log, offset int64, maxRecords, maxBytes int) (*FetchResult, error) {
	res := &FetchResult{NextOffset: eddy.Offset(offset)}
	off := offset
	bytes, read := 0, 0
	for len(res.Records) < maxRecords && bytes < maxBytes {
		// As much as the records still wanted take, by the size of those
		// read so far (a quarter more); a read returns whole batches, at
		// least one.
		want := min(maxBytes-bytes, firstRead)
		if n := len(res.Records); n > 0 {
			rest := min(maxRecords-n, maxBytes-bytes) // no overflow below: a record takes a byte at least
			want = min(maxBytes-bytes, max(64<<10, rest*(bytes/n)*5/4))
		}
		rr, err := lg.Read(off, want)
		read += len(rr.Batches)
		res.HighWatermark, res.LogStart = eddy.Offset(rr.HighWatermark), eddy.Offset(rr.LogStart)
		if err != nil {
			if len(res.Records) > 0 {
				break
			}
			return res, err
		}
		if len(rr.Batches) == 0 {
			break
		}
		// A batch is read whole, whatever maxBytes asks, and its records
		// are kept (up to maxRecords); of one over four times larger (one
		// HTTP request's records are one batch, up to 16 MiB) the read
		// keeps a quarter, or maxBytes if more, so that a reader of
		// little at a time (an MQTT device's 64 KiB) neither holds the
		// batch nor reads it again more than four times over.
		keepTo := bytes + len(rr.Batches)
		if len(rr.Batches) > 4*(maxBytes-bytes) {
			keepTo = max(maxBytes, bytes+len(rr.Batches)/4)
		}
		// next is past the last record kept, or past the last batch taken
		// whole: a compacted batch's offsets may end in a gap, or hold no
		// record at all, and a reader must not stop at one.
		next, cut := off, false
		err = batch.SplitVerified(rr.Batches, func(hd batch.Header, b []byte) error {
			if cut || len(res.Records) >= maxRecords {
				return errEnough // the batches after are not checked nor decoded
			}
			var err error
			before := len(res.Records)
			res.Records, err = batch.DecodeVerified(res.Records, b)
			// Drop records before the requested offset and past the limits.
			kept := res.Records[:before]
			for _, r := range res.Records[before:] {
				if int64(r.Offset) < off {
					continue
				}
				if cut = cut || len(kept) >= maxRecords || (len(kept) > 0 && bytes >= keepTo); !cut {
					kept = append(kept, r)
					bytes += r.Size()
					next = int64(r.Offset) + 1
				}
			}
			res.Records = kept
			if !cut {
				next = max(next, hd.LastOffset()+1)
			}
			return err
		})
		if err != nil && err != errEnough {
			return res, err
		}
		if next == off {
			break
		}
		off = next
		if off >= rr.HighWatermark || read > 4*maxBytes+1<<20 {
			break // a long run of compacted gaps: the next read goes on
		}
	}
	res.NextOffset = eddy.Offset(off)
	if read > 2*bytes+64<<10 {
		res.Records = compact(res.Records, bytes)
	}
	return res, nil
}

// errEnough ends a read's decoding once it has the records asked for.
var errEnough = errors.New("enough records")

// compact copies the records, and their bytes (n in all), out of the
// batches they were decoded from, so that those can go: a read returns a
// batch whole, and a reader that keeps a few records of a large one (a
// device's window of 64 records of a batch of 4,000 one HTTP request
// made) held all of it for as long as it held them, through the records
// it kept and those decoded and dropped past them in the same array.
func compact(decoded []eddy.FetchedRecord, n int) []eddy.FetchedRecord {
	recs := append([]eddy.FetchedRecord(nil), decoded...)
	buf := make([]byte, 0, n)
	keep := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	for i := range recs {
		r := &recs[i].Record
		r.Key, r.Value = keep(r.Key), keep(r.Value)
		for j := range r.Headers {
			r.Headers[j].Value = keep(r.Headers[j].Value)
		}
	}
	return recs
}
