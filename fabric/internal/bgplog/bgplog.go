// Package bgplog adapts log/slog to GoBGP's logger interface.
package bgplog

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// Logger forwards GoBGP log lines to a slog.Logger.
type Logger struct {
	l     *slog.Logger
	level gobgplog.LogLevel
}

// New returns a GoBGP logger writing to l at level (GoBGP's scale: InfoLevel, DebugLevel...).
func New(l *slog.Logger, level gobgplog.LogLevel) *Logger { return &Logger{l: l, level: level} }

func (g *Logger) emit(lvl gobgplog.LogLevel, sl slog.Level, msg string, fields gobgplog.Fields) {
	if lvl > g.level {
		return
	}
	attrs := make([]slog.Attr, 0, len(fields))
	for k, v := range fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	g.l.LogAttrs(context.Background(), sl, msg, attrs...)
}

// Panic logs at error level and panics.
func (g *Logger) Panic(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.PanicLevel, slog.LevelError, msg, f)
	panic(msg)
}

// Fatal logs at error level; GoBGP expects the process to end, so it panics.
func (g *Logger) Fatal(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.FatalLevel, slog.LevelError, msg, f)
	panic(msg)
}

// Error logs at error level.
func (g *Logger) Error(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.ErrorLevel, slog.LevelError, msg, f)
}

// Warn logs at warn level.
func (g *Logger) Warn(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.WarnLevel, slog.LevelWarn, msg, f)
}

// Info logs at info level.
func (g *Logger) Info(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.InfoLevel, slog.LevelInfo, msg, f)
}

// Debug logs at debug level.
func (g *Logger) Debug(msg string, f gobgplog.Fields) {
	g.emit(gobgplog.DebugLevel, slog.LevelDebug, msg, f)
}

// SetLevel sets the GoBGP level threshold.
func (g *Logger) SetLevel(level gobgplog.LogLevel) { g.level = level }

// GetLevel returns the GoBGP level threshold.
func (g *Logger) GetLevel() gobgplog.LogLevel { return g.level }
