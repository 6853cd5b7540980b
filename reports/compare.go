package reports

import (
	"math"
	"time"
)

// MovedRelative is the relative change of a median or tail figure from which
// a measurement counts as moved between two runs (0.1 = 10%).
const MovedRelative = 0.10

// Comparison is what changed from one run of a suite (Old, e.g. the last
// stored report.json) to another (New).
type Comparison struct {
	// Old and New say which runs were compared.
	Old, New RunInfo
	// Scenarios has one entry per scenario of either run: New's order, with
	// scenarios only in Old (removed) after them.
	Scenarios []ScenarioDiff
}

// RunInfo identifies a run in a comparison.
type RunInfo struct {
	// Name is the run's name.
	Name string
	// Backend is where it ran.
	Backend string
	// Started is when it began.
	Started time.Time
}

// Change says whether something is in both runs or only one.
type Change string

// The kinds of Change.
const (
	// Compared means it is in both runs.
	Compared Change = "compared"
	// Added means it is only in the new run.
	Added Change = "added"
	// Removed means it is only in the old run.
	Removed Change = "removed"
)

// ScenarioDiff compares one scenario, matched by name (the k-th scenario of a
// name in one run with the k-th of that name in the other).
type ScenarioDiff struct {
	// Name is the scenario's name.
	Name string
	// Change says whether the scenario is in both runs.
	Change Change
	// OldStatus and NewStatus are its outcomes (empty where it is absent).
	OldStatus, NewStatus Status
	// Measurements compare its measurements, matched by name like scenarios:
	// New's order, then the removed ones.
	Measurements []MeasurementDiff
}

// MeasurementDiff compares one measurement (a timing, typically).
type MeasurementDiff struct {
	// Name is the measurement's name.
	Name string
	// Unit is the new run's unit (the old one's when removed).
	Unit string
	// Change says whether the measurement is in both runs.
	Change Change
	// UnitChanged is set when the runs use different units; the figures are
	// then not compared (Median and Tail are not Valid).
	UnitChanged bool
	// OldN and NewN are the sample counts (1 for a single measurement, 0
	// where absent).
	OldN, NewN int
	// Median compares the medians (the values of single measurements).
	Median Delta
	// Tail compares the tail figures by the p99 rule (p99 from
	// MinSamplesForP99 samples on, else the max); valid only when both runs
	// have samples.
	Tail Delta
	// OldGoal and NewGoal say whether the goal was met: GoalMet, GoalNotMet
	// or GoalNone.
	OldGoal, NewGoal GoalState
	// Direction is +1 when a higher figure is better (a ">=" goal), -1 when
	// it is worse (a "<=" goal, or a time without goal), 0 when unknown.
	Direction int
}

// GoalState is whether a measurement met its goal.
type GoalState string

// The goal states.
const (
	// GoalNone means there is no goal (or no measurement).
	GoalNone GoalState = ""
	// GoalMet means the goal was met.
	GoalMet GoalState = "met"
	// GoalNotMet means the goal was not met.
	GoalNotMet GoalState = "not met"
)

// Delta is how one figure changed.
type Delta struct {
	// Valid is true when both runs have the figure.
	Valid bool
	// OldStat and NewStat name the figures: StatMedian, StatP99, StatMax, or
	// "value" for a single measurement.
	OldStat, NewStat string
	// Old and New are the figures.
	Old, New float64
	// Abs is New - Old.
	Abs float64
	// Rel is Abs / |Old|; ±Inf when Old is 0 and New is not, 0 when both are.
	Rel float64
}

// Moved reports whether the figure changed by at least MovedRelative.
func (d Delta) Moved() bool {
	return d.Valid && d.Abs != 0 && math.Abs(d.Rel) >= MovedRelative-1e-12
}

// Moved reports whether the median or the tail moved (see Delta.Moved).
func (m MeasurementDiff) Moved() bool {
	return m.Change == Compared && (m.Median.Moved() || m.Tail.Moved())
}

// Verdict says how a moved measurement changed: "worse", "better", "moved"
// (direction unknown), or "" when it did not move. The tail's change decides
// when the tail moved, the median's otherwise.
func (m MeasurementDiff) Verdict() string {
	if !m.Moved() {
		return ""
	}
	d := m.Median
	if m.Tail.Moved() {
		d = m.Tail
	}
	switch {
	case m.Direction == 0:
		return "moved"
	case (d.Abs > 0) == (m.Direction > 0):
		return "better"
	}
	return "worse"
}

// Moved lists the measurements that moved, by scenario.
func (c Comparison) Moved() []MeasurementDiff {
	var out []MeasurementDiff
	for _, s := range c.Scenarios {
		for _, m := range s.Measurements {
			if m.Moved() {
				out = append(out, m)
			}
		}
	}
	return out
}

