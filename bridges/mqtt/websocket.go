package mqtt

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MQTT over WebSockets (browsers: MQTT.js, paho-js): an HTTP server on the
// guarded listener upgrades each request (subprotocol "mqtt", binary
// messages) and hands the connection on as a net.Conn, which then goes
// through the same CONNECT bounds, authentication and hooks as TCP. The
// upgrade itself is bounded: headers within the connect timeout and
// 16 KiB, and a request that is not an upgrade is answered and its
// connection closed. (Kept alive, such a connection was held with nothing
// to time it out: 1,000 of them from each address could fill the
// listener for good.)

type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newWSListener(ln net.Listener, timeout time.Duration, maxMessage int64) *wsListener {
	w := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}, HandshakeTimeout: timeout,
		// Tokens, not cookies, authenticate: a page of any origin may
		// connect with a token it holds, as any MQTT client may.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(rw http.ResponseWriter, _ *http.Request, status int, reason error) {
			rw.Header().Set("Connection", "close")
			rw.Header().Set("Sec-Websocket-Version", "13")
			http.Error(rw, reason.Error(), status)
		}}
	w.srv = &http.Server{ReadHeaderTimeout: timeout, IdleTimeout: timeout, MaxHeaderBytes: 16 << 10,
		ErrorLog: nil, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(rw, r, nil)
			if err != nil {
				return // Upgrade answered the error
			}
			c.SetReadLimit(maxMessage)
			select {
			case w.conns <- &wsConn{c: c}:
			case <-w.done:
				c.Close()
			}
		})}
	go w.srv.Serve(ln)
	return w
}

func (w *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	}
}

func (w *wsListener) Close() error {
	w.once.Do(func() { close(w.done); w.srv.Close() })
	return nil
}

func (w *wsListener) Addr() net.Addr { return w.ln.Addr() }

// wsConn is a WebSocket connection as a byte stream: reads run across
// binary messages, each write is one message.
type wsConn struct {
	c  *websocket.Conn
	r  io.Reader
	mu sync.Mutex // one writer at a time
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			kind, r, err := c.c.NextReader()
			if err != nil {
				return 0, err
			}
			if kind != websocket.BinaryMessage {
				return 0, errors.New("mqtt over websocket: a text message")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                      { return c.c.Close() }
func (c *wsConn) LocalAddr() net.Addr               { return c.c.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr              { return c.c.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// SetWriteDeadline takes the writers' lock: gorilla allows no deadline
// change during a write (mochi's reader refreshes the deadline while its
// writer writes).
func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.SetWriteDeadline(t)
}

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}
