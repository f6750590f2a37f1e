package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// uplink is a TCP proxy standing for a gateway's uplink to one cloud
// node's Kafka listener (the node advertises the proxy's address, so every
// connection goes through it). It can be cut (connections closed, new ones
// closed at once) or made to swallow the answers to produce requests: the
// cloud stores a batch, but its answer never comes back (the connection
// then closes, as a dead uplink's ends in a timeout), so the edge holds
// batches sent and not acknowledged, the case exactly-once is about. The
// other answers (ApiVersions, Metadata, InitProducerId) pass, so the edge
// keeps sending: swallowing those too left it stuck in its handshake, with
// nothing in flight to lose (a CI failure).
type uplink struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // uplinkUp, uplinkDown, uplinkSwallow
	bytes  atomic.Int64 // client to cloud, while up
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

const (
	uplinkUp int32 = iota
	uplinkDown
	uplinkSwallow
)

func newUplink(t *testing.T, target string) *uplink { return newUplinkOn(t, "127.0.0.1", target) }

// newUplinkOn is an uplink listening on another loopback address.
func newUplinkOn(t *testing.T, host, target string) *uplink {
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	u := &uplink{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go u.serve()
	t.Cleanup(u.close)
	return u
}

func (u *uplink) addr() string { return u.ln.Addr().String() }

func (u *uplink) serve() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		if u.mode.Load() == uplinkDown {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", u.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		u.track(c, s)
		var produced atomic.Bool          // a produce request went up while swallowing
		go u.pipe(s, c, false, &produced) // client to cloud
		go u.pipe(c, s, true, &produced)  // cloud to client
	}
}

func (u *uplink) track(cs ...net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range cs {
		u.conns[c] = true
	}
}

func (u *uplink) pipe(dst, src net.Conn, answers bool, produced *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	var frames kafkaFrames
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !answers && frames.sawProduce(buf[:n]) && u.mode.Load() == uplinkSwallow {
				produced.Store(true)
			}
			switch m := u.mode.Load(); {
			case m == uplinkDown:
				return
			case m == uplinkSwallow && answers && produced.Load():
				// The cloud answered; the edge never hears it. Close
				// soon, as a dead uplink's connection ends in a timeout.
				time.AfterFunc(200*time.Millisecond, func() { dst.Close(); src.Close() })
				io.Copy(io.Discard, src)
				return
			}
			if !answers {
				u.bytes.Add(int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// kafkaFrames follows the requests on a connection (a 4-byte size, then
// the header, whose first field is the API key) across reads.
type kafkaFrames struct {
	head []byte // the start of the next request, while under 6 bytes
	left int    // bytes of the current request not yet seen
}

// sawProduce consumes b and reports whether a produce request (key 0)
// began in it.
func (f *kafkaFrames) sawProduce(b []byte) bool {
	saw := false
	for len(b) > 0 {
		if f.left > 0 {
			k := min(f.left, len(b))
			f.left, b = f.left-k, b[k:]
			continue
		}
		k := min(6-len(f.head), len(b))
		f.head, b = append(f.head, b[:k]...), b[k:]
		if len(f.head) < 6 {
			break
		}
		size := int(f.head[0])<<24 | int(f.head[1])<<16 | int(f.head[2])<<8 | int(f.head[3])
		saw = saw || (f.head[4] == 0 && f.head[5] == 0)
		f.left, f.head = size-2, f.head[:0]
	}
	return saw
}

// set changes the mode; down closes every open connection.
func (u *uplink) set(mode int32) {
	u.mode.Store(mode)
	if mode == uplinkUp {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if mode == uplinkDown {
		for c := range u.conns {
			c.Close()
		}
		u.conns = map[net.Conn]bool{}
	}
}

func (u *uplink) close() {
	u.ln.Close()
	u.set(uplinkDown)
}
