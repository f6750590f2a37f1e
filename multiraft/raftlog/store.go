// Package raftlog is Eddy's Raft log store: one log that every Raft
// replica of a node shares (dragonboat's raftio.ILogDB).
//
// A save is written once, to the end of the log, and made durable with
// one fdatasync of one file, on the caller's goroutine; saves that arrive
// while a sync runs share the next one. The files are made once, full
// size, of zeros, and reused when no replica needs them, so a sync never
// commits a change of size or of allocation: it costs the disk's
// overwrite and flush (a file a roll had to allocate, the log growing
// faster than files are made ahead, costs its first syncs that too). An
// index in memory holds each replica's bootstrap,
// state and snapshot, and where each of its live entries lies; entries
// are read back from the files.
//
// A file is reused once every replica's records in it are superseded or
// compacted away, oldest first. A replica that keeps an old file alive
// (an idle one, whose few entries nothing compacts) has its records
// carried forward to the newest file: all of them when its entries are
// small, in pieces beside the writes when it is idle with many (the
// carrier), its bootstrap, state and snapshot otherwise (a busy replica
// frees its files at its next sync). Files are reused in order, so a
// record read back at start is never older than one it superseded that
// was dropped. docs/raft-log-store.md has the figures behind each choice.
package raftlog

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/fsutil"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Name is the store's name in dragonboat's record of a data directory.
const Name = "eddy-raftlog"

// Options configures a Store.
type Options struct {
	Dir      string
	FileSize int64 // the size of each file; default 8 MiB
	// FreeFiles is how many files are kept for reuse beyond what the log
	// spans; default 2. (While the log is busy, the files it leaves are
	// kept to be reused, up to the most it spanned: see Trim.)
	FreeFiles int
	// NoSpace is called when a write meets ENOSPC; it returns true when
	// it freed room and the write should be tried once more.
	NoSpace func() bool
	// Pinning, when set, is told of an idle replica whose entries (64
	// KiB or more at the default file size) keep the log's oldest file,
	// and of a busy one whose entries (over an eighth of a file) do.
	// It returns true when the replica's owner will sync it at once,
	// which compacts most of those entries out of the log without
	// writing them again; the store then carries what still pins the log
	// carryGrace later. It is called with the writer lock held and must
	// not block.
	Pinning func(shard, replica uint64) bool
}

// Store is the log. Its zero value is not usable; Open makes one.
type Store struct {
	opts Options
	dir  string

	wmu      sync.Mutex // the writer: appends, rolls, reclaims
	head     []byte     // the bytes before the log's end in the page it ends in (writePages)
	zeroPage []byte     // a page of zeros (writePages)
	dio      directWriter
	free     []freeFile
	keepFree int // files to keep free: FreeFiles, or more while the log is busy
	peak     int // the most files the log spanned since Trim (writer lock)
	// oldest is the oldest file in use as of the last retirement; a
	// replica that needed it and stops needing it sets oldestFreed when
	// it could be retired (older than the file rolled from; apply, writer
	// and index locks held).
	oldest      uint64
	oldestFreed bool

	lastRoll  atomic.Int64  // unix nanoseconds
	prepC     chan struct{} // cap 1: a roll left no free file (preparer)
	prepared  atomic.Int64  // files the preparer made (tests)
	allocated atomic.Int64  // files a roll allocated itself, none being free (tests)
	nFiles    atomic.Int64  // files in use (Files)
	nFree     atomic.Int64  // free files kept (Files)

	tail atomic.Pointer[tail] // the file being written and its end

	smu    sync.Mutex // the sync
	synced pos

	mu    sync.RWMutex // the index
	nodes map[nodeKey]*node
	files map[uint64]*file // by seq

	batches sync.Pool

	// The carrier (carrier.go).
	cmu          sync.Mutex
	carryQ       []nodeKey
	carrying     map[nodeKey]bool // queued or being carried
	carryC       chan struct{}
	stop         chan struct{}
	carrierDone  chan struct{}
	preparerDone chan struct{}
	carriedBytes atomic.Int64
	pieceHook    func(bytes int) // tests: after each piece the carrier wrote
	grace        time.Duration   // carryGrace, or less in tests
}

type tail struct {
	*file
	off int64
}

type pos struct {
	seq uint64
	off int64
}

func (p pos) less(q pos) bool { return p.seq < q.seq || (p.seq == q.seq && p.off < q.off) }

