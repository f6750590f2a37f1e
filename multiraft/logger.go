package multiraft

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"
	"github.com/lni/dragonboat/v4/logger"
)

// dragonboat installs its logger globally, once per process. Its INFO is
// chatty (every shard start, snapshot and election), so it maps to slog's
// Debug; WARNING and above are kept.
var (
	loggerOnce sync.Once
	logTarget  struct {
		sync.RWMutex
		l *slog.Logger
	}
)

func installLogger(l *slog.Logger) {
	logTarget.Lock()
	logTarget.l = l
	logTarget.Unlock()
	loggerOnce.Do(func() {
		logger.SetLoggerFactory(func(pkg string) logger.ILogger { return &dbLogger{pkg: pkg} })
		for _, pkg := range []string{"rsm", "transport", "dragonboat", "logdb", "raftpb", "tan", "settings", "registry"} {
			logger.GetLogger(pkg).SetLevel(logger.WARNING)
		}
		// raft logs every election and dropped proposal at WARNING, and
		// config warns about settings we chose on purpose (no mutual TLS
		// yet, short elections for single-replica shards).
		logger.GetLogger("raft").SetLevel(logger.ERROR)
		logger.GetLogger("config").SetLevel(logger.ERROR)
		// Its INFO reaches log, which keeps the promoted ones (below) and
		// drops the rest unless the node logs at debug.
		logger.GetLogger("dragonboat").SetLevel(logger.INFO)
		if l.Enabled(context.Background(), slog.LevelDebug) {
			// At debug level, Raft's own account of elections too.
			logger.GetLogger("raft").SetLevel(logger.INFO)
		}
	})
}

type dbLogger struct {
	pkg   string
	level logger.LogLevel
}

func (d *dbLogger) SetLevel(l logger.LogLevel) { d.level = l }

// promoted are dragonboat INFO messages an operator needs, logged as
// warnings: a shard's in-memory rate limit turning on or off. While its
// unapplied log, or a follower's, is over MaxUnappliedBytes dragonboat
// refuses proposals as busy, and produce to the partition stalls until it
// falls to 70% and ten of the limiter's ticks (one per election timeout)
// have passed: 8 s at least here (docs/kafka-figures.md).
var promoted = []string{"new rate limit state is"}

func (d *dbLogger) log(lvl logger.LogLevel, sl slog.Level, format string, args []any) {
	if lvl > d.level {
		return
	}
	kind := format
	if lvl == logger.INFO {
		for _, p := range promoted {
			if strings.Contains(format, p) {
				// One of a kind per shard and state, not per format.
				sl, kind = slog.LevelWarn, fmt.Sprintf(format, args...)
			}
		}
	}
	logTarget.RLock()
	l := logTarget.l
	logTarget.RUnlock()
	if l == nil || !l.Enabled(context.Background(), sl) {
		return
	}
	attrs := []any{"component", "dragonboat/" + d.pkg}
	if sl >= slog.LevelWarn {
		n, ok := repeats.Admit(d.pkg+"|"+kind, time.Now())
		if !ok {
			return
		}
		if n > 0 {
			attrs = append(attrs, "repeated", n)
		}
	}
	l.Log(context.Background(), sl, fmt.Sprintf(format, args...), attrs...)
}

// repeats keeps dragonboat's warnings and errors to one of a kind (its
// format) per window: an unreachable peer logged an error and two
// warnings every second; now once per window, with how many were left
// out ("repeated").
var repeats = logkey.NewRepeats(repeatWindow)

const repeatWindow = 30 * time.Second

func (d *dbLogger) Debugf(f string, a ...any)   { d.log(logger.DEBUG, slog.LevelDebug, f, a) }
func (d *dbLogger) Infof(f string, a ...any)    { d.log(logger.INFO, slog.LevelDebug, f, a) }
func (d *dbLogger) Warningf(f string, a ...any) { d.log(logger.WARNING, slog.LevelWarn, f, a) }
func (d *dbLogger) Errorf(f string, a ...any)   { d.log(logger.ERROR, slog.LevelError, f, a) }
func (d *dbLogger) Panicf(f string, a ...any) {
	d.log(logger.CRITICAL, slog.LevelError, f, a)
	panic(fmt.Sprintf(f, a...))
}
