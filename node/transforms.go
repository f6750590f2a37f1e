package node

import (
	"context"
	"path/filepath"
	"time"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	httpapi "github.com/eddy-broker/eddy/bridges/http"
	"github.com/eddy-broker/eddy/ingest"
	"github.com/eddy-broker/eddy/multiraft"
	"github.com/eddy-broker/eddy/wasm"
)

// transformer joins the wasm pipeline to the controller's modules and
// bindings and to the produce path. Every ingress (HTTP now, MQTT and
// Kafka next) calls Transform before Produce.
type transformer struct {
	host *multiraft.Host
	p    *wasm.Pipeline
}

var _ httpapi.Transformer = (*transformer)(nil)

func newTransformer(cfg Config, host *multiraft.Host, n *Node) *transformer {
	return &transformer{host: host, p: wasm.NewPipeline(wasm.PipelineConfig{
		CacheDir:         filepath.Join(cfg.DataDir, "wasm-cache"),
		Limits:           wasm.Limits{Deadline: cfg.TransformDeadline},
		BreakerThreshold: cfg.TransformBreakerFailures,
		BreakerCooldown:  cfg.TransformBreakerCooldown,
		MaxCompiledBytes: cfg.TransformMaxCompiledBytes,
		Metrics:          n.metrics,
		Logger:           n.log,
	})}
}

// binding resolves a topic's binding to the module version it runs.
func (t *transformer) binding(tenant eddy.TenantID, topic string, name string, version int, config []byte, onError string) (*wasm.Binding, error) {
	mv, err := t.host.TransformModule(tenant, name, version)
	if err != nil {
		return nil, err
	}
	tm, err := t.host.Tenant(tenant)
	if err != nil {
		return nil, err
	}
	return &wasm.Binding{Tenant: string(tenant), Topic: topic, Module: name, Version: mv.Version, SHA256: mv.SHA256,
		Load: func() ([]byte, error) { return t.host.ModuleBinary(mv.SHA256) }, Config: config, OnError: onError, MemoryBytes: tm.Quotas.TransformMemoryBytes,
		CPUMillisPerSec: tm.Quotas.TransformCPUMillisPerSec}, nil
}

// Transform runs meta's transform on a produce batch. The records it
// returns are what to append (with each one's partition); dead-lettered
// originals are appended to the dead-letter topic before it returns, so
// the producer is acknowledged only once they are safe.
func (t *transformer) Transform(ctx context.Context, meta *catalog.TopicMeta, recs []eddy.Record, parts []eddy.Partition) (*ingest.Transformed, error) {
	tb := meta.Transform
	b, err := t.binding(meta.Tenant, string(meta.Name), tb.Module, tb.Version, tb.Config, tb.OnError)
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeTransformError, "topic %s's transform %s cannot run: %s; nothing was appended", meta.Name, tb.Module, eddy.AsError(err).Message)
	}
	out, err := t.p.Apply(ctx, b, recs)
	if err != nil {
		return nil, err
	}
	res := &ingest.Transformed{Module: b.Module, Version: b.Version, In: len(recs), Records: out.Records, Policy: out.Policy}
	if out.Failure != nil {
		res.Failure, _ = wasm.Kind(out.Failure)
	}
	if len(out.DeadLetter) > 0 {
		dlq := eddy.TopicRef{Tenant: meta.Tenant, Name: eddy.TopicName(tb.DeadLetterTopic)}
		if _, err := t.host.Produce(ctx, dlq, out.DeadLetter, nil); err != nil {
			e := eddy.AsError(err)
			return nil, &eddy.Error{Code: e.Code, RetryAfterMs: e.RetryAfterMs,
				Message: "the transform failed (" + res.Failure + ") and the dead-letter topic " + tb.DeadLetterTopic + " refused the records: " + e.Message + "; nothing was appended"}
		}
		res.DeadLettered = len(out.DeadLetter)
	}
	if parts != nil && len(out.Records) > 0 {
		res.Parts = make([]eddy.Partition, len(out.Records))
		for i, s := range out.Src {
			res.Parts[i] = parts[s]
		}
	}
	return res, nil
}

// Validate compiles and instantiates an uploaded module under the
// tenant's memory quota. A module that fails is CodeInvalidModule, with
// the kind of failure.
func (t *transformer) Validate(ctx context.Context, tenant eddy.TenantID, name, sha string, bin []byte) (time.Duration, error) {
	tm, err := t.host.Tenant(tenant)
	if err != nil {
		return 0, err
	}
	d, err := t.p.Validate(ctx, string(tenant), name, tm.Quotas.TransformMemoryBytes, sha, bin)
	if err != nil && eddy.AsError(err).Code == eddy.CodeInternal {
		kind, _ := wasm.Kind(err)
		err = eddy.Errorf(eddy.CodeInvalidModule, "module refused (%s): %v", kind, err)
	}
	return d, err
}

// Test is a dry run of a version of a module.
func (t *transformer) Test(ctx context.Context, tenant eddy.TenantID, name string, version int, config []byte, recs []eddy.Record) (*ingest.TransformTest, error) {
	b, err := t.binding(tenant, "", name, version, config, wasm.PolicyReject)
	if err != nil {
		return nil, err
	}
	res, err := t.p.Test(ctx, b, recs)
	if err != nil {
		return nil, err
	}
	out := &ingest.TransformTest{Version: b.Version, Records: res.Records, Src: res.Src, Stderr: res.Stderr, Duration: res.Duration}
	if res.Err != nil {
		_, code := wasm.Kind(res.Err)
		out.Err = &eddy.Error{Code: code, Message: res.Err.Error()}
	}
	return out, nil
}

// Status is a topic's transform on this node.
func (t *transformer) Status(ref eddy.TopicRef) *eddy.TransformStatus {
	return t.p.Status(string(ref.Tenant), string(ref.Name))
}

func (t *transformer) close() { t.p.Close() }
