package mqtt

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
)

// A packet mochi's decoder cannot take must cost its connection, not the
// node: mochi v2.7.9's SubscribeDecode reads an MQTT 5 SUBSCRIBE's
// options byte without checking that it is there (mochi-mqtt/server#501),
// and one truncated SUBSCRIBE from any authenticated device ended the
// process (e2e TestMQTTHostilePackets found it). Each connection runs on
// a goroutine of the guarded listener, which recovers a panic raised in
// mochi's packets package and ends the connection as mochi would have
// for a malformed packet. A panic anywhere else (Eddy's own hooks) is a
// bug whose locks and state cannot be trusted: it is raised again.

// decoderPackage is where a panic is recovered.
const decoderPackage = "github.com/mochi-mqtt/server/v2/packets."

// inDecoder reports whether the panic being recovered was raised in
// mochi's packets package. It is called by the deferred function, while
// the panicking frames are still on the stack.
func inDecoder() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, decoderPackage)
		}
		if !more {
			return false
		}
	}
}

// endPanicked ends a connection whose packet panicked mochi's decoder,
// after mochi's own deferred stop: the hooks' OnDisconnect (the tenant's
// connection count, the session's stream, its last will) and, for a
// session that ends with its connection, mochi's subscriptions and
// client, which attachClient would have dropped.
func (l *Listener) endPanicked(conn net.Conn, v any) {
	conn.Close()
	l.m.GetOrCreateCounter(`eddy_mqtt_decoder_panics_total`).Inc()
	l.repeats.Log(l.log, slog.LevelError, "mqtt decoder panic", "mqtt connection ended: its packet panicked the MQTT library's decoder",
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	var cl *mochi.Client
	l.mu.Lock()
	for c := range l.clients {
		if c.Net.Conn == conn {
			cl = c
			break
		}
	}
	l.mu.Unlock()
	if cl == nil {
		return // not authenticated yet: nothing was kept
	}
	expire := cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval == 0 ||
		cl.Properties.ProtocolVersion < 5 && cl.Properties.Clean
	(&hook{l: l}).OnDisconnect(cl, fmt.Errorf("malformed packet: %v", v), expire)
	if expire && !cl.IsTakenOver() {
		cl.ClearInflights()
		l.srv.UnsubscribeClient(cl)
		l.srv.Clients.Delete(cl.ID)
	}
}
