package e2e

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// TestListenersSurviveDescriptorExhaustion: a node limited to 512
// descriptors gets 700 sockets on each of its HTTP, MQTT and Kafka ports. The old
// accept loops returned on EMFILE and the API stayed dead until a restart;
// now the connection caps (fitted to the descriptor limit) refuse the
// surplus at accept, and once the sockets close both listeners serve again.
func TestListenersSurviveDescriptorExhaustion(t *testing.T) {
	p := newProc(t)
	p.wrap = []string{"prlimit", "--nofile=512:512"}
	p.start()
	p.mustCreateTopic("sensors", 1)
	var held []net.Conn
	for _, addr := range []string{p.httpAddr, p.mqttAddr, p.kafkaAddr} {
		for i := 0; i < 700; i++ {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				continue // the kernel's backlog is full: also a refusal
			}
			held = append(held, c)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the sockets closed: %v; log:\n%s", err, p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := p.metric(`eddy_connections_refused_total`); n == 0 {
		t.Fatal("no connection was refused at accept")
	}
	if got := p.readPartition("sensors", 0); len(got) != 0 {
		t.Fatalf("%d records", len(got))
	}
	p.pubWithin(5*time.Second, "mqttv311", "sensors/dev-1", "after")
	if out, err := p.kcat("default", p.token, "", "-L", "-m", "5"); err != nil {
		t.Fatalf("kafka metadata after the attack: %v %s", err, out)
	}
}
