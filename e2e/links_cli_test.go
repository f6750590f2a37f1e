package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLinkCLI: eddy link create|list|describe|pause|resume|delete, to a
// cloud whose Kafka listener speaks TLS only (its certificate trusted with
// --tls-ca), with the password read from a file, over SASL/PLAIN and
// SASL/OAUTHBEARER; a link over TLS without the CA fails with a clear
// certificate error instead.
func TestLinkCLI(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	cloud := newProc(t)
	cloud.env = []string{"EDDY_KAFKA_TLS_CERT=" + certFile, "EDDY_KAFKA_TLS_KEY=" + keyFile}
	cloud.start()
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("sensors", 2)
	edge.producePadded("sensors", 0, 200, 100, "a")
	edge.producePadded("sensors", 1, 100, 100, "b")
	jwt := filepath.Join(dir, "cloud.jwt")
	os.WriteFile(jwt, []byte(cloud.token+"\n"), 0o600)
	out := edge.mustCLI("", "link", "create", "cloud", "--to", "kafka://"+cloud.kafkaAddr, "--topics", "sensors,metrics-*",
		"--sasl", "plain", "--username", "default", "--password-file", jwt, "--tls-ca", certFile, "--compression", "lz4",
		"--max-bytes-per-sec", "1MiB", "--target-prefix", "site-17.", "--priority", "sensors")
	if !strings.Contains(out, "link cloud created") {
		t.Fatalf("create: %s", out)
	}
	edge.mustCLI("", "link", "create", "notls", "--to", "kafka://"+cloud.kafkaAddr, "--topics", "sensors", "--tls",
		"--sasl", "plain", "--username", "default", "--password-file", jwt)
	if _, errOut, err := edge.cli("", "link", "create", "bad", "--to", "kafka://nohost", "--topics", "sensors"); err == nil || !strings.Contains(errOut, "not host:port") {
		t.Fatalf("a bad broker address: %v %s", err, errOut)
	}
	edge.mustCLI("", "link", "create", "oauth", "--to", "kafka://"+cloud.kafkaAddr, "--topics", "sensors", "--tls-ca", certFile,
		"--sasl", "oauthbearer", "--password-file", jwt, "--target-prefix", "oauth.")
	waitFor(t, "the link forwards over TLS", 30*time.Second, func() bool { return drained(edge.link("cloud"), 2) })
	waitFor(t, "the OAUTHBEARER link forwards", 30*time.Second, func() bool { return drained(edge.link("oauth"), 2) })
	if n := len(cloud.readPartition("oauth.sensors", 0)) + len(cloud.readPartition("oauth.sensors", 1)); n != 300 {
		t.Fatalf("the cloud holds %d of 300 records sent over OAUTHBEARER", n)
	}
	if n := len(cloud.readPartition("site-17.sensors", 0)) + len(cloud.readPartition("site-17.sensors", 1)); n != 300 {
		t.Fatalf("the cloud holds %d of 300 records", n)
	}
	list := edge.mustCLI("", "link", "list")
	if !strings.Contains(list, "cloud") || !strings.Contains(list, "connected") || !strings.Contains(list, "notls") {
		t.Fatalf("list:\n%s", list)
	}
	desc := edge.mustCLI("", "link", "describe", "cloud")
	for _, want := range []string{"link cloud: connected", `prefixed "site-17."`, "sensors  0", "200", "first sensors"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe lacks %q:\n%s", want, desc)
		}
	}
	if strings.Contains(desc, cloud.token) || strings.Contains(edge.mustCLI("", "link", "describe", "cloud", "--format", "json"), cloud.token) {
		t.Fatal("describe shows the password")
	}
	var last linkView
	waitFor(t, "the link without the CA fails", 30*time.Second, func() bool {
		last = edge.link("notls")
		if last.State == "connected" {
			t.Fatalf("a plain-text link to a TLS listener is connected: %+v", last)
		}
		return last.State == "failing" && strings.Contains(errorsOf(last), "certificate")
	})
	t.Logf("without the CA: %s, %s", last.State, errorsOf(last))
	edge.mustCLI("", "link", "pause", "cloud")
	if v := edge.link("cloud"); v.State != "paused" {
		t.Fatalf("paused link is %s", v.State)
	}
	edge.producePadded("sensors", 0, 10, 100, "c")
	time.Sleep(time.Second)
	if v := edge.link("cloud"); v.Totals.BacklogRecords != 10 {
		t.Fatalf("paused: backlog %d, want 10", v.Totals.BacklogRecords)
	}
	edge.mustCLI("", "link", "resume", "cloud")
	waitFor(t, "the resumed link forwards", 30*time.Second, func() bool { return drained(edge.link("cloud"), 2) })
	edge.mustCLI("", "link", "delete", "cloud")
	if _, errOut, err := edge.cli("", "link", "describe", "cloud"); err == nil || !strings.Contains(errOut, "not_found") {
		t.Fatalf("describe after delete: %v %s", err, errOut)
	}
}
