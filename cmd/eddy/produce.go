package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newProduce() *cobra.Command {
	var key, file, format string
	var partition int32
	var batch int
	var headers []string
	var keyDelim string
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce lines from stdin (or --file) as records",
		Long: `Produce one record per input line. With --format raw (the default) each
line is a value; with --format json each line is a record object such as
{"key":"dev-1","value":{"t":21.5},"headers":{"unit":"C"}}.
Records are sent in batches and acknowledged only after they are committed.
--key-delimiter splits each raw line into key and value at the first
delimiter (as kcat's -K); --header k=v adds a header to every record.`,
		Example: `  seq 1 1000 | eddy produce sensors
  echo '{"key":"dev-1","value":{"t":21.5}}' | eddy produce sensors --format json
  printf 'dev-1:{"t":21.5}\n' | eddy produce sensors --key-delimiter : --header unit=C`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "raw" && format != "json" {
				return fmt.Errorf("--format %q: use raw or json", format)
			}
			output := outputOf(cmd)
			if err := checkOutput(output); err != nil {
				return err
			}
			hdrs := map[string]string{}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return fmt.Errorf("--header %q: use key=value", h)
				}
				hdrs[k] = v
			}
			in := io.Reader(os.Stdin)
			var size int64
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				st, _ := f.Stat()
				size = st.Size()
				in = f
			}
			if file == "" { // stdin redirected from a file has a size too
				if st, err := os.Stdin.Stat(); err == nil && st.Mode().IsRegular() {
					size = st.Size()
				}
			}
			// A progress bar on a terminal for large inputs: sized when the
			// input's size is known, else a byte counter once 1 MiB is read.
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			var bar *progressbar.ProgressBar
			if size > 1<<20 && tty {
				bar = progressbar.DefaultBytes(size, "producing")
			}
			read := 0
			c := newClient(cmd)
			path := topicPath(args[0]) + "/records"
			var body bytes.Buffer
			n, total := 0, 0
			flush := func() error {
				if n == 0 {
					return nil
				}
				var raw json.RawMessage
				if err := c.do(ctxTimeout(), "POST", path, "application/x-ndjson", body.Bytes(), &raw); err != nil {
					return fmt.Errorf("after %d records: %w", total, err)
				}
				var res struct{ Offsets []json.RawMessage }
				if err := json.Unmarshal(raw, &res); err != nil {
					return err
				}
				total += len(res.Offsets)
				if err := printAnswer(output, raw); err != nil {
					return err
				}
				body.Reset()
				n = 0
				return nil
			}
			sc := bufio.NewScanner(in)
			sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
			for sc.Scan() {
				line := sc.Bytes()
				read += len(line) + 1
				if bar == nil && tty && size <= 0 && read > 1<<20 {
					bar = progressbar.DefaultBytes(-1, "producing")
					bar.Add(read - len(line) - 1)
				}
				if bar != nil {
					bar.Add(len(line) + 1)
				}
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				rec := map[string]any{}
				if format == "json" {
					if err := json.Unmarshal(line, &rec); err != nil {
						return fmt.Errorf("line %d is not a JSON object: %v", total+n+1, err)
					}
				} else if k, v, ok := strings.Cut(string(line), keyDelim); keyDelim != "" && ok {
					rec["key"], rec["value"] = k, v
				} else {
					rec["value"] = string(line)
				}
				if key != "" {
					rec["key"] = key
				}
				if len(hdrs) > 0 {
					h, _ := rec["headers"].(map[string]any)
					if h == nil {
						h = map[string]any{}
					}
					for k, v := range hdrs {
						h[k] = v
					}
					rec["headers"] = h
				}
				if partition >= 0 {
					rec["partition"] = partition
				}
				b, _ := json.Marshal(rec)
				body.Write(b)
				body.WriteByte('\n')
				n++
				if n >= batch || body.Len() >= 1<<20 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := sc.Err(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			if bar != nil {
				bar.Finish()
			}
			fmt.Fprintf(os.Stderr, "produced %s to %s\n", plural(total, "record"), args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&key, "key", "k", "", "key for every record")
	f.Int32VarP(&partition, "partition", "p", -1, "partition (default: by key, or round-robin)")
	f.StringVarP(&file, "file", "f", "", "read from this file instead of stdin")
	f.StringVar(&format, "format", "raw", "raw (a line is a value) or json (a line is a record object)")
	f.IntVar(&batch, "batch", 500, "records per request")
	f.StringArrayVarP(&headers, "header", "H", nil, "header key=value on every record (repeatable)")
	f.StringVarP(&keyDelim, "key-delimiter", "K", "", "raw lines are KEY<delimiter>VALUE")
	outputFlag(cmd, new(string))
	cmd.Flags().Lookup("output").Usage = "text (a count on stderr), json or yaml: each request's answer, its records' partitions and offsets (a line, or a document, per request)"
	return cmd
}

// plural is "1 record", "2 records".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
