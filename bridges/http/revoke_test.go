package httpapi

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/multiraft"
)

// TestTailEndsOnRevocation: a live tail is a long-lived session; when its
// token is revoked (here: its tenant deleted and created again) the stream
// ends within a second or two with an error event, instead of streaming
// the new tenant's records to the old tenant's token.
func TestTailEndsOnRevocation(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	admin := e.tenantTopic("acme", "s")
	req, _ := http.NewRequest("GET", e.base+"/v1/topics/s/tail", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tail: %v %v", err, resp)
	}
	defer resp.Body.Close()
	if code, _, body := e.req("DELETE", "/v1/tenants/acme?force=true", "", ""); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	e.req("POST", "/v1/tenants", "application/json", `{"name":"acme"}`)
	ended := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
		}
		ended <- all.String()
	}()
	select {
	case out := <-ended:
		if !strings.Contains(out, "token_revoked") {
			t.Fatalf("the tail ended without saying why:\n%s", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the tail of a revoked token is still streaming")
	}
}
