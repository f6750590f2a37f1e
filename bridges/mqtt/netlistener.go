package mqtt

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/internal/netguard"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// guardedListener is the listener mochi serves from. Before a connection
// reaches mochi it must, within ConnectTimeout, send a CONNECT of at most
// MaxConnectBytes; memory grows only as its bytes arrive (mochi itself
// allocates a packet's declared size at once, which let unauthenticated
// sockets claim 16 MiB each). Caps per listener and per source address,
// and surviving descriptor exhaustion, come from netguard.
type guardedListener struct {
	id      string       // mochi's listener id
	ln      net.Listener // guard, or TLS over guard (or WebSockets over those)
	guard   *netguard.Listener
	timeout time.Duration
	maxConn int
	onDrop  func(reason string)
	onPanic func(c net.Conn, v any) // a packet panicked mochi's decoder (recovered.go)
	log     *slog.Logger

	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

func (l *guardedListener) ID() string                 { return l.id }
func (l *guardedListener) Address() string            { return l.ln.Addr().String() }
func (l *guardedListener) Protocol() string           { return "tcp" }
func (l *guardedListener) Init(*slog.Logger) error    { return nil }
func (l *guardedListener) Status() netguard.Status    { return l.guard.Status() }
func (l *guardedListener) Close(cl listeners.CloseFn) { l.close(cl) }

func (l *guardedListener) close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	already := l.closing
	l.closing = true
	l.mu.Unlock()
	if already {
		return
	}
	l.ln.Close()
	closeClients(l.ID())
}

// Serve accepts until the listener closes; each connection's CONNECT is
// read on its own goroutine, so a slow one never holds up the others.
func (l *guardedListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			pre, err := l.readConnect(c)
			if err != nil {
				c.Close()
				return
			}
			defer func() {
				if v := recover(); v != nil {
					if !inDecoder() {
						panic(v)
					}
					l.onPanic(pre, v)
				}
			}()
			if err := establish(l.ID(), pre); err != nil {
				l.log.Debug("mqtt connection ended", logkey.Remote, c.RemoteAddr().String(), logkey.Err, err)
			}
		}()
	}
}

// readConnect reads the first packet, which must be a CONNECT within the
// size and time bounds, and returns a conn that replays it to mochi. The
// deadline stays set: mochi replaces it with the keep-alive once it has
// parsed the CONNECT, so authentication is inside the bound too.
func (l *guardedListener) readConnect(c net.Conn) (net.Conn, error) {
	c.SetDeadline(time.Now().Add(l.timeout))
	br := bufio.NewReaderSize(c, 512)
	var head bytes.Buffer
	b, err := br.ReadByte()
	if err != nil {
		l.onDrop("connect_timeout")
		return nil, err
	}
	head.WriteByte(b)
	if b>>4 != packets.Connect {
		l.onDrop("not_connect")
		return nil, io.ErrUnexpectedEOF
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		d, err := br.ReadByte()
		if err != nil {
			l.onDrop("connect_timeout")
			return nil, err
		}
		head.WriteByte(d)
		n += int(d&127) * mult
		mult *= 128
		if d&128 == 0 {
			break
		}
		if i == 3 {
			l.onDrop("malformed")
			return nil, io.ErrUnexpectedEOF
		}
	}
	if n > l.maxConn {
		l.onDrop("connect_too_large")
		return nil, packets.ErrPacketTooLarge
	}
	// Grows with what arrives, not with what was declared.
	if _, err := io.CopyN(&head, br, int64(n)); err != nil {
		l.onDrop("connect_timeout")
		return nil, err
	}
	return &replayConn{Conn: c, r: io.MultiReader(&head, br)}, nil
}

// replayConn reads the bytes already taken, then the connection, and
// counts its large packets in the node's request memory (meter.go).
type replayConn struct {
	net.Conn
	r     io.Reader
	set   time.Time // the deadline last set on the connection
	meter packetMeter
	read  int // packets mochi has read (OnPacketRead), on its read loop
}

// drained reports whether mochi has read every byte handed to it: each
// packet handed over whole has been read, and none is begun. Only mochi's
// read loop may ask (it is the one that reads and parses).
func (c *replayConn) drained() bool {
	return c.read == c.meter.whole && c.meter.between()
}

func (c *replayConn) Read(p []byte) (int, error) {
	c.meter.before()
	n, err := c.r.Read(p)
	if n > 0 {
		if merr := c.meter.scan(p[:n]); merr != nil {
			return 0, merr
		}
	}
	return n, err
}

func (c *replayConn) Close() error {
	c.meter.close()
	return c.Conn.Close()
}

// deadlineSlack is how much later than asked a connection's deadline may
// fall (see SetDeadline).
const deadlineSlack = time.Second

// SetDeadline sets the connection's deadline to t, or leaves it where it
// is when that is no earlier than t and at most deadlineSlack later.
// mochi moves the deadline to 1.5 times the keep-alive from now at
// every packet it reads, and each move resets the runtime's timer of
// the connection (2.4% of the node's CPU under QoS 1 publishes from
// 1,000 devices); so it is set deadlineSlack ahead and moved about once
// a second. A silent device is cut off at most a second after its
// keep-alive ran out (mosquitto checks keep-alives once a second too).
// Only mochi's read loop calls it, after the CONNECT.
func (c *replayConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.set = t
		return c.Conn.SetDeadline(t)
	}
	if !c.set.IsZero() && !c.set.Before(t) && c.set.Sub(t) <= deadlineSlack {
		return nil
	}
	c.set = t.Add(deadlineSlack)
	return c.Conn.SetDeadline(c.set)
}
