package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLinkTargets: a tenant's link reaches public addresses and the
// networks the operator allows (here 127.0.0.2/32), nothing else of the
// node's network. Literal addresses are refused when the link is
// created; a name resolving to loopback, and a target advertising its
// brokers on loopback, are refused when dialed, and the refused port
// sees no connection. A link to the allowed network forwards.
func TestLinkTargets(t *testing.T) {
	// A port on the node's loopback, counting who connects to it.
	var trapped atomic.Int64
	trap := serveLoopback(t, "127.0.0.1", func(net.Conn) { trapped.Add(1) })
	_, trapPort, _ := net.SplitHostPort(trap)

	// cloud is reached through an allowed address and advertises it;
	// sly is reached the same way and advertises the trap.
	cloud, sly := newProc(t), newProc(t)
	up := newUplinkOn(t, "127.0.0.2", cloud.kafkaAddr)
	cloud.env = append(cloud.env, "EDDY_ADVERTISE_KAFKA_ADDR="+up.addr())
	slyUp := newUplinkOn(t, "127.0.0.2", sly.kafkaAddr)
	sly.env = append(sly.env, "EDDY_ADVERTISE_KAFKA_ADDR="+trap)
	edge := newProc(t)
	edge.env = append(edge.env, "EDDY_LINK_ALLOWED_TARGETS=127.0.0.2/32")
	for _, p := range []*proc{cloud, sly, edge} {
		p.start()
	}
	acme := edge.tenantToken("acme", "admin", "produce:*")
	if a := edge.request("POST", "/v1/topics", acme, `{"name":"sensors"}`); a.code != 201 {
		t.Fatalf("acme's topic: %+v", a)
	}
	for i := range 10 {
		if a := edge.request("POST", "/v1/topics/sensors/records", acme, fmt.Sprintf(`{"records":[{"value":"r%d"}]}`, i)); a.code != 200 {
			t.Fatalf("produce: %+v", a)
		}
	}
	link := func(name string, target *proc, to ...string) answer {
		body, _ := json.Marshal(map[string]any{"name": name, "to": to, "topics": []string{"sensors"}, "target_prefix": "acme.",
			"sasl": "plain", "username": "default", "password": target.token})
		return edge.request("POST", "/v1/links", acme, string(body))
	}

	for _, to := range []string{cloud.kafkaAddr, "169.254.169.254:80", "10.1.2.3:9092", "[::1]:" + trapPort, "LocalHost.:" + trapPort} {
		a := link("refused", cloud, "cloud.example.com:9092", to)
		if a.code != 403 || !strings.Contains(a.body, `"forbidden"`) || !strings.Contains(a.body, "link_allowed_targets") {
			t.Errorf("a link to %s: %d %s; want 403 forbidden naming link_allowed_targets", to, a.code, a.body)
		}
	}
	// The operator's own tenant is not bound.
	edge.createLink(map[string]any{"name": "ops", "to": []string{cloud.kafkaAddr}, "topics": []string{"none"}})

	// Every address is checked again when dialed: the brokers a target
	// advertises too, refused before connecting (links/targets_test.go
	// has a name that resolves to loopback).
	if a := link("advertised", sly, slyUp.addr()); a.code != 201 {
		t.Fatalf("a link to the allowed address: %+v", a)
	}
	if a := link("cloud", cloud, up.addr()); a.code != 201 {
		t.Fatalf("a link to the allowed address: %+v", a)
	}
	waitFor(t, "the allowed link forwards", 30*time.Second, func() bool {
		var v linkView
		edge.request("GET", "/v1/links/cloud", acme, "").decode(t, &v)
		return drained(v, 1)
	})
	if n := len(cloud.readPartition("acme.sensors", 0)); n != 10 {
		t.Fatalf("the cloud holds %d of acme's 10 records", n)
	}
	var v linkView
	defer func() { t.Logf("advertised: %s, %q", v.State, errorsOf(v)) }()
	waitFor(t, "the link to a target advertising loopback says why", 30*time.Second, func() bool {
		v = linkView{}
		edge.request("GET", "/v1/links/advertised", acme, "").decode(t, &v)
		return strings.Contains(errorsOf(v), "loopback")
	})
	if forwarded(v) != 0 || v.State == "running" {
		t.Errorf("the link to a target advertising loopback: %s, forwarded %d", v.State, forwarded(v))
	}
	if n := trapped.Load(); n != 0 {
		t.Fatalf("the edge connected %d times to a loopback port a tenant named", n)
	}
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if a.code != 200 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatal(err)
	}
}
