package liveness

import (
	"fmt"
	"slices"
	"time"
)

// Config holds the timings every speaker of a cluster must share.
type Config struct {
	// Threshold: a node not heard from for longer than this, on the
	// observer's clock, is dead (K x the renewal period).
	Threshold time.Duration
	// Rejoin: a node that was dead is alive again only once it has been
	// heard for this long with no gap above Threshold (flap damping). 0:
	// alive again at its first renewal.
	Rejoin time.Duration
	// Margin: this node stops answering Margin before the others may
	// consider it dead, and after a silence starts again Margin after they
	// may consider it alive. It must be at least the largest delay from a
	// renewal's send to its receipt by the slowest observer (see Advance),
	// plus the time from the deadline check to the reply on the wire and
	// the clocks' rate difference over Threshold.
	Margin time.Duration
	// MaxTickGap: the caller calls Advance at least this often. A longer gap,
	// or a step back, means this process did not run (frozen, suspended) or
	// its clock jumped: the gap does not count as listening time (see
	// Advance), so its own pause does not make every other node dead.
	MaxTickGap time.Duration
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Threshold <= 0:
		return fmt.Errorf("liveness: threshold %v must be positive", c.Threshold)
	case c.Margin <= 0 || c.Margin >= c.Threshold:
		return fmt.Errorf("liveness: margin %v must be positive and below the threshold %v", c.Margin, c.Threshold)
	case c.Rejoin < 0:
		return fmt.Errorf("liveness: rejoin %v must not be negative", c.Rejoin)
	case c.MaxTickGap <= 0 || c.MaxTickGap >= c.Threshold:
		return fmt.Errorf("liveness: max tick gap %v must be positive and below the threshold %v", c.MaxTickGap, c.Threshold)
	}
	return nil
}

// peer is what this node heard of another.
type peer struct {
	last     time.Time // last receipt of a renewal
	runStart time.Time // first receipt with no gap above Threshold since
	rejoin   bool      // the run followed a gap (or is a new node's): it must span Rejoin
	epoch    uint64    // Table.epoch when last heard
}

// Table is one node's view of the liveness of all nodes, itself included.
// It is pure: every time is passed in, read from the caller's clock (on
// receipt for others' renewals, never the writer's timestamp, so the writers'
// clock skew does not matter). Not safe for concurrent use.
type Table struct {
	cfg   Config
	self  string
	peers map[string]*peer

	now    time.Time // latest Advance, or Heard that caught up
	epoch  uint64    // catch-ups so far
	jumped bool      // a catch-up in Heard not yet reported

	// Own renewals: the send time of the last confirmed one (what the
	// others may have received at the earliest), of the first of the
	// current run of confirmations without a gap above Threshold-Margin,
	// and from when this node may answer in this run (zero: not yet).
	confirmed, ownRunStart, ready time.Time
	// distrustBefore: confirmations sent before this do not count (set by a
	// backward clock step, which makes every earlier time incomparable).
	distrustBefore time.Time
}

// New returns the table of node self, started at now. A node it has never
// heard is neither alive nor down.
func New(cfg Config, self string, now time.Time) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Table{cfg: cfg, self: self, peers: map[string]*peer{}, now: now}, nil
}

// Known adds a node whose renewal object exists when this node starts
// watching (the first List): it is alive until Threshold passes without a
// renewal, with no Rejoin. The object's content cannot tell whether its
// writer still lives, and assuming it dead could make two nodes answer for
// its IPs; assumed alive, its IPs wait at most Threshold for an answer.
func (t *Table) Known(node string, at time.Time) {
	if node == t.self {
		return
	}
	t.catchUp(at)
	if _, ok := t.peers[node]; !ok {
		t.peers[node] = &peer{last: at, runStart: at, epoch: t.epoch}
	}
}

// Heard records a renewal of node received at (this node's clock). A node
// first heard now (a new node, or one restarted while this node did not
// know it) is alive after Rejoin, like one coming back; its own Table makes
// it wait as long before answering.
func (t *Table) Heard(node string, at time.Time) {
	if node == t.self {
		return
	}
	t.catchUp(at)
	p, ok := t.peers[node]
	switch {
	case !ok:
		t.peers[node] = &peer{last: at, runStart: at, rejoin: t.cfg.Rejoin > 0, epoch: t.epoch}
		return
	case !at.After(p.last): // out of order or a duplicate
		return
	case at.Sub(p.last) > t.cfg.Threshold:
		p.runStart, p.rejoin = at, t.cfg.Rejoin > 0
	}
	p.last, p.epoch = at, t.epoch
}

// catchUp treats a receipt more than MaxTickGap after the latest Advance as
// the end of a pause of this process: the first of a backlog of receipts
// handled on resuming must not find every other node silent since before
// the pause.
func (t *Table) catchUp(at time.Time) {
	if at.Sub(t.now) > t.cfg.MaxTickGap {
		t.rebase(at)
		t.jumped = true
	}
}

// Forget drops a node that left the cluster (its renewal object deleted).
func (t *Table) Forget(node string) { delete(t.peers, node) }

