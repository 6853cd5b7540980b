package bgp

import (
	"log/slog"
	"sync"

	bgplog "github.com/osrg/gobgp/v3/pkg/log"

	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// newLogger returns the speaker's GoBGP logger (internal/gobgplog): GoBGP's debug
// and info chatter goes to slog's debug level and below, messages start with
// "gobgp: ", and Fatal only logs at error level, so a GoBGP Fatal never ends the
// speaker. Its Fatals channel reports the first one.
func newLogger(l *slog.Logger) *gobgplog.Logger {
	return gobgplog.New(l, gobgplog.WithDemotedChatter(), gobgplog.WithPrefix("gobgp: "))
}

// slogAdapter is newLogger(l), built on first use, for newGoBGP's
// &slogAdapter{l: log}.
type slogAdapter struct {
	l    *slog.Logger
	once sync.Once
	g    *gobgplog.Logger
}

func (a *slogAdapter) logger() *gobgplog.Logger {
	a.once.Do(func() { a.g = newLogger(a.l) })
	return a.g
}

func (a *slogAdapter) Panic(msg string, f bgplog.Fields) { a.logger().Panic(msg, f) }
func (a *slogAdapter) Fatal(msg string, f bgplog.Fields) { a.logger().Fatal(msg, f) }
func (a *slogAdapter) Error(msg string, f bgplog.Fields) { a.logger().Error(msg, f) }
func (a *slogAdapter) Warn(msg string, f bgplog.Fields)  { a.logger().Warn(msg, f) }
func (a *slogAdapter) Info(msg string, f bgplog.Fields)  { a.logger().Info(msg, f) }
func (a *slogAdapter) Debug(msg string, f bgplog.Fields) { a.logger().Debug(msg, f) }

func (a *slogAdapter) SetLevel(l bgplog.LogLevel) { a.logger().SetLevel(l) }
func (a *slogAdapter) GetLevel() bgplog.LogLevel  { return a.logger().GetLevel() }
