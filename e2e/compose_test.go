package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
)

// composeFile is what TestCompose reads of docker-compose.yml.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// TestCompose runs docker-compose.yml without a container engine (there
// is none here): each Eddy service's command, with the image's environment
// (the Dockerfile's ENV) and the service's, in a network namespace of its
// own whose /etc/hosts resolves the service names, its volume a directory;
// and Debian's Prometheus with the compose's configuration and mounts. The
// three nodes must form one cluster that replicates a topic, and
// Prometheus must scrape all three with the token it reads from node 1's
// volume and load the alert rules.
func TestCompose(t *testing.T) {
	var cf composeFile
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	imageEnv, workdir := dockerfileEnv(t, "../Dockerfile")
	var nodes []string
	for name, s := range cf.Services {
		if s.Image == "eddy" {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) != 3 || cf.Services["prometheus"].Image == "" {
		t.Fatalf("docker-compose.yml: Eddy services %v and a prometheus service, want three and one", nodes)
	}
	lab := newNetLab(t, len(nodes)+1) // the last namespace is Prometheus'
	hosts := "127.0.0.1 localhost\n::1 localhost\n"
	ip := map[string]string{}
	for i, name := range nodes {
		ip[name] = strings.Split(lab.raftAddr(i+1), ":")[0]
		hosts += ip[name] + " " + name + "\n"
	}
	for i := 1; i <= len(nodes)+1; i++ { // ip netns exec mounts /etc/netns/NS/hosts on /etc/hosts
		dir := filepath.Join("/etc/netns", lab.ns(i))
		os.MkdirAll(dir, 0o755)
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	volumes := map[string]string{} // named volume: its directory
	volume := func(name string) string {
		if volumes[name] == "" {
			volumes[name] = t.TempDir()
		}
		return volumes[name]
	}
	procs := make([]*proc, len(nodes))
	for i, name := range nodes {
		s := cf.Services[name]
		mounts := map[string]string{} // container path: host directory
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			dst, _, _ = strings.Cut(dst, ":")
			mounts[dst] = volume(src)
		}
		env := []string{"EDDY_CONFIG_DIR=" + t.TempDir()}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "EDDY_") {
				env = append(env, kv)
			}
		}
		for k, v := range imageEnv {
			env = append(env, k+"="+mapPath(mounts, v))
		}
		for k, v := range s.Environment {
			env = append(env, k+"="+mapPath(mounts, v))
		}
		p := &proc{tb: t, nodeID: i + 1, httpAddr: ip[name] + ":8080", dataDir: mapPath(mounts, imageEnv["EDDY_DATA_DIR"]),
			log: &bytes.Buffer{}}
		p.cmd = exec.Command("ip", append([]string{"netns", "exec", lab.ns(i + 1), eddyBin}, s.Command...)...)
		p.cmd.Dir, p.cmd.Env = mapPath(mounts, workdir), env
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.exited = make(chan error, 1)
		go func() { p.exited <- p.cmd.Wait() }()
		t.Cleanup(func() {
			p.kill()
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, tail(p.log.String(), 40))
			}
		})
		procs[i] = p
	}
	for _, p := range procs {
		p.cluster = procs
		p.waitReady()
	}

	// One cluster: a topic replicated on all three, written through one
	// node, read through another.
	if code, err := procs[0].do("POST", "/v1/topics", "application/json", []byte(`{"name":"compose","partitions":1,"replication_factor":3}`), nil); err != nil || code != 201 {
		t.Fatalf("create a topic on all three: %d %v", code, err)
	}
	if code, err := procs[1].do("POST", "/v1/topics/compose/records", "application/json", []byte(`{"records":[{"value":"x"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce through %s: %d %v", nodes[1], code, err)
	}
	waitFor(t, "the record through "+nodes[2], 30*time.Second, func() bool {
		var r struct{ Records []json.RawMessage }
		code, err := procs[2].do("GET", "/v1/topics/compose/partitions/0/records?offset=0", "", nil, &r)
		return err == nil && code == 200 && len(r.Records) == 1
	})

	// Prometheus, with the service's mounts under one directory.
	ps := cf.Services["prometheus"]
	root := t.TempDir()
	for _, v := range ps.Volumes {
		parts := strings.Split(v, ":")
		src, dst := parts[0], parts[1]
		to := filepath.Join(root, dst)
		os.MkdirAll(filepath.Dir(to), 0o755)
		if strings.HasPrefix(src, ".") {
			if err := copyFile(filepath.Join("..", src), to, 0o644); err != nil {
				t.Fatalf("the prometheus service's mount %s: %v", v, err)
			}
			continue
		}
		if err := os.Symlink(volume(src), to); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"netns", "exec", lab.ns(len(nodes) + 1), "prometheus", "--web.listen-address=:9090", "--log.level=warn"}
	for _, a := range ps.Command {
		if k, v, ok := strings.Cut(a, "=/"); ok {
			a = k + "=" + filepath.Join(root, v)
		}
		args = append(args, a)
	}
	cfgFile := filepath.Join(root, "etc/prometheus/prometheus.yml")
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatalf("the prometheus service mounts no /etc/prometheus/prometheus.yml: %v", err)
	}
	for _, v := range ps.Volumes { // absolute paths in the configuration: the mounts'
		dst := strings.Split(v, ":")[1]
		cfg = []byte(strings.ReplaceAll(string(cfg), " "+dst+"/", " "+filepath.Join(root, dst)+"/"))
	}
	os.WriteFile(cfgFile, cfg, 0o644)
	startPrometheus(t, cfgFile, append([]string{"ip"}, args...)...)
	promAddr := strings.Split(lab.raftAddr(len(nodes)+1), ":")[0] + ":9090"
	get := func(path string, out any) error {
		resp, err := http.Get("http://" + promAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, out)
	}
	var last string
	waitFor(t, "Prometheus scrapes the three nodes with node 1's token", 90*time.Second, func() bool {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL string `json:"scrapeUrl"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := get("/api/v1/targets", &r); err != nil {
			last = err.Error()
			return false
		}
		up := 0
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
		}
		last = fmt.Sprintf("%+v", r.Data.ActiveTargets)
		return up == len(nodes)
	})
	var rules struct {
		Data struct {
			Groups []struct{ Rules []json.RawMessage } `json:"groups"`
		} `json:"data"`
	}
	if err := get("/api/v1/rules", &rules); err != nil || len(rules.Data.Groups) == 0 {
		t.Fatalf("Prometheus loaded no alert rules: %v (targets: %s)", err, last)
	}
}

// dockerfileEnv returns the ENV and WORKDIR of the Dockerfile's last stage.
func dockerfileEnv(t *testing.T, path string) (map[string]string, string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env, workdir := map[string]string{}, "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "FROM":
			env, workdir = map[string]string{}, "/"
		case "WORKDIR":
			workdir = fields[1]
		case "ENV":
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if env["EDDY_DATA_DIR"] == "" {
		t.Fatal("the Dockerfile sets no EDDY_DATA_DIR")
	}
	return env, workdir
}

// mapPath maps a path inside the container to the host directory mounted
// there; other values are returned as they are.
func mapPath(mounts map[string]string, v string) string {
	for dst, dir := range mounts {
		if v == dst {
			return dir
		}
		if rest, ok := strings.CutPrefix(v, dst+"/"); ok {
			return filepath.Join(dir, rest)
		}
	}
	return v
}
