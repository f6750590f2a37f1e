package multiraft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/internal/bufpool"
	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Eddy's Raft transport: frames of message batches and snapshot chunks over
// TCP, one connection per sending stream.
//
// Why not dragonboat's built-in TCP transport: a sender only writes, so it
// learns that its peer restarted when a write to the dead connection fails.
// That failure drops the batch and trips dragonboat's per-peer circuit
// breaker, which then refuses every message to the peer for 0.25-1 s. After
// a rolling restart or a failover the first messages to a restarted node
// are votes, leader appends and ReadIndex answers, so each restart cost up
// to a second of stall. Here every outgoing connection also reads: the peer
// never writes on it, so a read that returns means the peer closed it, and
// the next send dials the peer again instead of failing.
//
// Frame: kind (1 byte) | payload length (4 bytes, big endian) | CRC-32C of
// the payload (4 bytes) | payload (a marshalled pb.MessageBatch or pb.Chunk).
// The handlers dragonboat passes in check deployment id and version.

const (
	frameBatch = 1
	frameChunk = 2
	// maxFrame bounds a payload: a batch is bounded by MaxSendQueueSize
	// (64 MiB), a chunk by dragonboat's chunk size (about 2 MiB).
	maxFrame = 96 << 20
	// frameStep is the most of a frame's claimed length read before its
	// bytes arrive (readFrame).
	frameStep    = 1 << 20
	dialTimeout  = 2 * time.Second
	writeTimeout = 5 * time.Second
)

var frameCRC = crc32.MakeTable(crc32.Castagnoli)

type transportFactory struct {
	log   *slog.Logger
	peers *peerMode // TLS with the peers or not (peertls.go)
	// maxHandshakes bounds the connections not yet known to be peers
	// (strangers, peertls.go); 0: defaultMaxHandshakes.
	maxHandshakes int
	onRefused     func(reason string) // a connection closed at accept
}

// defaultMaxHandshakes is raft_max_handshakes' default.
const defaultMaxHandshakes = 256

var _ config.TransportFactory = (*transportFactory)(nil)

func (f *transportFactory) Create(nhc config.NodeHostConfig, mh raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	peers := f.peers
	if peers == nil {
		peers = newPeerMode(nil, false)
	}
	limit := f.maxHandshakes
	if limit <= 0 {
		limit = defaultMaxHandshakes
	}
	return &tcpTransport{listen: nhc.GetListenAddress(), onBatch: mh, onChunk: ch, log: f.log, peers: peers,
		strangers: newStrangers(limit), onRefused: f.onRefused, conns: map[net.Conn]struct{}{}}
}

func (f *transportFactory) Validate(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil
}

type tcpTransport struct {
	listen    string
	onBatch   raftio.MessageHandler
	onChunk   raftio.ChunkHandler
	log       *slog.Logger
	peers     *peerMode
	strangers *strangers
	onRefused func(reason string)

	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // accepted, open
	closed bool
	wg     sync.WaitGroup
}

func (t *tcpTransport) Name() string { return "eddy-tcp" }

func (t *tcpTransport) Start() error {
	ln, err := net.Listen("tcp", t.listen)
	if err != nil {
		return err
	}
	t.ln = ln
	t.wg.Add(1)
	go t.accept()
	return nil
}

func (t *tcpTransport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if closed {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		src := netguard.SourceOf(c.RemoteAddr())
		if reason := t.strangers.enter(src); reason != "" {
			c.Close()
			repeats.Log(t.log, slog.LevelWarn, "raft strangers|"+src.String(), "raft transport: a connection closed at accept: too many in their handshake", logkey.Peer, c.RemoteAddr().String(), "reason", reason)
			if t.onRefused != nil {
				t.onRefused(reason)
			}
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			t.strangers.leave(src)
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(c, src)
	}
}

// serve readies a connection (peerMode.accept: its handshake, counted
// among the strangers until done), then reads frames from it until it closes or a frame
// is bad (then the connection is dropped; the peer reconnects).
func (t *tcpTransport) serve(raw net.Conn, src netip.Addr) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.conns, raw) // as accept added it (not the TLS or sniffing conn over it)
		t.mu.Unlock()
		raw.Close()
	}()
	c, plain, err := t.peers.accept(raw)
	t.strangers.leave(src)
	if err != nil {
		if errors.Is(err, io.EOF) { // closed unsaid: a peer's liveness probe
			return
		}
		host, _, _ := net.SplitHostPort(raw.RemoteAddr().String())
		repeats.Log(t.log, slog.LevelWarn, "raft tls|"+host, "raft transport: a connection refused", logkey.Peer, raw.RemoteAddr().String(), logkey.Err, err)
		return
	}
	if plain {
		defer t.peers.forget(raw)
		t.logPlain(raw.RemoteAddr().String(), "a peer connected without TLS")
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		kind, payload, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Debug("raft transport: dropping a connection", logkey.Peer, c.RemoteAddr().String(), logkey.Err, err)
			}
			return
		}
		switch kind {
		case frameBatch:
			var mb pb.MessageBatch
			err := mb.Unmarshal(payload)
			bufpool.Put(payload)
			if err != nil {
				t.log.Warn("raft transport: undecodable message batch", logkey.Peer, c.RemoteAddr().String(), logkey.Err, err)
				return
			}
			t.onBatch(mb)
		case frameChunk:
			var ck pb.Chunk
			err := ck.Unmarshal(payload)
			bufpool.Put(payload)
			if err != nil {
				t.log.Warn("raft transport: undecodable snapshot chunk", logkey.Peer, c.RemoteAddr().String(), logkey.Err, err)
				return
			}
			if !t.onChunk(ck) {
				return
			}
		default:
			t.log.Warn("raft transport: unknown frame", logkey.Peer, c.RemoteAddr().String(), "kind", kind)
			return
		}
	}
}

