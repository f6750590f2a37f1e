package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eddy-broker/eddy/wasm/guest"
	"github.com/spf13/cobra"
)

func newTransform() *cobra.Command {
	cmd := &cobra.Command{Use: "transform", Short: "Write, build, deploy, test and inspect WebAssembly transforms"}
	cmd.AddCommand(newTransformInit(), newTransformBuild(), newTransformDeploy(), newTransformTest(),
		newTransformList(), newTransformDescribe(), newTransformDelete())
	return cmd
}

func transformPath(name string) string { return "/v1/transforms/" + url.PathEscape(name) }

const scaffoldMain = `// %[1]s is an Eddy transform. Build it with "eddy transform build", deploy
// it with "eddy transform deploy %[1]s %[1]s.wasm" and attach it to a topic
// with "eddy topic set-transform TOPIC --module %[1]s".
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"%[1]s/guest"
)

func main() {}

// config is the binding's config (--config on set-transform), read once.
var config *struct {
	Drop string ` + "`json:\"drop\"`" + `
}

func init() {
	guest.Handle(func(r guest.Record, w guest.Writer) error {
		if config == nil {
			config = new(struct {
				Drop string ` + "`json:\"drop\"`" + `
			})
			if c := guest.Config(); len(c) > 0 {
				if err := json.Unmarshal(c, config); err != nil {
					config = nil
					return errors.New("config: " + err.Error()) // fails the batch
				}
			}
		}
		// Drop records containing config "drop"; keep the others unchanged.
		// w.EmitValue(newValue) replaces a value, w.Emit(guest.Record{...})
		// emits a new record; calling nothing drops the record.
		if config.Drop != "" && bytes.Contains(r.Value, []byte(config.Drop)) {
			return nil
		}
		w.Keep()
		return nil
	})
}
`

const scaffoldTest = `package main

import (
	"testing"

	"%[1]s/guest"
)

// guest.Run calls the transform natively: go test works as usual.
func TestTransform(t *testing.T) {
	out, err := guest.Run([]byte(` + "`{\"drop\":\"test\"}`" + `), []guest.Record{
		{Value: []byte("keep me")}, {Value: []byte("a test record")},
	})
	if err != nil || len(out) != 1 || string(out[0].Value) != "keep me" {
		t.Fatalf("%%v %%+v", err, out)
	}
}
`

func newTransformInit() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Scaffold a Go transform in ./NAME (with the guest SDK, no downloads needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !validModuleName(name) {
				return fmt.Errorf("transform name %q: use letters, digits, '-' and '_'", name)
			}
			if dir == "" {
				dir = name
			}
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s already exists", dir)
			}
			if err := os.MkdirAll(filepath.Join(dir, "guest"), 0o755); err != nil {
				return err
			}
			files := map[string]string{
				"go.mod":       fmt.Sprintf("module %s\n\ngo 1.24\n", name),
				"main.go":      fmt.Sprintf(scaffoldMain, name),
				"main_test.go": fmt.Sprintf(scaffoldTest, name),
				".gitignore":   "*.wasm\n",
			}
			for f, body := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
					return err
				}
			}
			err := fs.WalkDir(guest.Sources, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := guest.Sources.ReadFile(p)
				if err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(dir, "guest", p), b, 0o644)
			})
			if err != nil {
				return err
			}
			fmt.Printf("created %s: edit main.go, then\n  cd %s && go test ./... && eddy transform build && eddy transform deploy %s %s.wasm\n", dir, dir, name, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default ./NAME)")
	return cmd
}

func validModuleName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newTransformBuild() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a Go transform: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(abs, filepath.Base(abs)+".wasm")
			} else if out, err = filepath.Abs(out); err != nil {
				return err
			}
			build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
			build.Dir = abs
			build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("go build: %w", err)
			}
			st, err := os.Stat(out)
			if err != nil {
				return err
			}
			fmt.Printf("built %s (%d bytes)\n", out, st.Size())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "module file (default DIR/<dir name>.wasm)")
	return cmd
}

func newTransformDeploy() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy NAME FILE.wasm",
		Short: "Upload a module as the next version of transform NAME",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			var out struct {
				Version   int    `json:"version"`
				SHA256    string `json:"sha256"`
				Size      int    `json:"size"`
				CompileMs int64  `json:"compile_ms"`
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "PUT", transformPath(args[0]), "application/wasm", bin, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("deployed %s version %d (%d bytes, sha256 %s, compiled in %d ms)\n", args[0], out.Version, out.Size, out.SHA256[:12], out.CompileMs)
			return nil
		},
	}
	outputFlag(cmd, new(string))
	return cmd
}

