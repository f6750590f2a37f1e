package eddy_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// dragonboat v4 only builds with the pebble it was written against. Any
// dependency that asks for a newer pebble raises it through minimal version
// selection and breaks the build in dragonboat's internals; go.mod's replace
// pins it. This test fails the moment the resolved pebble changes.
func TestPebblePinned(t *testing.T) {
	const want = "v0.0.0-20221207173255-0f086d933dac"
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/cockroachdb/pebble").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var m struct {
		Version string
		Replace *struct{ Version string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	got := m.Version
	if m.Replace != nil {
		got = m.Replace.Version
	}
	if got != want {
		t.Fatalf("pebble resolves to %s, dragonboat needs %s: keep the replace in go.mod", got, want)
	}
}

// Each heavy dependency lives behind one door (DESIGN.md, Layout).
func TestDependencyDoors(t *testing.T) {
	doors := map[string][]string{
		"github.com/lni/dragonboat":         {"github.com/eddy-broker/eddy/multiraft"},
		"github.com/lni/vfs":                {"github.com/eddy-broker/eddy/multiraft"},
		"github.com/valyala/fasthttp":       {"github.com/eddy-broker/eddy/bridges/http", "github.com/eddy-broker/eddy/web", "github.com/eddy-broker/eddy/scripts/sink"},
		"github.com/tetratelabs/wazero":     {"github.com/eddy-broker/eddy/wasm"},
		"github.com/mochi-mqtt":             {"github.com/eddy-broker/eddy/bridges/mqtt"},
		"github.com/eclipse/paho":           {"github.com/eddy-broker/eddy/bridges/mqtt", "github.com/eddy-broker/eddy/examples", "github.com/eddy-broker/eddy/e2e"},
		"github.com/golang-jwt":             {"github.com/eddy-broker/eddy/tenants"},
		"github.com/twmb/franz-go/pkg/kmsg": {"github.com/eddy-broker/eddy/batch", "github.com/eddy-broker/eddy/bridges/kafka", "github.com/eddy-broker/eddy/links"},
		"github.com/twmb/franz-go/pkg/kgo":  {"github.com/eddy-broker/eddy/bridges/kafka", "github.com/eddy-broker/eddy/links", "github.com/eddy-broker/eddy/e2e"},
		"github.com/IBM/sarama":             {"github.com/eddy-broker/eddy/e2e"},
		"github.com/twmb/franz-go/pkg/kadm": {"github.com/eddy-broker/eddy/e2e"},
		"github.com/klauspost/compress":     {"github.com/eddy-broker/eddy/batch"},
		"github.com/pierrec/lz4":            {"github.com/eddy-broker/eddy/batch"},
		"github.com/chromedp":               {"github.com/eddy-broker/eddy/e2e"},
		"github.com/getkin/kin-openapi":     {"github.com/eddy-broker/eddy/e2e"},
		"github.com/gorilla/websocket":      {"github.com/eddy-broker/eddy/bridges/mqtt"},
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/eddy-broker/eddy/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// The catalog's apply is the cluster's specification, run by its
	// tests without Raft: it imports nothing from outside Eddy.
	pure := map[string]bool{"github.com/eddy-broker/eddy/multiraft/catalog": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			if pure[pkg] && strings.Contains(strings.Split(imp, "/")[0], ".") && !strings.HasPrefix(imp, "github.com/eddy-broker/eddy") {
				t.Errorf("%s imports %s; it imports only the standard library and Eddy", pkg, imp)
			}
			for dep, allowed := range doors {
				if !strings.HasPrefix(imp, dep) {
					continue
				}
				ok := false
				for _, a := range allowed {
					if pkg == a || strings.HasPrefix(pkg, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", pkg, imp, allowed)
				}
			}
		}
	}
}
