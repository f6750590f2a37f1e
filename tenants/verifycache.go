package tenants

import (
	"sync"
	"time"
)

// maxVerified bounds the verified-token cache (about 0.5 KB an entry).
const maxVerified = 4096

// verifiedCache remembers tokens that verified, so a client sending the
// same token on every request pays for the signature check once: an
// Ed25519 check and the JWT decoding were about 6% of the produce path's
// CPU. A hit is served only while Verifier.Recheck passes: the token is
// unexpired (with the same leeway as a full check), the very key that
// verified it (tenant, kid, algorithm and PEM) is still registered, and its
// tenant is the same incarnation; so removing a key, or a tenant, revokes
// its tokens at once, as without the cache. Only exact token strings hit:
// anything altered is verified in full.
type verifiedCache struct {
	mu sync.Mutex
	m  map[string]verified
}

type verified struct {
	p     *Principal // shared by every hit: never modified after Verify
	until time.Time  // exp + leeway
}

func (c *verifiedCache) get(v *Verifier, token string) (*Principal, bool) {
	return lookup(c, v, token)
}

// lookup is get of a token as a string or as bytes (the map's index by
// string(token) copies neither).
func lookup[T string | []byte](c *verifiedCache, v *Verifier, token T) (*Principal, bool) {
	c.mu.Lock()
	e, ok := c.m[string(token)]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if v.Recheck(e.p) != nil {
		c.drop(string(token))
		return nil, false
	}
	return e.p, true
}

func (c *verifiedCache) put(token string, p *Principal, leeway time.Duration) {
	if p.Expires.IsZero() {
		return
	}
	e := verified{p: p, until: p.Expires.Add(leeway)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verified)
	}
	if len(c.m) >= maxVerified {
		// Full: drop the expired ones and at least an eighth of the rest.
		now, n := time.Now(), 0
		for t, old := range c.m {
			if now.After(old.until) || n < maxVerified/8 {
				delete(c.m, t)
				n++
			}
		}
	}
	c.m[token] = e
}

func (c *verifiedCache) drop(token string) {
	c.mu.Lock()
	delete(c.m, token)
	c.mu.Unlock()
}