// Open opens the log in opts.Dir, making it if needed, and reads it back.
func Open(opts Options) (*Store, error) {
	if opts.FileSize <= 0 {
		opts.FileSize = 8 << 20
	}
	if opts.FreeFiles <= 0 {
		opts.FreeFiles = 2
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, dir: opts.Dir, nodes: map[nodeKey]*node{}, files: map[uint64]*file{}, keepFree: opts.FreeFiles, grace: carryGrace,
		zeroPage: make([]byte, pageSize), carrying: map[nodeKey]bool{}, carryC: make(chan struct{}, 1),
		stop: make(chan struct{}), carrierDone: make(chan struct{}), prepC: make(chan struct{}, 1), preparerDone: make(chan struct{})}
	s.dio.name = s.logName
	seqs, free, err := listFiles(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, name := range free {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil || len(s.free) >= opts.FreeFiles {
			if f != nil {
				f.Close()
			}
			os.Remove(name)
			continue
		}
		s.free = append(s.free, freeFile{f, name})
	}
	next := uint64(1)
	for _, seq := range seqs {
		f, err := os.OpenFile(s.logName(seq), os.O_RDWR, 0)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files[seq] = &file{f, seq}
		if err := s.replay(f, seq); err != nil {
			s.Close()
			return nil, err
		}
		next = seq + 1
	}
	// Writing goes on in a new file: the last one may end in a torn record.
	fl, err := s.newFile(next, true)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.files[fl.seq] = fl
	s.tail.Store(&tail{fl, 0})
	s.synced = pos{fl.seq, 0}
	go s.carrier()
	go s.preparer()
	s.wmu.Lock()
	err = s.reclaim()
	s.wmu.Unlock()
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// halt stops the carrier and the preparer (once they started).
func (s *Store) halt() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	if s.tail.Load() != nil {
		<-s.carrierDone
		<-s.preparerDone
	}
}

func (s *Store) Name() string         { return Name }
func (s *Store) BinaryFormat() uint32 { return raftio.PlainLogDBBinVersion }

// Close syncs and closes the files.
func (s *Store) Close() error {
	s.halt()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var err error
	if t := s.tail.Load(); t != nil {
		err = syscall.Fdatasync(int(t.f.Fd()))
	}
	s.dio.close()
	for _, fl := range s.files {
		fl.f.Close()
	}
	for _, fr := range s.free {
		fr.f.Close()
	}
	s.files, s.free = map[uint64]*file{}, nil
	return err
}

// getBatch returns an empty batch whose records go where in its page
// the log ends now (batch), which they will when no other write comes
// first.
func (s *Store) getBatch() *batch {
	b, ok := s.batches.Get().(*batch)
	if !ok {
		b = &batch{}
	}
	b.reset(s.lead())
	return b
}

// lead is where in its page the log ends.
func (s *Store) lead() int {
	if t := s.tail.Load(); t != nil {
		return int(t.off & (pageSize - 1))
	}
	return 0
}

// putBatch keeps b for the next write; a buffer over 4 MiB goes back to
// bufpool instead (it is kept by size, for whichever batch needs one).
func (s *Store) putBatch(b *batch) {
	if cap(b.back) > 4<<20 {
		bufpool.Put(b.back)
		b.back, b.buf = nil, nil
	}
	s.batches.Put(b)
}

// write appends b to the log and, with sync, returns once it is durable.
func (s *Store) write(b *batch, sync bool) error {
	if len(b.ops) == 0 {
		return nil
	}
	s.wmu.Lock()
	end, err := s.appendLocked(b)
	s.wmu.Unlock()
	if err != nil || !sync {
		return err
	}
	return s.syncTo(end)
}

// appendLocked writes b at the end of the log, rolling to the next file
// when b does not fit in this one (a batch larger than a file grows it).
func (s *Store) appendLocked(b *batch) (pos, error) {
	t := s.tail.Load()
	if t.off > 0 && t.off+int64(len(b.buf)) > s.opts.FileSize {
		if err := s.roll(); err != nil {
			return pos{}, err
		}
	}
	end, err := s.put(b)
	if err == nil && s.oldestFreed {
		// A replica removed, compacted or carried forward no longer
		// needs the oldest file: give it back now, not at the next roll
		// (an idle log may not roll for long; a deleted topic's share of
		// a full disk comes back at once), once what freed it is durable
		// (a crash must not find a replica's later records without its
		// earlier ones). Once per file the log turns over at most.
		if err = s.syncTo(end); err == nil {
			err = s.retireUnneeded(0)
		}
	}
	return end, err
}

// put writes b where the log ends and indexes it. The writer lock is held.
func (s *Store) put(b *batch) (pos, error) {
	t := s.tail.Load()
	b.seal(t.seq)
	if err := s.writePages(t.f, t.seq, b, t.off); err != nil {
		return pos{}, err
	}
	s.mu.Lock()
	for i := range b.ops {
		o := &b.ops[i]
		s.apply(o, loc{seq: t.seq, off: t.off + int64(o.off), n: uint32(o.n)})
	}
	s.mu.Unlock()
	end := pos{t.seq, t.off + int64(len(b.buf))}
	s.tail.Store(&tail{t.file, end.off})
	return end, nil
}

// syncTo returns once the log is durable up to end. One caller syncs the
// file being written; those waiting behind it find their records synced.
// A file the log rolled past was synced when it rolled.
func (s *Store) syncTo(end pos) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	if !s.synced.less(end) {
		return nil
	}
	t := s.tail.Load()
	if end.seq < t.seq {
		return nil
	}
	if err := syscall.Fdatasync(int(t.f.Fd())); err != nil {
		return err
	}
	s.synced = pos{t.seq, t.off}
	return nil
}

