package reports

import (
	"math"
	"time"
)

// Run is the result of one execution of a scenario suite against one backend.
type Run struct {
	// Name says what was run, e.g. "lab: reference topology".
	Name string `json:"name"`
	// Backend is where the scenarios ran: "lab" or "kind".
	Backend string `json:"backend"`
	// Started is when the run began.
	Started time.Time `json:"started,omitzero"`
	// Finished is when the run ended.
	Finished time.Time `json:"finished,omitzero"`
	// Environment records versions, host, topology name and similar facts
	// needed to interpret or reproduce the run.
	Environment map[string]string `json:"environment,omitempty"`
	// Scenarios are the individual scenarios, in the order they ran.
	Scenarios []Scenario `json:"scenarios"`
}

// Status is the outcome of a scenario.
type Status string

// The outcomes a scenario can have. Any other value is rendered as an error.
const (
	// StatusPassed means the scenario ran and every assertion held.
	StatusPassed Status = "passed"
	// StatusFailed means the scenario ran and an assertion failed.
	StatusFailed Status = "failed"
	// StatusSkipped means the scenario did not run.
	StatusSkipped Status = "skipped"
)

// Known reports whether s is one of StatusPassed, StatusFailed, StatusSkipped.
func (s Status) Known() bool {
	return s == StatusPassed || s == StatusFailed || s == StatusSkipped
}

