package netguard

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serve accepts on a guarded loopback listener and holds what it accepts.
func serve(t *testing.T, cfg Config) (*Listener, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Wrap(ln, cfg)
	t.Cleanup(func() { g.Close() })
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return g, accepted
}

// closedAtOnce reports whether the server closed c without a word.
func closedAtOnce(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

func TestCapsAndRelease(t *testing.T) {
	var refused atomic.Int64
	g, accepted := serve(t, Config{Name: "test", MaxConns: 5, MaxConnsPerIP: 3, OnRefused: func(string) { refused.Add(1) }})
	var clients []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", g.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if !closedAtOnce(clients[3]) || closedAtOnce(clients[0]) {
		t.Fatal("the fourth connection from one address was not the one refused")
	}
	if st := g.Status(); st.Open != 3 || st.Refused != 1 || !st.Serving || refused.Load() != 1 {
		t.Fatalf("status %+v, OnRefused %d", st, refused.Load())
	}
	// A closed connection gives its place back.
	(<-accepted).Close()
	time.Sleep(50 * time.Millisecond)
	c, _ := net.Dial("tcp", g.Addr().String())
	if closedAtOnce(c) {
		t.Fatal("a place freed by a close was not given back")
	}
	if g.Status().Open != 3 {
		t.Fatalf("open %d after one closed and one came", g.Status().Open)
	}
	g.Close()
	if g.Status().Serving {
		t.Fatal("a closed listener reports serving")
	}
}

func TestTemporary(t *testing.T) {
	for _, err := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, fmt.Errorf("accept: %w", syscall.EMFILE)} {
		if !Temporary(err) {
			t.Errorf("%v is not temporary", err)
		}
	}
	if Temporary(net.ErrClosed) {
		t.Error("a closed listener is temporary")
	}
}

// TestSurvivesEMFILE: with the descriptor limit reached, Accept waits and
// retries instead of returning, and serves again once descriptors free.
func TestSurvivesEMFILE(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	g, accepted := serve(t, Config{Name: "test"})
	addr := g.Addr().String()
	low := lim
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	var held []net.Conn
	for i := 0; i < 80; i++ { // more than the limit: dials fail, accepts hit EMFILE
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			held = append(held, c)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for !g.Status().Starved && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !g.Status().Starved {
		t.Fatal("the listener never reported running out of descriptors")
	}
	for _, c := range held {
		c.Close()
	}
	for len(accepted) > 0 {
		(<-accepted).Close()
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-accepted:
		s.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("the listener did not serve again after descriptors were freed")
	}
}

// addrConn is a connection from addr (only its RemoteAddr is used).
type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }

// TestPerIPv6Prefix: the addresses of one IPv6 /64 count as one source
// (a host picks any of them); another /64, or an IPv4 address, apart.
func TestPerIPv6Prefix(t *testing.T) {
	l := &Listener{cfg: Config{MaxConnsPerIP: 2}, perIP: map[string]int{}}
	from := func(ip string) net.Conn { return addrConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}} }
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:aaaa::1"} {
		if why := l.admit(from(ip)); why != "" {
			t.Fatalf("%s: %s", ip, why)
		}
	}
	if why := l.admit(from("2001:db8:1:2:ffff:ffff:ffff:ffff")); why != "max_connections_per_ip" {
		t.Fatalf("a third address of the /64: %q", why)
	}
	for _, ip := range []string{"2001:db8:1:3::1", "192.0.2.1", "::ffff:192.0.2.2"} {
		if why := l.admit(from(ip)); why != "" {
			t.Fatalf("%s: %s", ip, why)
		}
	}
	l.release(from("2001:db8:1:2::1"))
	if why := l.admit(from("2001:db8:1:2::77")); why != "" {
		t.Fatalf("after a release: %s", why)
	}
}