// roll syncs the file being written and goes on in the next one, then
// reclaims what it can. The writer lock is held.
func (s *Store) roll() error {
	t := s.tail.Load()
	s.smu.Lock()
	err := syscall.Fdatasync(int(t.f.Fd()))
	if err == nil && s.synced.less(pos{t.seq, t.off}) {
		s.synced = pos{t.seq, t.off}
	}
	s.smu.Unlock()
	if err != nil {
		return err
	}
	fl, err := s.newFile(t.seq+1, false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.files[fl.seq] = fl
	s.mu.Unlock()
	s.tail.Store(&tail{fl, 0})
	s.head = s.head[:0]
	s.lastRoll.Store(time.Now().UnixNano())
	err = s.reclaim()
	s.wantFile()
	return err
}

// reclaim keeps the log's span (from its oldest file to the one being
// written) within twice what is live, and at least minSpan files: a
// replica whose oldest record lies beyond that is carried forward. A
// small one (its entries within an eighth of a file) is carried whole,
// here; an idle one with many entries is handed to the carrier, which
// moves them in pieces beside the writes (carrier.go), and meanwhile
// only its bootstrap, snapshot and state are carried here; an idle one,
// either way, once its owner had the chance to sync it instead
// (carryNow); a busy one frees its files itself when it next syncs (its
// owner is asked to sync it now), and carrying it would write its
// entries twice, so only its bootstrap, snapshot and state are. Then
// every file older than the oldest one a replica needs is retired (never
// the file the log rolled from, which a sync may be running on, or the
// one being written). The writer lock is held.
func (s *Store) reclaim() error {
	cur := s.tail.Load().seq
	s.mu.RLock()
	s.peak = max(s.peak, len(s.files))
	var live int64
	for _, n := range s.nodes {
		live += n.entryBytes + 256
	}
	span := uint64(max(minSpan, 2*live/s.opts.FileSize+2))
	var pinning []carried
	now := time.Now().UnixNano()
	for k, n := range s.nodes {
		if m := n.minSeq(); m == 0 || m+span > cur {
			n.pinnedAt = 0
			continue
		}
		small := n.entryBytes <= s.opts.FileSize/8
		idle := n.lastSeq+1 < cur
		// An idle replica's entries wait while its owner may compact
		// them (carryNow), unless they are too few to be worth it; the
		// owner's own no-ops (a nudge) do not end the wait.
		wait := (idle || n.pinnedAt != 0) && n.entryBytes >= s.opts.FileSize/askDiv && !s.carryNow(k, n, now)
		switch {
		case idle && !small && !wait:
			s.carryLater(k) // in pieces, beside the writes (carrier.go)
		case !idle && !small && s.opts.Pinning != nil && n.locs[0].seq+span <= cur:
			// A busy replica frees its files when it next syncs; one
			// that trickles among heavier writes may not for a while
			// (its sync interval), so its owner is asked to sync it now,
			// at every roll while its entries keep the file.
			s.opts.Pinning(k.shard, k.replica)
		}
		if small || n.metaSeq()+span <= cur || idle {
			pinning = append(pinning, carried{k, small && !wait && !s.isCarrying(k)})
		}
	}
	s.mu.RUnlock()
	if len(pinning) > 0 {
		if err := s.carry(pinning); err != nil {
			return err
		}
		if err := s.syncTo(pos{cur, s.tail.Load().off}); err != nil {
			return err
		}
	}
	return s.retireUnneeded(int(span))
}

// retireUnneeded retires every file older than the oldest one a replica
// needs, never the file the log rolled from (a sync may be running on
// it) or the one being written, and keeps free ones for the log to grow
// back to span files (after a roll) or to its peak. The writer lock is
// held.
func (s *Store) retireUnneeded(span int) error {
	cur := s.tail.Load().seq
	s.mu.Lock()
	keep := cur - 1
	for _, n := range s.nodes {
		if m := n.minSeq(); m != 0 && m < keep {
			keep = m
		}
	}
	var dead []*file
	s.oldest, s.oldestFreed = cur, false
	for seq, fl := range s.files {
		if seq < keep {
			dead = append(dead, fl)
			delete(s.files, seq)
		} else {
			s.oldest = min(s.oldest, seq)
		}
	}
	s.keepFree = max(s.opts.FreeFiles, span-len(s.files), s.peak-len(s.files))
	s.mu.Unlock()
	s.dropFree()
	defer s.counted()
	if len(dead) == 0 {
		return nil
	}
	for _, fl := range dead {
		s.retire(fl)
	}
	return fsutil.SyncDir(s.dir)
}

// dropFree removes the free files beyond keepFree. The writer lock is
// held.
func (s *Store) dropFree() (dropped int) {
	for len(s.free) > s.keepFree {
		fr := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		fr.f.Close()
		os.Remove(fr.name)
		dropped++
	}
	return dropped
}

// Trim gives back the free files kept beyond FreeFiles, once the log has
// not rolled for idle (0: at once), and returns the bytes given back.
//
// A busy log keeps the files it leaves, up to the most it spanned: a
// partition's log grows by what arrives while its sync runs and shrinks
// at once after it, and a file made anew is written twice (its zeros,
// then its records: under Kafka produce to one partition the node wrote
// 2.8 times what it stored while the log made its files again at every
// sync, 2.3 times with them kept). The node trims when the log has been
// idle a while, and at once when its disk runs short.
func (s *Store) Trim(idle time.Duration) int64 {
	if idle > 0 && time.Since(time.Unix(0, s.lastRoll.Load())) < idle {
		return 0
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	s.peak = len(s.files)
	s.mu.RUnlock()
	s.keepFree = s.opts.FreeFiles
	s.dio.idle()
	n := s.dropFree()
	s.counted()
	return int64(n) * s.opts.FileSize
}

// Files is the files the log uses and the free ones it keeps for reuse,
// as of its last roll or trim, in bytes.
func (s *Store) Files() (inUse, free int64) {
	return s.nFiles.Load() * s.opts.FileSize, s.nFree.Load() * s.opts.FileSize
}

// counted records the number of files for Files. The writer lock is held.
func (s *Store) counted() {
	s.mu.RLock()
	s.nFiles.Store(int64(len(s.files)))
	s.mu.RUnlock()
	s.nFree.Store(int64(len(s.free)))
}

// minSpan is the fewest files the log spans before it carries records
// forward: an idle replica's records are written again every minSpan files.
const minSpan = 3

// askDiv: an idle replica with at least FileSize/askDiv bytes of entries
// (64 KiB at the default 8 MiB) is worth its owner's sync rather than
// being written again; with fewer it is carried whole at once.
const askDiv = 128

// carryGrace is how long an idle replica whose owner said it would sync
// it (Options.Pinning) may keep the log's oldest file before the carrier
// moves what is left of its entries.
const carryGrace = time.Second

// carryNow reports whether an idle replica's entries that keep the
// oldest file are to be carried (by the carrier, or whole when they are
// few): at once when no owner is told (Options.Pinning unset) or the
// owner will not sync it, else once they have kept it carryGrace. A sync
// that compacts them costs one fsync of the partition's segments; a carry
// writes and syncs them again, over and over while the replica stays
// idle and the log turns over (the topics a benchmark wrote before the
// one it writes: 388-429 MB carried for 1.6 GB of records). The writer
// lock is held.
func (s *Store) carryNow(k nodeKey, n *node, now int64) bool {
	if s.opts.Pinning == nil {
		return true
	}
	if n.pinnedAt == 0 {
		if !s.opts.Pinning(k.shard, k.replica) {
			return true
		}
		n.pinnedAt = now
		return false
	}
	return now-n.pinnedAt >= int64(s.grace)
}

// carried is a replica to carry forward: whole, or its bootstrap,
// snapshot and state only.
type carried struct {
	key   nodeKey
	whole bool
}

// carry writes the records of the replicas named again at the end of the
// log, the oldest first; the caller syncs them. It carries half a file of
// entries at most; the others over that carry their bootstrap, snapshot
// and state now and their entries at a later roll. (Larger entries are
// the carrier's.)
func (s *Store) carry(cs []carried) error {
	b := s.getBatch()
	defer s.putBatch(b)
	s.mu.RLock()
	sort.Slice(cs, func(i, j int) bool { return s.nodes[cs[i].key].minSeq() < s.nodes[cs[j].key].minSeq() })
	budget := s.opts.FileSize / 2
	for _, c := range cs {
		k, n := c.key, s.nodes[c.key]
		if c.whole && n.entryBytes > budget {
			c.whole = false
		}
		if n.bs != nil {
			b.bootstrap(k.shard, k.replica, *n.bs)
		}
		if n.snap.Index != 0 {
			b.snapshot(kindSnapshot, k.shard, k.replica, n.snap)
		}
		if n.hasState {
			b.state(k.shard, k.replica, n.state)
		}
		if !c.whole || len(n.locs) == 0 {
			continue
		}
		budget -= n.entryBytes
		ents, _, err := s.readEntries(nil, 0, k, n, n.first, n.last()+1, 1<<62)
		if err != nil {
			s.mu.RUnlock()
			return err
		}
		for i := range ents {
			b.entry(k.shard, k.replica, &ents[i])
		}
	}
	s.mu.RUnlock()
	if _, err := s.put(b); err != nil {
		return err
	}
	s.carriedBytes.Add(int64(len(b.buf)))
	return nil
}

// entryPayload is the encoded entry in the record rec read from l: an
// entry's record, or a carried copy's.
func entryPayload(rec []byte, l loc, k nodeKey) ([]byte, error) {
	o, payload, m := parse(rec, l.seq)
	switch {
	case m == 0 || o.shard != k.shard || o.replica != k.replica:
		return nil, errCorrupt
	case o.kind == kindEntry:
		return payload, nil
	case o.kind == kindCarried && len(payload) >= carriedPrefix:
		return payload[carriedPrefix:], nil
	}
	return nil, errCorrupt
}

// readPayload reads the record at l, of file fl, into buf (from bufpool
// when buf is too small; the caller puts back the buffer it ends with)
// and returns the buffer and the encoded entry in it (entryPayload).
func readPayload(buf []byte, fl *file, l loc, k nodeKey) ([]byte, []byte, error) {
	if cap(buf) < int(l.n) {
		bufpool.Put(buf)
		buf = bufpool.Get(int(l.n))
	}
	buf = buf[:l.n]
	if _, err := fl.f.ReadAt(buf, l.off); err != nil {
		return buf, nil, err
	}
	payload, err := entryPayload(buf, l, k)
	return buf, payload, err
}

// readEntries appends the entries [low, high) of n to ents, up to maxSize
// bytes (at least one). Each record is read into a pooled buffer: an
// entry's Unmarshal copies its command out, and dragonboat reads a whole
// entry to learn its term at every compaction (LogReader.Compact), a
// Kafka batch of about 1 MiB each time. The index lock is held.
func (s *Store) readEntries(ents []pb.Entry, size uint64, k nodeKey, n *node, low, high, maxSize uint64) ([]pb.Entry, uint64, error) {
	if len(n.locs) == 0 || low < n.first {
		return ents, size, nil
	}
	var buf []byte
	defer func() { bufpool.Put(buf) }()
	for i := low; i < high && i <= n.last(); i++ {
		l := n.locs[i-n.first]
		fl := s.files[l.seq]
		if fl == nil {
			return nil, 0, fmt.Errorf("raftlog: entry %d of shard %d is in file %d, which is gone", i, k.shard, l.seq)
		}
		var payload []byte
		var err error
		if buf, payload, err = readPayload(buf, fl, l, k); err != nil {
			return nil, 0, fmt.Errorf("raftlog: entry %d of shard %d at %d:%d: %w", i, k.shard, l.seq, l.off, err)
		}
		var e pb.Entry
		if err := e.Unmarshal(payload); err != nil {
			return nil, 0, err
		}
		if e.Index != i {
			return nil, 0, fmt.Errorf("raftlog: entry %d of shard %d reads as %d: %w", i, k.shard, e.Index, errCorrupt)
		}
		ents = append(ents, e)
		size += uint64(e.SizeUpperLimit())
		if size > maxSize {
			break
		}
	}
	return ents, size, nil
}
