package raftlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/eddy-broker/eddy/internal/bufpool"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// A record is one fact about one Raft replica:
//
//	crc    uint32  CRC-32C of length, kind..payload, then seq
//	length uint32  of the payload
//	seq    uint64  the sequence number of the file it was written to
//	kind   uint8
//	shard  uint64
//	replica uint64
//	payload
//
// The seq is the file's: a reused file still holds the records of its
// last use past what was written this time, and they carry an older seq,
// so a scan stops where this use's records end (so does it at the zeros of
// a new file, or at a record torn by a crash). The CRC takes the seq last
// so a record is encoded before the writer knows which file it goes to.
const headerSize = 33

type kind uint8

const (
	kindEntry kind = iota + 1
	kindState
	kindSnapshot      // a snapshot's metadata; the log is unchanged
	kindSnapshotReset // a snapshot received from the leader: the log restarts after it
	kindBootstrap
	kindRemoveTo   // entries up to index are compacted away
	kindRemoveNode // every record of the replica is void
	kindCarried    // an entry copied forward, staged until its kindCarryDone (carrier.go)
	kindCarryDone  // the staged copies of a carry replace the replica's entries
)

// carriedPrefix is what a kindCarried record holds before the entry: the
// carry's id, the entry's index and the carry's last index (a
// kindCarryDone holds the same, with the carry's first index).
const carriedPrefix = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("raftlog: a record fails its checksum")

// op is a record being written or read back, with what the index needs
// of it (decoded once: the index never reads a record's payload again,
// except an entry's).
type op struct {
	kind           kind
	shard, replica uint64
	off, n         int    // the record's place in its batch, and its length
	pre            uint32 // the CRC before the seq
	index          uint64 // an entry's index, or a kindRemoveTo's, or a carry's first
	carryID, hi    uint64 // a kindCarried's or kindCarryDone's carry and its last index
	state          pb.State
	snap           pb.Snapshot
	bs             pb.Bootstrap
}

// batch is the records of one write, encoded before the write takes the
// log; seal puts in the file's seq.
//
// The records are encoded lead bytes into their buffer (back), lead being
// where in its page the log ended when the batch began: a direct write
// starts at that page's start, so with the page's first bytes (Store.head)
// put in front, the buffer is written as it is, where it was copied whole
// into an aligned one (a megabyte for a Kafka batch, on the partition's
// serial path: Raft's step waits for its save).
type batch struct {
	buf       []byte // back[lead : lead+len(buf)]
	back      []byte // buf's buffer from its start (from bufpool), or nil
	lead      int
	ops       []op
	entryRefs int        // how many entries
	plans     []savePlan // SaveRaftState's, one per update
}

// reset empties b for records to be encoded lead bytes into its buffer.
func (b *batch) reset(lead int) {
	b.lead, b.buf = lead, nil
	if lead < cap(b.back) {
		b.buf = b.back[lead:lead]
	}
	b.ops, b.entryRefs, b.plans = b.ops[:0], 0, b.plans[:0]
}

// add appends a record whose payload marshal writes into at most size
// bytes, and returns its op.
func (b *batch) add(k kind, shard, replica uint64, size int, marshal func([]byte) int) *op {
	off := len(b.buf)
	b.grow(headerSize + size)
	n := marshal(b.buf[off+headerSize:])
	rec := b.buf[off : off+headerSize+n]
	b.buf = b.buf[:off+headerSize+n]
	binary.LittleEndian.PutUint32(rec[4:], uint32(n))
	rec[16] = byte(k)
	binary.LittleEndian.PutUint64(rec[17:], shard)
	binary.LittleEndian.PutUint64(rec[25:], replica)
	pre := crc32.Update(crc32.Checksum(rec[4:8], castagnoli), castagnoli, rec[16:])
	b.ops = append(b.ops, op{kind: k, shard: shard, replica: replica, off: off, n: len(rec), pre: pre})
	return &b.ops[len(b.ops)-1]
}

// grow extends buf by n bytes, into a larger buffer when it must (twice
// the capacity at least, from bufpool; the old one goes back to it),
// lead bytes into it.
func (b *batch) grow(n int) {
	if cap(b.buf)-len(b.buf) < n {
		back := bufpool.Get(b.lead + max(2*cap(b.buf), len(b.buf)+n))
		back = back[:cap(back)]
		buf := append(back[b.lead:b.lead], b.buf...)
		bufpool.Put(b.back)
		b.back, b.buf = back, buf
	}
	b.buf = b.buf[:len(b.buf)+n]
}

// reserve makes room for n more bytes at once, so a batch of large
// entries is not grown, and copied, once per entry.
func (b *batch) reserve(n int) {
	l := len(b.buf)
	b.grow(n)
	b.buf = b.buf[:l]
}

func (b *batch) entry(shard, replica uint64, e *pb.Entry) {
	o := b.add(kindEntry, shard, replica, e.SizeUpperLimit(), func(p []byte) int {
		n, _ := e.MarshalTo(p)
		return n
	})
	o.index = e.Index
	b.entryRefs++
}

