package allocator

import (
	"net/netip"

	"github.com/google/btree"
)

// freeSet is an ordered set of disjoint, non-adjacent address intervals of
// one family. Every operation is O(log n) in the number of intervals.
type freeSet struct {
	t    *btree.BTreeG[Range]
	size u128
}

func newFreeSet() *freeSet {
	return &freeSet{t: btree.NewG(16, func(a, b Range) bool { return a.First.Less(b.First) })}
}

// count is the number of free addresses.
func (s *freeSet) count() u128 { return s.size }

// intervals is the number of intervals (for tests).
func (s *freeSet) intervals() int { return s.t.Len() }

// floor returns the interval with the greatest start <= a.
func (s *freeSet) floor(a netip.Addr) (Range, bool) {
	var found Range
	ok := false
	s.t.DescendLessOrEqual(Range{First: a}, func(r Range) bool {
		found, ok = r, true
		return false
	})
	return found, ok
}

// containing returns the interval holding a.
func (s *freeSet) containing(a netip.Addr) (Range, bool) {
	r, ok := s.floor(a)
	if !ok || !r.Contains(a) {
		return Range{}, false
	}
	return r, true
}

// has reports whether a is free.
func (s *freeSet) has(a netip.Addr) bool {
	_, ok := s.containing(a)
	return ok
}

// addRange adds [r.First, r.Last]; r must not overlap the set.
func (s *freeSet) addRange(r Range) {
	// Merge with the interval ending right before r and the one starting
	// right after it.
	if prev, ok := s.floor(r.First); ok && prev.Last.Next() == r.First {
		s.t.Delete(prev)
		r.First = prev.First
	}
	if r.Last.Next().IsValid() {
		if next, ok := s.t.Get(Range{First: r.Last.Next()}); ok {
			s.t.Delete(next)
			r.Last = next.Last
		}
	}
	s.t.ReplaceOrInsert(r)
}

// add returns a to the set; a must not be free already.
func (s *freeSet) add(a netip.Addr) {
	s.addRange(Range{First: a, Last: a})
	s.size = s.size.add(u128{0, 1})
}

// insertRange adds a whole range and counts it.
func (s *freeSet) insertRange(r Range) {
	s.addRange(r)
	s.size = s.size.add(rangeSize(r.First, r.Last))
}

// take removes a from the set; it reports false if a was not free.
func (s *freeSet) take(a netip.Addr) bool {
	r, ok := s.containing(a)
	if !ok {
		return false
	}
	s.t.Delete(r)
	if r.First != a {
		s.t.ReplaceOrInsert(Range{First: r.First, Last: a.Prev()})
	}
	if r.Last != a {
		s.t.ReplaceOrInsert(Range{First: a.Next(), Last: r.Last})
	}
	s.size = s.size.sub(u128{0, 1})
	return true
}

// takeFirst removes and returns the lowest free address.
func (s *freeSet) takeFirst() (netip.Addr, bool) {
	r, ok := s.t.Min()
	if !ok {
		return netip.Addr{}, false
	}
	s.take(r.First)
	return r.First, true
}
