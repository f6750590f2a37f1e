package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigLayers(t *testing.T) {
	f := filepath.Join(t.TempDir(), "eddy.yaml")
	os.WriteFile(f, []byte("data_dir: /var/lib/eddy\nhttp_addr: :9000\nlinger: 3ms\npeers:\n  1: 127.0.0.1:7100\n"), 0o644)
	c := DefaultConfig()
	if err := c.LoadFile(f); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EDDY_HTTP_ADDR": "127.0.0.1:9001", "EDDY_NODE_ID": "1", "EDDY_RAFT_MAX_UNAPPLIED_BYTES": "16777216"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/eddy" || c.HTTPAddr != "127.0.0.1:9001" || c.Linger != 3*time.Millisecond || c.RaftAddr != "127.0.0.1:7100" ||
		c.RaftMaxUnappliedBytes != 16<<20 {
		t.Fatalf("layered config: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.YAML(), "data_dir: /var/lib/eddy") {
		t.Fatalf("yaml: %s", c.YAML())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"node id", func(c *Config) { c.NodeID = 0 }, "node_id"},
		{"http addr", func(c *Config) { c.HTTPAddr = "nope" }, "http_addr"},
		{"wildcard raft", func(c *Config) { c.RaftAddr = ":7100" }, "wildcard"},
		{"peers without self", func(c *Config) { c.Peers = map[uint64]string{2: "10.0.0.2:7100"} }, "include this node"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log_format"},
		{"unapplied bytes", func(c *Config) { c.RaftMaxUnappliedBytes = 1 << 20 }, "raft_max_unapplied_bytes"},
		{"request memory", func(c *Config) { c.MaxRequestMemory = 16 << 20 }, "max_request_memory"},
		{"controller share", func(c *Config) { c.TenantControllerInFlight = 0 }, "tenant_controller_inflight"},
		{"raft tls parts", func(c *Config) { c.RaftTLSCert, c.RaftTLSKey = "c.pem", "k.pem" }, "go together"},
		{"permissive without tls", func(c *Config) { c.RaftTLSPermissive = true }, "raft_tls_permissive needs raft_tls_cert"},
		{"negative publish rate", func(c *Config) { c.MQTTPublishRate = -1 }, "mqtt_publish_rate"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	bad := DefaultConfig()
	if err := bad.ApplyEnv(func(k string) (string, bool) { return "x", k == "EDDY_NODE_ID" }); err == nil || !strings.Contains(err.Error(), "EDDY_NODE_ID") {
		t.Errorf("bad env: %v", err)
	}
	if _, err := ParsePeers("1=a:1,two=b:2"); err == nil {
		t.Error("bad peers accepted")
	}
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("htp_addr: :1\n"), 0o644)
	c := DefaultConfig()
	if err := c.LoadFile(f); err == nil || !strings.Contains(err.Error(), "htp_addr") {
		t.Errorf("unknown key: %v", err)
	}
}
