package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servedCert is the certificate the MQTT listener presents.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// TestSIGHUPReloads: SIGHUP reloads the log level, the default quotas of
// new tenants and the MQTT listener's certificate (renewed in place)
// without a restart, and names a changed setting that takes one; the node
// stays up and ready.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	conf := filepath.Join(dir, "eddy.yaml")
	write := func(level string, perIP, rate int) {
		os.WriteFile(conf, []byte(fmt.Sprintf("log_level: %s\nmqtt_tls_cert: %s\nmqtt_tls_key: %s\nmax_connections_per_ip: %d\ntenant_defaults: {produce_records_per_sec: %d}\n",
			level, certFile, keyFile, perIP, rate)), 0o644)
	}
	write("info", 1000, 1000)
	p := newProc(t)
	p.args = []string{"--config", conf}
	p.start()
	before := servedCert(t, p.mqttAddr)

	writeSelfSigned(t, certFile, keyFile) // renewed in place
	write("debug", 500, 777)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload is logged", 10*time.Second, func() bool { return strings.Contains(p.log.String(), "SIGHUP: configuration reloaded") })
	logged := p.log.String()[strings.Index(p.log.String(), "SIGHUP: configuration reloaded"):]
	logged = logged[:strings.IndexByte(logged, '\n')]
	for _, want := range []string{"log_level=debug", "tenant_defaults", "mqtt certificate", "max_connections_per_ip"} {
		if !strings.Contains(logged, want) {
			t.Fatalf("the reload's log line lacks %q: %s", want, logged)
		}
	}
	after := servedCert(t, p.mqttAddr)
	pemNew, _ := os.ReadFile(certFile)
	block, _ := pem.Decode(pemNew)
	if bytes.Equal(before, after) || !bytes.Equal(after, block.Bytes) {
		t.Fatal("the listener still serves the old certificate after SIGHUP")
	}
	if !p.alive() {
		t.Fatal("SIGHUP stopped the node")
	}
	// A tenant created now gets the new defaults.
	p.do("POST", "/v1/tenants", "application/json", []byte(`{"name":"later"}`), nil)
	var tn struct {
		Quotas struct {
			ProduceRecordsPerSec int64 `json:"produce_records_per_sec"`
		} `json:"quotas"`
	}
	if code, err := p.do("GET", "/v1/tenants/later", "", nil, &tn); err != nil || code != 200 || tn.Quotas.ProduceRecordsPerSec != 777 {
		t.Fatalf("a tenant created after the reload: %d %v %+v", code, err, tn)
	}
	p.waitReady()
}

// TestSIGHUPReloadsBridges: mqtt_bridges change with SIGHUP, by name: a
// bridge added drains its broker without a restart, an invalid list is
// refused and leaves the running bridge alone, a bridge removed stops.
func TestSIGHUPReloadsBridges(t *testing.T) {
	up := mosquitto(t)
	conf := filepath.Join(t.TempDir(), "eddy.yaml")
	os.WriteFile(conf, []byte("log_level: info\n"), 0o644)
	p := newProc(t)
	p.args = []string{"--config", conf}
	p.start()
	p.mustCreateTopic("sensors", 1)
	reloads := 0
	hup := func() string {
		t.Helper()
		reloads++
		p.cmd.Process.Signal(syscall.SIGHUP)
		var line string
		waitFor(t, "the reload is logged", 10*time.Second, func() bool {
			lines := strings.Split(p.log.String(), "\n")
			n := 0
			for _, l := range lines {
				if strings.Contains(l, "SIGHUP: ") {
					if n++; n == reloads {
						line = l
						return true
					}
				}
			}
			return false
		})
		return line
	}
	bridges := func() int {
		var v bridgeView
		if code, err := p.do("GET", "/v1/bridges", "", nil, &v); err != nil || code != 200 {
			t.Fatalf("GET /v1/bridges: %d %v", code, err)
		}
		return len(v.Bridges)
	}

	os.WriteFile(conf, []byte(fmt.Sprintf(`log_level: info
mqtt_bridges:
  - name: site
    url: mqtt://%s
    filters: ["sensors/#"]
    tenant: default
    client_id: eddy-e2e-reload
`, up)), 0o644)
	if line := hup(); !strings.Contains(line, "mqtt bridge site started") {
		t.Fatalf("the reload's log line: %s", line)
	}
	p.waitBridge(t)
	publishUpstream(t, up, 0, 100)
	p.waitSeqs(t, "sensors", 100)

	os.WriteFile(conf, []byte("log_level: info\nmqtt_bridges: [{name: site2, url: mqtt://x}]\n"), 0o644)
	if line := hup(); !strings.Contains(line, "not valid") {
		t.Fatalf("an invalid bridge list: %s", line)
	}
	if n := bridges(); n != 1 {
		t.Fatalf("after an invalid reload: %d bridges, want the running one", n)
	}

	os.WriteFile(conf, []byte("log_level: info\n"), 0o644)
	if line := hup(); !strings.Contains(line, "mqtt bridge site stopped") {
		t.Fatalf("the reload's log line: %s", line)
	}
	if n := bridges(); n != 0 {
		t.Fatalf("after removing it: %d bridges", n)
	}
	p.waitReady()
}
