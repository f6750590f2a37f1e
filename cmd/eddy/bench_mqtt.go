package main

import (
	"context"
	"fmt"
	"time"

	"github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/spf13/cobra"
)

func newBenchMQTT() *cobra.Command {
	var cfg mqtt.LoadConfig
	var qos, partitions, subscribers int
	var hold time.Duration
	var noCreate bool
	var out benchOut
	cmd := &cobra.Command{
		Use:   "mqtt",
		Short: "Publish sensor JSON over MQTT from many connections (bounded by --messages and --duration)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			if !noCreate {
				if err := ensureTopic(c, cfg.Topic, int32(partitions), 1); err != nil {
					return err
				}
			}
			cfg.Token, cfg.QoS = c.token, byte(qos)
			if subscribers > 0 {
				return benchFanout(cfg, subscribers, hold, &out)
			}
			res, err := mqtt.RunLoad(context.Background(), cfg)
			if err != nil {
				return err
			}
			return out.print(res, func() {
				fmt.Printf("mqtt qos %d: %d messages acknowledged over %d connections in %.2fs: %.0f msgs/s; latency p50 %.2f ms, p99 %.2f ms; %d failed; connected in %.0f ms\n",
					qos, res.Acked, res.Devices, res.Seconds, res.MsgsPerSec, res.P50Ms, res.P99Ms, res.Failed, res.ConnectMs)
				for e, n := range res.Errors {
					fmt.Printf("  %d x %s\n", n, e)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "mqtt-addr", "127.0.0.1:1883", "the node's MQTT listener")
	f.StringVar(&cfg.Tenant, "tenant", "default", "tenant (the MQTT username); the token must be of it")
	f.StringVar(&cfg.Topic, "topic", "bench-mqtt", "topic (created if missing); devices publish to <topic>/dev-NNNN")
	f.IntVar(&partitions, "partitions", 1, "partitions, when the topic is created")
	f.IntVar(&cfg.Devices, "connections", 64, "connections (devices)")
	f.IntVar(&cfg.Messages, "messages", 100_000, "messages in all, at most")
	f.DurationVar(&cfg.Duration, "duration", 60*time.Second, "stop after this long, at most")
	f.Float64Var(&cfg.Rate, "rate", 0, "messages/s per connection (fan-out: of the publisher; 0: as fast as acknowledged)")
	f.IntVar(&cfg.Size, "size", 256, "payload bytes")
	f.IntVar(&qos, "qos", 1, "0 or 1")
	f.IntVar(&cfg.InFlight, "inflight", 1, "concurrent publishes per connection")
	f.IntVar(&subscribers, "subscribers", 0, "fan-out: this many connections subscribe to <topic>/#, one publishes --messages to <topic>/cmd; measures deliveries/s and latency from publish to receipt")
	f.DurationVar(&hold, "hold", 0, "fan-out: keep the subscribers connected and idle this long before publishing")
	out.flags(cmd)
	f.BoolVar(&noCreate, "no-create", false, "do not create the topic over HTTP (e.g. loading another broker)")
	return cmd
}

func benchFanout(load mqtt.LoadConfig, subscribers int, hold time.Duration, out *benchOut) error {
	res, err := mqtt.RunFanout(context.Background(), mqtt.FanoutConfig{Addr: load.Addr, Tenant: load.Tenant, Token: load.Token,
		Topic: load.Topic, Subscribers: subscribers, Messages: load.Messages, Size: load.Size, QoS: load.QoS, InFlight: load.InFlight, Rate: load.Rate,
		Duration: load.Duration + hold, Hold: hold})
	if err != nil {
		return err
	}
	return out.print(res, func() {
		fmt.Printf("mqtt fan-out qos %d: %d of %d deliveries (%d published to %d subscribers) in %.2fs: %.0f deliveries/s; publish to receipt p50 %.2f ms, p99 %.2f ms\n",
			load.QoS, res.Delivered, res.Expected, res.Published, res.Subscribers, res.Seconds, res.DeliveriesPerSec, res.P50Ms, res.P99Ms)
	})
}
