package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type clusterStatus struct {
	NodeID uint64 `json:"node_id"`
	Nodes  []struct {
		ID         uint64 `json:"id"`
		RaftAddr   string `json:"raft_addr"`
		HTTPAddr   string `json:"http_addr"`
		State      string `json:"state"`
		Alive      bool   `json:"alive"`
		Leads      int    `json:"partitions_led"`
		Hosts      int    `json:"partitions_hosted"`
		Controller bool   `json:"controller_leader"`
	} `json:"nodes"`
	Moves []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Node      uint64 `json:"node"`
		From      uint64 `json:"from"`
		Phase     string `json:"phase"`
	} `json:"moves"`
}

func newCluster() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect and change the cluster (operator)"}
	var format string
	status := &cobra.Command{
		Use:   "status",
		Short: "Nodes, their state and liveness, the partitions each leads and hosts, and replica moves",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out clusterStatus
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/cluster", format, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tHTTP\tRAFT\tSTATE\tALIVE\tLEADS\tHOSTS\tCONTROLLER")
			for _, n := range out.Nodes {
				me, ctrl := "", ""
				if n.ID == out.NodeID {
					me = "*"
				}
				if n.Controller {
					ctrl = "leader"
				}
				fmt.Fprintf(w, "%d%s\t%s\t%s\t%s\t%v\t%d\t%d\t%s\n", n.ID, me, n.HTTPAddr, n.RaftAddr, n.State, n.Alive, n.Leads, n.Hosts, ctrl)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(out.Moves) > 0 {
				fmt.Println()
				w = tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
				fmt.Fprintln(w, "MOVING\tPARTITION\tFROM\tTO\tPHASE")
				for _, m := range out.Moves {
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", m.Topic, m.Partition, m.From, m.Node, m.Phase)
				}
				return w.Flush()
			}
			return nil
		},
	}
	outputFlag(status, &format)

	var id uint64
	var raftAddr string
	add := &cobra.Command{
		Use:   "add-node --id N --raft-addr host:port",
		Short: "Add a node; then start it with: eddy serve --join --node-id N --raft-addr host:port",
		Long: `Adds a node to the cluster. Start the new node with
  eddy serve --join --node-id N --raft-addr host:port --http-addr ...
(before or after this command). It joins the controller, registers its HTTP
address, and partition replicas move onto it: each as a non-voting member
first, promoted once it has caught up, before a replica elsewhere is removed.
"eddy cluster status" shows the moves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"id": id, "raft_addr": raftAddr})
			var out map[string]any
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", "/v1/cluster/nodes", "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("node %d added (raft %s); start it with: eddy serve --join --node-id %d --raft-addr %s\n", id, raftAddr, id, raftAddr)
			return nil
		},
	}
	outputFlag(add, new(string))
	add.Flags().Uint64Var(&id, "id", 0, "the new node's id (never used before in this cluster)")
	add.Flags().StringVar(&raftAddr, "raft-addr", "", "the new node's Raft address, host:port")
	add.MarkFlagRequired("id")
	add.MarkFlagRequired("raft-addr")

	var wait time.Duration
	remove := &cobra.Command{
		Use:   "remove-node ID",
		Short: "Remove a node: its replicas move to other nodes first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("node id %q: %w", args[0], err)
			}
			c := newClient(cmd)
			var out map[string]any
			if done, err := c.sendOut(ctxTimeout(), "DELETE", "/v1/cluster/nodes/"+args[0], "", nil, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("node %d is draining: its replicas move to other nodes, then it is removed\n", n)
			if wait <= 0 {
				return nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			for {
				var st clusterStatus
				if err := c.getJSON(ctx, "/v1/cluster", &st); err == nil {
					found := false
					for _, node := range st.Nodes {
						found = found || node.ID == n
					}
					if !found {
						fmt.Printf("node %d removed; it can be stopped\n", n)
						return nil
					}
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("node %d was not removed within %s; see eddy cluster status", n, wait)
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	outputFlag(remove, new(string))
	remove.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the removal to finish (0: return at once)")
	cmd.AddCommand(status, add, remove)
	return cmd
}
