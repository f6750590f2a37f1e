package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestForgedTokensThrottled: a client sending forged tokens from one
// address, as fast as it can, gets them checked up to the default
// auth_failures_per_ip (100 at once, 10 a second), then refused
// unchecked, 429 auth_throttled; the same address's good token, verified
// before, is served; another address's forged token is checked in full;
// an MQTT device of the address with a forged password is refused.
func TestForgedTokensThrottled(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("t", 1)
	from := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}}
	}
	get := func(c *http.Client, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", p.url("/v1/topics"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Error struct{ Code string } }
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error.Code
	}
	attacker, other := from("127.0.0.1"), from("127.0.0.2")
	if code, _ := get(attacker, p.token); code != 200 {
		t.Fatalf("the good token: %d", code)
	}
	forged := p.token[:len(p.token)-4] + "AAAA"
	codes := map[string]int{}
	for range 300 {
		_, c := get(attacker, forged)
		codes[c]++
	}
	t.Logf("300 forged tokens from one address: %v", codes)
	if codes["token_bad_signature"] < 100 || codes["token_bad_signature"] > 150 || codes["auth_throttled"] < 100 {
		t.Fatalf("300 forged tokens at once: %v; want 100 checked (the burst) and a few more at 10 a second, the rest throttled", codes)
	}
	if code, _ := get(attacker, p.token); code != 200 {
		t.Fatalf("the address's good token, verified before, while its forged ones are throttled: %d", code)
	}
	if code, c := get(other, forged); code != 401 || c != "token_bad_signature" {
		t.Fatalf("another address's forged token: %d %s", code, c)
	}
	m := dialMQTT(t, p)
	if ok, _ := m.connect(t, 5, "dev", "default", forged, true); ok {
		t.Fatal("an MQTT device with a forged token was let in")
	}
	if n := p.metric(`eddy_mqtt_connect_refused_total{code="auth_throttled"}`); n != 1 {
		t.Fatalf("MQTT refusals as throttled: %v", n)
	}
	if n := p.metric("eddy_auth_throttled_total"); n < float64(codes["auth_throttled"]+1) {
		t.Fatalf("eddy_auth_throttled_total %v, want at least %d", n, codes["auth_throttled"]+1)
	}
}
