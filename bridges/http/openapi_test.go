package httpapi

import (
	"os"
	"strings"
	"testing"

	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/series"
	"go.yaml.in/yaml/v4"
)

// TestOpenAPIRoutes: docs/openapi.yaml lists exactly the routes the
// server registers (e2e TestOpenAPI runs its examples against a node).
func TestOpenAPIRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	e := newEnv(t, multiraft.Config{}, Config{Pprof: true, Console: true, Series: series.New(series.Config{})})
	// The router's catch-all segments are plain parameters in OpenAPI.
	checkRoutes(t, e.srv, documented, "docs/openapi.yaml",
		strings.NewReplacer("{path:*}", "{path}", "{profile:*}", "{profile}").Replace)
}
