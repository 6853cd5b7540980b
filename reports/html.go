package reports

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

//go:embed report.html.tmpl
var pageTemplateText string

//go:embed report.css
var pageCSS string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":        func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"add":      func(a, b float64) float64 { return a + b },
	"sub":      func(a, b float64) float64 { return a - b },
	"minP99":   func() int { return MinSamplesForP99 },
	"movedPct": func() string { return strconv.FormatFloat(MovedRelative*100, 'f', -1, 64) + "%" },
}).Parse(pageTemplateText))

type pageView struct {
	Run       Run
	CSS       template.CSS
	Started   string
	Finished  string
	Duration  string
	Env       []keyValue
	Counts    Counts
	Bar       []barPart
	Goals     int
	GoalsMet  int
	Scenarios []scenarioView
	// Compare is set when the run is compared with an earlier one.
	Compare *comparisonView
}

type keyValue struct{ Key, Value string }

type barPart struct {
	Class string
	Label string
	Count int
}

type scenarioView struct {
	Index        int
	Anchor       string
	Scenario     Scenario
	StatusClass  string
	StatusText   string
	Duration     string
	Started      string
	Steps        []stepView
	Measurements []measurementView
	HasSamples   bool
	Goals        int
	GoalsMet     int
	Timelines    []chartView
	Histograms   []histogramView
	Tables       []tableView
	Labels       []string
	// Reason is the first line of a skipped scenario's reason or a failed
	// one's failure, for the index.
	Reason string
}

type tableView struct {
	Title  string
	Header []cellView
	Rows   [][]cellView
	Cols   int
}

// cellView is a table cell; Num right-aligns columns that hold only numbers.
type cellView struct {
	Text string
	Num  bool
}

type stepView struct{ Offset, Text string }

type measurementView struct {
	Name       string
	Value      string
	Unit       string
	Statistic  string // what Value is, e.g. "p99" or "max (n < 100, no p99)"
	Goal       string
	HasGoal    bool
	Met        bool
	HasSamples bool
	N          int
	Min        string
	Median     string
	Tail       string // p99, or the max below MinSamplesForP99 samples
	TailIsMax  bool
	Max        string
}

func statusClass(s Status) string {
	if s.Known() {
		return "st-" + string(s)
	}
	return "st-unknown"
}

func statusText(s Status) string {
	if s == "" {
		return "unknown"
	}
	return string(s)
}

func newPageView(r Run) pageView {
	v := pageView{
		Run:      r,
		CSS:      template.CSS(pageCSS),
		Started:  formatTime(r.Started),
		Finished: formatTime(r.Finished),
		Duration: formatDuration(runDuration(r)),
		Counts:   r.Counts(),
	}
	for _, k := range slices.Sorted(maps.Keys(r.Environment)) {
		v.Env = append(v.Env, keyValue{Key: k, Value: r.Environment[k]})
	}
	for _, p := range []barPart{
		{Class: "st-passed", Label: "passed", Count: v.Counts.Passed},
		{Class: "st-failed", Label: "failed", Count: v.Counts.Failed},
		{Class: "st-skipped", Label: "skipped", Count: v.Counts.Skipped},
		{Class: "st-unknown", Label: "unknown status", Count: v.Counts.Other},
	} {
		if p.Count > 0 {
			v.Bar = append(v.Bar, p)
		}
	}
	for i, s := range r.Scenarios {
		sv := newScenarioView(i, s)
		v.Goals += sv.Goals
		v.GoalsMet += sv.GoalsMet
		v.Scenarios = append(v.Scenarios, sv)
	}
	return v
}

