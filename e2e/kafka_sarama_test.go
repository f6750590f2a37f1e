package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaConfig is sarama's default configuration with SASL/PLAIN as the
// default tenant (sarama picks its protocol versions from its own
// Config.Version rather than from what the broker offers).
func saramaConfig(p *proc) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "default", p.token
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

type saramaHandler struct {
	mu   sync.Mutex
	seen map[string]int
	want int
	done chan struct{}
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)]++
		if len(h.seen) == h.want {
			select {
			case <-h.done:
			default:
				close(h.done)
			}
		}
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// TestKafkaSarama: sarama, with its default configuration, produces
// (acks=all) and consumes as a consumer group member; the group's offsets
// are committed.
func TestKafkaSarama(t *testing.T) {
	p := newProc(t)
	p.start()
	p.mustCreateTopic("sar", 3)
	prod, err := sarama.NewSyncProducer([]string{p.kafkaAddr}, saramaConfig(p))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sar", Key: sarama.StringEncoder(fmt.Sprint(i % 7)), Value: sarama.StringEncoder(fmt.Sprintf("m-%d", i))}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	prod.Close()
	grp, err := sarama.NewConsumerGroup([]string{p.kafkaAddr}, "sar-group", saramaConfig(p))
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	h := &saramaHandler{seen: map[string]int{}, want: n, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if err := grp.Consume(ctx, []string{"sar"}, h); err != nil && ctx.Err() == nil {
				t.Logf("consume: %v", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("sarama's group read %d of %d", len(h.seen), n)
	}
	var g struct {
		Lag int64 `json:"lag"`
	}
	deadline := time.Now().Add(20 * time.Second) // sarama commits every second
	for {
		if code, err := p.do("GET", "/v1/groups/sar-group", "", nil, &g); err == nil && code == 200 && g.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sarama's group's lag stayed %d", g.Lag)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
