package heartbeat

import "time"

// heard is what this node last accepted from another.
type heard struct {
	incarnation, seq uint64
	at               time.Time // receipt, on this node's clock
}

// senders tracks the other nodes' sequences: it rejects a datagram whose
// sequence was already seen (a duplicate, one overtaken, or a recording
// replayed), and gives the echo to put in the next datagram to each. Pure:
// receipt times are passed in. Not safe for concurrent use.
type senders map[string]*heard

// accept records m received at at, and reports whether it is new.
func (s senders) accept(m message, at time.Time) bool {
	h, ok := s[m.Node]
	switch {
	case !ok:
		s[m.Node] = &heard{m.Incarnation, m.Seq, at}
		return true
	case h.incarnation != m.Incarnation:
		// A restart (or two processes claiming one name: each switch is
		// accepted, which keeps the node heard as long as either runs).
		*h = heard{m.Incarnation, m.Seq, at}
		return true
	case m.Seq <= h.seq:
		return false
	}
	h.seq, h.at = m.Seq, at
	return true
}

// echo is what to echo to node at now: its last sequence accepted and how
// long ago (0, 0 when none).
func (s senders) echo(node string, now time.Time) (uint64, time.Duration) {
	h, ok := s[node]
	if !ok {
		return 0, 0
	}
	return h.seq, max(now.Sub(h.at), 0)
}

// forget drops the nodes not heard since before cutoff, so names seen once
// (a removed node, a stray or forged datagram without a key) do not pile up.
func (s senders) forget(cutoff time.Time) {
	for n, h := range s {
		if h.at.Before(cutoff) {
			delete(s, n)
		}
	}
}

// sendLog remembers when this node's recent rounds went out, to turn an
// echo into a round trip time. Pure; not safe for concurrent use.
type sendLog struct {
	rounds [64]struct {
		seq uint64
		at  time.Time
	}
}

func (l *sendLog) sent(seq uint64, at time.Time) {
	r := &l.rounds[seq%uint64(len(l.rounds))]
	r.seq, r.at = seq, at
}

// rtt is the round trip time that an echo of seq, held hold by the peer and
// received at, shows; false when seq is not a recent round of ours (an echo
// of an earlier incarnation, or too old) or the result is negative (the
// peer's hold is measured on its clock).
func (l *sendLog) rtt(seq uint64, hold time.Duration, at time.Time) (time.Duration, bool) {
	if seq == 0 {
		return 0, false
	}
	r := l.rounds[seq%uint64(len(l.rounds))]
	if r.seq != seq {
		return 0, false
	}
	d := at.Sub(r.at) - hold
	return d, d >= 0
}

// sentAt is when round seq of ours went out; false when seq is not a recent
// round (0, an earlier incarnation's, or older than the log).
func (l *sendLog) sentAt(seq uint64) (time.Time, bool) {
	if seq == 0 {
		return time.Time{}, false
	}
	r := l.rounds[seq%uint64(len(l.rounds))]
	if r.seq != seq {
		return time.Time{}, false
	}
	return r.at, true
}