func newScenarioView(i int, s Scenario) scenarioView {
	sv := scenarioView{
		Index:       i + 1,
		Anchor:      fmt.Sprintf("scenario-%d", i+1),
		Scenario:    s,
		StatusClass: statusClass(s.Status),
		StatusText:  statusText(s.Status),
		Duration:    formatDuration(s.Duration),
		Started:     formatTime(s.Started),
	}
	base := stepBase(s)
	for _, st := range s.Steps {
		sv.Steps = append(sv.Steps, stepView{Offset: formatOffset(st.At, base), Text: st.Text})
	}
	for _, m := range s.Measurements {
		mv := measurementView{Name: m.Name, Value: formatNumber(m.Value), Unit: m.Unit, Statistic: m.Statistic}
		if m.Statistic != "" && len(m.Samples) == 0 {
			mv.Value, mv.Statistic = "—", "no samples"
		}
		mv.Met, mv.HasGoal = m.Met()
		if mv.HasGoal {
			mv.Goal = prettyOps(goalText(m.Goal, m.Unit))
			sv.Goals++
			if mv.Met {
				sv.GoalsMet++
			}
		}
		if len(m.Samples) > 0 {
			sum := Summarize(m.Samples)
			mv.HasSamples, sv.HasSamples = true, true
			mv.N = sum.N
			mv.Min, mv.Median = formatNumber(sum.Min), formatNumber(sum.Median)
			stat, tail := sum.Tail()
			mv.Tail, mv.TailIsMax, mv.Max = formatNumber(tail), stat == StatMax, formatNumber(sum.Max)
			if m.Statistic != "" {
				mv.Statistic = tailLabel(m.Statistic, sum.N)
			}
			if sum.N > 0 {
				sv.Histograms = append(sv.Histograms, layoutHistogram(m))
			}
		}
		sv.Measurements = append(sv.Measurements, mv)
	}
	sv.Labels = s.Labels
	switch s.Status {
	case StatusSkipped:
		sv.Reason = shorten(firstLine(s.Failure), 90)
		if sv.Reason == "" {
			sv.Reason = "no reason given"
		}
	case StatusFailed:
		sv.Reason = shorten(firstLine(s.Failure), 90)
	}
	for _, t := range s.Timelines {
		sv.Timelines = append(sv.Timelines, layoutTimeline(t))
	}
	for _, t := range s.Tables {
		sv.Tables = append(sv.Tables, newTableView(t))
	}
	if s.Status == StatusSkipped && s.Duration == 0 {
		sv.Duration = "not run"
	}
	return sv
}

func newTableView(t Table) tableView {
	cols := len(t.Header)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	numeric := make([]bool, cols)
	for c := range numeric {
		numeric[c] = len(t.Rows) > 0
		for _, r := range t.Rows {
			if c < len(r) && r[c] != "" && !looksNumeric(r[c]) {
				numeric[c] = false
			}
		}
	}
	tv := tableView{Title: t.Title, Cols: max(cols, 1)}
	for c, h := range t.Header {
		tv.Header = append(tv.Header, cellView{Text: h, Num: numeric[c]})
	}
	for _, r := range t.Rows {
		row := make([]cellView, cols) // pad short rows so the grid stays aligned
		for c := range row {
			row[c].Num = numeric[c]
			if c < len(r) {
				row[c].Text = r[c]
			}
		}
		tv.Rows = append(tv.Rows, row)
	}
	return tv
}

// prettyOps writes comparison operators as "≤" and "≥".
func prettyOps(s string) string {
	return strings.NewReplacer("<=", "≤", ">=", "≥").Replace(s)
}

// looksNumeric reports whether s is a number, optionally signed or followed
// by a unit such as "%", "ms" or "s" ("41.2%", "+0.710s", "1236").
func looksNumeric(s string) bool {
	s = strings.TrimLeft(strings.TrimSpace(s), "+-")
	digits := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%µ ")
	if digits == "" || len(s)-len(digits) > 3 {
		return false
	}
	_, err := strconv.ParseFloat(digits, 64)
	return err == nil
}

// WriteHTML writes r as one self-contained HTML page: run header, environment,
// summary, and a card per scenario with its steps, measurements, tables and
// timeline charts (inline SVG). All text from r is escaped; the page loads no
// scripts, styles or images from anywhere.
func WriteHTML(w io.Writer, r Run) error {
	return writeHTML(w, newPageView(r))
}

// WriteHTMLCompared writes r like WriteHTML, with a comparison against
// baseline (an earlier run, e.g. read with ReadJSON) at the top: which
// measurements moved and by how much, and which scenarios were added or
// removed. See Compare.
func WriteHTMLCompared(w io.Writer, r, baseline Run) error {
	v := newPageView(r)
	cv := newComparisonView(Compare(baseline, r))
	v.Compare = &cv
	return writeHTML(w, v)
}

func writeHTML(w io.Writer, v pageView) error {
	r := v.Run
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return fmt.Errorf("render HTML report %q: %w", r.Name, err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("write HTML report %q: %w", r.Name, err)
	}
	return nil
}
