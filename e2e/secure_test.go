package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecureByDefault(t *testing.T) {
	p := newProc(t)
	p.start()
	// The admin token is owner-only and its path is printed.
	st, err := os.Stat(filepath.Join(p.dataDir, "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v", err, st.Mode())
	}
	if !strings.Contains(p.log.String(), "admin.token") {
		t.Fatalf("the token's path is not printed:\n%s", p.log)
	}
	if st, err := os.Stat(filepath.Join(p.dataDir, "operator.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("operator.key: %v", err)
	}
	prof, err := os.ReadFile(filepath.Join(p.confDir, "profiles.yaml"))
	if err != nil || !strings.Contains(string(prof), "current: local") || !strings.Contains(string(prof), "admin.token") {
		t.Fatalf("profile: %v %s", err, prof)
	}
	// Without a token: 401 everywhere but health.
	for path, want := range map[string]int{"/v1/topics": 401, "/metrics": 401, "/v1/cluster": 401, "/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(p.url(path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s without a token: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// The CLI works at once through the profile.
	p.mustCLI("", "tenant", "create", "acme", "--max-topics", "3")
	p.mustCLI("", "topic", "create", "sensors", "--partitions", "1")
	if out := p.mustCLI("", "tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "default") {
		t.Fatalf("tenant list: %s", out)
	}
	// An acme admin token, then a produce-only device token minted by it.
	admin := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "acme", "--scopes", "admin", "--ttl", "1h"))
	p.mustCLI("", "topic", "create", "sensors", "--token", admin)
	dev := strings.TrimSpace(p.mustCLI("", "token", "issue", "--tenant", "acme", "--scopes", "produce:sens*", "--token", admin))
	if _, errOut, err := p.cli("", "token", "issue", "--tenant", "acme", "--scopes", "operator", "--token", admin); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("acme admin minted an operator token: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("hello\n", "produce", "sensors", "--token", dev); err != nil || !strings.Contains(errOut, "produced 1") {
		t.Fatalf("device produce: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("", "consume", "sensors", "--from-beginning", "--token", dev); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("device consume: %v %s", err, errOut)
	}
	// EDDY_TOKEN works too; acme sees only its own topic named sensors (one record).
	out := p.mustCLI("", "consume", "sensors", "--from-beginning", "--format", "text", "--token", admin)
	if out != "hello\n" {
		t.Fatalf("acme's sensors: %q", out)
	}
	// A tenant's own key, as docs/security.md does it: openssl makes the
	// pair, the tenant registers the public half and signs a device token
	// offline; removing the key revokes the token at once.
	dir := t.TempDir()
	priv, pubFile := filepath.Join(dir, "acme.key"), filepath.Join(dir, "acme.pub")
	for _, args := range [][]string{{"genpkey", "-algorithm", "ed25519", "-out", priv}, {"pkey", "-in", priv, "-pubout", "-out", pubFile}} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v %s", args, err, out)
		}
	}
	p.mustCLI("", "tenant", "key", "add", "acme", "acme-k1", "--alg", "EdDSA", "--file", pubFile, "--token", admin)
	if out := p.mustCLI("", "tenant", "key", "list", "acme", "--token", admin); !strings.Contains(out, "acme-k1") {
		t.Fatalf("key list: %s", out)
	}
	device := strings.TrimSpace(p.mustCLI("", "token", "sign", "--key", priv, "--kid", "acme-k1", "--tenant", "acme",
		"--scopes", "produce:sensors", "--subject", "dev-17", "--ttl", "720h"))
	if _, errOut, err := p.cli("signed offline\n", "produce", "sensors", "--token", device); err != nil || !strings.Contains(errOut, "produced 1") {
		t.Fatalf("produce with a self-signed device token: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("", "consume", "sensors", "--from-beginning", "--token", device); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Fatalf("the device token consumed: %v %s", err, errOut)
	}
	if _, errOut, err := p.cli("", "token", "sign", "--key", priv, "--kid", "acme-k1", "--tenant", "acme", "--scopes", "operator"); err == nil || !strings.Contains(errOut, "operator") {
		t.Fatalf("token sign granted operator: %v %s", err, errOut)
	}
	p.mustCLI("", "tenant", "key", "remove", "acme", "acme-k1", "--token", admin)
	if _, errOut, err := p.cli("revoked\n", "produce", "sensors", "--token", device); err == nil || !strings.Contains(errOut, "token_unknown_kid") {
		t.Fatalf("produce after the key was removed: %v %s", err, errOut)
	}
	// set-quota changes only the flags given.
	p.mustCLI("", "tenant", "set-quota", "acme", "--storage-bytes", "1000000")
	desc := p.mustCLI("", "tenant", "describe", "acme")
	if !strings.Contains(desc, `"storage_bytes": 1000000`) || !strings.Contains(desc, `"max_topics": 3`) {
		t.Fatalf("describe after set-quota: %s", desc)
	}
	// Profiles: a second profile, and switching.
	p.mustCLI("", "profile", "set", "acme", "--server", "http://"+p.httpAddr, "--token", admin)
	p.mustCLI("", "profile", "use", "acme")
	cmd := []string{"topic", "list"}
	out, _, err = p.cli("", cmd...)
	if err != nil || !strings.Contains(out, "sensors") {
		t.Fatalf("acme profile: %v %s", err, out)
	}
	if _, errOut, err := p.cli("", "profile", "use", "nope"); err == nil || !strings.Contains(errOut, "no profile") {
		t.Fatalf("unknown profile: %v %s", err, errOut)
	}
	// A restart keeps the key: the old tokens still work.
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	p.start()
	if _, errOut, err := p.cli("", "topic", "list", "--token", admin); err != nil {
		t.Fatalf("token after restart: %v %s", err, errOut)
	}
}
