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
// closed at once) or made to swallow answers: requests reach the cloud,
// which stores them, but no answer comes back, so the edge holds batches
// sent and not acknowledged, the case exactly-once is about.
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

func newUplink(t *testing.T, target string) *uplink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
		go u.pipe(s, c, false) // client to cloud
		go u.pipe(c, s, true)  // cloud to client
	}
}

func (u *uplink) track(cs ...net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range cs {
		u.conns[c] = true
	}
}

func (u *uplink) pipe(dst, src net.Conn, answers bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch m := u.mode.Load(); {
			case m == uplinkDown:
				return
			case m == uplinkSwallow && answers:
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

// set changes the mode; down and swallow close every open connection.
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
