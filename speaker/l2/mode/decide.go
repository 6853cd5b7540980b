package mode

import (
	"slices"
	"time"

	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
)

// Standing is what this node knows of its own position at one moment.
type Standing struct {
	Self string
	// View is the heartbeat liveness table's verdict now.
	View liveness.View
	Now  time.Time
	// Started is when this node began listening.
	Started time.Time
	// LastHeard is the latest receipt of any other node's heartbeat (zero:
	// none yet), moved up to the time of a pause of this process (see
	// Runtime): a pause is not silence.
	LastHeard time.Time
	// Receiving: the heartbeat socket is open, so this node hears and is
	// heard.
	Receiving bool
	// Lease is the Lease table's view (nil: no Leases; fencing by the
	// heartbeats alone).
	Lease *liveness.View
	// PeerRenewing: another node heard within Threshold says its own Lease
	// renewals are confirmed: the apiserver works for it.
	PeerRenewing bool
	// OthersExist: the cluster has other Nodes (SetL2Nodes).
	OthersExist bool
}

// Decision is whether this node answers, and the nodes to hand IPs to.
type Decision struct {
	// Answer: this node may answer ARP/NDP now.
	Answer bool
	// Alone: it answers because it hears no other node at all (a single
	// node cluster, or every other speaker gone).
	Alone bool
	// LeaseFenced: it does not answer because its Lease renewals fail while
	// another node's work (it is cut off from the apiserver, which the
	// others are not: they will hand its IPs away).
	LeaseFenced bool
	// Alive is View.Alive with this node in it exactly when it answers.
	Alive []string
	// Next is when the decision changes by itself (zero: only with a new
	// view or receipt).
	Next time.Time
}

// Decide applies the rules of the package doc: nothing is answered before
// Started + Threshold + Rejoin (every live peer heard and taken as alive by
// then); after that this node answers while its heartbeat table lets it
// (peers echo its heartbeats: they hear it, so they do not take its IPs), or
// while it hears no other node at all for longer than Threshold with its
// socket open (then no node is there to take its IPs, or every one is gone);
// and never while its Lease fence is closed and another node's renewals
// work. A node alive by heartbeat whose Lease is silent is down, while this
// node's own renewals work.
func Decide(cfg liveness.Config, s Standing) Decision {
	var d Decision
	hold := s.Started.Add(cfg.Threshold + cfg.Rejoin)
	silentSince := s.LastHeard
	if silentSince.Before(s.Started) {
		silentSince = s.Started
	}
	aloneAt := silentSince.Add(cfg.Threshold + 1)
	if aloneAt.Before(hold) {
		aloneAt = hold
	}
	leaseOK := s.Lease == nil || s.Lease.Answer
	switch {
	case s.Now.Before(hold):
		d.Next = hold
	default:
		d.Alone = s.Receiving && !s.Now.Before(aloneAt) && aloneAllowed(s)
		d.LeaseFenced = !leaseOK && s.PeerRenewing
		d.Answer = (s.View.Answer || d.Alone) && !d.LeaseFenced
		if s.Receiving && s.Now.Before(aloneAt) {
			d.Next = aloneAt
		}
	}
	// A node whose Lease is silent is down, but only while this node's own
	// renewals work: without them the apiserver is the one silent.
	var leaseDown []string
	if s.Lease != nil && s.Lease.Answer {
		leaseDown = s.Lease.Down
	}
	for _, n := range s.View.Alive {
		if n != s.Self && !slices.Contains(leaseDown, n) {
			d.Alive = append(d.Alive, n)
		}
	}
	if d.Answer {
		d.Alive = append(d.Alive, s.Self)
		slices.Sort(d.Alive)
	}
	return d
}

// aloneAllowed: with Leases, a node that hears no heartbeat answers alone
// only in a cluster of one, or while its own renewals work and no other
// node's Lease is alive (every other speaker is gone, not merely unheard: a
// blocked heartbeat port or a cut heartbeat path must not make every node
// answer for everything).
func aloneAllowed(s Standing) bool {
	if s.Lease == nil || !s.OthersExist {
		return true
	}
	return s.Lease.Answer && !slices.ContainsFunc(s.Lease.Alive, func(n string) bool { return n != s.Self })
}
