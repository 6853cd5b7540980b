// Package gobgplog adapts log/slog to GoBGP's logger interface; the speaker and the
// fabric's routers both log GoBGP through it.
//
// GoBGP (v3.37.0) calls Fatal from its own goroutines and carries on afterwards: from
// the server's main loop on an unknown message, from path validation, and from
// RoutingPolicy.Reset, which then returns the error to the API caller. logrus'
// Fatal would exit the process there, and a panic cannot be recovered by anyone but
// GoBGP. So Fatal here logs at error level and returns; whoever owns the server
// learns of it on Fatals() and decides what to do, on its own goroutine.
package gobgplog

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	bgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// Logger forwards GoBGP log lines to a slog.Logger. It implements GoBGP's
// log.Logger.
type Logger struct {
	l      *slog.Logger
	level  atomic.Uint32 // most verbose GoBGP level passed on
	shift  slog.Level    // added to the slog level of GoBGP's info and debug lines
	prefix string
	fatals chan error
}

// Option tunes a Logger.
type Option func(*Logger)

// WithLevel passes on GoBGP's lines up to level (GoBGP's scale: WarnLevel,
// InfoLevel, DebugLevel); the default passes everything and leaves the choice to
// l's handler. GoBGP's SetLevel changes it.
func WithLevel(level bgplog.LogLevel) Option {
	return func(g *Logger) { g.level.Store(uint32(level)) }
}

// WithDemotedChatter logs GoBGP's info lines at slog's debug level and its debug
// lines four below: for a component to which GoBGP's peer and table chatter is
// detail.
func WithDemotedChatter() Option {
	return func(g *Logger) { g.shift = slog.LevelDebug - slog.LevelInfo }
}

// WithPrefix puts prefix before every message (e.g. "gobgp: ").
func WithPrefix(prefix string) Option { return func(g *Logger) { g.prefix = prefix } }

// New returns a GoBGP logger writing to l.
func New(l *slog.Logger, opts ...Option) *Logger {
	g := &Logger{l: l, fatals: make(chan error, 1)}
	g.level.Store(uint32(bgplog.DebugLevel))
	for _, o := range opts {
		o(g)
	}
	return g
}

// FatalError is what GoBGP reported through Fatal.
type FatalError struct {
	Msg    string
	Fields bgplog.Fields
}

func (e *FatalError) Error() string {
	if len(e.Fields) == 0 {
		return "gobgp: " + e.Msg
	}
	return fmt.Sprintf("gobgp: %s %v", e.Msg, map[string]any(e.Fields))
}

// Fatals receives the first Fatal GoBGP reports (a *FatalError); later ones are
// logged only. GoBGP goes on running after a Fatal, possibly in a state it did not
// expect: its owner decides whether to carry on, restart it or stop.
func (g *Logger) Fatals() <-chan error { return g.fatals }

// slogLevel maps a GoBGP level to the slog level its lines are logged at.
func (g *Logger) slogLevel(lvl bgplog.LogLevel) slog.Level {
	switch lvl {
	case bgplog.PanicLevel, bgplog.FatalLevel, bgplog.ErrorLevel:
		return slog.LevelError
	case bgplog.WarnLevel:
		return slog.LevelWarn
	case bgplog.InfoLevel:
		return slog.LevelInfo + g.shift
	default:
		return slog.LevelDebug + g.shift
	}
}

func (g *Logger) emit(lvl bgplog.LogLevel, msg string, fields bgplog.Fields) {
	if lvl > bgplog.LogLevel(g.level.Load()) {
		return
	}
	sl := g.slogLevel(lvl)
	ctx := context.Background()
	if !g.l.Enabled(ctx, sl) {
		return
	}
	attrs := make([]slog.Attr, 0, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	g.l.LogAttrs(ctx, sl, g.prefix+msg, attrs...)
}

// Panic logs at error level and panics: GoBGP calls it on a broken invariant of
// its own ("code logic bug").
func (g *Logger) Panic(msg string, f bgplog.Fields) {
	g.emit(bgplog.PanicLevel, msg, f)
	panic(msg)
}

// Fatal logs at error level, reports on Fatals and returns; see the package comment.
// It runs on GoBGP's goroutine, sometimes with GoBGP's locks held, so it never
// blocks.
func (g *Logger) Fatal(msg string, f bgplog.Fields) {
	g.emit(bgplog.FatalLevel, msg, f)
	select {
	case g.fatals <- &FatalError{Msg: msg, Fields: maps.Clone(f)}:
	default:
	}
}

// Error logs at error level.
func (g *Logger) Error(msg string, f bgplog.Fields) { g.emit(bgplog.ErrorLevel, msg, f) }

// Warn logs at warn level.
func (g *Logger) Warn(msg string, f bgplog.Fields) { g.emit(bgplog.WarnLevel, msg, f) }

// Info logs at info level (debug with WithDemotedChatter).
func (g *Logger) Info(msg string, f bgplog.Fields) { g.emit(bgplog.InfoLevel, msg, f) }

// Debug logs at debug level (four below with WithDemotedChatter).
func (g *Logger) Debug(msg string, f bgplog.Fields) { g.emit(bgplog.DebugLevel, msg, f) }

// SetLevel sets the most verbose GoBGP level passed on.
func (g *Logger) SetLevel(level bgplog.LogLevel) { g.level.Store(uint32(level)) }

// GetLevel returns the most verbose GoBGP level that would be logged, given both
// the level set and what l's handler takes. GoBGP skips building messages above
// it, which matters on its per-path hot path.
func (g *Logger) GetLevel() bgplog.LogLevel {
	lvl := bgplog.LogLevel(g.level.Load())
	for lvl > bgplog.ErrorLevel && !g.l.Enabled(context.Background(), g.slogLevel(lvl)) {
		lvl--
	}
	return lvl
}
