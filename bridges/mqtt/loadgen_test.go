package mqtt

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoadAgainstMosquitto: the load generator's devices speak MQTT 5 to
// a real broker, Debian's mosquitto: every QoS 1 message is acknowledged
// once, with more asked in flight than the broker's receive maximum (a
// device that exceeded it would be disconnected), and a subscriber gets
// every one of them, well formed; QoS 0 writes them all; a throttled load
// keeps its rate.
func TestLoadAgainstMosquitto(t *testing.T) {
	addr, port := startMosquitto(t, "max_inflight_messages 5\nmax_queued_messages 0\n")
	// A subscriber of everything the loads publish, counting by topic.
	sub := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "load/#", "-v")
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	probe := func() bool {
		return exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "load/probe", "-m", "p").Run() == nil
	}
	for deadline := time.Now().Add(10 * time.Second); !probe(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Process.Kill(); sub.Wait() })
	var mu sync.Mutex
	got := map[string]int{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			topic, _, _ := strings.Cut(sc.Text(), " ")
			mu.Lock()
			got[topic]++
			mu.Unlock()
		}
	}()
	// The subscriber is ready once a probe published reaches it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		probe()
		mu.Lock()
		ready := got["load/probe"] > 0
		mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber did not get the probe")
		}
	}
	received := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for topic, c := range got {
			if strings.HasPrefix(topic, prefix) {
				n += c
			}
		}
		return n
	}
	until := func(prefix string, want int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); received(prefix) < want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the subscriber got %d of %d", prefix, received(prefix), want)
			}
		}
	}

	var ackMu sync.Mutex
	acks := map[int]int{}
	res, err := RunLoad(context.Background(), LoadConfig{Addr: addr, Tenant: "t", Token: "x", Topic: "load/q1", Devices: 8,
		Messages: 2000, Size: 200, QoS: 1, InFlight: 16, Duration: 30 * time.Second,
		OnAck: func(_, seq int) { ackMu.Lock(); acks[seq]++; ackMu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked != 2000 || res.Failed != 0 || len(res.Errors) != 0 || len(acks) != 2000 || res.P50Ms <= 0 {
		t.Fatalf("QoS 1: %+v, %d distinct acknowledged", res, len(acks))
	}
	for seq, n := range acks {
		if seq < 1 || seq > 2000 || n != 1 {
			t.Fatalf("message %d acknowledged %d times", seq, n)
		}
	}
	until("load/q1/", 2000)

	res, err = RunLoad(context.Background(), LoadConfig{Addr: addr, Topic: "load/q0", Devices: 4, Messages: 1000, Size: 64, QoS: 0,
		InFlight: 8, Duration: 30 * time.Second})
	if err != nil || res.Acked != 1000 || res.Failed != 0 {
		t.Fatalf("QoS 0: %+v %v", res, err)
	}
	until("load/q0/", 1000)

	// 4 devices at 50 messages a second each: 40 messages take at least
	// 0.15 s (a tick is 20 ms, the first comes after one).
	res, err = RunLoad(context.Background(), LoadConfig{Addr: addr, Topic: "load/slow", Devices: 4, Messages: 40, Size: 64, QoS: 1,
		Rate: 50, Duration: 30 * time.Second})
	if err != nil || res.Acked != 40 || res.Seconds < 0.15 {
		t.Fatalf("throttled: %+v %v", res, err)
	}
	until("load/slow/", 40)
}

// TestFanoutAgainstMosquitto: the fan-out's subscribers speak MQTT 5 to a
// real broker, Debian's mosquitto: each of them receives every message
// published, QoS 1 (acknowledged, or mosquitto would stop at its inflight
// window of 5) and QoS 0, deliveries larger than a subscriber's read
// buffer included, each with its latency.
func TestFanoutAgainstMosquitto(t *testing.T) {
	addr, port := startMosquitto(t, "max_inflight_messages 5\nmax_queued_messages 1000\n")
	for deadline := time.Now().Add(10 * time.Second); exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "probe", "-m", "p").Run() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
	}
	for _, c := range []FanoutConfig{
		{Topic: "fan/q1", Subscribers: 20, Messages: 300, Size: 100, QoS: 1, InFlight: 4},
		{Topic: "fan/q0", Subscribers: 10, Messages: 50, Size: 9000, QoS: 0, InFlight: 1},
	} {
		c.Addr, c.Tenant, c.Token, c.Duration = addr, "t", "x", 30*time.Second
		res, err := RunFanout(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", c.Topic, err)
		}
		want := int64(c.Subscribers * c.Messages)
		if res.Published != int64(c.Messages) || res.Delivered != want || res.Expected != want || len(res.Errors) != 0 || res.P50Ms <= 0 {
			t.Fatalf("%s: %+v; want %d delivered", c.Topic, res, want)
		}
	}
}
