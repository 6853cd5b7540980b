package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// torSet is one prefix's next-hop set on a ToR and when the router recorded
// it (the router's own timestamp).
type torSet struct {
	hops string // backend.JoinAddrs of the sorted next-hops
	at   time.Time
}

// torRIB is a ToR's ECMP sets as followed through its RIB change history.
type torRIB struct {
	seq  uint64 // the last change applied
	sets map[netip.Prefix]torSet
}

func newTorRIB() *torRIB { return &torRIB{sets: map[netip.Prefix]torSet{}} }

// apply applies changes that follow seq. A gap (the router dropped the
// changes in between from its bounded history) is an error: the caller
// reloads the whole RIB with load.
func (t *torRIB) apply(changes []rib.Change) error {
	for _, c := range changes {
		if c.Seq <= t.seq {
			continue
		}
		if c.Seq != t.seq+1 {
			return fmt.Errorf("history gap: change %d follows %d", c.Seq, t.seq)
		}
		t.seq = c.Seq
		if c.Kind == rib.KindWithdraw || len(c.New) == 0 {
			delete(t.sets, c.Prefix)
			continue
		}
		t.sets[c.Prefix] = torSet{hops: backend.JoinAddrs(c.New), at: c.At}
	}
	return nil
}

// load replaces the sets with a full read of the RIB taken after change seq.
func (t *torRIB) load(seq uint64, sets []rib.ECMPSet) {
	t.seq = seq
	t.sets = make(map[netip.Prefix]torSet, len(sets))
	for _, s := range sets {
		t.sets[s.Prefix] = torSet{hops: backend.JoinAddrs(s.NextHops()), at: s.Since}
	}
}

// scaleVerdict is the state of the ToRs against the expected sets.
type scaleVerdict struct {
	// Done: every expected prefix has exactly its set on every ToR and no
	// other prefix of the pool is there.
	Done bool
	// Wrong counts (ToR, prefix) pairs that differ; Example describes one.
	Wrong   int
	Example string
	// Last is the latest time one of the expected sets reached its final
	// value, on LastToR for LastPrefix (valid when Done).
	Last       time.Time
	LastToR    string
	LastPrefix netip.Prefix
	// Complete is, for each expected prefix, when the last ToR got its set
	// (valid when Done).
	Complete map[netip.Prefix]time.Time
}

// judge compares each ToR's sets with expect (prefix → joined next-hops);
// prefixes of pool that are not expected count as wrong.
func judge(expect map[netip.Prefix]string, tors map[string]*torRIB, pool netip.Prefix) scaleVerdict {
	v := scaleVerdict{Complete: make(map[netip.Prefix]time.Time, len(expect))}
	names := make([]string, 0, len(tors))
	for n := range tors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, tor := range names {
		t := tors[tor]
		for p, want := range expect {
			have, ok := t.sets[p]
			if !ok || have.hops != want {
				v.Wrong++
				if v.Example == "" {
					v.Example = fmt.Sprintf("%s: %s has {%s}, want {%s}", tor, p, have.hops, want)
				}
				continue
			}
			if have.at.After(v.Complete[p]) {
				v.Complete[p] = have.at
			}
			if have.at.After(v.Last) {
				v.Last, v.LastToR, v.LastPrefix = have.at, tor, p
			}
		}
		for p, have := range t.sets {
			if _, ok := expect[p]; !ok && pool.Contains(p.Addr()) {
				v.Wrong++
				if v.Example == "" {
					v.Example = fmt.Sprintf("%s: %s has {%s}, want no route", tor, p, have.hops)
				}
			}
		}
	}
	v.Done = v.Wrong == 0
	if !v.Done {
		v.Last, v.LastToR, v.LastPrefix, v.Complete = time.Time{}, "", netip.Prefix{}, nil
	}
	return v
}
