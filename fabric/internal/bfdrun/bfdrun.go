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

// Service is a set of BFD sessions in one process, single-hop or multi-hop
// (topology.BFDProfile.Multihop), at most one from a local address to a peer.
type Service interface {
	// Add starts a session from local to peer.
	Add(local, peer netip.Addr, p topology.BFDProfile) error
	// Remove stops the session from local to peer (sending AdminDown).
	Remove(local, peer netip.Addr) error
	// SetAdminDown shuts the session administratively (down: the peer gets
	// AdminDown and the session stays listed as AdminDown) or enables it again
	// with its profile.
	SetAdminDown(local, peer netip.Addr, down bool) error
	// Mute stops (true) or resumes the session's transmission while it keeps
	// receiving: the peer sees a one-way path failure.
	Mute(local, peer netip.Addr, muted bool) error
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
	// Diag is the local diagnostic of the transition.
	Diag string
	// RemoteState and RemoteDiag are what the peer last signalled.
	RemoteState, RemoteDiag string
	At                      time.Time
	// PathFailure is true when the transition means the path to the peer
	// failed (see PathFailure): the BGP session must be reset at once. A
	// session taken down administratively, on either end, is no failure.
	PathFailure bool
}
