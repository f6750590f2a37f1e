package tenants

import (
	"net/netip"
	"sync"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/netguard"
)

// Anyone can send a token, and one that was never issued costs a full
// check: its JSON parsed, its key looked up, its signature verified
// (30-54 us of a node's CPU, 212 us with a 4,096-bit RSA key;
// BenchmarkForgedToken), and a refusal is not cached. A client that only
// sends forged or stale tokens makes the node do the most work a request
// can cost before it knows who asks, for nothing. FailureLimit gives each
// source address a bucket of refused tokens: once an address has had
// more refused than its bucket holds, the tokens it sends that are not
// in the verified cache are refused at once (auth_throttled), without a
// check, until the bucket refills. A token that verified before, from
// that address or any other, is served as always, so a client of a good
// token behind the same address is not refused; a brute force or a
// forged-token flood is held to the rate, as Kafka's delayed answers to
// failed logins and EMQX's banned clients hold theirs.

// FailureLimit bounds, per source address (an IPv6 one's /64), the
// refused tokens a node checks in full. The zero value, or PerSecond 0, limits nothing.
type FailureLimit struct {
	// PerSecond is the refused tokens an address may send a second, over
	// time; an address may send Burst at once (at least PerSecond).
	PerSecond float64
	Burst     float64
	// OnThrottle, if set, is called for each token refused unchecked.
	OnThrottle func()

	mu sync.Mutex
	by map[netip.Addr]*failures
}

type failures struct {
	room float64   // refusals the address may still have now
	at   time.Time // when room was computed
}

// maxFailingAddrs bounds the addresses tracked; past it, addresses whose
// bucket is full again are forgotten, and a new one is not tracked until
// there is room (it is checked in full, as with no limit).
const maxFailingAddrs = 16 << 10

// blocked reports whether a has no refusals left.
func (l *FailureLimit) blocked(a netip.Addr, now time.Time) bool {
	if l == nil || l.PerSecond <= 0 || !a.IsValid() {
		return false
	}
	a = netguard.Source(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.by[a]
	return f != nil && l.refill(f, now) < 1
}

// failed counts a refused token from a.
func (l *FailureLimit) failed(a netip.Addr, now time.Time) {
	if l == nil || l.PerSecond <= 0 || !a.IsValid() {
		return
	}
	a = netguard.Source(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.by[a]
	if f == nil {
		if l.by == nil {
			l.by = map[netip.Addr]*failures{}
		}
		if len(l.by) >= maxFailingAddrs {
			for k, g := range l.by {
				if l.refill(g, now) >= l.burst() {
					delete(l.by, k)
				}
			}
			if len(l.by) >= maxFailingAddrs {
				return
			}
		}
		f = &failures{room: l.burst(), at: now}
		l.by[a] = f
	}
	l.refill(f, now)
	f.room--
}

func (l *FailureLimit) burst() float64 { return max(l.Burst, l.PerSecond, 1) }

func (l *FailureLimit) refill(f *failures, now time.Time) float64 {
	f.room = min(l.burst(), f.room+now.Sub(f.at).Seconds()*l.PerSecond)
	f.at = now
	return f.room
}

// VerifyFrom is VerifyBytes of a token sent from the address from (its
// IP; the zero Addr when unknown), within the Verifier's Failures: an
// address that has had too many tokens refused gets the next one that
// is not in the verified cache refused unchecked (CodeAuthThrottled).
// An absent token is not counted (it costs nothing to refuse).
func (v *Verifier) VerifyFrom(token []byte, from netip.Addr) (*Principal, error) {
	if p, ok := lookup(&v.cache, v, token); ok {
		return p, nil
	}
	if len(token) == 0 {
		return v.Verify("")
	}
	now := v.now()
	if v.Failures.blocked(from, now) {
		if v.Failures.OnThrottle != nil {
			v.Failures.OnThrottle()
		}
		return nil, &eddy.Error{Code: eddy.CodeAuthThrottled, RetryAfterMs: 1000,
			Message: "too many refused tokens from " + from.String() + ": tokens that did not verify before are refused unchecked for a while"}
	}
	p, err := v.Verify(string(token))
	if err != nil {
		v.Failures.failed(from, now)
	}
	return p, err
}

// RemoteAddr is the IP of a network address ("host:port"), or the zero
// Addr.
func RemoteAddr(hostport string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
