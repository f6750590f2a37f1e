package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

// outputFlag gives a command -o/--output text|json|yaml (json and yaml
// print the API's answer as it came, with its field names); --format,
// the older name, still works.
func outputFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVarP(v, "output", "o", "text", "text, json or yaml (json and yaml: the API's answer, with its field names)")
	cmd.Flags().StringVar(v, "format", "text", "the same as --output")
	cmd.Flags().MarkHidden("format")
}

// getOut GETs path. For -o json or yaml it prints the answer and reports
// done; for text it decodes the answer into out for the caller to print.
func (c *client) getOut(ctx context.Context, path, format string, out any) (done bool, err error) {
	switch format {
	case "text", "json", "yaml":
	default:
		return true, fmt.Errorf("unknown output %q: text, json or yaml", format)
	}
	var raw json.RawMessage
	if err := c.getJSON(ctx, path, &raw); err != nil {
		return true, err
	}
	if format == "text" {
		return false, json.Unmarshal(raw, out)
	}
	return true, printRaw(format, raw)
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
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // offsets and times stay integers, not 1.79e+12
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	b, err := yaml.Marshal(numbers(v))
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
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
