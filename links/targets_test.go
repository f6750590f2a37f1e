package links

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

func TestTargetsCheck(t *testing.T) {
	tg, err := ParseTargets([]string{"10.20.0.0/16", "192.168.1.7"})
	if err != nil {
		t.Fatal(err)
	}
	const acme = eddy.TenantID("acme")
	for _, c := range []struct {
		addr string
		want string // "" allowed, else the kind named in the refusal
	}{
		{"93.184.216.34", ""},
		{"2606:2800:220:1:248:1893:25c8:1946", ""},
		{"10.20.3.4", ""},   // listed network
		{"192.168.1.7", ""}, // listed address
		{"192.168.1.8", "private"},
		{"10.21.0.1", "private"},
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"}, // IPv4-mapped
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"169.254.169.254", "link-local"}, // cloud metadata
		{"fe80::1", "link-local"},
		{"172.16.0.1", "private"},
		{"fd00::1", "private"},
		{"100.100.100.100", "special-purpose"}, // CGNAT
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "special-purpose"},
		{"64:ff9b::a00:1", "special-purpose"}, // NAT64 of 10.0.0.1
	} {
		err := tg.Check(acme, netip.MustParseAddr(c.addr))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused (%v), want allowed", c.addr, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || eddy.AsError(err).Code != eddy.CodeForbidden):
			t.Errorf("%s: %v, want a forbidden %q refusal", c.addr, err, c.want)
		}
		if err := tg.Check(eddy.DefaultTenant, netip.MustParseAddr(c.addr)); err != nil {
			t.Errorf("%s: the operator's tenant refused: %v", c.addr, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nowhere", ""} {
		if _, err := ParseTargets([]string{bad}); err == nil {
			t.Errorf("ParseTargets(%q) accepted", bad)
		}
	}
}

func TestTargetsCheckSpec(t *testing.T) {
	var tg Targets
	for _, to := range [][]string{{"127.0.0.1:9092"}, {"cloud.example.com:9092", "localhost:9092"}, {"Kafka.LOCALHOST.:9092"},
		{"[::1]:9092"}, {"169.254.169.254:80"}} {
		if err := tg.CheckSpec("acme", to); err == nil {
			t.Errorf("%v: accepted", to)
		}
	}
	if err := tg.CheckSpec("acme", []string{"cloud.example.com:9092", "93.184.216.34:9092"}); err != nil {
		t.Errorf("public targets refused: %v", err)
	}
}

// TestTargetsDial: a name that resolves to a refused address is refused
// after it resolves, before any connection is made; the operator's
// tenant and a listed network connect.
func TestTargetsDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx := context.Background()
	var none Targets
	if c, err := none.dialer("acme", time.Second, nil)(ctx, "tcp", "localhost:"+port); err == nil || !strings.Contains(err.Error(), "loopback") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("acme dialed localhost: %v", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the refused dial connected %d times", n)
	}
	lo, _ := ParseTargets([]string{"127.0.0.0/8"})
	for _, d := range []func(context.Context, string, string) (net.Conn, error){
		none.dialer(eddy.DefaultTenant, time.Second, nil), lo.dialer("acme", time.Second, nil)} {
		c, err := d(ctx, "tcp", "localhost:"+port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}
