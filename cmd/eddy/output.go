package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// outputFlag gives a command -o/--output text|json|yaml (json and yaml
// print the API's answer as it came, with its field names); --format,
// the older name, still works where the command has no --format of its
// own (call it after defining the command's flags).
func outputFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVarP(v, "output", "o", "text", "text, json or yaml (json and yaml: the API's answer, with its field names)")
	if cmd.Flags().Lookup("format") == nil { // a command's own --format is its input's
		cmd.Flags().StringVar(v, "format", "text", "the same as --output")
		cmd.Flags().MarkHidden("format")
	}
}

// getOut GETs path. For -o json or yaml it prints the answer and reports
// done; for text it decodes the answer into out for the caller to print.
func (c *client) getOut(ctx context.Context, path, format string, out any) (done bool, err error) {
	return c.sendOut(ctx, http.MethodGet, path, "", nil, format, out)
}

// sendOut sends a request. For -o json or yaml it prints the answer (an
// answer without a body, a 204, prints nothing) and reports done; for text
// it decodes the answer into out (if not nil) for the caller to print.
func (c *client) sendOut(ctx context.Context, method, path, ctype string, body []byte, format string, out any) (done bool, err error) {
	if err := checkOutput(format); err != nil {
		return true, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, path, ctype, body, &raw); err != nil {
		return true, err
	}
	if format == "text" {
		if out == nil || len(raw) == 0 {
			return false, nil
		}
		return false, json.Unmarshal(raw, out)
	}
	if len(raw) == 0 {
		return true, nil
	}
	return true, printRaw(format, raw)
}

// printAnswer prints one of a stream of API answers: for json on one
// line, for yaml as a document; nothing for text.
func printAnswer(format string, raw json.RawMessage) error {
	switch format {
	case "json":
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return err
		}
		b.WriteByte('\n')
		_, err := os.Stdout.Write(b.Bytes())
		return err
	case "yaml":
		os.Stdout.WriteString("---\n")
		return printRaw(format, raw)
	}
	return nil
}

// checkOutput refuses an -o value other than text, json or yaml.
func checkOutput(format string) error {
	switch format {
	case "text", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output %q: text, json or yaml", format)
}

// printValue prints v (a command's own result, not an API answer) as JSON
// or YAML with its json field names.
func printValue(format string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printRaw(format, raw)
}

// printRaw prints a JSON answer indented, or as YAML with the same keys.
func printRaw(format string, raw json.RawMessage) error {
	if format == "json" {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return err
		}
		b.WriteByte('\n')
		_, err := os.Stdout.Write(b.Bytes())
		return err
	}
	b, err := yamlOf(raw)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

// yamlOf is a JSON value as YAML with the same keys; offsets and times
// stay integers, not 1.79e+12.
func yamlOf(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return yaml.Marshal(numbers(v))
}

// numbers turns json.Numbers into int64 or float64 for YAML.
func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	}
	return v
}

// outputOf is the command's -o value ("text" if it has none).
func outputOf(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("output"); f != nil {
		return f.Value.String()
	}
	return "text"
}
