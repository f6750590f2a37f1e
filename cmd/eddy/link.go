package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	httpapi "github.com/eddy-broker/eddy/bridges/http"
	"github.com/eddy-broker/eddy/multiraft/catalog"
	"github.com/spf13/cobra"
)

func newLink() *cobra.Command {
	cmd := &cobra.Command{Use: "link", Short: "Forward topics to another Kafka cluster (a cloud Eddy, or any Kafka) exactly once",
		Long: `A link forwards the tenant's topics to a Kafka cluster over the Kafka protocol,
exactly once and in order per partition, across outages of the uplink and
restarts of either side. While the uplink is down, the unsent records are
kept from retention up to the link's backlog caps. See docs/links.md.`}
	cmd.AddCommand(newLinkCreate(), newLinkList(), newLinkDescribe(), newLinkAction("pause", "Stop sending (the backlog is kept, up to its caps)"),
		newLinkAction("resume", "Send again from where the link stopped"), newLinkDelete())
	return cmd
}

func linkPath(name string) string { return "/v1/links/" + url.PathEscape(name) }

// linkSpec is the body of POST /v1/links.
type linkSpec struct {
	Name string `json:"name"`
	catalog.LinkSpec
}

func newLinkCreate() *cobra.Command {
	var s linkSpec
	var to, topics, priority, passwordFile, caFile, rate, backlogBytes, batchBytes string
	var backlogAge, linger time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME --to kafka://HOST:PORT[,HOST:PORT] --topics 'a,b,metrics-*'",
		Short: "Forward topics to a Kafka cluster",
		Example: `  eddy link create cloud --to kafka://cloud.example.com:9092 --topics 'sensors,alerts,metrics-*' \
      --target-prefix site-17. --sasl plain --username acme --password-file cloud.jwt \
      --tls --compression zstd --max-bytes-per-sec 256KiB --priority alerts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Name = args[0]
			for _, b := range splitList(to) {
				s.To = append(s.To, strings.TrimPrefix(b, "kafka://"))
			}
			s.Topics, s.Priority = splitList(topics), splitList(priority)
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return err
				}
				s.Password = strings.TrimSpace(string(b))
			}
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return err
				}
				s.CAPEM, s.TLS = string(b), true
			}
			var err error
			if s.MaxBytesPerSec, err = parseBytes(rate); err != nil {
				return fmt.Errorf("--max-bytes-per-sec: %w", err)
			}
			if s.MaxBacklogBytes, err = parseBytes(backlogBytes); err != nil {
				return fmt.Errorf("--max-backlog-bytes: %w", err)
			}
			if s.MaxBatchBytes, err = parseBytes(batchBytes); err != nil {
				return fmt.Errorf("--max-batch-bytes: %w", err)
			}
			s.MaxBacklogAgeMs, s.LingerMs = backlogAge.Milliseconds(), linger.Milliseconds()
			body, _ := json.Marshal(s)
			var out httpapi.LinkView
			if done, err := newClient(cmd).sendOut(ctxTimeout(), http.MethodPost, "/v1/links", "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("link %s created: %s to %s\n", out.Name, strings.Join(out.Topics, ","), strings.Join(out.To, ","))
			return nil
		},
	}
	outputFlag(cmd, new(string))
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target brokers, kafka://host:port[,host:port]")
	f.StringVar(&topics, "topics", "", "topics to forward: names or globs, comma-separated")
	f.StringVar(&priority, "priority", "", "topics (globs) sent first, in this order, when bandwidth is short")
	f.StringVar(&s.TargetPrefix, "target-prefix", "", "put before each topic's name on the target")
	f.StringVar(&s.SASL, "sasl", "", "plain or oauthbearer (the password is then the token)")
	f.StringVar(&s.Username, "username", "", "SASL username (to an Eddy target: its tenant)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the SASL password (to an Eddy target: a token of its tenant)")
	f.BoolVar(&s.TLS, "tls", false, "TLS to the target (the system's roots)")
	f.StringVar(&caFile, "tls-ca", "", "PEM file of the roots to trust (implies --tls)")
	f.StringVar(&s.ServerName, "tls-server-name", "", "name to verify the target's certificate against")
	f.BoolVar(&s.InsecureSkipVerify, "tls-insecure", false, "do not verify the target's certificate (tests only)")
	f.StringVar(&s.Compression, "compression", "", "none, gzip, snappy, lz4 or zstd")
	f.StringVar(&rate, "max-bytes-per-sec", "", "bandwidth cap, as 256KiB (default none)")
	f.StringVar(&s.Start, "start", "earliest", "where a partition starts: earliest or latest")
	f.StringVar(&backlogBytes, "max-backlog-bytes", "", "unsent bytes kept from retention per partition, as 2GiB (default 1GiB)")
	f.DurationVar(&backlogAge, "max-backlog-age", 0, "unsent records older than this are dropped (default none)")
	f.DurationVar(&linger, "linger", 0, "wait this long to fill a batch when little is sent (default 50ms)")
	f.StringVar(&batchBytes, "max-batch-bytes", "", "bound of one batch sent (default 1MiB)")
	f.BoolVar(&s.NoCreateTopics, "no-create-topics", false, "never create missing topics on the target")
	cmd.MarkFlagRequired("to")
	cmd.MarkFlagRequired("topics")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseBytes reads 1024, 256KiB, 1.5MB, 2GiB ("": 0).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (as 256KiB)", s)
	}
	return int64(v * mult), nil
}

func newLinkList() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's links with their state and backlog",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Links []httpapi.LinkView `json:"links"`
			}
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/links", format, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTO\tTOPICS\tSTATE\tBACKLOG\tDROPPED\tSENT")
			for _, l := range out.Links {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", l.Name, strings.Join(l.To, ","), strings.Join(l.Topics, ","), l.State,
					l.Totals.BacklogRecords, l.Totals.Dropped, sizeText(l.Totals.BytesSent))
			}
			return w.Flush()
		},
	}
	outputFlag(cmd, &format)
	return cmd
}

func newLinkDescribe() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a link and, per partition, its position, backlog, state and producer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l httpapi.LinkView
			if done, err := newClient(cmd).getOut(ctxTimeout(), linkPath(args[0]), format, &l); done || err != nil {
				return err
			}
			fmt.Printf("link %s: %s\n  to %s", l.Name, l.State, strings.Join(l.To, ","))
			if l.TargetPrefix != "" {
				fmt.Printf(" (topics prefixed %q)", l.TargetPrefix)
			}
			fmt.Printf("\n  topics %s", strings.Join(l.Topics, ","))
			if len(l.Priority) > 0 {
				fmt.Printf(", first %s", strings.Join(l.Priority, ","))
			}
			fmt.Printf("\n  backlog %d records, %s, %.0f s; dropped %d; producer resets %d; sent %s\n",
				l.Totals.BacklogRecords, sizeText(l.Totals.BacklogBytes), l.Totals.BacklogSeconds, l.Totals.Dropped, l.Totals.Resets, sizeText(l.Totals.BytesSent))
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tPART\tEND\tFORWARDED\tBACKLOG\tAGE\tSTATE\tNODE\tPRODUCER\tDROPPED\tSENT\tERROR")
			for _, p := range l.Partitions {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%.0fs\t%s\t%d\t%d/%d@%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.End, p.Forwarded,
					p.BacklogRecords, p.BacklogSeconds, p.State, p.Node, p.ProducerID, p.ProducerEpoch, p.Sequence, p.Dropped, sizeText(p.BytesSent), p.Error)
			}
			return w.Flush()
		},
	}
	outputFlag(cmd, &format)
	return cmd
}

func newLinkAction(action, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), http.MethodPost, linkPath(args[0])+"/"+action, "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("link %s: %sd\n", args[0], action)
			return nil
		},
	}
	outputFlag(cmd, new(string))
	return cmd
}

func newLinkDelete() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a link and its progress (what it has not sent is no longer kept from retention)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), http.MethodDelete, linkPath(args[0]), "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("link %s deleted\n", args[0])
			return nil
		},
	}
	outputFlag(cmd, new(string))
	return cmd
}

// sizeText prints bytes in binary units.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
