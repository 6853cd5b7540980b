// Package rib is a router's ECMP view of its BGP table: for every prefix the set of
// equal-cost paths (next-hops) currently selected, and a timestamped history of every
// change to those sets. It is pure: callers feed it updates with their timestamps.
package rib

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Path is one equal-cost path of a prefix.
type Path struct {
	// NextHop is where packets for the prefix are forwarded.
	NextHop netip.Addr `json:"nextHop"`
	// Peer is the BGP neighbor the path was learned from (invalid for local paths).
	Peer netip.Addr `json:"peer,omitzero"`
	// PeerASN is the neighbor's AS number.
	PeerASN uint32 `json:"peerASN,omitempty"`
	// ASPath is the flattened AS path.
	ASPath []uint32 `json:"asPath,omitempty"`
	// Communities are the standard communities as "ASN:value".
	Communities []string `json:"communities,omitempty"`
	// LargeCommunities are the large communities as "ASN:value:value".
	LargeCommunities []string `json:"largeCommunities,omitempty"`
	// LocalPref is the LOCAL_PREF attribute if the path carried one.
	LocalPref uint32 `json:"localPref,omitempty"`
	// MED is the MULTI_EXIT_DISC attribute.
	MED uint32 `json:"med,omitempty"`
}

// ECMPSet is the set of equal-cost paths of one prefix.
type ECMPSet struct {
	Prefix netip.Prefix `json:"prefix"`
	// Paths are sorted by next-hop then peer.
	Paths []Path `json:"paths"`
	// Since is when the set last changed.
	Since time.Time `json:"since"`
}

// NextHops returns the distinct next-hops of the set, sorted.
func (s ECMPSet) NextHops() []netip.Addr { return nextHops(s.Paths) }

// Update replaces the ECMP set of one prefix. Empty Paths withdraw the prefix.
type Update struct {
	Prefix netip.Prefix
	Paths  []Path
}

// ChangeKind classifies a Change.
type ChangeKind string

// Kinds of change.
const (
	KindAdd      ChangeKind = "add"      // the prefix appeared
	KindUpdate   ChangeKind = "update"   // the next-hop set changed
	KindWithdraw ChangeKind = "withdraw" // the prefix disappeared
)

// Change records one change of a prefix's next-hop set.
type Change struct {
	// Seq increases by one with every change, starting at 1.
	Seq    uint64       `json:"seq"`
	At     time.Time    `json:"at"`
	Prefix netip.Prefix `json:"prefix"`
	Kind   ChangeKind   `json:"kind"`
	// Old and New are the sorted distinct next-hops before and after.
	Old []netip.Addr `json:"old"`
	New []netip.Addr `json:"new"`
}

// RIB holds the current ECMP sets and their history. Safe for concurrent use.
type RIB struct {
	mu         sync.Mutex
	sets       map[netip.Prefix]ECMPSet
	history    []Change
	seq        uint64
	maxHistory int
	// changed is closed and replaced when a change is recorded, waking
	// WaitHistory.
	changed chan struct{}
}

// New returns an empty RIB that keeps at most maxHistory changes (0 means 100000); the
// oldest changes are dropped first.
func New(maxHistory int) *RIB {
	if maxHistory <= 0 {
		maxHistory = 100000
	}
	return &RIB{sets: map[netip.Prefix]ECMPSet{}, maxHistory: maxHistory, changed: make(chan struct{})}
}