func newTransformTest() *cobra.Command {
	var input, config, format string
	var version int
	cmd := &cobra.Command{
		Use:   "test NAME --input FILE",
		Short: "Dry-run sample records through a deployed transform; nothing is written",
		Long: `Dry-run sample records through a deployed transform; nothing is written.
Each line of --input (- for stdin) is a value, or with --format json a record
object such as {"key":"k","value":{"t":1},"headers":{"h":"v"}}. The output
records are printed one JSON object per line, with "source", the input line
they came from (0-based). A failing module prints its error and what it
wrote to stderr, and the command exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "raw" && format != "json" {
				return fmt.Errorf("--format %q: use raw or json", format)
			}
			var r io.Reader = os.Stdin
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			var recs []json.RawMessage
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				line := bytes.TrimSpace(sc.Bytes())
				if len(line) == 0 {
					continue
				}
				if format == "json" {
					if !json.Valid(line) {
						return fmt.Errorf("input line %d is not JSON", len(recs)+1)
					}
					recs = append(recs, append(json.RawMessage(nil), line...))
					continue
				}
				v, _ := json.Marshal(string(line))
				if json.Valid(line) {
					v = append([]byte(nil), line...)
				}
				recs = append(recs, json.RawMessage(`{"value":`+string(v)+`}`))
			}
			if err := sc.Err(); err != nil {
				return err
			}
			req := map[string]any{"records": recs, "version": version}
			if config != "" {
				if !json.Valid([]byte(config)) {
					return fmt.Errorf("--config is not valid JSON")
				}
				req["config"] = json.RawMessage(config)
			}
			body, _ := json.Marshal(req)
			var out struct {
				Version    int               `json:"version"`
				Records    []json.RawMessage `json:"records"`
				DurationMs float64           `json:"duration_ms"`
				Error      *apiError         `json:"error"`
				Stderr     string            `json:"stderr"`
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", transformPath(args[0])+"/test", "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			for _, rec := range out.Records {
				fmt.Println(string(rec))
			}
			fmt.Fprintf(os.Stderr, "%s version %d: %d record(s) in, %d out, %.1f ms\n", args[0], out.Version, len(recs), len(out.Records), out.DurationMs)
			if out.Stderr != "" {
				fmt.Fprintf(os.Stderr, "module output:\n%s\n", strings.TrimRight(out.Stderr, "\n"))
			}
			if out.Error != nil {
				return fmt.Errorf("the transform failed: %s (%s)", out.Error.Message, out.Error.Code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&input, "input", "i", "-", "sample records, one per line (- for stdin)")
	f.StringVar(&config, "config", "", "binding config as JSON")
	f.StringVar(&format, "format", "raw", "raw (a line is a value) or json (a line is a record object)")
	f.IntVar(&version, "version", 0, "version to test (default: the latest)")
	outputFlag(cmd, new(string))
	return cmd
}

type transformInfo struct {
	Name     string `json:"name"`
	Latest   int    `json:"latest_version"`
	Versions []struct {
		Version   int    `json:"version"`
		SHA256    string `json:"sha256"`
		Size      int    `json:"size"`
		CreatedMs int64  `json:"created_ms"`
	} `json:"versions"`
	Topics []struct {
		Topic string `json:"topic"`
		bindingInfo
	} `json:"topics"`
}

func newTransformList() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's transforms",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Transforms []transformInfo }
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/transforms", format, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tLATEST\tVERSIONS\tTOPICS")
			for _, t := range out.Transforms {
				var vs, ts []string
				for _, v := range t.Versions {
					vs = append(vs, fmt.Sprint(v.Version))
				}
				for _, b := range t.Topics {
					ts = append(ts, b.Topic)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", t.Name, t.Latest, strings.Join(vs, ","), strings.Join(ts, ","))
			}
			return w.Flush()
		},
	}
	outputFlag(cmd, &format)
	return cmd
}

func newTransformDescribe() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a transform's versions and the topics it runs on (with this node's counters)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t transformInfo
			if done, err := newClient(cmd).getOut(ctxTimeout(), transformPath(args[0]), format, &t); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintf(w, "NAME    %s\nLATEST  %d\n\nVERSION\tSIZE\tSHA256\tCREATED\n", t.Name, t.Latest)
			for _, v := range t.Versions {
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\n", v.Version, v.Size, v.SHA256[:12], time.UnixMilli(v.CreatedMs).UTC().Format(time.RFC3339))
			}
			w.Flush()
			for _, b := range t.Topics {
				fmt.Printf("\nTOPIC         %s\n", b.Topic)
				describeBinding(os.Stdout, &b.bindingInfo)
			}
			return nil
		},
	}
	outputFlag(cmd, &format)
	return cmd
}

func newTransformDelete() *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a transform (or one --version); refused while a topic uses it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := transformPath(args[0])
			if version > 0 {
				path += fmt.Sprintf("?version=%d", version)
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", path, "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			if version > 0 {
				fmt.Printf("deleted version %d of transform %s\n", version, args[0])
			} else {
				fmt.Printf("deleted transform %s\n", args[0])
			}
			return nil
		},
	}
	outputFlag(cmd, new(string))
	cmd.Flags().IntVar(&version, "version", 0, "delete only this version")
	return cmd
}

func newSetTransform() *cobra.Command {
	var module, config, onError, dlq string
	var version int
	cmd := &cobra.Command{
		Use:   "set-transform TOPIC --module NAME",
		Short: "Run a transform on every record produced to TOPIC (replaces any other)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := map[string]any{"module": module, "version": version, "on_error": onError}
			if dlq != "" {
				req["dead_letter_topic"] = dlq
			}
			if config != "" {
				if !json.Valid([]byte(config)) {
					return errors.New("--config is not valid JSON")
				}
				req["config"] = json.RawMessage(config)
			}
			body, _ := json.Marshal(req)
			var t topicInfo
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "PUT", topicPath(args[0])+"/transform", "application/json", body, outputOf(cmd), &t); done || err != nil {
				return err
			}
			describeBinding(os.Stdout, t.Transform)
			return nil
		},
	}
	outputFlag(cmd, new(string))
	f := cmd.Flags()
	f.StringVar(&module, "module", "", "transform name (required)")
	f.IntVar(&version, "version", 0, "pin a version (default: follow the latest deployed)")
	f.StringVar(&config, "config", "", "config JSON handed to the module")
	f.StringVar(&onError, "on-error", "reject", "reject, dead-letter or pass")
	f.StringVar(&dlq, "dead-letter-topic", "", "topic for failed records (with --on-error dead-letter)")
	cmd.MarkFlagRequired("module")
	return cmd
}

func newClearTransform() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clear-transform TOPIC",
		Short: "Detach TOPIC's transform",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", topicPath(args[0])+"/transform", "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("topic %s has no transform now\n", args[0])
			return nil
		},
	}
	outputFlag(cmd, new(string))
	return cmd
}
