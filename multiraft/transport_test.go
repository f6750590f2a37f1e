package multiraft

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/lni/dragonboat/v4/config"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// receiver is a transport whose handlers forward what arrives.
func receiver(t *testing.T, addr string) (*tcpTransport, chan pb.MessageBatch, chan pb.Chunk) {
	t.Helper()
	batches, chunks := make(chan pb.MessageBatch, 16), make(chan pb.Chunk, 16)
	f := &transportFactory{log: slog.New(slog.DiscardHandler)}
	tr := f.Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { batches <- b },
		func(c pb.Chunk) bool { chunks <- c; return true }).(*tcpTransport)
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, batches, chunks
}

func expectBatch(t *testing.T, ch chan pb.MessageBatch, shard uint64) {
	t.Helper()
	select {
	case b := <-ch:
		if len(b.Requests) != 1 || b.Requests[0].ShardID != shard || !bytes.Equal(b.Requests[0].Entries[0].Cmd, []byte("cmd")) {
			t.Fatalf("received %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("batch for shard %d not received", shard)
	}
}

func batchFor(shard uint64) pb.MessageBatch {
	return pb.MessageBatch{DeploymentId: 1, SourceAddress: "a", Requests: []pb.Message{{ShardID: shard, To: 2, From: 1,
		Type: pb.Replicate, Entries: []pb.Entry{{Index: 7, Term: 1, Cmd: []byte("cmd")}}}}}
}

// TestTransportSurvivesPeerRestart: a connection whose peer restarted
// delivers the next batch to the new process instead of failing (a failure
// would trip dragonboat's breaker and drop messages for up to a second).
func TestTransportSurvivesPeerRestart(t *testing.T) {
	addr := testutil.FreeAddr(t)
	srv, batches, _ := receiver(t, addr)
	sender := (&transportFactory{log: slog.New(slog.DiscardHandler)}).Create(config.NodeHostConfig{RaftAddress: testutil.FreeAddr(t)}, nil, nil)
	conn, err := sender.GetConnection(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SendMessageBatch(batchFor(1000)); err != nil {
		t.Fatal(err)
	}
	expectBatch(t, batches, 1000)

	srv.Close() // the peer stops; a new process takes its address
	_, batches, chunks := receiver(t, addr)
	time.Sleep(50 * time.Millisecond) // the close reaches the sender
	for i := 0; i < 3; i++ {
		if err := conn.SendMessageBatch(batchFor(1001)); err != nil {
			t.Fatalf("send %d after the peer restarted: %v", i, err)
		}
		expectBatch(t, batches, 1001)
	}

	snap, err := sender.GetSnapshotConnection(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if err := snap.SendChunk(pb.Chunk{ShardID: 1000, ReplicaID: 2, ChunkId: 3, Data: []byte("segment bytes")}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-chunks:
		if c.ShardID != 1000 || c.ChunkId != 3 || string(c.Data) != "segment bytes" {
			t.Fatalf("chunk %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("chunk not received")
	}
}

// TestTransportRejectsBadFrames: a corrupt or oversized frame drops the
// connection; nothing is handed to dragonboat.
func TestTransportRejectsBadFrames(t *testing.T) {
	addr := testutil.FreeAddr(t)
	_, batches, _ := receiver(t, addr)
	for name, frame := range map[string][]byte{
		"bad checksum": func() []byte {
			p, _ := (&pb.MessageBatch{Requests: []pb.Message{{ShardID: 1}}}).Marshal()
			h := make([]byte, 9, 9+len(p))
			h[0] = frameBatch
			binary.BigEndian.PutUint32(h[1:5], uint32(len(p)))
			binary.BigEndian.PutUint32(h[5:9], 12345)
			return append(h, p...)
		}(),
		"oversized": func() []byte {
			h := make([]byte, 9)
			h[0] = frameBatch
			binary.BigEndian.PutUint32(h[1:5], maxFrame+1)
			return h
		}(),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(frame)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadByte(); err == nil {
			t.Fatalf("%s: the connection stayed open", name)
		}
		c.Close()
		select {
		case b := <-batches:
			t.Fatalf("%s: delivered %+v", name, b)
		default:
		}
	}
}

// TestDecodedMessagesOwnTheirBytes: the transport gives a frame's buffer
// back to the pool once it is decoded, which is safe only while
// dragonboat's decoders copy every byte they keep (an entry's command, a
// snapshot's checksum and files' metadata, a chunk's data). A decode
// whose buffer is then overwritten must equal one from a copy no one
// touches.
func TestDecodedMessagesOwnTheirBytes(t *testing.T) {
	snap := pb.Snapshot{Index: 7, Term: 2, Checksum: []byte("sum"), Filepath: "/snap",
		Files:      []*pb.SnapshotFile{{Filepath: "/f", FileId: 1, Metadata: []byte("meta")}},
		Membership: pb.Membership{Addresses: map[uint64]string{1: "a:1"}}}
	mb := pb.MessageBatch{SourceAddress: "n1:1", BinVer: 1, Requests: []pb.Message{
		{Type: pb.Replicate, To: 2, From: 1, ShardID: 5, Entries: []pb.Entry{
			{Index: 1, Term: 2, Cmd: bytes.Repeat([]byte("x"), 100<<10)}, {Index: 2, Term: 2, Cmd: []byte("y")}}},
		{Type: pb.InstallSnapshot, To: 2, From: 1, ShardID: 5, Snapshot: snap}}}
	ck := pb.Chunk{ShardID: 5, ReplicaID: 2, Data: bytes.Repeat([]byte("d"), 1000), Filepath: "/c",
		FileInfo: pb.SnapshotFile{Metadata: []byte("m")}, Membership: snap.Membership}
	for name, c := range map[string]struct {
		enc       func() ([]byte, error)
		dec, want interface{ Unmarshal([]byte) error }
	}{
		"message batch": {mb.Marshal, &pb.MessageBatch{}, &pb.MessageBatch{}},
		"chunk":         {ck.Marshal, &pb.Chunk{}, &pb.Chunk{}},
	} {
		b, err := c.enc()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.want.Unmarshal(bytes.Clone(b)); err != nil {
			t.Fatal(err)
		}
		if err := c.dec.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 0xff
		}
		if !reflect.DeepEqual(c.dec, c.want) {
			t.Fatalf("%s: a decode changed when its buffer was reused", name)
		}
	}
}

// TestMarshalBatchIntoUsedBuffer: a batch encoded into a pooled buffer
// (which holds an earlier frame's bytes) is the bytes Marshal makes in a
// zeroed one.
func TestMarshalBatchIntoUsedBuffer(t *testing.T) {
	mb := pb.MessageBatch{SourceAddress: "n1:1", BinVer: 1, Requests: []pb.Message{
		{Type: pb.Replicate, To: 2, From: 1, ShardID: 5, Entries: []pb.Entry{
			{Index: 1, Term: 2, Cmd: bytes.Repeat([]byte("x"), 100<<10)}, {Index: 2, Term: 2}}},
		{Type: pb.Heartbeat, To: 3, From: 1, ShardID: 5, Commit: 9}}}
	want, err := mb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	used := bufpool.Get(mb.Size())
	used = used[:cap(used)]
	for i := range used {
		used[i] = 0xff
	}
	bufpool.Put(used)
	for range 3 { // the pool may or may not hand the used buffer back
		got, err := marshalBatch(&mb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("a batch encoded into a used buffer differs from Marshal's")
		}
		bufpool.Put(got)
	}
}

// TestTransportClaimedFrameLength: connections that each claim a frame of
// the largest size and send a few bytes of it hold about what they sent,
// not what they claimed (they held 96 MiB each: a few of them, from
// anyone who reached the Raft port, ended the node).
func TestTransportClaimedFrameLength(t *testing.T) {
	addr := testutil.FreeAddr(t)
	receiver(t, addr)
	const conns = 16
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := make([]byte, 9, 9+100)
		h[0] = frameBatch
		binary.BigEndian.PutUint32(h[1:5], maxFrame)
		if _, err := c.Write(append(h, make([]byte, 100)...)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the frames' starts are read
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > conns*4<<20 {
		t.Fatalf("%d connections claiming %d MiB each grew the heap by %d MiB", conns, maxFrame>>20, grew>>20)
	}
}

// TestTransportLargeFrame: a frame larger than a read step arrives whole
// (the buffer grows as its bytes come, in pieces).
func TestTransportLargeFrame(t *testing.T) {
	addr := testutil.FreeAddr(t)
	_, batches, _ := receiver(t, addr)
	mb := batchFor(7)
	mb.Requests[0].Entries[0].Cmd = bytes.Repeat([]byte("0123456789abcdef"), (5*frameStep+12345)/16)
	p, err := mb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 9)
	h[0] = frameBatch
	binary.BigEndian.PutUint32(h[1:5], uint32(len(p)))
	binary.BigEndian.PutUint32(h[5:9], crc32.Checksum(p, frameCRC))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := append(h, p...)
	for len(frame) > 0 { // in pieces, as a slow link sends it
		k := min(len(frame), 300<<10)
		if _, err := c.Write(frame[:k]); err != nil {
			t.Fatal(err)
		}
		frame = frame[k:]
	}
	select {
	case b := <-batches:
		if got := b.Requests[0].Entries[0].Cmd; !bytes.Equal(got, mb.Requests[0].Entries[0].Cmd) {
			t.Fatalf("received %d bytes, want %d", len(got), len(mb.Requests[0].Entries[0].Cmd))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the large frame was not received")
	}
}
