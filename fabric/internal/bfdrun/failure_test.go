package bfdrun

import (
	"testing"

	"github.com/ecmplb/ecmplb/bfd"
)

func TestPathFailure(t *testing.T) {
	const (
		up, down, init, admin = bfd.StateUp, bfd.StateDown, bfd.StateInit, bfd.StateAdminDown
	)
	for _, c := range []struct {
		name       string
		old, new   bfd.State
		local      bfd.Diagnostic
		remote     bfd.State
		remoteDiag bfd.Diagnostic
		want       bool
	}{
		{"detection time expired", up, down, bfd.DiagControlDetectionTimeExpired, up, bfd.DiagNone, true},
		{"echo failed", up, down, bfd.DiagEchoFailed, up, bfd.DiagNone, true},
		{"remote AdminDown (RFC 5882 3.2)", up, down, bfd.DiagNeighborSignaledDown, admin, bfd.DiagAdminDown, false},
		{"remote AdminDown without diag", up, down, bfd.DiagNeighborSignaledDown, admin, bfd.DiagNone, false},
		{"remote Down: it detected expiry", up, down, bfd.DiagNeighborSignaledDown, down, bfd.DiagControlDetectionTimeExpired, true},
		{"remote Down: path down", up, down, bfd.DiagNeighborSignaledDown, down, bfd.DiagPathDown, true},
		{"remote Down: forwarding plane reset", up, down, bfd.DiagNeighborSignaledDown, down, bfd.DiagForwardingPlaneReset, true},
		{"remote Down with AdminDown diag", up, down, bfd.DiagNeighborSignaledDown, down, bfd.DiagAdminDown, false},
		{"remote restarted its session", up, down, bfd.DiagNeighborSignaledDown, down, bfd.DiagNone, false},
		{"remote already back in Init", up, down, bfd.DiagNeighborSignaledDown, init, bfd.DiagNone, false},
		{"local AdminDown", up, admin, bfd.DiagAdminDown, up, bfd.DiagNone, false},
		{"Init timed out (never Up)", init, down, bfd.DiagControlDetectionTimeExpired, init, bfd.DiagNone, false},
		{"coming Up", init, up, bfd.DiagNone, up, bfd.DiagNone, false},
	} {
		if got := PathFailure(c.old, c.new, c.local, c.remote, c.remoteDiag); got != c.want {
			t.Errorf("%s: PathFailure = %v, want %v", c.name, got, c.want)
		}
	}
}
