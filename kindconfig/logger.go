package kindconfig

import (
	"context"
	"fmt"
	"log/slog"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// slogLogger adapts kind's logger interface to log/slog: kind's V(0)
// messages are Info, higher verbosities Debug.
type slogLogger struct{ l *slog.Logger }

var _ kindlog.Logger = slogLogger{}

func (s slogLogger) Warn(m string)                        { s.l.Warn(m, "from", "kind") }
func (s slogLogger) Warnf(f string, a ...any)             { s.l.Warn(fmt.Sprintf(f, a...), "from", "kind") }
func (s slogLogger) Error(m string)                       { s.l.Error(m, "from", "kind") }
func (s slogLogger) Errorf(f string, a ...any)            { s.l.Error(fmt.Sprintf(f, a...), "from", "kind") }
func (s slogLogger) V(v kindlog.Level) kindlog.InfoLogger { return slogInfo{l: s.l, v: v} }

type slogInfo struct {
	l *slog.Logger
	v kindlog.Level
}

func (s slogInfo) level() slog.Level {
	if s.v <= 0 {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
func (s slogInfo) Info(m string) { s.l.Log(context.Background(), s.level(), m, "from", "kind") }
func (s slogInfo) Infof(f string, a ...any) {
	s.l.Log(context.Background(), s.level(), fmt.Sprintf(f, a...), "from", "kind")
}
func (s slogInfo) Enabled() bool { return s.l.Enabled(context.Background(), s.level()) }
