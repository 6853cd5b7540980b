package backend

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/reports"
)

// Timeline charts prefix's ECMP set on every ToR of b from `from` to `to`
// (zero: now): a lane of the given faults, then per ToR its set changes by
// node name, its BGP and BFD neighbor events, and a step series of its
// next-hop count — what the report draws around a fault. Any backend.
func Timeline(ctx context.Context, b Backend, title string, prefix netip.Prefix, from, to time.Time, faults []reports.Event) (reports.Timeline, error) {
	topo := b.Topology()
	var tors []reports.ToRHistory
	for _, tor := range topo.ToRNames() {
		h := reports.ToRHistory{ToR: tor}
		changes, err := b.History(ctx, tor)
		if err != nil {
			return reports.Timeline{}, fmt.Errorf("timeline: %s history: %w", tor, err)
		}
		for _, c := range changes {
			if c.Prefix != prefix {
				continue
			}
			set := reports.NextHopSet{At: c.At}
			for _, a := range c.New {
				set.NextHops = append(set.NextHops, topo.NodeOf(a))
			}
			h.Sets = append(h.Sets, set)
		}
		events, err := b.Events(ctx, tor)
		if err != nil {
			return reports.Timeline{}, fmt.Errorf("timeline: %s events: %w", tor, err)
		}
		for _, e := range events {
			h.Events = append(h.Events, NeighborEvent(topo, e))
		}
		tors = append(tors, h)
	}
	return reports.ECMPTimeline(title, prefix.String(), from, to, faults, tors), nil
}

// NeighborEvent is a ToR's BGP or BFD state change as a report marker,
// "BFD node2: Up → Down (detail)".
func NeighborEvent(topo Topology, e Event) reports.Event {
	label := fmt.Sprintf("%s %s: %s → %s", strings.ToUpper(string(e.Kind)), topo.NodeOf(e.Peer), e.Old, e.New)
	if e.Detail != "" {
		label += " (" + e.Detail + ")"
	}
	return reports.Event{At: e.At, Label: label, Kind: string(e.Kind)}
}
