package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
)

// TestTailsTenantShare: a tenant opens at most half the node's live tails
// (429 past it), so another tenant still opens one; a tail that ends
// gives its slot back.
func TestTailsTenantShare(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	acme := e.tenantTopic("acme", "s")
	e.mustCreate("d", 1, "")
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: maxTails, MaxIdleConnsPerHost: maxTails}}
	open := func(token, topic string) *http.Response {
		req, _ := http.NewRequest("GET", e.base+"/v1/topics/"+topic+"/tail", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var held []*http.Response
	for range maxTails / 2 {
		if resp := open(acme, "s"); resp.StatusCode != 200 {
			t.Fatalf("tail %d of acme: %d", len(held)+1, resp.StatusCode)
		} else {
			held = append(held, resp)
		}
	}
	if resp := open(acme, "s"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("acme's tail past half the node's: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp := open(e.token, "d"); resp.StatusCode != 200 {
		t.Fatalf("another tenant's tail while acme holds its half: %d", resp.StatusCode)
	}
	// A tail whose client went is seen gone at its next write (a record,
	// or the keepalive every 15 s), and gives its slot back.
	held[0].Body.Close()
	for i := 0; ; i++ {
		if code, _, body := e.reqAs(acme, "POST", "/v1/topics/s/records", "application/json", `{"records":[{"value":1}]}`); code != 200 {
			t.Fatalf("produce: %d %s", code, body)
		}
		resp := open(acme, "s")
		if resp.StatusCode == 200 {
			break
		}
		resp.Body.Close()
		if i == 50 {
			t.Fatalf("acme's tail after one ended: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
