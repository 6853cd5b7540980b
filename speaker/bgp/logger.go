package bgp

import (
	"log/slog"

	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// newLogger returns the speaker's GoBGP logger (internal/gobgplog): GoBGP's debug
// and info chatter goes to slog's debug level and below, messages start with
// "gobgp: ", and Fatal only logs at error level, so a GoBGP Fatal never ends the
// speaker. Its Fatals channel reports the first one.
func newLogger(l *slog.Logger) *gobgplog.Logger {
	return gobgplog.New(l, gobgplog.WithDemotedChatter(), gobgplog.WithPrefix("gobgp: "))
}
