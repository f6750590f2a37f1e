package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	ext := filepath.Join(dir, "san.ext") // the nodes serve HTTPS on loopback too
	if err := os.WriteFile(ext, []byte("subjectAltName=IP:127.0.0.1,DNS:localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		key, csr, cert := filepath.Join(dir, fmt.Sprintf("node%d.key", i)), filepath.Join(dir, fmt.Sprintf("node%d.csr", i)), filepath.Join(dir, fmt.Sprintf("node%d.pem", i))
		run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", fmt.Sprintf("/CN=node%d", i))
		run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
		certs, keys = append(certs, cert), append(keys, key)
	}
	return ca, certs, keys
}

// httpsClient trusts the certificates in a PEM file.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestClusterTLS: three nodes whose Raft transport is mutual TLS
// (raft_tls_cert, raft_tls_key, raft_tls_ca, made with openssl) and whose
// HTTP is HTTPS (the same certificates) form a cluster, replicate an RF 3
// topic and forward requests to each other over HTTPS; a fourth process
// with a certificate of another CA, started with the same peers, reaches
// none of them (the three log its refusal, and it never becomes ready).
func TestClusterTLS(t *testing.T) {
	dir := t.TempDir()
	ca, certs, keys := clusterCerts(t, dir, 3)
	procs := tlsCluster(t, ca, certs, keys, ca)
	// One-replica partitions spread over the nodes: most requests are
	// forwarded, over HTTPS.
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"spread","partitions":6,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	for _, p := range procs {
		for part := range 6 {
			body := fmt.Sprintf(`{"records":[{"value":"via %s"}]}`, p.httpAddr)
			if code, err := p.do("POST", fmt.Sprintf("/v1/topics/spread/records?partition=%d", part), "application/json", []byte(body), nil); err != nil || code != 200 {
				t.Fatalf("produce to partition %d through %s: %d %v", part, p.httpAddr, code, err)
			}
		}
	}
	for part := range 6 {
		if n := len(procs[part%3].readPartition("spread", part)); n != 3 {
			t.Fatalf("partition %d holds %d records, want 3", part, n)
		}
	}
	replicateEverywhere(t, procs, "sealed", 20)
	for _, p := range procs {
		for _, l := range []string{"raft", "http"} {
			if exp := p.metric(`eddy_tls_certificate_expiry_timestamp_seconds{listener="` + l + `"}`); exp < float64(time.Now().Unix()) {
				t.Fatalf("the %s certificate's expiry metric: %v", l, exp)
			}
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

// TestHTTPTLS: with http_tls_cert and http_tls_key (made by eddy cert)
// the API and the console are HTTPS only: curl with the CA gets answers,
// plain HTTP on the port gets none, and the CLI works from the profile
// eddy serve wrote (https, and the node's certificate trusted).
func TestHTTPTLS(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"cert", "create-ca", "--dir", dir}, {"cert", "create-node", "node1", "--dir", dir}} {
		if out, err := exec.Command(eddyBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("eddy %v: %v %s", args, err, out)
		}
	}
	if out, err := exec.Command(eddyBin, "cert", "create-node", "node1", "--dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "not overwritten") {
		t.Fatalf("a second node1 overwrote the first: %v %s", err, out)
	}
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node1.pem"), filepath.Join(dir, "node1.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the node's key: %v %v", fi.Mode(), err)
	}
	p := newProc(t)
	p.env = append(p.env, "EDDY_HTTP_TLS_CERT="+cert, "EDDY_HTTP_TLS_KEY="+key)
	p.https = httpsClient(t, ca)
	p.start()
	out, err := exec.Command("curl", "-sS", "--fail-with-body", "--cacert", ca, "-H", "Authorization: Bearer "+p.token, p.url("/v1/topics")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"topics"`) {
		t.Fatalf("curl over https: %v %s", err, out)
	}
	if out, err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+p.httpAddr+"/readyz").CombinedOutput(); err == nil {
		t.Fatalf("plain HTTP was answered: %s", out)
	}
	// The profile eddy serve wrote: no --server, no --ca-file.
	cmd := exec.Command(eddyBin, "topic", "create", "sealed")
	cmd.Env = append(os.Environ(), "EDDY_CONFIG_DIR="+p.confDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the CLI through its profile: %v %s", err, out)
	}
	if out := p.mustCLI("", "topic", "list", "--ca-file", ca); !strings.Contains(out, "sealed") {
		t.Fatalf("topic list: %s", out)
	}
	if _, errOut, err := p.cli("", "topic", "list", "--ca-file", "/dev/null"); err == nil || !strings.Contains(errOut, "CA file") {
		t.Fatalf("a CA file without certificates: %v %s", err, errOut)
	}
	if code, body := p.getText("/console/"); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("the console over https: %d", code)
	}
}

// TestClusterTLSNewCA: a cluster's CA is replaced without a restart, as an
// operator would: both CAs in raft_tls_ca, SIGHUP; the new CA's
// certificates in place of the old, SIGHUP; the new CA alone, SIGHUP.
// Then a node restarted, which has only the new CA's files, rejoins (its
// peers trust the new CA), RF 3 writes reach every replica, and requests
// are forwarded over HTTPS to nodes serving the new certificates.
func TestClusterTLSNewCA(t *testing.T) {
	dir := t.TempDir()
	ca, certs, keys := clusterCerts(t, dir, 3)
	newCA, newCerts, newKeys := clusterCerts(t, t.TempDir(), 3)
	oldPEM, _ := os.ReadFile(ca)
	newPEM, _ := os.ReadFile(newCA)
	both := filepath.Join(t.TempDir(), "both.pem") // the test's client trusts both
	if err := os.WriteFile(both, append(append([]byte{}, oldPEM...), newPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := tlsCluster(t, ca, certs, keys, both)
	hupAll := func(step string) {
		t.Helper()
		for _, p := range procs {
			before := strings.Count(p.log.String(), "SIGHUP: configuration reloaded")
			p.cmd.Process.Signal(syscall.SIGHUP)
			waitFor(t, step+": node reloaded", 10*time.Second, func() bool {
				return strings.Count(p.log.String(), "SIGHUP: configuration reloaded") > before
			})
			if strings.Contains(p.log.String(), "reload failed in part") {
				t.Fatalf("%s: node %d failed to reload: %s", step, p.nodeID, p.log.String())
			}
		}
	}
	write := func(dst string, b []byte) {
		t.Helper()
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ca, append(append([]byte{}, oldPEM...), newPEM...))
	hupAll("both CAs")
	for n := range certs {
		c, _ := os.ReadFile(newCerts[n])
		k, _ := os.ReadFile(newKeys[n])
		write(certs[n], c)
		write(keys[n], k)
	}
	hupAll("the new CA's certificates")
	write(ca, newPEM)
	hupAll("the new CA alone")
	for _, p := range procs {
		if exp := p.metric(`eddy_tls_certificate_expiry_timestamp_seconds{listener="raft_ca"}`); exp < float64(time.Now().Unix()) {
			t.Fatalf("node %d: the CA's expiry metric: %v", p.nodeID, exp)
		}
	}

	// Node 2 restarts with the new files alone: its peers must take it.
	procs[1].kill()
	procs[1].start()
	replicateEverywhere(t, procs, "rotated", 10)
	// One-replica partitions: most requests are forwarded, over HTTPS to
	// nodes serving the new CA's certificates.
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"spread","partitions":6,"replication_factor":1}`), nil); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	for _, p := range procs {
		for part := range 6 {
			if code, err := p.do("POST", fmt.Sprintf("/v1/topics/spread/records?partition=%d", part), "application/json", []byte(`{"records":[{"value":"v"}]}`), nil); err != nil || code != 200 {
				t.Fatalf("produce to partition %d through node %d: %d %v", part, p.nodeID, code, err)
			}
		}
	}
}

