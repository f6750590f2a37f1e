package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Targets that do not play fair: a link's target is what a tenant names,
// so its answers are untrusted input.

// fakeKafka is a Kafka "broker" on loopback that answers ApiVersions
// (the versions it lists, none flexible but ApiVersions itself),
// InitProducerId (producer id 1000), and what answer makes of every other
// request; nil closes the connection.
func fakeKafka(t *testing.T, versions map[int16]int16, answer func(kmsg.Request) kmsg.Response) string {
	return serveLoopback(t, "127.0.0.1", func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, corr, err := readKafkaRequest(br)
			if err != nil {
				return
			}
			var resp kmsg.Response
			switch r := req.(type) {
			case *kmsg.ApiVersionsRequest:
				a := r.ResponseKind().(*kmsg.ApiVersionsResponse)
				for k, max := range versions {
					a.ApiKeys = append(a.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MaxVersion: max})
				}
				a.ApiKeys = append(a.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: 18, MaxVersion: 3},
					kmsg.ApiVersionsResponseApiKey{ApiKey: 22, MaxVersion: 1})
				resp = a
			case *kmsg.InitProducerIDRequest:
				a := r.ResponseKind().(*kmsg.InitProducerIDResponse)
				a.ProducerID = 1000
				resp = a
			default:
				if resp = answer(req); resp == nil {
					return
				}
			}
			resp.SetVersion(req.GetVersion())
			body := resp.AppendTo(binary.BigEndian.AppendUint32(nil, uint32(corr)))
			if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
				return
			}
		}
	})
}

// serveLoopback accepts on a port of host (a loopback address) until the
// test ends, handling each connection on its own goroutine and closing
// it after; it returns the address.
func serveLoopback(t *testing.T, host string, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// metadataFrom is a Metadata answer naming the broker at addr, the
// controller, alone.
func metadataFrom(r *kmsg.MetadataRequest, addr string) *kmsg.MetadataResponse {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	host, port, _ := net.SplitHostPort(addr)
	var p int32
	fmt.Sscan(port, &p)
	resp.Brokers, resp.ControllerID = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: host, Port: p}}, 1
	return resp
}

// readKafkaRequest reads a request's frame and header (v1, or v2 with
// its tagged fields for flexible versions).
func readKafkaRequest(br *bufio.Reader) (kmsg.Request, int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 10 || n > 1<<20 {
		return nil, 0, errors.New("bad size")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, 0, err
	}
	key, version := int16(binary.BigEndian.Uint16(b)), int16(binary.BigEndian.Uint16(b[2:]))
	corr := int32(binary.BigEndian.Uint32(b[4:]))
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, 0, fmt.Errorf("key %d", key)
	}
	req.SetVersion(version)
	rest := b[8:]
	if l := int16(binary.BigEndian.Uint16(rest)); l > 0 { // client id
		rest = rest[2+int(l):]
	} else {
		rest = rest[2:]
	}
	if req.IsFlexible() {
		rd := kbin(rest)
		tags := rd.uvarint()
		for range tags {
			rd.uvarint()
			rd = rd[rd.uvarint():]
		}
		rest = rd
	}
	return req, corr, req.ReadFrom(rest)
}

type kbin []byte

func (b *kbin) uvarint() uint64 {
	v, n := binary.Uvarint(*b)
	*b = (*b)[n:]
	return v
}

// TestLinkTargetErrorBounded: a target's error messages are its own
// text, as long as it likes; the link keeps a short head of it in its
// status (which every node holds in the controller, and shows), not a
// megabyte per partition and attempt.
func TestLinkTargetErrorBounded(t *testing.T) {
	var creates atomic.Int64
	var addr string
	addr = fakeKafka(t, map[int16]int16{3: 8, 19: 4}, func(req kmsg.Request) kmsg.Response {
		switch r := req.(type) {
		case *kmsg.MetadataRequest:
			resp := metadataFrom(r, addr)
			for _, tp := range r.Topics {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{Topic: tp.Topic, ErrorCode: kerr.UnknownTopicOrPartition.Code})
			}
			return resp
		case *kmsg.CreateTopicsRequest:
			creates.Add(1)
			resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
			msg := strings.Repeat("a hostile target says so at length. ", 30_000) // about 1 MiB
			for _, tp := range r.Topics {
				resp.Topics = append(resp.Topics, kmsg.CreateTopicsResponseTopic{Topic: tp.Topic, ErrorCode: kerr.PolicyViolation.Code, ErrorMessage: &msg})
			}
			return resp
		}
		return nil
	})
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("sensors", 2)
	edge.producePadded("sensors", 0, 5, 64, "r")
	edge.createLink(map[string]any{"name": "loud", "to": []string{addr}, "topics": []string{"sensors"}})
	var v linkView
	defer func() { t.Logf("the link: %s, %.200q", v.State, errorsOf(v)) }()
	waitFor(t, "the link says why it fails", 30*time.Second, func() bool {
		v = edge.link("loud")
		return strings.Contains(errorsOf(v), "POLICY_VIOLATION")
	})
	for _, p := range v.Partitions {
		t.Logf("partition %d: %s, %d bytes of error: %.120s", p.Partition, p.State, len(p.Error), p.Error)
		if len(p.Error) > 600 {
			t.Errorf("partition %d's error is %d bytes: the target's message kept whole", p.Partition, len(p.Error))
		}
	}
	if creates.Load() == 0 {
		t.Fatal("the target was not asked to create the topic")
	}
}

