package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// api is one request key this listener serves: the versions it
// advertises, and its handler. A handler returns nil for a request that
// gets no response (a produce with acks=0); an error closes the
// connection.
type api struct {
	name     string
	min, max int16
	preAuth  bool // served before the connection authenticated
	handle   func(c *conn, req kmsg.Request) (kmsg.Response, error)
	// pipelined, when set, serves the key in the connection's pipeline
	// (pipeline.go) instead of handle.
	pipelined pipelinedFunc
}

// apis are the served keys, registered by each key's file. ApiVersions
// answers from this table. The minimums matter more than the maximums:
// librdkafka before 2.11.1 enables a feature only when a range holds one
// exact version (SaslHandshake 0 for SASL/PLAIN, Produce 3 with Fetch 4
// for v2 batches, Produce 7 with Fetch 10 for zstd). A request above the
// advertised maximum that kmsg can parse is still answered.
var apis = map[int16]api{}

func register(key int16, min, max int16, preAuth bool, h func(c *conn, req kmsg.Request) (kmsg.Response, error)) {
	apis[key] = api{name: kmsg.NameForKey(key), min: min, max: max, preAuth: preAuth, handle: h}
}

// registerPipelined registers a key served in the connection's pipeline
// (after authentication only).
func registerPipelined(key int16, min, max int16, h pipelinedFunc) {
	apis[key] = api{name: kmsg.NameForKey(key), min: min, max: max, pipelined: h}
}
