package logkey

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Repeats keeps a kind of log line to one per window, the next one
// saying how many were left out ("repeated"): for lines a peer or a
// tenant can make as often as it likes (an unreachable node, a group a
// client rebalances in a loop), so the log of a gateway's SD card grows
// with what happens, not with how often.
type Repeats struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*seenKind
}

type seenKind struct {
	at         time.Time // last logged
	suppressed int
}

// maxKinds bounds what Repeats remembers: past it, it forgets them all
// rather than grow.
const maxKinds = 1024

// NewRepeats admits one line of a kind per window.
func NewRepeats(window time.Duration) *Repeats {
	return &Repeats{window: window, seen: map[string]*seenKind{}}
}

// Admit reports whether a line of this kind is logged now, and how many
// of its kind were left out since the last one.
func (r *Repeats) Admit(kind string, now time.Time) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.seen[kind]
	if k == nil {
		if len(r.seen) >= maxKinds {
			r.seen = map[string]*seenKind{}
		}
		r.seen[kind] = &seenKind{at: now}
		return 0, true
	}
	if now.Sub(k.at) < r.window {
		k.suppressed++
		return 0, false
	}
	n := k.suppressed
	k.at, k.suppressed = now, 0
	return n, true
}

// Log logs msg at level when Admit lets a line of kind through, with
// the count of those left out.
func (r *Repeats) Log(l *slog.Logger, level slog.Level, kind, msg string, attrs ...any) {
	n, ok := r.Admit(kind, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		attrs = append(attrs, "repeated", n)
	}
	l.Log(context.Background(), level, msg, attrs...)
}