// Confirmed records a successful renewal of this node's own, sent at sent
// (taken before the request left: the others cannot have received it
// earlier, so their Threshold runs from no earlier than sent).
func (t *Table) Confirmed(sent time.Time) {
	if sent.Before(t.distrustBefore) || !sent.After(t.confirmed) {
		return
	}
	// A new run: at start, or after a silence the others may have taken for
	// death (this node's window had closed).
	if t.confirmed.IsZero() || sent.Sub(t.confirmed) > t.cfg.Threshold-t.cfg.Margin {
		t.ownRunStart, t.ready = sent, time.Time{}
	}
	t.confirmed = sent
	// The others take it back at a receipt Rejoin after their first one of
	// the run; a send Rejoin+Margin after this run's first is such a receipt
	// at every observer, by Margin after it was sent.
	if t.ready.IsZero() && sent.Sub(t.ownRunStart) >= t.cfg.Rejoin+t.cfg.Margin {
		t.ready = sent.Add(t.cfg.Margin)
	}
}

// View is a node's verdict at one time.
type View struct {
	// Alive are the nodes to hand IPs to, this node included while it
	// answers; Down those heard before and now silent for longer than
	// Threshold, or back for less than Rejoin. Both sorted.
	Alive, Down []string
	// Answer: this node may answer ARP/NDP now. AnswerUntil is when that
	// ends unless a renewal is confirmed first (zero when not answering).
	// Check it per reply against the same clock: it stays right even if the
	// caller is late to Advance.
	Answer      bool
	AnswerUntil time.Time
	// Next is when to call Advance again without new input: the earliest
	// time at which this view changes by itself, and no later than
	// MaxTickGap/2 from now, which keeps the caller within MaxTickGap.
	Next time.Time
	// Jumped: since the previous Advance the clock stepped back, or this
	// process paused (a gap above MaxTickGap).
	Jumped bool
}

// Advance moves the table to now and returns its view.
//
// Fencing rule: an observer considers this node dead no earlier than
// Threshold after receiving its last renewal, and received it no earlier
// than it was sent. So this node answers only until (send time of its last
// confirmed renewal) + Threshold - Margin. After a silence (a gap above
// Threshold-Margin between confirmed sends), the observers take it back at
// their first receipt at least Rejoin after their first receipt of the new
// run; with every receipt within Margin of its send (Margin >= the delivery
// bound), a send s at least Rejoin+Margin after the run's first is such a
// receipt everywhere by s+Margin, and this node answers from then on. Clock
// rates are assumed equal to within the Margin's slack; offsets do not
// matter, as every comparison is between times of one clock.
func (t *Table) Advance(now time.Time) View {
	v := View{Jumped: t.jumped}
	t.jumped = false
	switch gap := now.Sub(t.now); {
	case gap < 0:
		// The clock went back: every earlier time is incomparable. Ages stay
		// as they were, and no confirmation sent before counts any more.
		t.rebase(now)
		t.distrustBefore, t.confirmed, t.ownRunStart, t.ready = now, time.Time{}, time.Time{}, time.Time{}
		v.Jumped = true
	case gap > t.cfg.MaxTickGap:
		// This process did not run, or the clock leapt: ages stay as they
		// were. Its own deadline is not moved: real time may have passed
		// for the others too.
		t.rebase(now)
		v.Jumped = true
	default:
		t.now = now
		t.epoch++
	}

	for name, p := range t.peers {
		if t.alive(p, now) {
			v.Alive = append(v.Alive, name)
		} else {
			v.Down = append(v.Down, name)
		}
		if dies := p.last.Add(t.cfg.Threshold + 1); now.Before(dies) {
			v.Next = earliest(v.Next, dies)
		}
	}
	until := t.confirmed.Add(t.cfg.Threshold - t.cfg.Margin)
	if !t.ready.IsZero() {
		if !now.Before(t.ready) && now.Before(until) {
			v.Answer, v.AnswerUntil = true, until
			v.Alive = append(v.Alive, t.self)
		}
		if now.Before(t.ready) {
			v.Next = earliest(v.Next, t.ready)
		}
		if now.Before(until) {
			v.Next = earliest(v.Next, until)
		}
	}
	v.Next = earliest(v.Next, now.Add(t.cfg.MaxTickGap/2))
	slices.Sort(v.Alive)
	slices.Sort(v.Down)
	return v
}

func (t *Table) alive(p *peer, now time.Time) bool {
	if now.Sub(p.last) > t.cfg.Threshold {
		return false
	}
	return !p.rejoin || p.last.Sub(p.runStart) >= t.cfg.Rejoin
}

// rebase carries the receipts over a gap (or step back) to now: one
// recorded before the latest Advance keeps the age it had then (the gap is
// not listening time); one recorded since (handled after a pause, or
// stamped on either side of a clock step) counts as heard now.
func (t *Table) rebase(now time.Time) {
	d := now.Sub(t.now)
	for _, p := range t.peers {
		run := p.last.Sub(p.runStart)
		if p.epoch == t.epoch {
			p.last = now
		} else if p.last = p.last.Add(d); p.last.After(now) { // stamped after the latest Advance
			p.last = now
		}
		p.runStart = p.last.Add(-max(run, 0))
	}
	t.now = now
	t.epoch++
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
