package multiraft

import (
	"path/filepath"
	"time"
	_ "unsafe" // go:linkname

	"github.com/eddy-broker/eddy/multiraft/raftlog"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// The pebble Raft log store, without dragonboat's manual compactions.
//
// After every snapshot dragonboat deletes the log behind it (a range
// deletion in pebble) and then asks the store to compact the shard's key
// range: pebble flushes the memtable and rewrites every sstable the range
// touches, the live entries past the deleted ones included. Eddy snapshots
// a busy partition at every sync_bytes, so that was a flush and a rewrite
// of the newest entries every sync_bytes (16 MiB then) of every busy
// partition: half of the node's CPU under Kafka produce. pebble's own
// compactions reclaim the deleted entries as its levels fill, so the store
// here skips the manual ones. (dragonboat's DisableAutoCompactions skips them too, but then a
// shard never clears its "compacted" mark and steps on every tick, idle
// or not: 1 MB/s of garbage with 60 partitions.)
//
// The store is dragonboat's default one, reached through its internal
// constructor (the build fails if it goes); the factory keeps the default
// one's name, so data directories made before open as they were.
//
//go:linkname newDefaultLogDB github.com/lni/dragonboat/v4/internal/logdb.NewDefaultLogDB
func newDefaultLogDB(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs []string, lldirs []string) (raftio.ILogDB, error)

// pebbleLogDB is the factory of that store.
type pebbleLogDB struct{}

func (pebbleLogDB) Name() string { return "sharded-pebble" }

func (pebbleLogDB) Create(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs []string, lldirs []string) (raftio.ILogDB, error) {
	db, err := newDefaultLogDB(cfg, cb, dirs, lldirs)
	if err != nil {
		return nil, err
	}
	return noManualCompaction{db}, nil
}

// noManualCompaction is a log store whose CompactEntriesTo leaves the
// reclaiming to the store's own compactions.
type noManualCompaction struct{ raftio.ILogDB }

func (noManualCompaction) CompactEntriesTo(shardID, replicaID, index uint64) (<-chan struct{}, error) {
	done := make(chan struct{})
	close(done)
	return done, nil
}

// raftLogFactory makes Eddy's own store (multiraft/raftlog): one log
// shared by the partitions, written once, over reused files.
type raftLogFactory struct {
	noSpace func() bool
	pinning func(shard, replica uint64) bool
	opened  func(*raftlog.Store)
}

func (raftLogFactory) Name() string { return raftlog.Name }

func (f raftLogFactory) Create(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs []string, lldirs []string) (raftio.ILogDB, error) {
	s, err := raftlog.Open(raftlog.Options{Dir: filepath.Join(dirs[0], "raftlog"), NoSpace: f.noSpace, Pinning: f.pinning})
	if err == nil && f.opened != nil {
		f.opened(s)
	}
	return s, err
}

// timedFactory makes the log store of f, with its writing saves timed.
type timedFactory struct {
	config.LogDBFactory
	onSync func(time.Duration)
}

func (f timedFactory) Create(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs []string, lldirs []string) (raftio.ILogDB, error) {
	db, err := f.LogDBFactory.Create(cfg, cb, dirs, lldirs)
	if err != nil {
		return nil, err
	}
	return timedLogDB{db, f.onSync}, nil
}

// timedLogDB times each save that writes: one write and fsync of what a
// step of the node's shards produced (entries, states, snapshots), the
// floor under every acknowledged record. Saves with nothing to write
// (dragonboat makes them) are not counted.
type timedLogDB struct {
	raftio.ILogDB
	onSync func(time.Duration)
}

func (d timedLogDB) SaveRaftState(updates []pb.Update, workerID uint64) error {
	if !writes(updates) {
		return d.ILogDB.SaveRaftState(updates, workerID)
	}
	start := time.Now()
	err := d.ILogDB.SaveRaftState(updates, workerID)
	d.onSync(time.Since(start))
	return err
}

func writes(updates []pb.Update) bool {
	for i := range updates {
		if len(updates[i].EntriesToSave) > 0 || !pb.IsEmptyState(updates[i].State) || !pb.IsEmptySnapshot(updates[i].Snapshot) {
			return true
		}
	}
	return false
}
