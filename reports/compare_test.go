package reports

import (
	"math"
	"slices"
	"testing"
)

// n100 is 100 samples 1..100: p99 99, max 100, median 50.5.
func n100(offset float64) []float64 {
	out := seq(1, 100)
	for i := range out {
		out[i] += offset
	}
	return out
}

func TestCompareMeasurements(t *testing.T) {
	type fig struct {
		valid         bool
		oldStat, stat string
		old, new, abs float64
		rel           float64
		moved, relInf bool
	}
	tests := []struct {
		name      string
		old, new  *Measurement
		change    Change
		unitChg   bool
		median    fig
		tail      fig
		verdict   string
		oldN      int
		newN      int
		direction int
	}{
		{
			name: "single value got slower", change: Compared, verdict: "worse", oldN: 1, newN: 1, direction: -1,
			old:    &Measurement{Name: "m", Unit: "ms", Value: 100, Goal: AtMost(200)},
			new:    &Measurement{Name: "m", Unit: "ms", Value: 130, Goal: AtMost(200)},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 100, new: 130, abs: 30, rel: 0.3, moved: true},
		},
		{
			name: "single value below the threshold", change: Compared, verdict: "", oldN: 1, newN: 1, direction: -1,
			old:    &Measurement{Name: "m", Unit: "ms", Value: 100},
			new:    &Measurement{Name: "m", Unit: "ms", Value: 109},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 100, new: 109, abs: 9, rel: 0.09},
		},
		{
			name: "exactly the threshold moves", change: Compared, verdict: "better", oldN: 1, newN: 1, direction: -1,
			old:    &Measurement{Name: "m", Unit: "s", Value: 10},
			new:    &Measurement{Name: "m", Unit: "s", Value: 9},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 10, new: 9, abs: -1, rel: -0.1, moved: true},
		},
		{
			name: "higher is better with an at-least goal", change: Compared, verdict: "better", oldN: 1, newN: 1, direction: 1,
			old:    &Measurement{Name: "m", Unit: "next-hops", Value: 4, Goal: AtLeast(3)},
			new:    &Measurement{Name: "m", Unit: "next-hops", Value: 5, Goal: AtLeast(3)},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 4, new: 5, abs: 1, rel: 0.25, moved: true},
		},
		{
			name: "no goal, not a time: direction unknown", change: Compared, verdict: "moved", oldN: 1, newN: 1,
			old:    &Measurement{Name: "m", Unit: "flows", Value: 100},
			new:    &Measurement{Name: "m", Unit: "flows", Value: 50},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 100, new: 50, abs: -50, rel: -0.5, moved: true},
		},
		{
			name: "from zero", change: Compared, verdict: "worse", oldN: 1, newN: 1, direction: -1,
			old:    &Measurement{Name: "lost", Unit: "packets", Value: 0, Goal: AtMost(10)},
			new:    &Measurement{Name: "lost", Unit: "packets", Value: 3, Goal: AtMost(10)},
			median: fig{valid: true, oldStat: "value", stat: "value", old: 0, new: 3, abs: 3, relInf: true, moved: true},
		},
		{
			name: "zero to zero", change: Compared, verdict: "", oldN: 1, newN: 1,
			old:    &Measurement{Name: "lost", Unit: "packets", Value: 0},
			new:    &Measurement{Name: "lost", Unit: "packets", Value: 0},
			median: fig{valid: true, oldStat: "value", stat: "value"},
		},
		{
			name: "distributions: median and p99", change: Compared, verdict: "worse", oldN: 100, newN: 100, direction: -1,
			old:    ptr(Distribution("d", "ms", n100(0), AtMost(500))),
			new:    ptr(Distribution("d", "ms", n100(50), AtMost(500))),
			median: fig{valid: true, oldStat: StatMedian, stat: StatMedian, old: 50.5, new: 100.5, abs: 50, rel: 50 / 50.5, moved: true},
			tail:   fig{valid: true, oldStat: StatP99, stat: StatP99, old: 99, new: 149, abs: 50, rel: 50.0 / 99, moved: true},
		},
		{
			name: "fewer than 100 samples now: max against p99", change: Compared, verdict: "", oldN: 100, newN: 20, direction: -1,
			old:    ptr(Distribution("d", "ms", n100(0), nil)),
			new:    ptr(Distribution("d", "ms", []float64{45, 50, 52, 55, 56, 95, 40, 48, 51, 53, 49, 50, 52, 47, 54, 55, 46, 50, 51, 53}, nil)),
			median: fig{valid: true, oldStat: StatMedian, stat: StatMedian, old: 50.5, new: 51, abs: 0.5, rel: 0.5 / 50.5},
			tail:   fig{valid: true, oldStat: StatP99, stat: StatMax, old: 99, new: 95, abs: -4, rel: -4.0 / 99},
		},
		{
			name: "tail moves, median does not: the tail decides", change: Compared, verdict: "worse", oldN: 5, newN: 5, direction: -1,
			old:    ptr(Distribution("d", "ms", []float64{10, 10, 10, 10, 10}, nil)),
			new:    ptr(Distribution("d", "ms", []float64{10, 10, 10, 10, 30}, nil)),
			median: fig{valid: true, oldStat: StatMedian, stat: StatMedian, old: 10, new: 10},
			tail:   fig{valid: true, oldStat: StatMax, stat: StatMax, old: 10, new: 30, abs: 20, rel: 2, moved: true},
		},
		{
			name: "single value against distribution: medians only", change: Compared, verdict: "better", oldN: 1, newN: 3, direction: -1,
			old:    &Measurement{Name: "d", Unit: "ms", Value: 20},
			new:    ptr(Distribution("d", "ms", []float64{10, 12, 14}, nil)),
			median: fig{valid: true, oldStat: "value", stat: StatMedian, old: 20, new: 12, abs: -8, rel: -0.4, moved: true},
		},
		{
			name: "unit changed: not compared", change: Compared, unitChg: true, verdict: "", oldN: 1, newN: 1, direction: -1,
			old: &Measurement{Name: "m", Unit: "s", Value: 1},
			new: &Measurement{Name: "m", Unit: "ms", Value: 1000},
		},
		{
			name: "added", change: Added, verdict: "", newN: 3, direction: -1,
			new: ptr(Distribution("d", "ms", []float64{1, 2, 3}, nil)),
		},
		{
			name: "removed", change: Removed, verdict: "", oldN: 1, direction: -1,
			old: &Measurement{Name: "m", Unit: "ms", Value: 1},
		},
	}
	check := func(t *testing.T, what string, d Delta, f fig) {
		t.Helper()
		if d.Valid != f.valid || d.OldStat != f.oldStat || d.NewStat != f.stat || d.Old != f.old || d.New != f.new || d.Abs != f.abs || d.Moved() != f.moved {
			t.Errorf("%s = %+v moved=%v, want %+v", what, d, d.Moved(), f)
		}
		switch {
		case f.relInf && !math.IsInf(d.Rel, 1):
			t.Errorf("%s relative = %v, want +Inf", what, d.Rel)
		case !f.relInf && math.Abs(d.Rel-f.rel) > 1e-12:
			t.Errorf("%s relative = %v, want %v", what, d.Rel, f.rel)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old, new Run
			if tt.old != nil {
				old.Scenarios = []Scenario{{Name: "s", Status: StatusPassed, Measurements: []Measurement{*tt.old}}}
			} else {
				old.Scenarios = []Scenario{{Name: "s", Status: StatusPassed}}
			}
			if tt.new != nil {
				new.Scenarios = []Scenario{{Name: "s", Status: StatusPassed, Measurements: []Measurement{*tt.new}}}
			} else {
				new.Scenarios = []Scenario{{Name: "s", Status: StatusPassed}}
			}
			c := Compare(old, new)
			if len(c.Scenarios) != 1 || len(c.Scenarios[0].Measurements) != 1 {
				t.Fatalf("comparison = %+v", c)
			}
			m := c.Scenarios[0].Measurements[0]
			if m.Change != tt.change || m.UnitChanged != tt.unitChg || m.OldN != tt.oldN || m.NewN != tt.newN || m.Direction != tt.direction {
				t.Errorf("change %q unitChanged %v n %d→%d direction %d, want %q %v %d→%d %d",
					m.Change, m.UnitChanged, m.OldN, m.NewN, m.Direction, tt.change, tt.unitChg, tt.oldN, tt.newN, tt.direction)
			}
			check(t, "median", m.Median, tt.median)
			check(t, "tail", m.Tail, tt.tail)
			if v := m.Verdict(); v != tt.verdict {
				t.Errorf("verdict %q, want %q", v, tt.verdict)
			}
			if got := len(c.Moved()); got != map[bool]int{true: 1, false: 0}[tt.verdict != ""] {
				t.Errorf("Moved() has %d entries for verdict %q", got, tt.verdict)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCompareScenarios(t *testing.T) {
	sc := func(name string, st Status, ms ...string) Scenario {
		s := Scenario{Name: name, Status: st}
		for _, m := range ms {
			s.Measurements = append(s.Measurements, Measurement{Name: m, Unit: "ms", Value: 1})
		}
		return s
	}
	type want struct {
		name     string
		change   Change
		old, new Status
		ms       []string // "name:change"
	}
	tests := []struct {
		name     string
		old, new []Scenario
		want     []want
	}{
		{
			name: "added and removed, new order then removed",
			old:  []Scenario{sc("a", StatusPassed), sc("gone", StatusPassed), sc("b", StatusPassed)},
			new:  []Scenario{sc("b", StatusFailed), sc("fresh", StatusSkipped), sc("a", StatusPassed)},
			want: []want{
				{"b", Compared, StatusPassed, StatusFailed, nil},
				{"fresh", Added, "", StatusSkipped, nil},
				{"a", Compared, StatusPassed, StatusPassed, nil},
				{"gone", Removed, StatusPassed, "", nil},
			},
		},
		{
			name: "duplicate names pair in order",
			old:  []Scenario{sc("x", StatusPassed, "m1"), sc("x", StatusFailed, "m2")},
			new:  []Scenario{sc("x", StatusPassed, "m1"), sc("x", StatusPassed, "m2"), sc("x", StatusPassed)},
			want: []want{
				{"x", Compared, StatusPassed, StatusPassed, []string{"m1:compared"}},
				{"x", Compared, StatusFailed, StatusPassed, []string{"m2:compared"}},
				{"x", Added, "", StatusPassed, nil},
			},
		},
		{
			name: "measurements added and removed within a scenario",
			old:  []Scenario{sc("s", StatusPassed, "kept", "dropped")},
			new:  []Scenario{sc("s", StatusPassed, "new", "kept")},
			want: []want{{"s", Compared, StatusPassed, StatusPassed, []string{"new:added", "kept:compared", "dropped:removed"}}},
		},
		{
			name: "a removed scenario's measurements are removed",
			old:  []Scenario{sc("s", StatusPassed, "m")},
			want: []want{{"s", Removed, StatusPassed, "", []string{"m:removed"}}},
		},
		{"both empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compare(Run{Name: "old", Scenarios: tt.old}, Run{Name: "new", Scenarios: tt.new})
			if c.Old.Name != "old" || c.New.Name != "new" {
				t.Errorf("runs %q %q", c.Old.Name, c.New.Name)
			}
			if len(c.Scenarios) != len(tt.want) {
				t.Fatalf("%d scenario diffs, want %d: %+v", len(c.Scenarios), len(tt.want), c.Scenarios)
			}
			for i, w := range tt.want {
				s := c.Scenarios[i]
				var ms []string
				for _, m := range s.Measurements {
					ms = append(ms, m.Name+":"+string(m.Change))
				}
				if s.Name != w.name || s.Change != w.change || s.OldStatus != w.old || s.NewStatus != w.new || !slices.Equal(ms, w.ms) {
					t.Errorf("diff %d = %q %q %q→%q %q, want %q %q %q→%q %q", i, s.Name, s.Change, s.OldStatus, s.NewStatus, ms, w.name, w.change, w.old, w.new, w.ms)
				}
			}
		})
	}
}
