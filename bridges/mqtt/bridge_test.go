package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/tenants"
)

// collected is the node side of a bridge in this test: it keeps what the
// bridge appends.
type collected struct {
	mu   sync.Mutex
	recs []eddy.Record
}

func (c *collected) Ingest(_ context.Context, _ eddy.TopicRef, recs []eddy.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, recs...)
	return nil
}
func (c *collected) MaxMessageBytes(eddy.TopicRef) (int64, error)            { return 1 << 20, nil }
func (c *collected) Mapping(eddy.TenantID) *tenants.MQTTMapping              { return nil }
func (c *collected) CreateTopic(context.Context, eddy.TopicRef, int32) error { return nil }
func (c *collected) MaxConnections(eddy.TenantID) int64                      { return 0 }
func (c *collected) count() int                                              { c.mu.Lock(); defer c.mu.Unlock(); return len(c.recs) }

// startMosquitto runs Debian's mosquitto on a free loopback port, in
// memory, with extra lines of configuration, until the test ends; it
// returns its address and port.
func startMosquitto(t *testing.T, extra string) (addr, port string) {
	t.Helper()
	addr = testutil.FreeAddr(t)
	_, port, _ = strings.Cut(addr, ":")
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s", port, extra)), 0o644)
	mosq := exec.Command("/usr/sbin/mosquitto", "-c", conf)
	if err := mosq.Start(); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	t.Cleanup(func() { mosq.Process.Signal(syscall.SIGKILL); mosq.Wait() })
	return addr, port
}

// TestBridgeDropsAndResumes: a bridge whose connection it drops (as it
// does when appending stays wedged) connects again to a real mosquitto,
// resumes its session and keeps delivering.
func TestBridgeDropsAndResumes(t *testing.T) {
	addr, port := startMosquitto(t, "")
	publish := func(n int) {
		t.Helper()
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "m%d\n", i)
		}
		for range 100 {
			cmd := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "s/dev", "-l")
			cmd.Stdin = strings.NewReader(b.String())
			if cmd.Run() == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("mosquitto_pub failed")
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}
	in := &collected{}
	b, err := NewBridge(BridgeConfig{Name: "t", URL: "mqtt://" + addr, Filters: []string{"s/#"}, Tenant: "default"}, 1, in, metrics.NewSet(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	until("subscribed", b.subscribed.Load)
	publish(10)
	until("10 messages arrived", func() bool { return in.count() >= 10 })
	gen := b.gen.Load()
	b.dropConnection()
	until("connected again", func() bool { return b.gen.Load() > gen && b.subscribed.Load() })
	publish(10)
	until("10 more arrived", func() bool { return in.count() >= 20 })

	if _, err := NewBridge(BridgeConfig{Name: "ws", URL: "ws://" + addr, Filters: []string{"s/#"}, Tenant: "default"}, 1, in, metrics.NewSet(), slog.Default()); err == nil {
		t.Fatal("a ws:// bridge was accepted; the bridge dials mqtt and mqtts only")
	}
}
