package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddy-broker/eddy/internal/testutil"
)

// TestDocs follows the docs as a new user would: the sh blocks of
// README.md, then of each docs/*.md in name order, run top to bottom in a
// fresh copy of the repository against one node started as the quick start
// starts it (`eddy serve` on its embedded defaults, in that directory). The
// node and the docs' commands run in a network namespace of their own, so
// the documented ports (8080, 1883, 9092, 7100) are the ones used and
// nothing is substituted. The conventions, for whoever writes a doc:
//
//   - a block fenced ```sh runs; each doc's blocks share one shell (bash,
//     errexit and pipefail on), started in the copy's root;
//   - ```sh no-run marks a block that cannot run on one machine (other
//     hosts, docker, the test suite itself); the prose says what it needs;
//   - ```sh until-stopped marks a block of one command that runs until
//     interrupted (a consumer group member): it runs for 10 s, then is
//     stopped, and only a failure before that counts (one command, so a
//     slow one before it cannot pass for the stop);
//   - curl runs with --fail-with-body: a documented request that the
//     server refuses fails the doc;
//   - what a doc starts in the background is stopped when the doc ends;
//   - EDDY_DOCS=docs/mqtt.md,... runs only those (after the node starts
//     afresh: a doc that needs the README's topics says so).
func TestDocs(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the docs test needs root for its network namespace (CI runs as root)")
		}
		t.Skip("needs root for ip netns; CI runs it as root")
	}
	for _, tool := range []string{"ip", "curl", "kcat", "mosquitto_pub", "mosquitto_sub", "openssl", "go", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the docs use %s: %v", tool, err)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	copyTracked(t, repo, work)
	bin := t.TempDir()
	if err := os.Symlink(eddyBin, filepath.Join(bin, "eddy")); err != nil {
		t.Fatal(err)
	}

	ns := fmt.Sprintf("eddydocs%04x", rand.IntN(1<<16))
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")

	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"EDDY_CONFIG_DIR="+filepath.Join(work, ".eddy-config"), // the CLI profile serve writes
		"EDDY_TOKEN=", "EDDY_SERVER=", "EDDY_PROFILE=",
		"GOPROXY=off", // no network in the namespace: modules from the cache
	)

	// The quick start's first command, built once by TestMain.
	node := &docsNode{cmd: exec.Command("ip", "netns", "exec", ns, eddyBin, "serve")}
	node.cmd.Dir, node.cmd.Env = work, env
	node.cmd.Stdout, node.cmd.Stderr = &node.log, &node.log
	if err := node.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		node.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { node.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			node.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("the node's output:\n%s", tail(node.log.String(), 60))
		}
	})
	waitFor(t, "the node's admin token", 60*time.Second, func() bool {
		fi, err := os.Stat(filepath.Join(work, "eddy-data", "admin.token"))
		return err == nil && fi.Size() > 0
	})
	runWithin(t, 60*time.Second, "the node's /readyz", env, "ip", "netns", "exec", ns, "sh", "-c",
		"until curl -sf localhost:8080/readyz >/dev/null; do sleep 0.2; done")

	docs := []string{"README.md"}
	more, _ := filepath.Glob(filepath.Join(work, "docs", "*.md"))
	sort.Strings(more)
	for _, d := range more {
		rel, _ := filepath.Rel(work, d)
		docs = append(docs, rel)
	}
	only := os.Getenv("EDDY_DOCS") // a writer's shortcut: EDDY_DOCS=docs/mqtt.md
	for _, doc := range docs {
		if only != "" && !slices.Contains(strings.Split(only, ","), doc) {
			continue
		}
		blocks := shBlocks(t, filepath.Join(work, doc))
		if len(blocks) == 0 {
			continue
		}
		script, ran := docScript(doc, blocks)
		if ran == 0 {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(doc), ".md"), func(t *testing.T) {
			path := filepath.Join(bin, strings.ReplaceAll(doc, "/", "_")+".sh")
			if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("ip", "netns", "exec", ns, "bash", path)
			cmd.Dir, cmd.Env = work, env
			// A file, not a pipe: what the doc leaves running in the
			// background holds its output open, and Wait would wait for it.
			out, err := os.Create(path + ".out")
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			start := time.Now()
			if err := runGroup(cmd, 4*time.Minute); err != nil {
				b, _ := os.ReadFile(out.Name())
				t.Fatalf("%s: %v after %v; its last output (+ lines are its commands, ### the block):\n%s",
					doc, err, time.Since(start).Round(time.Second), tail(string(b), 80))
			}
			t.Logf("%s: %d blocks ran in %v", doc, ran, time.Since(start).Round(time.Second))
		})
	}
}

