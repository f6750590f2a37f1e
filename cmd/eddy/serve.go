package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/node"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v4"
)

func newServe() *cobra.Command {
	var configFile, peers string
	cfg := node.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an Eddy node",
		Long: `Run an Eddy node. With no flags it keeps its data in ./eddy-data, serves
HTTP on :8080 and Raft on 127.0.0.1:7100. Settings come from the defaults,
then --config FILE, then EDDY_* environment variables, then flags.

SIGHUP reloads the configuration: the log level, tenant_defaults, the MQTT
bridges, the TLS certificates and the Raft CA (read again from their files)
change at once; the node logs what it reloaded and which changed settings
take a restart. SIGINT or
SIGTERM stop the node gracefully (leaderships handed over, in-flight
writes finished); a second one stops it at once.`,
		Example: `  eddy serve
  eddy serve --config /etc/eddy/eddy.yaml
  eddy serve --node-id 2 --raft-addr 10.0.0.2:7100 --peers 1=10.0.0.1:7100,2=10.0.0.2:7100,3=10.0.0.3:7100`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadServeConfig(cmd, configFile, peers, cfg)
			if err != nil {
				return err
			}
			return serve(c, func() (node.Config, error) { return loadServeConfig(cmd, configFile, peers, cfg) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory (env EDDY_DATA_DIR)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP listen address (env EDDY_HTTP_ADDR)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "Raft address; must not change once data exists (env EDDY_RAFT_ADDR)")
	f.Uint64Var(&cfg.NodeID, "node-id", cfg.NodeID, "node id (env EDDY_NODE_ID)")
	f.StringVar(&cfg.MQTTAddr, "mqtt-addr", "", "MQTT listen address, or off (default :1883)")
	f.StringVar(&cfg.MQTTWSAddr, "mqtt-ws-addr", "", "MQTT over WebSockets listen address, e.g. :8083 (default off)")
	f.StringVar(&cfg.KafkaAddr, "kafka-addr", "", "Kafka listen address, or off (default :9092)")
	f.StringVar(&peers, "peers", "", "initial cluster members: 1=host:port,2=host:port,...")
	f.BoolVar(&cfg.Join, "join", false, "join a running cluster that added this node (eddy cluster add-node) (env EDDY_JOIN)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	return cmd
}

// loadServeConfig layers defaults < file < env < flags that were set.
func loadServeConfig(cmd *cobra.Command, file, peers string, flags node.Config) (node.Config, error) {
	c, err := node.Load(file, os.LookupEnv)
	if err != nil {
		return c, err
	}
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("data-dir", func() { c.DataDir = flags.DataDir })
	set("http-addr", func() { c.HTTPAddr = flags.HTTPAddr })
	set("raft-addr", func() { c.RaftAddr = flags.RaftAddr })
	set("node-id", func() { c.NodeID = flags.NodeID })
	set("mqtt-addr", func() { c.MQTTAddr = flags.MQTTAddr })
	set("mqtt-ws-addr", func() { c.MQTTWSAddr = flags.MQTTWSAddr })
	set("kafka-addr", func() { c.KafkaAddr = flags.KafkaAddr })
	set("log-level", func() { c.LogLevel = flags.LogLevel })
	set("join", func() { c.Join = flags.Join })
	if cmd.Flags().Changed("peers") {
		p, err := node.ParsePeers(peers)
		if err != nil {
			return c, err
		}
		c.Peers = p
	}
	return c, c.Validate()
}

// serve runs a node until SIGINT or SIGTERM; reload reads the
// configuration again for SIGHUP.
func serve(cfg node.Config, reload func() (node.Config, error)) error {
	log := cfg.NewLogger(os.Stderr)
	n, err := node.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithGoRun()
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := n.Start(startCtx); err != nil {
		return err
	}
	log.Info("eddy is serving", "version", version, logkey.Node, cfg.NodeID, "http", n.HTTPAddr(),
		"raft", cfg.RaftAddr, "data_dir", cfg.DataDir)
	n.Human("eddy %s: HTTP API on %s, Raft on %s, data in %s\n", version, n.HTTPURL(), cfg.RaftAddr, cfg.DataDir)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			next, err := reload()
			if err != nil {
				log.Error("SIGHUP: the configuration is not valid; nothing reloaded", logkey.Err, err)
				continue
			}
			reloaded, restart, err := n.Reload(next)
			if err != nil {
				log.Error("SIGHUP: reload failed in part", logkey.Err, err)
			}
			log.Info("SIGHUP: configuration reloaded", "reloaded", reloaded, "changed_but_need_a_restart", restart)
		}
	}
	stop()
	// A second signal stops the process at once, and says so (a stop that
	// ends without "stopped cleanly" then has its reason in the log).
	second := make(chan os.Signal, 1)
	signal.Notify(second, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-second
		log.Warn("a second signal: stopping at once; writes in flight may be neither acknowledged nor lost", "signal", sig.String())
		os.Exit(1)
	}()
	log.Info("shutting down: finishing in-flight writes")
	closeCtx, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := n.Close(closeCtx); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

func newConfig() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check or print the node configuration"}
	var file string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Validate a config file (with EDDY_* overrides)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := node.Load(file, os.LookupEnv)
			if err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return err
			}
			if f := outputOf(cmd); f != "text" {
				return printValue(f, map[string]bool{"valid": true})
			}
			fmt.Println("config is valid")
			return nil
		},
	}
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := node.Load(file, os.LookupEnv)
			if err != nil {
				return err
			}
			f := outputOf(cmd)
			if err := checkOutput(f); err != nil {
				return err
			}
			if f == "json" { // the YAML's keys
				var v map[string]any
				if err := yaml.Unmarshal([]byte(c.YAML()), &v); err != nil {
					return err
				}
				return printValue(f, v)
			}
			fmt.Print(c.YAML())
			return nil
		},
	}
	for _, c := range []*cobra.Command{validate, print} {
		c.Flags().StringVar(&file, "config", "", "YAML config file")
		outputFlag(c, new(string))
		cmd.AddCommand(c)
	}
	return cmd
}
