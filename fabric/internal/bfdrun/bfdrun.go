// Package bfdrun runs the project's BFD sessions (package bfd) for the fabric's routers
// and test announcers, in the fabric's own terms: topology profiles in, control-API
// session views and simplified state changes out.
package bfdrun

import (
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Service is a set of single-hop BFD sessions in one process.
type Service interface {
	// Add starts a session from local to peer.
	Add(local, peer netip.Addr, p topology.BFDProfile) error
	// Remove stops the session from local to peer (sending AdminDown).
	Remove(local, peer netip.Addr) error
	// Changes subscribes to state changes; call the func to unsubscribe.
	Changes() (<-chan Change, func())
	// Sessions is a snapshot of every session.
	Sessions() []control.BFDSession
	// Close stops every session.
	Close() error
}

// Change is one session state transition.
type Change struct {
	Peer     netip.Addr
	Old, New string
	Diag     string
	At       time.Time
	// Down is true when an Up session left Up: the BGP session must be reset.
	Down bool
}