// TestLinkHostileTarget: a tenant may point its links anywhere, so a
// target is untrusted input. Three links to a "broker" that answers
// every request with a frame of 96 MiB, and sends it, cost the edge a
// few MiB of memory, not the frames: each link fails, says why, and
// backs off.
func TestLinkHostileTarget(t *testing.T) {
	var sent atomic.Int64
	addr := serveLoopback(t, "127.0.0.1", func(c net.Conn) {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
		c.Write(binary.BigEndian.AppendUint32(nil, 96<<20))
		chunk := make([]byte, 1<<20)
		for range 96 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
			sent.Add(1 << 20)
		}
	})
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("sensors", 1)
	edge.producePadded("sensors", 0, 10, 64, "r")
	before := procStatusBytes(t, edge.cmd.Process.Pid, "VmHWM")
	for i := range 3 {
		edge.createLink(map[string]any{"name": fmt.Sprintf("h%d", i), "to": []string{addr}, "topics": []string{"sensors"}})
	}
	time.Sleep(8 * time.Second)
	grew := procStatusBytes(t, edge.cmd.Process.Pid, "VmHWM") - before
	t.Logf("the target sent %d MiB; the edge's peak RSS grew %d MiB", sent.Load()>>20, grew>>20)
	for i := range 3 {
		v := edge.link(fmt.Sprintf("h%d", i))
		if v.State == "running" || errorsOf(v) == "" {
			t.Errorf("h%d: state %s, error %q; want a failure that says why", i, v.State, errorsOf(v))
		}
		t.Logf("h%d: %s, %q", i, v.State, errorsOf(v))
	}
	if grew > 32<<20 {
		t.Fatalf("the edge's peak RSS grew %d MiB for three links to a hostile target", grew>>20)
	}
	if code, err := edge.do("POST", "/v1/topics/sensors/records", "application/json", []byte(`{"records":[{"value":"ok"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce after: %d %v", code, err)
	}
}

// TestLinkHostileMetadata: a target whose metadata names partitions and
// brokers no broker would (negative and huge indexes, unknown and
// negative leaders, brokers without a host or port, the same id twice)
// fails the link's attempts, which say why, and the edge serves on.
func TestLinkHostileMetadata(t *testing.T) {
	var asked atomic.Int64
	var addr string
	addr = fakeKafka(t, map[int16]int16{3: 8, 19: 4, 0: 7}, func(req kmsg.Request) kmsg.Response {
		switch r := req.(type) {
		case *kmsg.MetadataRequest:
			n := asked.Add(1)
			resp := metadataFrom(r, addr)
			host := resp.Brokers[0].Host
			parts := []kmsg.MetadataResponseTopicPartition{{Partition: 0, Leader: 1}, {Partition: 1, Leader: 1}}
			switch n % 6 {
			case 0:
				parts[0].Partition = -1
			case 1:
				parts[1].Partition = 1<<31 - 1
			case 2:
				parts[0].Leader, parts[1].Leader = -7, 99
			case 3:
				resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: 1, Host: "", Port: -1},
					kmsg.MetadataResponseBroker{NodeID: -1, Host: host, Port: 0})
			case 4:
				parts = append(parts, parts...) // each partition twice
			case 5:
				resp.ControllerID = -9
			}
			for _, tp := range r.Topics {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{Topic: tp.Topic, Partitions: parts})
			}
			return resp
		case *kmsg.ProduceRequest:
			resp := r.ResponseKind().(*kmsg.ProduceResponse)
			for _, tp := range r.Topics {
				rt := kmsg.ProduceResponseTopic{Topic: tp.Topic}
				for _, pp := range tp.Partitions {
					rt.Partitions = append(rt.Partitions, kmsg.ProduceResponseTopicPartition{Partition: pp.Partition, ErrorCode: kerr.NotLeaderForPartition.Code})
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}
		return nil
	})
	edge := newProc(t)
	edge.start()
	edge.mustCreateTopic("sensors", 2)
	edge.producePadded("sensors", 0, 5, 64, "r")
	edge.producePadded("sensors", 1, 5, 64, "r")
	edge.createLink(map[string]any{"name": "odd", "to": []string{addr}, "topics": []string{"sensors"}})
	waitFor(t, "the target asked for its metadata a dozen times", 60*time.Second, func() bool {
		if !edge.alive() {
			t.Fatalf("the edge died of a target's metadata:\n%s", edge.log.String()[max(0, edge.log.Len()-4000):])
		}
		return asked.Load() >= 12
	})
	v := edge.link("odd")
	t.Logf("%d metadata answers; the link: %s, %.200q", asked.Load(), v.State, errorsOf(v))
	if forwarded(v) != 0 {
		t.Errorf("the link counts %d records forwarded to a target that took none", forwarded(v))
	}
	if code, err := edge.do("POST", "/v1/topics/sensors/records", "application/json", []byte(`{"records":[{"value":"ok"}]}`), nil); err != nil || code != 200 {
		t.Fatalf("produce after: %d %v", code, err)
	}
}
