package links

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/eddy-broker/eddy"
)

// Targets is where a tenant's links may connect. A tenant names its
// link's brokers, and a target names more in its metadata, but the
// network the node stands in is the operator's: without a bound, a
// tenant's link is a way into the gateway's own ports, its LAN (the PLCs
// next to it) and the cloud's metadata service, and its status a port
// scanner. So a tenant's link reaches public addresses, and of the rest
// only the networks the operator lists (link_allowed_targets), as
// GitLab's webhooks do. Every address is checked as it is dialed, after
// the name is resolved: a name that resolves to a loopback address, or a
// target that advertises brokers on the node's LAN, is refused too.
//
// The operator's own tenant (default) is not bound: the operator sets the
// policy and reaches those networks anyway.
type Targets struct {
	allowed []netip.Prefix
}

// ParseTargets reads link_allowed_targets: CIDRs or single addresses.
func ParseTargets(list []string) (Targets, error) {
	var t Targets
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return Targets{}, fmt.Errorf("link_allowed_targets: %q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		t.allowed = append(t.allowed, p.Masked())
	}
	return t, nil
}

// special are the ranges other than the public Internet that netip's own
// predicates (loopback, private, link-local, multicast, unspecified) do
// not name: "this network", carrier-grade NAT (Tailscale and most VPNs),
// benchmarking, reserved and broadcast, and NAT64 (which reaches IPv4
// addresses through a translator).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// kindOf names what an address is when it is not public, "" when it is.
func kindOf(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsPrivate():
		return "a private address"
	case a.IsMulticast():
		return "a multicast address"
	}
	for _, p := range special {
		if p.Contains(a) {
			return "a special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

// Check says whether tenant's links may connect to a; nil when they may.
func (t Targets) Check(tenant eddy.TenantID, a netip.Addr) error {
	a = a.Unmap()
	if tenant == eddy.DefaultTenant {
		return nil
	}
	kind := kindOf(a)
	if kind == "" {
		return nil
	}
	for _, p := range t.allowed {
		if p.Contains(a) {
			return nil
		}
	}
	return eddy.Errorf(eddy.CodeForbidden, "link target %s is %s: a tenant's links reach public addresses and the networks in the node's link_allowed_targets", a, kind)
}

// CheckSpec refuses, when a link is created, the brokers it names that
// are refused anyway: literal addresses and localhost. Names are checked
// when dialed.
func (t Targets) CheckSpec(tenant eddy.TenantID, to []string) error {
	for _, b := range to {
		host, _, err := net.SplitHostPort(b)
		if err != nil {
			continue // the spec's own validation says why
		}
		if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
			host = "127.0.0.1"
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if err := t.Check(tenant, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// dialer is a link's dial function: TCP (and TLS when cfg is not nil)
// to the addresses Check allows, refused before the connection is made.
func (t Targets) dialer(tenant eddy.TenantID, timeout time.Duration, cfg *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return t.Check(tenant, ap.Addr())
	}}
	if cfg == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		c := cfg.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(host)
		}
		return (&tls.Dialer{NetDialer: d, Config: c}).DialContext(ctx, network, host)
	}
}