// Scenario is the result of one scenario (one Ginkgo spec or one lab drill).
type Scenario struct {
	// Name is the scenario's short title.
	Name string `json:"name"`
	// Description says what the scenario checks and why.
	Description string `json:"description,omitempty"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Started is when the scenario began; step times are shown relative to it.
	Started time.Time `json:"started,omitzero"`
	// Duration is how long the scenario took.
	Duration time.Duration `json:"duration_ns"`
	// Failure is the failure message when Status is StatusFailed, or the
	// reason for skipping when Status is StatusSkipped.
	Failure string `json:"failure,omitempty"`
	// Location is where the failure happened (file:line), if known.
	Location string `json:"location,omitempty"`
	// Labels are the scenario's labels (Ginkgo labels), e.g. "bfd",
	// "skip-kind: needs kube-proxy".
	Labels []string `json:"labels,omitempty"`
	// Steps is the narrative log: what the scenario did, in order.
	Steps []Step `json:"steps,omitempty"`
	// Measurements are the figures the scenario measured.
	Measurements []Measurement `json:"measurements,omitempty"`
	// Timelines are the charts of what happened on each router or node.
	Timelines []Timeline `json:"timelines,omitempty"`
	// Tables are tabular facts, e.g. a ToR's ECMP set: prefix | next-hops.
	Tables []Table `json:"tables,omitempty"`
}

// Step is one entry of a scenario's narrative log.
type Step struct {
	// At is when the step happened.
	At time.Time `json:"at"`
	// Text says what was done or observed.
	Text string `json:"text"`
}

// Measurement is one measured figure, optionally with all trials and a goal.
// Build a distribution with Distribution, which picks the headline figure by
// the p99 rule.
type Measurement struct {
	// Name says what was measured, e.g. "hard-fail withdraw, BFD 300ms x3".
	Name string `json:"name"`
	// Unit is the unit of Value and Samples, e.g. "ms", "s", "MiB".
	Unit string `json:"unit"`
	// Value is the headline figure (e.g. p99 of Samples, or the single
	// measurement); the goal is checked against it.
	Value float64 `json:"value"`
	// Statistic says which figure of Samples Value is: StatP99, StatMax or
	// StatMedian; empty for a single measurement or a figure of another kind.
	Statistic string `json:"statistic,omitempty"`
	// Samples are all trials, if there were several; the report shows their
	// minimum, median, p99 (from MinSamplesForP99 samples on) and maximum,
	// and a histogram.
	Samples []float64 `json:"samples,omitempty"`
	// Goal is the target Value should meet, if any.
	Goal *Goal `json:"goal,omitempty"`
}

// Goal is a bound a measurement should stay within.
type Goal struct {
	// Op is the comparison: "<=" or ">=" ("<" and ">" are accepted too).
	Op string `json:"op"`
	// Value is the bound, in the measurement's unit.
	Value float64 `json:"value"`
}

// String is the measurement in one line, e.g. "withdraw: 712 ms (max)
// (goal <= 900 ms: met) [n=30 min=640 median=700 max=712]"; Ginkgo prints
// report entries this way.
func (m Measurement) String() string { return measurementText(m) }

// AtMost is the goal "<= v".
func AtMost(v float64) *Goal { return &Goal{Op: "<=", Value: v} }

// AtLeast is the goal ">= v".
func AtLeast(v float64) *Goal { return &Goal{Op: ">=", Value: v} }

// Met reports whether the measurement's Value meets its Goal. hasGoal is false
// when there is no goal (met is then false too). A goal with an unknown Op, or
// a NaN value, is never met; nor is a distribution without samples.
func (m Measurement) Met() (met bool, hasGoal bool) {
	if m.Goal == nil {
		return false, false
	}
	if m.Statistic != "" && Summarize(m.Samples).N == 0 {
		return false, true
	}
	return m.Goal.holds(m.Value), true
}

func (g Goal) holds(v float64) bool {
	if math.IsNaN(v) || math.IsNaN(g.Value) {
		return false
	}
	switch g.Op {
	case "<=":
		return v <= g.Value
	case "<":
		return v < g.Value
	case ">=":
		return v >= g.Value
	case ">":
		return v > g.Value
	}
	return false
}

// Timeline is a chart of what happened over time during a scenario: one lane
// of event markers per router or node, and step charts of measured values.
type Timeline struct {
	// Title names the chart.
	Title string `json:"title"`
	// Start is the zero point of the x axis (typically the fault injection).
	// When zero, the earliest event or point is used.
	Start time.Time `json:"start,omitzero"`
	// Lanes are the horizontal rows, one per router or node.
	Lanes []Lane `json:"lanes,omitempty"`
	// Series are values over time, drawn as step functions, e.g.
	// "tor1: next-hops for 203.0.113.5".
	Series []Series `json:"series,omitempty"`
}

// Lane is one row of a timeline, holding the events seen on one router or node.
type Lane struct {
	// Name is the router or node, e.g. "tor1".
	Name string `json:"name"`
	// Events are what happened there.
	Events []Event `json:"events,omitempty"`
}

// Event kinds with their own colour and marker shape in the HTML report.
// Other kinds are drawn in a neutral style.
const (
	// KindFault is an injected fault (link down, process killed, node powered off).
	KindFault = "fault"
	// KindBGP is a BGP session or update event.
	KindBGP = "bgp"
	// KindBFD is a BFD session state change.
	KindBFD = "bfd"
	// KindRoute is a change in a RIB or FIB (route added or withdrawn).
	KindRoute = "route"
	// KindInfo is anything else worth marking.
	KindInfo = "info"
)

// Event is one marker in a lane.
type Event struct {
	// At is when it happened.
	At time.Time `json:"at"`
	// Label describes it, e.g. "BFD down 10.0.0.11".
	Label string `json:"label"`
	// Kind is one of KindFault, KindBGP, KindBFD, KindRoute, KindInfo.
	Kind string `json:"kind"`
}

// Series is a value over time, drawn as a step function: each point's value
// holds until the next point (the last one until the end of the chart).
type Series struct {
	// Name says what is plotted, e.g. "tor1: next-hops for 203.0.113.5".
	Name string `json:"name"`
	// Points are the values, in any order (they are sorted by time to draw).
	Points []Point `json:"points"`
}

// Point is one value of a Series.
type Point struct {
	// At is when the value took effect.
	At time.Time `json:"at"`
	// Value is the plotted value, e.g. the number of next-hops.
	Value float64 `json:"value"`
	// Label explains the value, e.g. the next-hop set; shown on hover.
	Label string `json:"label,omitempty"`
}

// Table is a titled table of strings, e.g. a ToR's ECMP set.
type Table struct {
	// Title names the table.
	Title string `json:"title"`
	// Header holds the column names.
	Header []string `json:"header,omitempty"`
	// Rows holds the cells, row by row.
	Rows [][]string `json:"rows,omitempty"`
}

// Counts is how many scenarios of a run ended in each status.
type Counts struct {
	// Total is the number of scenarios.
	Total int
	// Passed, Failed and Skipped count the scenarios with that status.
	Passed, Failed, Skipped int
	// Other counts scenarios whose status is not one of the known values.
	Other int
}

// Counts counts the run's scenarios by status.
func (r Run) Counts() Counts {
	c := Counts{Total: len(r.Scenarios)}
	for _, s := range r.Scenarios {
		switch s.Status {
		case StatusPassed:
			c.Passed++
		case StatusFailed:
			c.Failed++
		case StatusSkipped:
			c.Skipped++
		default:
			c.Other++
		}
	}
	return c
}
