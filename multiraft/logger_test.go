package multiraft

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/logger"
)

// TestRateLimitStatePromoted: dragonboat's INFO stays at debug, except a
// shard's rate limit state changing, which is a warning, once per shard
// and state a window.
func TestRateLimitStatePromoted(t *testing.T) {
	var buf bytes.Buffer
	logTarget.Lock()
	saved := logTarget.l
	logTarget.l = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logTarget.Unlock()
	defer func() {
		logTarget.Lock()
		logTarget.l = saved
		logTarget.Unlock()
	}()
	// A shard of its own, as the kinds logged are remembered for a window.
	shard := fmt.Sprintf("[%d:00001]", time.Now().UnixNano())
	d := &dbLogger{pkg: "dragonboat", level: logger.INFO}
	d.Infof("%s is sending snapshot (%d)", shard, 7)
	d.Infof("%s new rate limit state is %t", shard, true)
	d.Infof("%s new rate limit state is %t", shard, true) // a repeat within the window
	d.Infof("%s new rate limit state is %t", shard, false)
	out := buf.String()
	if strings.Contains(out, "sending snapshot") {
		t.Errorf("an ordinary INFO was logged at info: %s", out)
	}
	if n := strings.Count(out, "level=WARN msg=\""+shard+" new rate limit state is true\""); n != 1 {
		t.Errorf("rate limit on logged %d times, want once: %s", n, out)
	}
	if !strings.Contains(out, "new rate limit state is false") {
		t.Errorf("rate limit off not logged: %s", out)
	}
}
