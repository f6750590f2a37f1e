package node

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/eddy-broker/eddy/internal/buildinfo"
)

// nodeMetrics registers what describes the node itself: its build, and
// when its bootstrap admin token expires.
func (n *Node) nodeMetrics() {
	n.metrics.GetOrCreateGauge(fmt.Sprintf(`eddy_build_info{version=%q,commit=%q}`, buildinfo.Version(), buildinfo.Commit()), func() float64 { return 1 })
	path := n.cfg.AdminTokenPath()
	n.metrics.GetOrCreateGauge("eddy_admin_token_expiry_timestamp_seconds", func() float64 { return float64(tokenExpiry(path)) })
}

// tokenExpiry reads a JWT file's exp claim, unverified (the node wrote
// it); 0 when it cannot.
func tokenExpiry(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	parts := strings.Split(strings.TrimSpace(string(b)), ".")
	if len(parts) != 3 {
		return 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	json.Unmarshal(payload, &c)
	return c.Exp
}
