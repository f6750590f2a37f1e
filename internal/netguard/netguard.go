// Package netguard keeps a network listener serving under attack: it caps
// open connections per listener and per source address (refusing the rest
// by closing them at once, before any byte is read), survives descriptor
// exhaustion (EMFILE, ENFILE) by backing off instead of returning from the
// accept loop, and reports whether it is serving, for /readyz.
//
// Every client-facing listener of a node (HTTP, MQTT, and the protocols
// to come) is wrapped in one:
//
//	ln, _ := net.Listen("tcp", addr)
//	g := netguard.Wrap(ln, netguard.Config{Name: "http", MaxConns: 4096, MaxConnsPerIP: 1024})
//	srv.Serve(g) // Accept never returns EMFILE; connections over a cap are closed
//
// A connection counts from Accept to its first Close.
package netguard

import (
	"errors"
	"github.com/eddy-broker/eddy/internal/logkey"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config bounds one listener. Zero values mean no bound.
type Config struct {
	// Name names the listener in logs and Status ("http", "mqtt").
	Name string
	// MaxConns bounds the listener's open connections.
	MaxConns int
	// MaxConnsPerIP bounds the open connections from one source address.
	MaxConnsPerIP int
	// Logger gets a warning (at most one every 10 s) while accepting fails
	// for want of descriptors or memory. Defaults to slog.Default().
	Logger *slog.Logger
	// OnRefused, if set, is called for each connection closed at accept
	// ("max_connections" or "max_connections_per_ip"), for metrics.
	OnRefused func(reason string)
}

// Listener is a guarded net.Listener.
type Listener struct {
	net.Listener
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	open  int
	perIP map[string]int

	closed   atomic.Bool
	starved  atomic.Bool  // accepting fails for want of descriptors now
	lastWarn atomic.Int64 // unix nanos of the last warning
	refused  atomic.Int64
}

// Wrap guards ln.
func Wrap(ln net.Listener, cfg Config) *Listener {
	l := &Listener{Listener: ln, cfg: cfg, log: cfg.Logger, perIP: map[string]int{}}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

// Accept returns the next connection within the caps. Running out of
// descriptors (or kernel buffers) does not end it: it waits, 5 ms doubling
// to 1 s, and tries again, so the listener serves again as soon as
// descriptors are free. It returns an error only once the listener is
// closed.
func (l *Listener) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.closed.Load() || !Temporary(err) {
				l.closed.Store(true)
				return nil, err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.starved.Store(true)
			if now := time.Now().UnixNano(); now-l.lastWarn.Load() > int64(10*time.Second) {
				l.lastWarn.Store(now)
				l.log.Warn("accept failed; retrying", logkey.Listener, l.cfg.Name, logkey.Err, err, "retry_in", backoff)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.starved.Store(false)
		if reason := l.admit(c); reason != "" {
			c.Close()
			l.refused.Add(1)
			if l.cfg.OnRefused != nil {
				l.cfg.OnRefused(reason)
			}
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// admit counts c in, or says which cap it is over.
func (l *Listener) admit(c net.Conn) string {
	ip := hostOf(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxConns > 0 && l.open >= l.cfg.MaxConns {
		return "max_connections"
	}
	if l.cfg.MaxConnsPerIP > 0 && l.perIP[ip] >= l.cfg.MaxConnsPerIP {
		return "max_connections_per_ip"
	}
	l.open++
	l.perIP[ip]++
	return ""
}

func (l *Listener) release(c net.Conn) {
	ip := hostOf(c.RemoteAddr())
	l.mu.Lock()
	l.open--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

// Close closes the listener; open connections stay open.
func (l *Listener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

// Status is what /readyz and metrics show of a listener.
type Status struct {
	Name    string `json:"name"`
	Serving bool   `json:"serving"`
	// Starved: accepting fails now for want of descriptors or memory.
	Starved bool  `json:"starved,omitempty"`
	Open    int   `json:"open"`
	Refused int64 `json:"refused"`
}

// Status reports the listener's state.
func (l *Listener) Status() Status {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return Status{Name: l.cfg.Name, Serving: !l.closed.Load() && !l.starved.Load(), Starved: l.starved.Load(), Open: open, Refused: l.refused.Load()}
}

// Temporary reports whether an accept error passes: out of descriptors,
// memory or buffers, a connection aborted before it was accepted, or a
// timeout.
func Temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// hostOf is the source a connection counts as (Source of its address).
func hostOf(a net.Addr) string {
	if s := SourceOf(a); s.IsValid() {
		return s.String()
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return Source(ip).String()
	}
	return h
}

// SourceOf is the Source of a TCP connection's address (the zero Addr
// for another kind).
func SourceOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(t.IP); ok {
			return Source(ip)
		}
	}
	return netip.Addr{}
}

// Source is the source an address counts as in a per-address limit:
// itself for IPv4, its /64 for IPv6 (a host is given a /64 at least, so
// each of its addresses would otherwise count apart, and a limit by
// address would limit nothing).
func Source(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// conn releases its place in the caps on its first Close.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.Conn) })
	return err
}

// RaiseFileLimit raises the process's soft descriptor limit to its hard
// limit (Go does so at start since 1.19; this makes it explicit and
// reports the result) and returns the soft limit now in force.
func RaiseFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}
