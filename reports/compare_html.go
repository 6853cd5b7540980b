package reports

import (
	"fmt"
	"math"
)

// comparisonView is a Comparison laid out for the HTML template.
type comparisonView struct {
	Old, New    runInfoView
	Moved       []compareRow // measurements that moved, worst first
	All         []compareRow // every measurement of either run
	Scenarios   []scenarioChangeRow
	Worse       int
	Better      int
	Added       int
	Removed     int
	StatusMoved int
	// GoalsLost counts measurements that met their goal before and miss it now.
	GoalsLost int
}

type runInfoView struct {
	Name, Backend, Started string
}

// scenarioChangeRow is a scenario added, removed, or whose outcome changed.
type scenarioChangeRow struct {
	Name      string
	Anchor    string
	Change    string
	OldStatus string
	NewStatus string
	OldClass  string
	NewClass  string
}

type compareRow struct {
	Scenario     string
	Anchor       string
	Name         string
	Unit         string
	Change       string
	N            string
	Median       deltaView
	Tail         deltaView
	Goal         string
	Verdict      string // worse, better, moved or ""
	VerdictClass string
}

// deltaView is one compared figure: "712 → 805", "+93 ms", "+13.1%".
type deltaView struct {
	Valid    bool
	Stat     string // e.g. "median", "p99", "max → p99"
	Old, New string
	Abs, Rel string
	Moved    bool
}

func newComparisonView(c Comparison) comparisonView {
	v := comparisonView{Old: newRunInfoView(c.Old), New: newRunInfoView(c.New)}
	anchors := map[int]string{} // index in c.Scenarios → card anchor in the new run
	n := 0
	for i, s := range c.Scenarios {
		if s.Change != Removed {
			n++
			anchors[i] = fmt.Sprintf("scenario-%d", n)
		}
	}
	var worse, other []compareRow
	for i, s := range c.Scenarios {
		switch {
		case s.Change == Added:
			v.Added++
		case s.Change == Removed:
			v.Removed++
		case s.OldStatus != s.NewStatus:
			v.StatusMoved++
		}
		if s.Change != Compared || s.OldStatus != s.NewStatus {
			change := string(s.Change)
			if s.Change == Compared {
				change = "outcome"
			}
			v.Scenarios = append(v.Scenarios, scenarioChangeRow{
				Name: s.Name, Anchor: anchors[i], Change: change,
				OldStatus: statusOrDash(s.OldStatus), NewStatus: statusOrDash(s.NewStatus),
				OldClass: statusClassOrNone(s.OldStatus), NewClass: statusClassOrNone(s.NewStatus),
			})
		}
		for _, m := range s.Measurements {
			row := newCompareRow(s.Name, anchors[i], m)
			v.All = append(v.All, row)
			if m.OldGoal == GoalMet && m.NewGoal == GoalNotMet {
				v.GoalsLost++
			}
			switch row.Verdict {
			case "worse":
				v.Worse++
				worse = append(worse, row)
			case "better":
				v.Better++
				other = append(other, row)
			case "moved":
				other = append(other, row)
			}
		}
	}
	v.Moved = append(worse, other...)
	return v
}

func newRunInfoView(r RunInfo) runInfoView {
	v := runInfoView{Name: r.Name, Backend: r.Backend, Started: formatTime(r.Started)}
	if v.Name == "" {
		v.Name = "(unnamed run)"
	}
	return v
}

func statusOrDash(s Status) string {
	if s == "" {
		return "—"
	}
	return string(s)
}

func statusClassOrNone(s Status) string {
	if s == "" {
		return ""
	}
	return statusClass(s)
}

func newCompareRow(scenario, anchor string, m MeasurementDiff) compareRow {
	row := compareRow{
		Scenario: scenario, Anchor: anchor, Name: m.Name, Unit: m.Unit, Change: string(m.Change),
		Median: newDeltaView(m.Median, m.Unit), Tail: newDeltaView(m.Tail, m.Unit),
		Verdict: m.Verdict(),
	}
	switch m.Change {
	case Added:
		row.N = fmt.Sprint(m.NewN)
	case Removed:
		row.N = fmt.Sprint(m.OldN)
	default:
		row.N = fmt.Sprintf("%d → %d", m.OldN, m.NewN)
		if m.OldN == m.NewN {
			row.N = fmt.Sprint(m.NewN)
		}
	}
	if m.UnitChanged {
		row.Change = "unit changed"
	}
	if m.OldGoal != GoalNone || m.NewGoal != GoalNone {
		row.Goal = fmt.Sprintf("%s → %s", goalWord(m.OldGoal), goalWord(m.NewGoal))
		if m.OldGoal == m.NewGoal {
			row.Goal = goalWord(m.NewGoal)
		}
	}
	if row.Verdict != "" {
		row.VerdictClass = "cmp-" + row.Verdict
	}
	return row
}

func goalWord(g GoalState) string {
	if g == GoalNone {
		return "—"
	}
	return string(g)
}

func newDeltaView(d Delta, unit string) deltaView {
	if !d.Valid {
		return deltaView{}
	}
	v := deltaView{
		Valid: true,
		Stat:  d.NewStat,
		Old:   formatNumber(d.Old),
		New:   formatNumber(d.New),
		Abs:   signed(d.Abs) + unitSuffix(unit),
		Moved: d.Moved(),
	}
	if d.OldStat != d.NewStat {
		v.Stat = d.OldStat + " → " + d.NewStat
	}
	switch {
	case math.IsInf(d.Rel, 0):
		v.Rel = "from 0"
	default:
		v.Rel = fmt.Sprintf("%+.1f%%", d.Rel*100)
	}
	return v
}

func signed(v float64) string {
	if v > 0 {
		return "+" + formatNumber(v)
	}
	if v == 0 {
		return "±0"
	}
	return formatNumber(v)
}

func unitSuffix(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}