// Compare compares two runs of a suite: which scenarios were added or
// removed, how their outcomes changed, and by how much each measurement's
// median and tail (p99 or max) moved.
func Compare(old, new Run) Comparison {
	c := Comparison{Old: runInfo(old), New: runInfo(new)}
	pairs := matchByName(old.Scenarios, new.Scenarios, func(s Scenario) string { return s.Name })
	for _, p := range pairs {
		d := ScenarioDiff{Change: p.change}
		var om, nm []Measurement
		if p.old != nil {
			d.Name, d.OldStatus, om = p.old.Name, p.old.Status, p.old.Measurements
		}
		if p.new != nil {
			d.Name, d.NewStatus, nm = p.new.Name, p.new.Status, p.new.Measurements
		}
		for _, mp := range matchByName(om, nm, func(m Measurement) string { return m.Name }) {
			d.Measurements = append(d.Measurements, compareMeasurement(mp.old, mp.new, mp.change))
		}
		c.Scenarios = append(c.Scenarios, d)
	}
	return c
}

func runInfo(r Run) RunInfo {
	return RunInfo{Name: r.Name, Backend: r.Backend, Started: r.Started}
}

type pair[T any] struct {
	old, new *T
	change   Change
}

// matchByName pairs the k-th item of a name in old with the k-th of that name
// in new: new's items in order, then old's unmatched ones.
func matchByName[T any](old, new []T, name func(T) string) []pair[T] {
	type key struct {
		name string
		k    int
	}
	keyed := func(items []T) []key {
		seen := map[string]int{}
		keys := make([]key, len(items))
		for i, it := range items {
			n := name(it)
			keys[i] = key{n, seen[n]}
			seen[n]++
		}
		return keys
	}
	oldKeys := keyed(old)
	oldAt := make(map[key]int, len(old))
	for i, k := range oldKeys {
		oldAt[k] = i
	}
	used := make([]bool, len(old))
	var out []pair[T]
	for i, k := range keyed(new) {
		p := pair[T]{new: &new[i], change: Added}
		if j, ok := oldAt[k]; ok {
			p.old, p.change, used[j] = &old[j], Compared, true
		}
		out = append(out, p)
	}
	for j := range old {
		if !used[j] {
			out = append(out, pair[T]{old: &old[j], change: Removed})
		}
	}
	return out
}

func compareMeasurement(old, new *Measurement, change Change) MeasurementDiff {
	d := MeasurementDiff{Change: change}
	ref := new
	if ref == nil {
		ref = old
	}
	d.Name, d.Unit, d.Direction = ref.Name, ref.Unit, direction(*ref)
	var om, ot, nm, nt figure
	if old != nil {
		d.OldN, d.OldGoal = sampleCount(*old), goalState(*old)
		om, ot = figures(*old)
	}
	if new != nil {
		d.NewN, d.NewGoal = sampleCount(*new), goalState(*new)
		nm, nt = figures(*new)
	}
	if old != nil && new != nil && old.Unit != new.Unit {
		d.UnitChanged = true
		return d
	}
	d.Median = delta(om, nm)
	d.Tail = delta(ot, nt)
	return d
}

// figure is one named figure of a measurement; ok is false when absent.
type figure struct {
	stat string
	v    float64
	ok   bool
}

// figures returns the median (the value of a single measurement) and the
// tail (only for a measurement with samples).
func figures(m Measurement) (median, tail figure) {
	s := Summarize(m.Samples)
	if s.N == 0 {
		if len(m.Samples) > 0 || math.IsNaN(m.Value) {
			return figure{}, figure{} // only NaN samples: nothing to compare
		}
		return figure{stat: "value", v: m.Value, ok: true}, figure{}
	}
	stat, v := s.Tail()
	return figure{stat: StatMedian, v: s.Median, ok: true}, figure{stat: stat, v: v, ok: true}
}

func delta(old, new figure) Delta {
	if !old.ok || !new.ok {
		return Delta{}
	}
	d := Delta{Valid: true, OldStat: old.stat, NewStat: new.stat, Old: old.v, New: new.v, Abs: new.v - old.v}
	switch {
	case old.v != 0:
		d.Rel = d.Abs / math.Abs(old.v)
	case d.Abs != 0:
		d.Rel = math.Copysign(math.Inf(1), d.Abs)
	}
	return d
}

func sampleCount(m Measurement) int {
	if len(m.Samples) == 0 {
		return 1
	}
	return Summarize(m.Samples).N
}

func goalState(m Measurement) GoalState {
	met, has := m.Met()
	switch {
	case !has:
		return GoalNone
	case met:
		return GoalMet
	}
	return GoalNotMet
}

// timeUnits are units of measurements where less is better when no goal
// says otherwise.
var timeUnits = map[string]bool{"ns": true, "µs": true, "us": true, "ms": true, "s": true, "min": true}

func direction(m Measurement) int {
	if m.Goal != nil {
		switch m.Goal.Op {
		case "<=", "<":
			return -1
		case ">=", ">":
			return 1
		}
	}
	if timeUnits[m.Unit] {
		return -1
	}
	return 0
}
