package main

import (
	"context"
	"fmt"
	"time"

	"github.com/eddy-broker/eddy/bridges/kafka"
	"github.com/spf13/cobra"
)

func newBenchKafka() *cobra.Command {
	var cfg kafka.LoadConfig
	var partitions int32
	var rf int
	var out benchOut
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Produce (or with --consume, read from the start) over the Kafka protocol with franz-go (bounded by --records and --duration)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			if !cfg.Consume {
				if err := ensureTopic(c, cfg.Topic, partitions, rf); err != nil {
					return err
				}
			}
			cfg.Token = c.token
			res, err := kafka.RunLoad(context.Background(), cfg)
			if err != nil {
				return err
			}
			return out.print(res, func() {
				fmt.Printf("%s: %d records in %.2fs: %.0f records/s, %.2f MB/s; latency p50 %.2f ms, p99 %.2f ms\n",
					res.Mode, res.Records, res.Seconds, res.RecordsPerSec, res.MBPerSec, res.P50Ms, res.P99Ms)
				for e, n := range res.Errors {
					fmt.Printf("  %d x %s\n", n, e)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "kafka-addr", "127.0.0.1:9092", "the node's Kafka listener")
	f.StringVar(&cfg.Tenant, "tenant", "default", "tenant (the SASL username); the token must be of it")
	f.StringVar(&cfg.Topic, "topic", "bench-kafka", "topic (created if missing when producing)")
	f.Int32Var(&partitions, "partitions", 1, "partitions, when the topic is created")
	f.IntVar(&rf, "replication-factor", 1, "replication factor, when the topic is created")
	f.BoolVar(&cfg.Consume, "consume", false, "read the topic from its start instead")
	f.Int64Var(&cfg.Records, "records", 200_000, "records to send or read, at most")
	f.IntVar(&cfg.Size, "size", 1024, "value size in bytes")
	f.IntVar(&cfg.Clients, "clients", 1, "producing clients (each batches as franz-go does by default)")
	f.DurationVar(&cfg.Duration, "duration", 60*time.Second, "stop after this long, at most")
	f.Float64Var(&cfg.Rate, "rate", 0, "records/s in all (0: as fast as acknowledged)")
	f.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	out.flags(cmd)
	return cmd
}
