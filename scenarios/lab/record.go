package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Recorder builds one report scenario while a drill runs: steps with
// timestamps, measurements, tables and timelines.
type Recorder struct {
	S     reports.Scenario
	Print func(format string, args ...any)
}

// NewRecorder starts a scenario record.
func NewRecorder(name, description string, print func(string, ...any)) *Recorder {
	if print == nil {
		print = func(string, ...any) {}
	}
	return &Recorder{S: reports.Scenario{Name: name, Description: description, Started: time.Now(), Status: reports.StatusPassed}, Print: print}
}

// Step records and prints a narrative line.
func (r *Recorder) Step(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	r.S.Steps = append(r.S.Steps, reports.Step{At: time.Now(), Text: text})
	r.Print("  %s\n", text)
}

// Measure records a figure.
func (r *Recorder) Measure(m reports.Measurement) {
	r.S.Measurements = append(r.S.Measurements, m)
	goal := ""
	if m.Goal != nil {
		met, _ := m.Met()
		mark := "met"
		if !met {
			mark = "NOT met"
		}
		goal = fmt.Sprintf("  (goal %s %g %s: %s)", m.Goal.Op, m.Goal.Value, m.Unit, mark)
	}
	r.Print("  => %s: %.1f %s%s\n", m.Name, m.Value, m.Unit, goal)
}

// Finish closes the record with err (nil: passed).
func (r *Recorder) Finish(err error) reports.Scenario {
	r.S.Duration = time.Since(r.S.Started)
	if err != nil {
		r.S.Status = reports.StatusFailed
		r.S.Failure = err.Error()
	}
	return r.S
}

// ECMPTable renders the ECMP sets of some prefixes on every ToR as a table.
func (l *Lab) ECMPTable(ctx context.Context, title string, prefixes ...netip.Prefix) (reports.Table, error) {
	t := reports.Table{Title: title, Header: []string{"router", "prefix", "next-hops", "communities", "since"}}
	for _, tor := range l.Fabric.Topology().ToRs {
		for _, p := range prefixes {
			set, err := l.Fabric.Route(ctx, tor.Name, p)
			if err != nil {
				t.Rows = append(t.Rows, []string{tor.Name, p.String(), "(none)", "", ""})
				continue
			}
			comms := map[string]bool{}
			for _, path := range set.Paths {
				for _, c := range path.Communities {
					comms[c] = true
				}
			}
			t.Rows = append(t.Rows, []string{tor.Name, p.String(), backend.JoinAddrs(set.NextHops()), joinSet(comms), set.Since.Format("15:04:05.000")})
		}
	}
	return t, nil
}

// Timeline turns the ToRs' RIB histories and neighbor events since `from`
// into a report timeline for one prefix: a lane per ToR with BGP/BFD events
// and route changes, a next-hop count series per ToR, and the given extra
// events (faults) on a "lab" lane.
func (l *Lab) Timeline(ctx context.Context, title string, prefix netip.Prefix, from time.Time, extra []reports.Event) (reports.Timeline, error) {
	tl := reports.Timeline{Title: title, Start: from}
	if len(extra) > 0 {
		tl.Lanes = append(tl.Lanes, reports.Lane{Name: "lab", Events: extra})
	}
	names := map[netip.Addr]string{}
	for _, n := range l.Fabric.Topology().Nodes {
		names[n.Address] = n.Name
	}
	for _, tor := range l.Fabric.Topology().ToRs {
		lane := reports.Lane{Name: tor.Name}
		series := reports.Series{Name: tor.Name + ": next-hops for " + prefix.String()}
		hist, err := l.Fabric.History(ctx, tor.Name, 0)
		if err != nil {
			return tl, err
		}
		count := -1
		for _, c := range hist {
			if c.Prefix != prefix {
				continue
			}
			if c.At.Before(from) {
				count = len(c.New)
				continue
			}
			if count >= 0 && len(series.Points) == 0 {
				series.Points = append(series.Points, reports.Point{At: from, Value: float64(count), Label: "before"})
			}
			label := fmt.Sprintf("%s %s: {%s}", c.Kind, prefix, backend.JoinAddrs(c.New))
			lane.Events = append(lane.Events, reports.Event{At: c.At, Label: label, Kind: "route"})
			series.Points = append(series.Points, reports.Point{At: c.At, Value: float64(len(c.New)), Label: backend.JoinAddrs(c.New)})
			count = len(c.New)
		}
		if len(series.Points) == 0 && count >= 0 {
			series.Points = append(series.Points, reports.Point{At: from, Value: float64(count), Label: "unchanged"})
		}
		events, err := l.Fabric.Events(ctx, tor.Name, 0)
		if err != nil {
			return tl, err
		}
		for _, e := range events {
			if e.At.Before(from) {
				continue
			}
			who := names[e.Peer]
			if who == "" {
				who = e.Peer.String()
			}
			label := fmt.Sprintf("%s %s: %s → %s", strings.ToUpper(string(e.Kind)), who, e.Old, e.New)
			if e.Detail != "" {
				label += " (" + e.Detail + ")"
			}
			lane.Events = append(lane.Events, reports.Event{At: e.At, Label: label, Kind: string(e.Kind)})
		}
		sort.Slice(lane.Events, func(i, j int) bool { return lane.Events[i].At.Before(lane.Events[j].At) })
		tl.Lanes = append(tl.Lanes, lane)
		tl.Series = append(tl.Series, series)
	}
	return tl, nil
}

// FirstChange finds, in a ToR's RIB history, the first change of prefix at or
// after `from` whose new next-hop set equals want (nil: withdrawn).
func (l *Lab) FirstChange(ctx context.Context, tor string, prefix netip.Prefix, from time.Time, want []netip.Addr) (rib.Change, error) {
	hist, err := l.Fabric.History(ctx, tor, 0)
	if err != nil {
		return rib.Change{}, err
	}
	wantKey := backend.JoinAddrs(backend.Sorted(want))
	for _, c := range hist {
		if c.Prefix == prefix && !c.At.Before(from) && backend.JoinAddrs(c.New) == wantKey {
			return c, nil
		}
	}
	return rib.Change{}, fmt.Errorf("%s: no change of %s to {%s} since %s", tor, prefix, wantKey, from.Format(time.RFC3339Nano))
}

func joinSet(m map[string]bool) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}