// replicateEverywhere creates an RF 3 topic on three nodes, writes n
// records through them in turn, and waits until every replica holds them.
func replicateEverywhere(t *testing.T, procs []*proc, topic string, n int) {
	t.Helper()
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(fmt.Sprintf(`{"name":%q,"partitions":1,"replication_factor":3}`, topic)), nil); err != nil || code != 201 {
		t.Fatalf("create %s: %d %v", topic, code, err)
	}
	for i := range n {
		body := fmt.Sprintf(`{"records":[{"value":"r%d"}]}`, i)
		if code, err := procs[i%3].do("POST", "/v1/topics/"+topic+"/records", "application/json", []byte(body), nil); err != nil || code != 200 {
			t.Fatalf("produce %d: %d %v", i, code, err)
		}
	}
	for _, p := range procs {
		waitFor(t, fmt.Sprintf("every replica holds the %d records", n), 20*time.Second, func() bool {
			var out struct{ Records []struct{} }
			code, err := p.do("GET", "/v1/topics/"+topic+"/partitions/0/records?offset=0&max_records=100", "", nil, &out)
			return err == nil && code == 200 && len(out.Records) == n
		})
	}
}

// tlsCluster starts three nodes whose Raft transport is mutual TLS and
// whose HTTP is HTTPS, node i on certs[i] and keys[i] with the CA in ca;
// the test's client trusts the certificates in trusted.
func tlsCluster(t *testing.T, ca string, certs, keys []string, trusted string) []*proc {
	t.Helper()
	i := 0
	return newClusterWith(t, 3, func(p *proc) {
		p.env = append(p.env, "EDDY_RAFT_TLS_CERT="+certs[i%3], "EDDY_RAFT_TLS_KEY="+keys[i%3], "EDDY_RAFT_TLS_CA="+ca,
			"EDDY_HTTP_TLS_CERT="+certs[i%3], "EDDY_HTTP_TLS_KEY="+keys[i%3])
		p.https = httpsClient(t, trusted)
		i++
	})
}

