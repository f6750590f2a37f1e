package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterCerts makes, with openssl as an operator would, a cluster CA and
// a certificate for each of n nodes signed by it, and returns the CA's
// file and each node's certificate and key files.
func clusterCerts(t *testing.T, dir string, n int) (ca string, certs, keys []string) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v %s", args, err, out)
		}
	}
	ca, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2", "-subj", "/CN=eddy cluster CA")
	for i := 1; i <= n; i++ {
		key, csr, cert := filepath.Join(dir, fmt.Sprintf("node%d.key", i)), filepath.Join(dir, fmt.Sprintf("node%d.csr", i)), filepath.Join(dir, fmt.Sprintf("node%d.pem", i))
		run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", fmt.Sprintf("/CN=node%d", i))
		run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2")
		certs, keys = append(certs, cert), append(keys, key)
	}
	return ca, certs, keys
}

// TestClusterRaftTLS: three nodes whose Raft transport is mutual TLS
// (raft_tls_cert, raft_tls_key, raft_tls_ca, made with openssl) form a
// cluster and replicate an RF 3 topic; a fourth process with a
// certificate of another CA, started with the same peers, reaches none
// of them (the three log its refusal, and it never becomes ready).
func TestClusterRaftTLS(t *testing.T) {
	dir := t.TempDir()
	ca, certs, keys := clusterCerts(t, dir, 3)
	i := 0
	procs := newClusterWith(t, 3, func(p *proc) {
		p.env = append(p.env, "EDDY_RAFT_TLS_CERT="+certs[i%3], "EDDY_RAFT_TLS_KEY="+keys[i%3], "EDDY_RAFT_TLS_CA="+ca)
		i++
	})
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"sealed","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	for n := range 20 {
		body := fmt.Sprintf(`{"records":[{"value":"r%d"}]}`, n)
		if code, err := procs[n%3].do("POST", "/v1/topics/sealed/records", "application/json", []byte(body), nil); err != nil || code != 200 {
			t.Fatalf("produce %d: %d %v", n, code, err)
		}
	}
	for _, p := range procs {
		waitFor(t, "every replica holds the 20 records", 20*time.Second, func() bool {
			var out struct{ Records []struct{} }
			code, err := p.do("GET", "/v1/topics/sealed/partitions/0/records?offset=0&max_records=100", "", nil, &out)
			return err == nil && code == 200 && len(out.Records) == 20
		})
		if exp := p.metric(`eddy_tls_certificate_expiry_timestamp_seconds{listener="raft"}`); exp < float64(time.Now().Unix()) {
			t.Fatalf("the raft certificate's expiry metric: %v", exp)
		}
	}

	// A node of another CA: its peers refuse it, it forms nothing.
	otherCA, rogueCerts, rogueKeys := clusterCerts(t, t.TempDir(), 1)
	rogue := newProc(t)
	rogue.nodeID, rogue.peers = 2, strings.Replace(procs[0].peers, procs[1].raftAddr, rogue.raftAddr, 1)
	rogue.env = append(rogue.env, "EDDY_RAFT_TLS_CERT="+rogueCerts[0], "EDDY_RAFT_TLS_KEY="+rogueKeys[0], "EDDY_RAFT_TLS_CA="+otherCA)
	rogue.launch()
	waitFor(t, "the cluster refuses the rogue's connections", 20*time.Second, func() bool {
		for _, p := range procs {
			if strings.Contains(p.log.String(), "raft transport: a connection refused") {
				return true
			}
		}
		return false
	})
	var ready struct{ Ready bool }
	if code, _ := rogue.do("GET", "/readyz", "", nil, &ready); code == 200 {
		t.Fatal("the rogue node is ready: it reached a quorum")
	}
	if code, err := procs[0].do("POST", "/v1/topics/sealed/records", "application/json", []byte(`{"records":[{"value":"after"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce after: %d %v", code, err)
	}
}
