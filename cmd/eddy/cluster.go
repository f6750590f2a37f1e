package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newCluster() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect the cluster (operator)"}
	var format string
	status := &cobra.Command{
		Use:   "status",
		Short: "Nodes, liveness, and the partitions each leads and hosts",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				NodeID uint64 `json:"node_id"`
				Nodes  []struct {
					ID         uint64 `json:"id"`
					RaftAddr   string `json:"raft_addr"`
					HTTPAddr   string `json:"http_addr"`
					Alive      bool   `json:"alive"`
					Leads      int    `json:"partitions_led"`
					Hosts      int    `json:"partitions_hosted"`
					Controller bool   `json:"controller_leader"`
				} `json:"nodes"`
			}
			if err := newClient(cmd).getJSON(ctxTimeout(), "/v1/cluster", &out); err != nil {
				return err
			}
			if format == "json" {
				return printJSON(out)
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tHTTP\tRAFT\tALIVE\tLEADS\tHOSTS\tCONTROLLER")
			for _, n := range out.Nodes {
				me, ctrl := "", ""
				if n.ID == out.NodeID {
					me = "*"
				}
				if n.Controller {
					ctrl = "leader"
				}
				fmt.Fprintf(w, "%d%s\t%s\t%s\t%v\t%d\t%d\t%s\n", n.ID, me, n.HTTPAddr, n.RaftAddr, n.Alive, n.Leads, n.Hosts, ctrl)
			}
			return w.Flush()
		},
	}
	status.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.AddCommand(status)
	return cmd
}
