package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/node"
)

// serveOnce runs eddy serve expecting it to fail at start; it returns the
// output.
func serveOnce(t *testing.T, confDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(eddyBin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+confDir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("eddy serve %v started: %s", args, out)
	}
	return string(out)
}

// TestStartWritesNothingUntilBound: a first start whose Kafka port is
// taken fails naming the address and the flag, and leaves no data
// directory binding, no token and no CLI profile behind; started again on
// a free port, the same directory works. A second node on the same
// machine writes its own CLI profile instead of repointing the first's.
func TestStartWritesNothingUntilBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newProc(t)
	out := serveOnce(t, p.confDir, "--data-dir", p.dataDir, "--http-addr", p.httpAddr, "--raft-addr", p.raftAddr,
		"--mqtt-addr", p.mqttAddr, "--kafka-addr", ln.Addr().String())
	if !strings.Contains(out, "Kafka address "+ln.Addr().String()+" is in use") || !strings.Contains(out, "--kafka-addr") || !strings.Contains(out, "nothing was written") {
		t.Fatalf("a taken Kafka port: %s", out)
	}
	for _, f := range []string{filepath.Join(p.dataDir, "node.json"), filepath.Join(p.dataDir, "admin.token"), filepath.Join(p.confDir, "profiles.yaml")} {
		if _, err := os.Stat(f); err == nil {
			t.Fatalf("%s was written by a start that failed", f)
		}
	}
	// Started again on a free port (and a new Raft address, which the
	// failed start did not bind the directory to), it works.
	p.raftAddr = testutil.FreeAddr(t)
	p.start()
	first := p.mustCLI("", "profile", "list")

	q := newProc(t)
	q.confDir = p.confDir // one user, one CLI configuration
	q.start()
	t.Setenv("EDDY_CONFIG_DIR", p.confDir)
	ps, _, err := node.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Profiles["local"].Server != "http://"+p.httpAddr {
		t.Fatalf("the second node repointed profile local to %s (it was %s):\n%s", ps.Profiles["local"].Server, p.httpAddr, first)
	}
	_, port, _ := strings.Cut(q.httpAddr, ":")
	if ps.Profiles["local-"+port].Server != "http://"+q.httpAddr {
		t.Fatalf("the second node's profile: %+v", ps.Profiles)
	}
}

// TestReadOnlyDataDir: a data directory on a read-only file system is
// named as such, not as "in use by another process".
func TestReadOnlyDataDir(t *testing.T) {
	ro := t.TempDir()
	p := newProc(t)
	script := `mount -t tmpfs -o ro tmpfs "$0" && exec "$@"`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script, ro, eddyBin, "serve", "--data-dir", filepath.Join(ro, "data"),
		"--http-addr", p.httpAddr, "--raft-addr", p.raftAddr, "--mqtt-addr", "off", "--kafka-addr", "off")
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "read-only file system") || strings.Contains(string(out), "in use by another process") {
		t.Fatalf("a read-only data directory: %v %s", err, out)
	}
}

// TestGoRunStopsWithIt: a node started with `go run` stops when the go
// command is killed by its PID, as a user of the README's quick start
// does; it used to keep serving, orphaned.
func TestGoRunStopsWithIt(t *testing.T) {
	p := newProc(t)
	cmd := exec.Command("go", "run", "../cmd/eddy", "serve", "--data-dir", p.dataDir, "--http-addr", p.httpAddr,
		"--raft-addr", p.raftAddr, "--mqtt-addr", "off", "--kafka-addr", "off")
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	var log testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	waitFor(t, "the node serves", 120*time.Second, func() bool {
		resp, err := http.Get(p.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	cmd.Process.Kill() // the go command, by its PID
	// The node writes to the pipe go run handed it: the pipe closes, and
	// Wait returns, only once the node has exited too.
	select {
	case <-exited:
	case <-time.After(45 * time.Second): // a graceful stop has 30 s
		t.Fatalf("the node still runs 45 s after go run was killed:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "stopped cleanly") {
		// Seen once in CI: the node began its graceful stop and was gone
		// before it finished, with nothing in its output to say why (the
		// issue's note tracks it). Not orphaned, which is what this test
		// is about; logged, so the case stays visible.
		t.Logf("the node exited before its clean stop finished:\n%s", log.String())
	}
}
