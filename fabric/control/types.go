// Package control is the HTTP+JSON API of a fabric router process, served on a Unix
// socket in the fabric's state directory (reachable from any network namespace), and a
// client for it.
//
// Endpoints:
//
//	GET  /healthz                 200 when BGP runs
//	GET  /rib                     all ECMP sets ([]rib.ECMPSet)
//	GET  /rib?prefix=P            one set (404 if absent); P may be an address (longest match)
//	GET  /summary                 prefix counts by ECMP width (rib.Summary)
//	GET  /history?after=SEQ       RIB changes with Seq > SEQ ([]rib.Change)
//	GET  /history?after=SEQ&wait=D  the same, waiting up to D (a Go duration, at most 1m) for one
//	GET  /neighbors               BGP neighbors ([]Neighbor)
//	GET  /bfd                     BFD sessions ([]BFDSession)
//	GET  /events?after=SEQ        neighbor events: BGP and BFD state changes ([]Event)
//	GET  /fib                     kernel FIB routes the router programmed ([]FIBRoute)
//	GET  /metrics                 Prometheus metrics of the router and its BFD sessions
//	POST /neighbors               add a neighbor (NeighborConfig)
//	DELETE /neighbors/{addr}      remove a neighbor
//	POST /neighbors/{addr}/disable  admin shutdown (NOTIFICATION Cease), body {"communication": "..."}
//	POST /neighbors/{addr}/enable   undo disable
//	POST /bfd/{addr}/disable      BFD admin shutdown: the neighbor receives AdminDown; BGP stays up
//	POST /bfd/{addr}/enable       undo a BFD disable
//	POST /bfd/{addr}/mute         stop sending BFD packets to the neighbor (one-way path failure)
//	POST /bfd/{addr}/unmute       undo mute
package control

import (
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Neighbor is one BGP neighbor as the router sees it.
type Neighbor struct {
	Name    string     `json:"name,omitempty"`
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// State is the BGP FSM state in lower case: idle, connect, active, opensent,
	// openconfirm, established.
	State     string `json:"state"`
	AdminDown bool   `json:"adminDown,omitempty"`
	// Dynamic is true for neighbors accepted through the dynamic-neighbor range.
	Dynamic bool `json:"dynamic,omitempty"`
	// Since is when the session last went up (state established) or down.
	Since time.Time `json:"since,omitzero"`
	// Received and Accepted count IPv4 unicast prefixes from this neighbor.
	Received uint64 `json:"received"`
	Accepted uint64 `json:"accepted"`
	MsgIn    uint64 `json:"msgIn"`
	MsgOut   uint64 `json:"msgOut"`
	// BFD is the BFD session state towards this neighbor, empty without BFD.
	BFD string `json:"bfd,omitempty"`
	// HoldTime is the negotiated hold time.
	HoldTime time.Duration `json:"holdTime,omitempty"`
	// ConfiguredHoldTime and ConfiguredKeepalive are what this router offers (its
	// ToR's timers in the topology); a session negotiates the smaller hold time.
	ConfiguredHoldTime  time.Duration `json:"configuredHoldTime,omitempty"`
	ConfiguredKeepalive time.Duration `json:"configuredKeepalive,omitempty"`
}

// BFDSession is one BFD session of the router.
type BFDSession struct {
	Local         netip.Addr    `json:"local"`
	Peer          netip.Addr    `json:"peer"`
	State         string        `json:"state"`
	RemoteState   string        `json:"remoteState"`
	LocalDiag     string        `json:"localDiag"`
	RemoteDiag    string        `json:"remoteDiag"`
	TxInterval    time.Duration `json:"txInterval"`
	DetectionTime time.Duration `json:"detectionTime"`
	LastChange    time.Time     `json:"lastChange,omitzero"`
	PacketsIn     uint64        `json:"packetsIn"`
	PacketsOut    uint64        `json:"packetsOut"`
	// Multihop: a multi-hop session (RFC 5883, UDP 4784).
	Multihop bool `json:"multihop,omitempty"`
}

// EventKind tells what an Event is about.
type EventKind string

// Event kinds.
const (
	EventBGP EventKind = "bgp" // BGP session state change
	EventBFD EventKind = "bfd" // BFD session state change
)

// Event is a neighbor state change with the time the router saw it.
type Event struct {
	Seq    uint64     `json:"seq"`
	At     time.Time  `json:"at"`
	Kind   EventKind  `json:"kind"`
	Peer   netip.Addr `json:"peer"`
	Old    string     `json:"old"`
	New    string     `json:"new"`
	Detail string     `json:"detail,omitempty"`
}

// FIBRoute is a route the router programmed into its namespace's kernel FIB.
type FIBRoute struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []netip.Addr `json:"nextHops"`
	At       time.Time    `json:"at"`
}

// NeighborConfig is the body of POST /neighbors: a neighbor to add to the running
// router, with a BFD session when BFD is set.
type NeighborConfig struct {
	Name    string               `json:"name"`
	Address netip.Addr           `json:"address"`
	ASN     uint32               `json:"asn"`
	BFD     *topology.BFDProfile `json:"bfd,omitempty"`
}

// DisableRequest is the body of POST /neighbors/{addr}/disable.
type DisableRequest struct {
	Communication string `json:"communication,omitempty"`
}
