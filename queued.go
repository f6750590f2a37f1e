package eddy

import (
	"context"
	"sync"
)

type queuedKey struct{}

// WithQueued returns a context under which a produce call calls queued
// once its records are queued on their partitions (ordered behind every
// produce queued before), before their commit. A caller that keeps one
// produce call queued at a time can so pipeline its batches without
// reordering them (the MQTT QoS 0 queue does).
func WithQueued(ctx context.Context, queued func()) context.Context {
	return context.WithValue(ctx, queuedKey{}, sync.OnceFunc(queued))
}

// Queued tells ctx's caller (WithQueued) that the records are queued; a
// no-op otherwise.
func Queued(ctx context.Context) {
	if f, ok := ctx.Value(queuedKey{}).(func()); ok {
		f()
	}
}