// Apply replaces the sets of the updated prefixes, all at time at, and returns the
// changes it recorded. Updates that leave a prefix's next-hop set as it was record no
// change (their attributes are still stored).
func (r *RIB) Apply(at time.Time, updates []Update) []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var changes []Change
	for _, u := range updates {
		prefix := u.Prefix.Masked()
		old, had := r.sets[prefix]
		paths := sortedPaths(u.Paths)
		oldHops, newHops := nextHops(old.Paths), nextHops(paths)
		var kind ChangeKind
		switch {
		case !had && len(paths) == 0:
			continue
		case !had:
			kind = KindAdd
		case len(paths) == 0:
			kind = KindWithdraw
		case !slices.Equal(oldHops, newHops):
			kind = KindUpdate
		}
		if len(paths) == 0 {
			delete(r.sets, prefix)
		} else {
			since := old.Since
			if kind != "" {
				since = at
			}
			r.sets[prefix] = ECMPSet{Prefix: prefix, Paths: paths, Since: since}
		}
		if kind == "" {
			continue
		}
		r.seq++
		c := Change{Seq: r.seq, At: at, Prefix: prefix, Kind: kind, Old: oldHops, New: newHops}
		changes = append(changes, c)
		r.history = append(r.history, c)
	}
	if over := len(r.history) - r.maxHistory; over > 0 {
		r.history = slices.Delete(r.history, 0, over)
	}
	if len(changes) > 0 {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return changes
}

// Get returns the ECMP set of exactly this prefix.
func (r *RIB) Get(prefix netip.Prefix) (ECMPSet, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sets[prefix.Masked()]
	return cloneSet(s), ok
}

// Lookup returns the set of the longest prefix that contains addr.
func (r *RIB) Lookup(addr netip.Addr) (ECMPSet, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for bits := addr.BitLen(); bits >= 0; bits-- {
		p, err := addr.Prefix(bits)
		if err != nil {
			continue
		}
		if s, ok := r.sets[p]; ok {
			return cloneSet(s), true
		}
	}
	return ECMPSet{}, false
}

// All returns every set, sorted by prefix.
func (r *RIB) All() []ECMPSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ECMPSet, 0, len(r.sets))
	for _, s := range r.sets {
		out = append(out, cloneSet(s))
	}
	slices.SortFunc(out, func(a, b ECMPSet) int { return ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// Len is the number of prefixes with a non-empty set.
func (r *RIB) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

// Summary counts prefixes by the size of their next-hop set.
type Summary struct {
	Prefixes int `json:"prefixes"`
	// ByNextHops maps a next-hop count to the number of prefixes with that many.
	ByNextHops map[int]int `json:"byNextHops"`
	// LastSeq and LastChange identify the latest retained change.
	LastSeq    uint64    `json:"lastSeq"`
	LastChange time.Time `json:"lastChange,omitzero"`
}

// Summary returns prefix counts by ECMP width, cheap enough to poll with many prefixes.
func (r *RIB) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Prefixes: len(r.sets), ByNextHops: map[int]int{}, LastSeq: r.seq}
	for _, set := range r.sets {
		s.ByNextHops[len(nextHops(set.Paths))]++
	}
	if n := len(r.history); n > 0 {
		s.LastChange = r.history[n-1].At
	}
	return s
}

// History returns the retained changes with Seq > afterSeq, oldest first.
func (r *RIB) History(afterSeq uint64) []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, _ := slices.BinarySearchFunc(r.history, afterSeq+1, func(c Change, s uint64) int {
		switch {
		case c.Seq < s:
			return -1
		case c.Seq > s:
			return 1
		}
		return 0
	})
	return slices.Clone(r.history[i:])
}

// WaitHistory is History that, when there is no change with Seq > afterSeq yet,
// waits for one until ctx ends (then it returns what there is: nothing). It
// lets a reader follow the RIB's changes as they happen instead of polling.
func (r *RIB) WaitHistory(ctx context.Context, afterSeq uint64) []Change {
	for {
		r.mu.Lock()
		seq, changed := r.seq, r.changed
		r.mu.Unlock()
		if seq > afterSeq {
			return r.History(afterSeq)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return r.History(afterSeq)
		}
	}
}

// ComparePrefix orders prefixes by address, then by length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func sortedPaths(in []Path) []Path {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b Path) int {
		if c := a.NextHop.Compare(b.NextHop); c != 0 {
			return c
		}
		return a.Peer.Compare(b.Peer)
	})
	return out
}

func nextHops(paths []Path) []netip.Addr {
	out := make([]netip.Addr, 0, len(paths))
	for _, p := range paths {
		out = append(out, p.NextHop)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func cloneSet(s ECMPSet) ECMPSet {
	s.Paths = slices.Clone(s.Paths)
	return s
}
