package reports

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// NextHopSet is a prefix's ECMP next-hop set on a ToR from At on. An empty
// set means the route is withdrawn.
type NextHopSet struct {
	// At is when the set took effect (the RIB timestamp).
	At time.Time `json:"at"`
	// NextHops are the next-hops (addresses or node names), in any order.
	NextHops []string `json:"next_hops,omitempty"`
}

// ToRHistory is what one ToR saw of one prefix, the input of ECMPTimeline.
type ToRHistory struct {
	// ToR names the router, e.g. "tor1".
	ToR string
	// Sets are the prefix's next-hop sets as they changed, in any order.
	// Those before the window only give the set the window starts with.
	Sets []NextHopSet
	// Events are other things the ToR saw, e.g. BFD or BGP session changes
	// (KindBFD, KindBGP), drawn in its lane.
	Events []Event
}

// ECMPTimeline charts the ECMP next-hop set of prefix on each ToR around one
// or more faults, over the window from…to (to zero: no end): a lane with the
// faults, then per ToR a lane with its set changes ("-10.0.0.12" with the
// resulting set) and other events, and a step series of its next-hop count.
// The x axis starts at the first fault (at from when there is none).
func ECMPTimeline(title, prefix string, from, to time.Time, faults []Event, tors []ToRHistory) Timeline {
	in := func(at time.Time) bool { return !at.Before(from) && (to.IsZero() || !at.After(to)) }
	tl := Timeline{Title: title, Start: from}
	var faultLane Lane
	for _, f := range faults {
		if in(f.At) {
			if f.Kind == "" {
				f.Kind = KindFault
			}
			faultLane.Events = append(faultLane.Events, f)
		}
	}
	if len(faultLane.Events) > 0 {
		faultLane.Name = "faults"
		slices.SortStableFunc(faultLane.Events, func(a, b Event) int { return a.At.Compare(b.At) })
		tl.Start = faultLane.Events[0].At
		tl.Lanes = append(tl.Lanes, faultLane)
	}
	for _, h := range tors {
		lane := Lane{Name: h.ToR}
		series := Series{Name: fmt.Sprintf("%s: next-hops for %s", h.ToR, prefix)}
		sets := slices.Clone(h.Sets)
		slices.SortStableFunc(sets, func(a, b NextHopSet) int { return a.At.Compare(b.At) })
		var prev []string
		known := false
		for _, s := range sets {
			cur := sortedSet(s.NextHops)
			switch {
			case s.At.Before(from):
				prev, known = cur, true
				continue
			case !in(s.At):
				continue
			}
			if len(series.Points) == 0 && known {
				series.Points = append(series.Points, Point{At: from, Value: float64(len(prev)), Label: setLabel(prev)})
			}
			lane.Events = append(lane.Events, Event{At: s.At, Label: setChange(prev, cur), Kind: KindRoute})
			series.Points = append(series.Points, Point{At: s.At, Value: float64(len(cur)), Label: setLabel(cur)})
			prev, known = cur, true
		}
		if len(series.Points) == 0 && known {
			series.Points = append(series.Points, Point{At: from, Value: float64(len(prev)), Label: setLabel(prev) + " (unchanged)"})
		}
		for _, e := range h.Events {
			if in(e.At) {
				lane.Events = append(lane.Events, e)
			}
		}
		slices.SortStableFunc(lane.Events, func(a, b Event) int { return a.At.Compare(b.At) })
		tl.Lanes = append(tl.Lanes, lane)
		tl.Series = append(tl.Series, series)
	}
	return tl
}

func sortedSet(hops []string) []string {
	s := slices.Clone(hops)
	slices.Sort(s)
	return slices.Compact(s)
}

// setLabel is "{a, b}", or "withdrawn" for an empty set.
func setLabel(s []string) string {
	if len(s) == 0 {
		return "withdrawn"
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// setChange labels a change from one sorted set to another by what left and
// what joined: "-10.0.0.12", "+10.0.0.12 +10.0.0.13", "withdrawn".
func setChange(prev, cur []string) string {
	if len(cur) == 0 {
		return "withdrawn"
	}
	var parts []string
	for _, h := range prev {
		if _, found := slices.BinarySearch(cur, h); !found {
			parts = append(parts, "-"+h)
		}
	}
	for _, h := range cur {
		if _, found := slices.BinarySearch(prev, h); !found {
			parts = append(parts, "+"+h)
		}
	}
	if len(parts) == 0 {
		return "re-announced " + setLabel(cur)
	}
	return strings.Join(parts, " ")
}