type docsNode struct {
	cmd *exec.Cmd
	log testutil.SyncBuffer
}

// A shBlock is one fenced sh block: where it starts, its attributes (the
// words after "sh"), its text.
type shBlock struct {
	line  int
	attrs []string
	text  string
}

func (b shBlock) has(attr string) bool {
	for _, a := range b.attrs {
		if a == attr {
			return true
		}
	}
	return false
}

// shBlocks returns the sh blocks of a markdown file; an attribute it does
// not know fails the test (a typo would silently skip or run a block).
func shBlocks(t *testing.T, path string) []shBlock {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []shBlock
	var cur *shBlock
	var text strings.Builder
	fenced := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "```") {
			if cur != nil {
				text.WriteString(line + "\n")
			}
			continue
		}
		if fenced {
			if cur != nil {
				cur.text = text.String()
				blocks = append(blocks, *cur)
				cur = nil
			}
			fenced = false
			continue
		}
		fenced = true
		info := strings.Fields(strings.TrimPrefix(line, "```"))
		if len(info) == 0 || info[0] != "sh" {
			continue
		}
		for _, a := range info[1:] {
			if a != "no-run" && a != "until-stopped" {
				t.Fatalf("%s:%d: unknown sh block attribute %q (no-run, until-stopped)", path, n, a)
			}
		}
		cur = &shBlock{line: n, attrs: info[1:]}
		text.Reset()
	}
	for _, b := range blocks {
		if b.has("until-stopped") && commands(b.text) != 1 {
			t.Fatalf("%s:%d: an until-stopped block holds one command, not %d", path, b.line, commands(b.text))
		}
	}
	if fenced {
		t.Fatalf("%s: a fence is not closed", path)
	}
	return blocks
}

// docScript makes one bash script of a doc's blocks that run; a block
// until-stopped runs in a child bash under timeout(1), which stops its
// whole process group.
func docScript(doc string, blocks []shBlock) (string, int) {
	var s strings.Builder
	s.WriteString(`set -euo pipefail -a
PS4='+ '
curl() { command curl --fail-with-body "$@"; }
export -f curl
set -x
`)
	ran := 0
	for _, b := range blocks {
		if b.has("no-run") {
			continue
		}
		ran++
		fmt.Fprintf(&s, ": '### %s:%d'\n", doc, b.line)
		if b.has("until-stopped") {
			fmt.Fprintf(&s, "rc=0; timeout 10 bash -euo pipefail -c %s || rc=$?\n[ $rc = 0 ] || [ $rc = 124 ]\n", shQuote(b.text))
			continue
		}
		s.WriteString(b.text)
	}
	return s.String(), ran
}

// commands counts a block's lines that are neither empty nor comments.
func commands(text string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runGroup runs cmd (started in a process group of its own) to its end or
// the timeout, then stops what it left behind in its group.
func runGroup(cmd *exec.Cmd, timeout time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		err = fmt.Errorf("still running after %v", timeout)
	}
	syscall.Kill(-pgid, syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(-pgid, syscall.SIGKILL)
	return err
}

// runWithin runs a command with env and fails the test unless it
// succeeds in time.
func runWithin(t *testing.T, timeout time.Duration, what string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Env = env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
}

// copyTracked copies the files git tracks or would (as they are in the work tree)
// from repo to dst: a fresh clone with this change in it.
func copyTracked(t *testing.T, repo, dst string) {
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
		src := filepath.Join(repo, string(rel))
		fi, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the work tree
		}
		to := filepath.Join(dst, string(rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(src, to, fi.Mode()); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