// logPlain says, at most once a minute a peer, that a connection to or
// from it is plain although this node has TLS (raft_tls_permissive).
func (t *tcpTransport) logPlain(addr, what string) {
	host, _, _ := net.SplitHostPort(addr)
	repeats.Log(t.log, slog.LevelInfo, "raft plain|"+what+"|"+host, "raft transport: "+what+" (raft_tls_permissive)", logkey.Peer, addr)
}

func (t *tcpTransport) Close() error {
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	var err error
	if t.ln != nil {
		err = t.ln.Close()
	}
	t.wg.Wait()
	return err
}

func (t *tcpTransport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	c := &peerConn{t: t, target: target}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return &batchConn{c}, nil
}

func (t *tcpTransport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	c := &peerConn{t: t, target: target}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return &chunkConn{c}, nil
}

// peerConn is an outgoing connection that notices its peer closing it.
type peerConn struct {
	t      *tcpTransport
	target string
	conn   net.Conn
	w      *bufio.Writer
	gone   chan struct{} // closed when the peer closed the connection
}

func (c *peerConn) dial(ctx context.Context) error {
	peers := c.t.peers
	conn, plain, err := peers.dial(ctx, c.target)
	if err != nil {
		return err
	}
	if plain {
		c.t.logPlain(c.target, "a peer does not answer TLS: sending to it without")
	}
	c.conn, c.w, c.gone = conn, bufio.NewWriterSize(conn, 64<<10), make(chan struct{})
	go func(conn net.Conn, gone chan struct{}) {
		var b [1]byte
		conn.Read(b[:]) // the peer never writes: any return is its close
		if plain {
			peers.forget(conn)
		}
		close(gone)
	}(conn, c.gone)
	return nil
}

func (c *peerConn) peerGone() bool {
	select {
	case <-c.gone:
		return true
	default:
		return false
	}
}

// send writes one frame. If the peer has closed the connection since the
// last send (it restarted), it dials again first rather than fail.
func (c *peerConn) send(kind byte, payload []byte) error {
	if c.peerGone() {
		c.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		err := c.dial(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	var hdr [9]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:5], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[5:9], crc32.Checksum(payload, frameCRC))
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(payload); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *peerConn) Close() { c.conn.Close() }

type batchConn struct{ *peerConn }

// SendMessageBatch encodes b into a pooled buffer (a leader's batches of
// entries are megabytes; a new buffer for each was zeroed and faulted in)
// and sends it.
func (c *batchConn) SendMessageBatch(b pb.MessageBatch) error {
	payload, err := marshalBatch(&b)
	if err != nil {
		return err
	}
	err = c.send(frameBatch, payload)
	bufpool.Put(payload)
	return err
}

// marshalBatch encodes b into a buffer from bufpool.
func marshalBatch(b *pb.MessageBatch) ([]byte, error) {
	buf := bufpool.Get(b.Size())
	n, err := b.MarshalTo(buf[:cap(buf)])
	if err != nil {
		bufpool.Put(buf)
		return nil, err
	}
	return buf[:n], nil
}

type chunkConn struct{ *peerConn }

func (c *chunkConn) SendChunk(ck pb.Chunk) error {
	payload, err := ck.Marshal()
	if err != nil {
		return err
	}
	return c.send(frameChunk, payload)
}

// readFrame reads one frame. Its payload comes from bufpool: the caller
// gives it back once decoded (dragonboat's decoders copy what they keep:
// an entry's command, a chunk's data; TestDecodedMessagesOwnTheirBytes).
// A follower made a new buffer for each batch of entries, zeroed and
// faulted in, a fifth of its CPU under RF 3 produce.
//
// The length is what the sender claims: a payload over frameStep is read
// into a buffer that doubles as its bytes arrive, so a connection that
// claims 96 MiB and sends no more holds about what it sent (it held the
// whole claim, and a few such connections ended the node).
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:5]))
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the %d-byte limit", n, maxFrame)
	}
	payload := bufpool.Get(min(n, frameStep))[:0]
	for len(payload) < n {
		if len(payload) == cap(payload) {
			grown := bufpool.Get(min(n, 2*cap(payload)))[:len(payload)]
			copy(grown, payload)
			bufpool.Put(payload)
			payload = grown
		}
		got, err := io.ReadFull(r, payload[len(payload):min(n, cap(payload))])
		payload = payload[:len(payload)+got]
		if err != nil {
			bufpool.Put(payload)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	if crc32.Checksum(payload, frameCRC) != binary.BigEndian.Uint32(hdr[5:9]) {
		bufpool.Put(payload)
		return 0, nil, errors.New("frame checksum mismatch")
	}
	return hdr[0], payload, nil
}
