// Command devices simulates sensor devices publishing to Eddy's MQTT
// listener: each device its own MQTT 5 connection and token, publishing
// JSON readings to <topic>/dev-NNNN at a given rate. It is bounded by
// --messages and --duration.
//
//	go run ./examples/devices --addr 127.0.0.1:1883 --tenant default --token "$TOKEN" \
//	    --topic sensors --devices 100 --rate 2 --messages 10000
//
// With --acked FILE it writes the sequence number of every acknowledged
// message, one per line (the end-to-end tests use it to check that every
// acknowledged message was stored exactly once).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/bridges/mqtt"
)

func main() {
	var cfg mqtt.LoadConfig
	var acked string
	var qos int
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:1883", "the MQTT listener")
	flag.StringVar(&cfg.Tenant, "tenant", "default", "tenant (the MQTT username)")
	flag.StringVar(&cfg.Token, "token", os.Getenv("EDDY_TOKEN"), "a JWT of the tenant with a produce scope (the MQTT password)")
	flag.StringVar(&cfg.Topic, "topic", "sensors", "the Eddy topic: devices publish to <topic>/dev-NNNN")
	flag.IntVar(&cfg.Devices, "devices", 10, "devices, one connection each")
	flag.IntVar(&cfg.Messages, "messages", 1000, "messages in all, at most")
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "stop after this long, at most")
	flag.Float64Var(&cfg.Rate, "rate", 1, "messages per second per device (0: as fast as acknowledged)")
	flag.IntVar(&cfg.Size, "size", 128, "payload bytes")
	flag.IntVar(&qos, "qos", 1, "0 or 1")
	flag.IntVar(&cfg.InFlight, "inflight", 1, "concurrent publishes per device")
	flag.StringVar(&acked, "acked", "", "write acknowledged sequence numbers to this file")
	flag.Parse()
	cfg.QoS = byte(qos)
	var mu sync.Mutex
	var w *bufio.Writer
	if acked != "" {
		f, err := os.Create(acked)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		w = bufio.NewWriter(f)
		defer w.Flush()
		cfg.OnAck = func(device, seq int) {
			mu.Lock()
			fmt.Fprintln(w, seq)
			mu.Unlock()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := mqtt.RunLoad(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devices:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}
