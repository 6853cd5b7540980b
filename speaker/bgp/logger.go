package bgp

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// slogAdapter lets GoBGP log through log/slog. GoBGP's debug and info chatter goes to
// slog's debug level.
type slogAdapter struct {
	l     *slog.Logger
	level gobgplog.LogLevel
}

func (a *slogAdapter) log(lv slog.Level, msg string, f gobgplog.Fields) {
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	a.l.Log(context.Background(), lv, "gobgp: "+msg, args...)
}

func (a *slogAdapter) Panic(msg string, f gobgplog.Fields) {
	a.log(slog.LevelError, msg, f)
	panic(msg)
}
func (a *slogAdapter) Fatal(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a *slogAdapter) Error(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a *slogAdapter) Warn(msg string, f gobgplog.Fields)  { a.log(slog.LevelWarn, msg, f) }
func (a *slogAdapter) Info(msg string, f gobgplog.Fields)  { a.log(slog.LevelDebug, msg, f) }
func (a *slogAdapter) Debug(msg string, f gobgplog.Fields) { a.log(slog.LevelDebug-4, msg, f) }

func (a *slogAdapter) SetLevel(l gobgplog.LogLevel) { a.level = l }

// GetLevel: GoBGP skips building debug messages below this level, which matters on the
// per-path hot path.
func (a *slogAdapter) GetLevel() gobgplog.LogLevel {
	if a.l.Enabled(context.Background(), slog.LevelDebug-4) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