// TestClusterTLSRolling: Raft TLS turned on, then off, one node at a time
// with raft_tls_permissive, the cluster taking writes to an RF 3 topic
// through every node after each step; and between a strict node and a
// plain peer, a refusal that names the setting.
func TestClusterTLSRolling(t *testing.T) {
	ca, certs, keys := clusterCerts(t, t.TempDir(), 3)
	confDir := t.TempDir()
	conf := func(i int, tls, permissive bool) {
		t.Helper()
		var b strings.Builder
		if tls {
			fmt.Fprintf(&b, "raft_tls_cert: %s\nraft_tls_key: %s\nraft_tls_ca: %s\n", certs[i], keys[i], ca)
		}
		fmt.Fprintf(&b, "raft_tls_permissive: %v\n", permissive)
		if err := os.WriteFile(filepath.Join(confDir, fmt.Sprintf("node%d.yaml", i)), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	procs := newClusterWith(t, 3, func(p *proc) {
		conf(i, false, false)
		p.args = []string{"--config", filepath.Join(confDir, fmt.Sprintf("node%d.yaml", i))}
		i++
	})
	replicateEverywhere(t, procs, "rolling", 3)
	written := 3
	// writeThroughEach writes a record through each node and waits until
	// every replica holds them all.
	writeThroughEach := func(step string) {
		t.Helper()
		for _, p := range procs {
			body := fmt.Sprintf(`{"records":[{"value":"%s via %d"}]}`, step, p.nodeID)
			waitFor(t, step+": a write through node "+fmt.Sprint(p.nodeID), 30*time.Second, func() bool {
				code, err := p.do("POST", "/v1/topics/rolling/records", "application/json", []byte(body), nil)
				return err == nil && code == 200
			})
			written++
		}
		for _, p := range procs {
			waitFor(t, fmt.Sprintf("%s: node %d holds the %d records", step, p.nodeID, written), 30*time.Second, func() bool {
				var out struct{ Records []struct{} }
				code, err := p.do("GET", "/v1/topics/rolling/partitions/0/records?offset=0&max_records=1000", "", nil, &out)
				return err == nil && code == 200 && len(out.Records) >= written
			})
		}
	}
	restart := func(p *proc) {
		p.kill()
		p.start()
	}
	hup := func(p *proc, want string) {
		t.Helper()
		before := strings.Count(p.log.String(), want)
		p.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, fmt.Sprintf("node %d reloads %s", p.nodeID, want), 10*time.Second, func() bool {
			return strings.Count(p.log.String(), want) > before
		})
	}

	// On: each node in turn restarts with TLS, permissive.
	for i, p := range procs {
		conf(i, true, true)
		restart(p)
		writeThroughEach(fmt.Sprintf("node %d permissive", p.nodeID))
	}
	if !strings.Contains(procs[0].log.String(), "raft transport: a peer does not answer TLS") {
		t.Fatalf("node 1, permissive beside plain peers, never fell back to plain:\n%s", procs[0].log.String())
	}
	for _, p := range procs {
		waitFor(t, fmt.Sprintf("node %d: no plain connection left", p.nodeID), 20*time.Second, func() bool {
			return p.metric("eddy_raft_plain_connections ") == 0
		})
	}
	for i, p := range procs {
		conf(i, true, false)
		hup(p, "raft_tls_permissive=false")
	}
	writeThroughEach("TLS only")
	// A plain frame to a strict node is refused, and the log says why.
	c, err := net.Dial("tcp", procs[0].raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a strict node answered plain frames")
	}
	c.Close()
	waitFor(t, "the strict node's refusal", 10*time.Second, func() bool {
		return strings.Contains(procs[0].log.String(), "the peer sent plain frames and this node takes TLS only")
	})

	// Off: permissive by SIGHUP, then each node restarts without TLS.
	for i, p := range procs {
		conf(i, true, true)
		hup(p, "raft_tls_permissive=true")
	}
	for i, p := range procs {
		conf(i, false, false)
		restart(p)
		writeThroughEach(fmt.Sprintf("node %d plain", p.nodeID))
	}
}
