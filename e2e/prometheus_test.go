package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// TestPrometheus: Debian's Prometheus scrapes a real 3-node cluster under
// a load that touches every part (produce, a transform, a consumer group
// with lag, a fetch, MQTT devices, a link, a tenant over its rate quota).
// promtool checks and unit-tests the alert rules, Prometheus loads them,
// every node is up, every query of the Grafana dashboard returns data,
// and every Eddy family a node exports has a HELP text of its own.
func TestPrometheus(t *testing.T) {
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (apt-get install prometheus; .ci/run does)", bin)
		}
	}
	rules, _ := filepath.Abs("../deploy/prometheus/eddy-alerts.yml")
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", "../deploy/prometheus/eddy-alerts.test.yml"}} {
		if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}

	procs := newCluster(t, 3)
	p := procs[0]
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(`{"name":"demo","partitions":3,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	p.mustCreateTopic("enriched", 1)
	p.mustDeploy("enrich", buildWasm(t, "examples/transforms/enrich"))
	p.mustBind("enriched", `{"module":"enrich","config":{"fields":{"site":"edge-01"}}}`)
	p.createLink(map[string]any{"name": "mirror", "to": []string{p.kafkaAddr}, "topics": []string{"demo"},
		"target_prefix": "copy.", "sasl": "plain", "username": "default", "password": p.token})
	noisy := p.tenantToken("noisy", "admin", "produce:*")
	p.do("PATCH", "/v1/tenants/noisy", "application/json", []byte(`{"quotas":{"produce_records_per_sec":5}}`), nil)
	p.do("POST", "/v1/tenants/noisy/topics", "application/json", []byte(`{"name":"n"}`), nil)
	var member struct {
		MemberID string `json:"member_id"`
	}
	if code, err := p.do("POST", "/v1/groups/dash/members", "application/json", []byte(`{"topics":["demo"],"session_timeout_ms":60000}`), &member); err != nil || code != 200 && code != 201 {
		t.Fatalf("join: %d %v", code, err)
	}
	host, port, _ := strings.Cut(p.mqttAddr, ":")
	dev := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-u", "default", "-P", p.token, "-i", "dev-prom",
		"-t", "demo/dev-prom", "-q", "1", "-V", "mqttv5", "-l")
	stdin, _ := dev.StdinPipe()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	devDone := make(chan struct{})
	go func() { dev.Wait(); close(devDone) }()
	t.Cleanup(func() { stdin.Close(); dev.Process.Kill(); <-devDone })

	stop := make(chan struct{})
	var load sync.WaitGroup
	load.Add(1)
	go func() { // a second of everything, until stopped
		defer load.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			p.do("POST", "/v1/topics/demo/records", "application/json", []byte(fmt.Sprintf(`{"records":[{"key":"k%d","value":{"i":%d}}]}`, i%7, i)), nil)
			p.do("POST", "/v1/topics/enriched/records", "application/json", []byte(`{"records":[{"value":{"t":1}}]}`), nil)
			p.do("GET", "/v1/topics/demo/partitions/0/records?offset=0&max=10", "", nil, nil)
			fmt.Fprintf(stdin, "{\"i\":%d}\n", i)
			req, _ := http.NewRequest("POST", p.url("/v1/topics/n/records"), strings.NewReader(`{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5},{"value":6}]}`))
			req.Header.Set("Authorization", "Bearer "+noisy)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); load.Wait() })

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "eddy.token")
	os.WriteFile(tokenFile, []byte(p.token), 0o600)
	var targets []string
	for _, n := range procs {
		targets = append(targets, "'"+n.httpAddr+"'")
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: eddy
    authorization: {credentials_file: %q}
    static_configs: [{targets: [%s]}]
`, rules, tokenFile, strings.Join(targets, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	addr := testutil.FreeAddr(t)
	startPrometheus(t, cfgFile, "prometheus", "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	query := func(q string) (int, error) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if r.Status != "success" {
			return 0, fmt.Errorf("%s", r.Error)
		}
		return len(r.Data.Result), nil
	}
	waitFor(t, "Prometheus scrapes all three nodes", 60*time.Second, func() bool {
		n, err := query(`sum(up{job="eddy"}) == 3`)
		return err == nil && n == 1
	})

	// Every query of the dashboard, once the load has been scraped for
	// a while (rate() over 1m needs two samples).
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("../deploy/grafana/eddy.json")
	if err != nil || json.Unmarshal(b, &dash) != nil {
		t.Fatalf("the dashboard: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	checked := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			for {
				n, err := query(tg.Expr)
				if err != nil {
					t.Fatalf("panel %q: %s: %v", panel.Title, tg.Expr, err)
				}
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("panel %q: %s returns no data", panel.Title, tg.Expr)
				}
				time.Sleep(time.Second)
			}
			checked++
		}
	}

	// The rules loaded and evaluate.
	resp, err := http.Get("http://" + addr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	var rl struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&rl)
	resp.Body.Close()
	nrules := 0
	for _, g := range rl.Data.Groups {
		for _, r := range g.Rules {
			nrules++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if nrules == 0 {
		t.Fatal("Prometheus loaded no rules")
	}

	// HELP of Eddy's own for every family a node exports.
	for _, n := range procs {
		_, text := n.getText("/metrics")
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "# HELP eddy_") && strings.Contains(line, "(no description yet)") {
				t.Errorf("node %d: %s", n.nodeID, line)
			}
		}
	}
	t.Logf("%d dashboard queries return data; %d alert rules loaded", checked, nrules)
}

// startPrometheus checks cfgFile with promtool, then runs Prometheus (the
// command and its arguments: "prometheus ...", or "ip netns exec ...")
// until the test ends, showing its log if the test failed.
func startPrometheus(t *testing.T, cfgFile string, command ...string) {
	t.Helper()
	if out, err := exec.Command("promtool", "check", "config", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	prom := exec.Command(command[0], command[1:]...)
	var promLog testutil.SyncBuffer
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	promDone := make(chan struct{})
	go func() { prom.Wait(); close(promDone) }()
	t.Cleanup(func() {
		prom.Process.Kill()
		<-promDone
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
}