func (b *batch) state(shard, replica uint64, st pb.State) {
	o := b.add(kindState, shard, replica, st.Size(), func(p []byte) int {
		n, _ := st.MarshalTo(p)
		return n
	})
	o.state = st
}

func (b *batch) snapshot(k kind, shard, replica uint64, ss pb.Snapshot) {
	o := b.add(k, shard, replica, ss.Size(), func(p []byte) int {
		n, _ := ss.MarshalTo(p)
		return n
	})
	o.decodeOwn(b) // the index keeps its own copy, not the caller's maps and slices
}

func (b *batch) bootstrap(shard, replica uint64, bs pb.Bootstrap) {
	o := b.add(kindBootstrap, shard, replica, bs.Size(), func(p []byte) int {
		n, _ := bs.MarshalTo(p)
		return n
	})
	o.decodeOwn(b)
}

// decodeOwn decodes o's payload from b: a snapshot's or a bootstrap's
// copy of its own.
func (o *op) decodeOwn(b *batch) {
	if err := o.decode(b.buf[o.off+headerSize : o.off+o.n]); err != nil {
		panic(err) // it was just encoded
	}
}

func (b *batch) removeTo(shard, replica, index uint64) {
	o := b.add(kindRemoveTo, shard, replica, 8, func(p []byte) int {
		binary.LittleEndian.PutUint64(p, index)
		return 8
	})
	o.index = index
}

// carried copies an entry's encoding (payload) forward as one of carry id,
// which carries the entries up to hi.
func (b *batch) carried(shard, replica, id, index, hi uint64, payload []byte) {
	o := b.add(kindCarried, shard, replica, carriedPrefix+len(payload), func(p []byte) int {
		putCarry(p, id, index, hi)
		return carriedPrefix + copy(p[carriedPrefix:], payload)
	})
	o.carryID, o.index, o.hi = id, index, hi
}

// carryDone ends carry id of the entries [lo, hi].
func (b *batch) carryDone(shard, replica, id, lo, hi uint64) {
	o := b.add(kindCarryDone, shard, replica, carriedPrefix, func(p []byte) int {
		putCarry(p, id, lo, hi)
		return carriedPrefix
	})
	o.carryID, o.index, o.hi = id, lo, hi
}

// putCarry writes a carry record's prefix: the carry, an index, its last.
func putCarry(p []byte, id, index, hi uint64) {
	binary.LittleEndian.PutUint64(p, id)
	binary.LittleEndian.PutUint64(p[8:], index)
	binary.LittleEndian.PutUint64(p[16:], hi)
}

func (b *batch) removeNode(shard, replica uint64) {
	b.add(kindRemoveNode, shard, replica, 0, func([]byte) int { return 0 })
}

// seal writes seq into every record and finishes its CRC.
func (b *batch) seal(seq uint64) {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	for i := range b.ops {
		rec := b.buf[b.ops[i].off:]
		copy(rec[8:16], s[:])
		binary.LittleEndian.PutUint32(rec, crc32.Update(b.ops[i].pre, castagnoli, s[:]))
	}
}

// parse reads the record at the start of p written to the file of seq.
// It returns the record's length, or 0 where this use of the file ends
// (zeros, an older use's record, a torn record, or p too short).
func parse(p []byte, seq uint64) (o op, payload []byte, n int) {
	if len(p) < headerSize || binary.LittleEndian.Uint64(p[8:]) != seq {
		return op{}, nil, 0
	}
	size := int(binary.LittleEndian.Uint32(p[4:]))
	if size > len(p)-headerSize {
		return op{}, nil, 0
	}
	rec := p[:headerSize+size]
	pre := crc32.Update(crc32.Checksum(rec[4:8], castagnoli), castagnoli, rec[16:])
	if crc32.Update(pre, castagnoli, rec[8:16]) != binary.LittleEndian.Uint32(rec) {
		return op{}, nil, 0
	}
	o = op{kind: kind(rec[16]), shard: binary.LittleEndian.Uint64(rec[17:]), replica: binary.LittleEndian.Uint64(rec[25:]), n: len(rec)}
	return o, rec[headerSize:], len(rec)
}

// decode fills in what the index needs of a parsed record.
func (o *op) decode(payload []byte) error {
	switch o.kind {
	case kindEntry:
		var e pb.Entry
		if err := e.Unmarshal(payload); err != nil {
			return err
		}
		o.index = e.Index
	case kindState:
		return o.state.Unmarshal(payload)
	case kindSnapshot, kindSnapshotReset:
		return o.snap.Unmarshal(payload)
	case kindBootstrap:
		return o.bs.Unmarshal(payload)
	case kindRemoveTo:
		if len(payload) != 8 {
			return errCorrupt
		}
		o.index = binary.LittleEndian.Uint64(payload)
	case kindCarried, kindCarryDone:
		if len(payload) < carriedPrefix || (o.kind == kindCarryDone && len(payload) != carriedPrefix) {
			return errCorrupt
		}
		o.carryID = binary.LittleEndian.Uint64(payload)
		o.index = binary.LittleEndian.Uint64(payload[8:])
		o.hi = binary.LittleEndian.Uint64(payload[16:])
	case kindRemoveNode:
	default:
		return errCorrupt
	}
	return nil
}
