package mqtt

import (
	"fmt"
	"time"
)

// A connection's publishes are paced at Config.PublishRate a second, with
// a second's worth at once (a token bucket), as EMQX's per-client
// messages_rate: a publish past it waits on the connection's read loop,
// so nothing more of the device is read meanwhile and TCP slows it down.
// Nothing is refused or dropped: a device whose firmware floods publishes
// its messages at the rate, while the tenant's other devices keep the
// tenant's quota (one device cannot take it all).

// pace is a connection's bucket, used by its read loop only.
type pace struct {
	tokens float64
	last   time.Time
}

// wait is how long a publish at now must wait for the rate to allow it.
func (p *pace) wait(rate float64, now time.Time) time.Duration {
	if p.last.IsZero() {
		p.tokens = rate
	} else {
		p.tokens = min(rate, p.tokens+now.Sub(p.last).Seconds()*rate)
	}
	p.last = now
	p.tokens--
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / rate * float64(time.Second))
}

// paceWait holds the session's read loop until its rate allows the
// publish being read (or the device goes).
func (l *Listener) paceWait(s *session) {
	d := s.pace.wait(l.cfg.PublishRate, time.Now())
	if d <= 0 {
		return
	}
	l.m.GetOrCreateCounter(fmt.Sprintf(`eddy_mqtt_publishes_paced_total{tenant=%q}`, s.tenant)).Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.gone:
	}
}
