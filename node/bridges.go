package node

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	mqttapi "github.com/eddy-broker/eddy/bridges/mqtt"
	"github.com/eddy-broker/eddy/internal/logkey"
)

// bridgeSet is the node's MQTT bridges: started with the node, changed by a
// reload (SIGHUP) by name (a bridge added is started, one removed is
// stopped, one whose settings changed is restarted; the others keep their
// connection), stopped with the node.
type bridgeSet struct {
	make func(mqttapi.BridgeConfig) (*mqttapi.Bridge, error)
	log  *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // the bridges' context, once started
	running []*mqttapi.Bridge
	configs []mqttapi.BridgeConfig // running[i]'s
}

// add builds a bridge (before start: New validates them all first).
func (s *bridgeSet) add(bc mqttapi.BridgeConfig) error {
	b, err := s.make(bc)
	if err != nil {
		return err
	}
	s.running = append(s.running, b)
	s.configs = append(s.configs, bc)
	return nil
}

func (s *bridgeSet) start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, b := range s.running {
		if err := b.Start(ctx); err != nil {
			s.log.Error("mqtt bridge", logkey.Err, err)
		}
	}
}

func (s *bridgeSet) status() []mqttapi.BridgeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]mqttapi.BridgeStatus, 0, len(s.running))
	for _, b := range s.running {
		out = append(out, b.Status())
	}
	return out
}

func (s *bridgeSet) close(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.running {
		b.Close(ctx)
	}
	s.running, s.configs = nil, nil
	s.ctx = nil
}

// reload makes the running bridges those of next and says what it did.
// next has been validated (names unique, each complete); a bridge that
// cannot be built is an error and leaves the others as they were.
func (s *bridgeSet) reload(next []mqttapi.BridgeConfig) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return nil, nil // not started, or stopping
	}
	want := map[string]mqttapi.BridgeConfig{}
	for _, bc := range next {
		want[bc.Name] = bc
	}
	// Build the new and changed ones first: an error changes nothing.
	built := map[string]*mqttapi.Bridge{}
	have := map[string]int{}
	for i, bc := range s.configs {
		have[bc.Name] = i
	}
	for _, bc := range next {
		if i, ok := have[bc.Name]; ok && reflect.DeepEqual(s.configs[i], bc) {
			continue
		}
		b, err := s.make(bc)
		if err != nil {
			return nil, err
		}
		built[bc.Name] = b
	}
	var did []string
	stop := func(b *mqttapi.Bridge) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b.Close(ctx)
		cancel()
	}
	var running []*mqttapi.Bridge
	var configs []mqttapi.BridgeConfig
	for i, bc := range s.configs {
		if _, ok := want[bc.Name]; !ok {
			stop(s.running[i])
			did = append(did, "mqtt bridge "+bc.Name+" stopped")
			continue
		}
		if _, changed := built[bc.Name]; changed {
			stop(s.running[i])
			continue
		}
		running, configs = append(running, s.running[i]), append(configs, bc)
	}
	for _, bc := range next {
		b, ok := built[bc.Name]
		if !ok {
			continue
		}
		if err := b.Start(s.ctx); err != nil {
			s.log.Error("mqtt bridge", logkey.Err, err)
		}
		running, configs = append(running, b), append(configs, bc)
		if _, existed := have[bc.Name]; existed {
			did = append(did, "mqtt bridge "+bc.Name+" restarted")
		} else {
			did = append(did, "mqtt bridge "+bc.Name+" started")
		}
	}
	s.running, s.configs = running, configs
	return did, nil
}
