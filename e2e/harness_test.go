// Package e2e runs the real eddy binary as a separate process and talks to
// it over HTTP, as a user would.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/eddy-broker/eddy/internal/testutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var eddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-e2e-bin")
	if err != nil {
		panic(err)
	}
	eddyBin = filepath.Join(dir, "eddy")
	build := exec.Command("go", "build", "-o", eddyBin, "../cmd/eddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build eddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one eddy serve process.
type proc struct {
	tb       testing.TB
	dataDir  string
	confDir  string // EDDY_CONFIG_DIR: where serve writes the CLI profile
	token    string // the bootstrap admin token
	httpAddr string
	raftAddr string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	exited   chan error
}

func newProc(tb testing.TB) *proc {
	return &proc{tb: tb, dataDir: tb.TempDir(), confDir: tb.TempDir(), httpAddr: testutil.FreeAddr(tb), raftAddr: testutil.FreeAddr(tb)}
}

func (p *proc) start() {
	p.tb.Helper()
	p.log = &bytes.Buffer{}
	p.cmd = exec.Command(eddyBin, "serve", "--data-dir", p.dataDir, "--http-addr", p.httpAddr, "--raft-addr", p.raftAddr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	p.tb.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				tok, err := os.ReadFile(filepath.Join(p.dataDir, "admin.token"))
				if err != nil {
					p.tb.Fatalf("no bootstrap admin token: %v", err)
				}
				p.token = strings.TrimSpace(string(tok))
				return
			}
		}
		select {
		case err := <-p.exited:
			p.tb.Fatalf("eddy exited during start: %v\n%s", err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("eddy not ready after 30s\n%s", p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) url(path string) string { return "http://" + p.httpAddr + path }

func (p *proc) do(method, path, ctype string, body []byte, out any) (int, error) {
	req, _ := http.NewRequest(method, p.url(path), bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

func (p *proc) mustCreateTopic(name string, partitions int) {
	p.tb.Helper()
	body := fmt.Sprintf(`{"name":%q,"partitions":%d}`, name, partitions)
	var out map[string]any
	if code, err := p.do("POST", "/v1/topics", "application/json", []byte(body), &out); err != nil || code != 201 {
		p.tb.Fatalf("create topic: %d %v %v", code, err, out)
	}
}

type fetchedRecord struct {
	Offset int64           `json:"offset"`
	Key    json.RawMessage `json:"key"`
	Value  json.RawMessage `json:"value"`
}

// readPartition returns every record of a partition, in offset order.
func (p *proc) readPartition(topic string, part int) []fetchedRecord {
	p.tb.Helper()
	var all []fetchedRecord
	off := int64(0)
	for {
		var fr struct {
			Records       []fetchedRecord `json:"records"`
			NextOffset    int64           `json:"next_offset"`
			HighWatermark int64           `json:"high_watermark"`
		}
		code, err := p.do("GET", fmt.Sprintf("/v1/topics/%s/partitions/%d/records?offset=%d&max=1000", topic, part, off), "", nil, &fr)
		if err != nil || code != 200 {
			p.tb.Fatalf("fetch: %d %v", code, err)
		}
		all = append(all, fr.Records...)
		if fr.NextOffset >= fr.HighWatermark || len(fr.Records) == 0 {
			return all
		}
		off = fr.NextOffset
	}
}

func jsonString(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return strings.TrimSpace(string(raw))
	}
	return s
}
