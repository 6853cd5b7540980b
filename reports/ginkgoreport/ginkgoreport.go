// Package ginkgoreport connects Ginkgo scenario suites to package reports:
// specs attach measurements, timelines, tables and a description as Ginkgo
// report entries (AddMeasurement, AddTimeline, ...), and a ReportAfterSuite
// node turns the suite's report into a reports.Run:
//
//	var _ = ReportAfterSuite("ecmplb reports", func(r Report) {
//		run := ginkgoreport.Run(r, ginkgoreport.Options{Name: "lab: reference topology", Backend: "lab"})
//		_, err := reports.WriteAll("reports/out/lab", run)
//		Expect(err).NotTo(HaveOccurred())
//	})
//
// By() calls become the scenario's steps. Entries travel as JSON, so this
// also works when Ginkgo runs specs in parallel processes.
//
// Importing this package imports Ginkgo, which registers its command-line
// flags; import it from test suites only.
package ginkgoreport

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/ecmplb/ecmplb/reports"
)

// Names of the Ginkgo report entries this package writes and reads.
const (
	// EntryMeasurement holds a reports.Measurement.
	EntryMeasurement = "ecmplb/measurement"
	// EntryTimeline holds a reports.Timeline.
	EntryTimeline = "ecmplb/timeline"
	// EntryTable holds a reports.Table.
	EntryTable = "ecmplb/table"
	// EntryScenarioDescription holds the scenario's description (a string).
	EntryScenarioDescription = "ecmplb/description"
	// EntryStep holds a reports.Step, for steps that are not By() calls
	// (e.g. observed at a time other than when they are recorded).
	EntryStep = "ecmplb/step"
)

// AddMeasurement attaches m to the running spec. Ginkgo prints it when the
// spec fails or runs verbosely.
func AddMeasurement(m reports.Measurement) {
	ginkgo.AddReportEntry(EntryMeasurement, m, ginkgo.ReportEntryVisibilityFailureOrVerbose)
}

// AddTimeline attaches t to the running spec (not printed on the console).
func AddTimeline(t reports.Timeline) {
	ginkgo.AddReportEntry(EntryTimeline, t, ginkgo.ReportEntryVisibilityNever)
}

// AddTable attaches t to the running spec. Ginkgo prints it when the spec
// fails or runs verbosely.
func AddTable(t reports.Table) {
	ginkgo.AddReportEntry(EntryTable, t, ginkgo.ReportEntryVisibilityFailureOrVerbose)
}

// SetDescription sets the running spec's description in the report.
func SetDescription(text string) {
	ginkgo.AddReportEntry(EntryScenarioDescription, text, ginkgo.ReportEntryVisibilityNever)
}

// AddStep records a step that happened at a given time, e.g. one read from a
// router's event log afterwards. Steps taken by the spec itself are better
// recorded with ginkgo.By.
func AddStep(at time.Time, text string) {
	ginkgo.AddReportEntry(EntryStep, reports.Step{At: at, Text: text}, ginkgo.ReportEntryVisibilityNever)
}

// Options say what Run cannot learn from a Ginkgo report.
type Options struct {
	// Name names the run; the suite description when empty.
	Name string
	// Backend is "lab" or "kind".
	Backend string
	// Environment is copied into the run.
	Environment map[string]string
}

// Run converts a Ginkgo suite report into a reports.Run: one scenario per It
// spec, plus one per setup or teardown node (BeforeSuite, AfterSuite, ...)
// that failed, since such a failure is what explains the others.
func Run(r types.Report, o Options) reports.Run {
	run := reports.Run{
		Name:        o.Name,
		Backend:     o.Backend,
		Started:     r.StartTime,
		Finished:    r.EndTime,
		Environment: o.Environment,
	}
	if run.Name == "" {
		run.Name = r.SuiteDescription
	}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt && !sr.Failed() {
			continue
		}
		run.Scenarios = append(run.Scenarios, Scenario(sr))
	}
	return run
}

// Scenario converts one Ginkgo spec report. Report entries that cannot be
// decoded are listed in the scenario's steps rather than dropped.
func Scenario(sr types.SpecReport) reports.Scenario {
	s := reports.Scenario{
		Name:     specName(sr),
		Status:   status(sr.State),
		Started:  sr.StartTime,
		Duration: sr.RunTime,
	}
	if s.Status != reports.StatusPassed {
		s.Failure = failureText(sr)
		if sr.Failure.Location.FileName != "" && s.Status == reports.StatusFailed {
			s.Location = sr.Failure.Location.String()
		}
	}
	for _, ev := range sr.SpecEvents {
		if ev.SpecEventType == types.SpecEventByStart {
			s.Steps = append(s.Steps, reports.Step{At: ev.TimelineLocation.Time, Text: ev.Message})
		}
	}
	for _, e := range sr.ReportEntries {
		var err error
		switch e.Name {
		case EntryMeasurement:
			var m reports.Measurement
			if err = decode(e, &m); err == nil {
				s.Measurements = append(s.Measurements, m)
			}
		case EntryTimeline:
			var t reports.Timeline
			if err = decode(e, &t); err == nil {
				s.Timelines = append(s.Timelines, t)
			}
		case EntryTable:
			var t reports.Table
			if err = decode(e, &t); err == nil {
				s.Tables = append(s.Tables, t)
			}
		case EntryScenarioDescription:
			var d string
			if err = decode(e, &d); err == nil {
				s.Description = d
			}
		case EntryStep:
			var st reports.Step
			if err = decode(e, &st); err == nil {
				s.Steps = append(s.Steps, st)
			}
		}
		if err != nil {
			s.Steps = append(s.Steps, reports.Step{At: entryTime(e), Text: fmt.Sprintf("unreadable report entry %s: %v", e.Name, err)})
		}
	}
	slices.SortStableFunc(s.Steps, func(a, b reports.Step) int { return a.At.Compare(b.At) })
	return s
}

// decode reads an entry's value into v. In the process that ran the spec the
// value is the original Go value; from another parallel process it is the
// JSON form decoded into maps. Both go through JSON.
func decode(e types.ReportEntry, v any) error {
	raw := e.Value.GetRawValue()
	var data []byte
	switch {
	case raw != nil:
		var err error
		if data, err = json.Marshal(raw); err != nil {
			return err
		}
	case e.Value.AsJSON != "":
		data = []byte(e.Value.AsJSON)
	default:
		return fmt.Errorf("no value")
	}
	return json.Unmarshal(data, v)
}

func entryTime(e types.ReportEntry) time.Time {
	if !e.TimelineLocation.Time.IsZero() {
		return e.TimelineLocation.Time
	}
	return e.Time
}

func specName(sr types.SpecReport) string {
	if sr.LeafNodeType != types.NodeTypeIt {
		name := sr.LeafNodeType.String()
		if sr.LeafNodeText != "" {
			name += ": " + sr.LeafNodeText
		}
		return name
	}
	return sr.FullText()
}

func status(s types.SpecState) reports.Status {
	switch {
	case s == types.SpecStatePassed:
		return reports.StatusPassed
	case s.Is(types.SpecStateSkipped | types.SpecStatePending):
		return reports.StatusSkipped
	case s.Is(types.SpecStateFailureStates):
		return reports.StatusFailed
	}
	return reports.Status(s.String())
}

// failureText is the failure message with its kind when it is not a plain
// assertion failure (panic, timeout, interrupt), and any further failures.
func failureText(sr types.SpecReport) string {
	var b strings.Builder
	if sr.State.Is(types.SpecStatePanicked | types.SpecStateTimedout | types.SpecStateInterrupted | types.SpecStateAborted) {
		fmt.Fprintf(&b, "[%s] ", sr.State)
	}
	b.WriteString(sr.Failure.Message)
	if sr.Failure.ForwardedPanic != "" {
		fmt.Fprintf(&b, "\npanic: %s", sr.Failure.ForwardedPanic)
	}
	for _, af := range sr.AdditionalFailures {
		fmt.Fprintf(&b, "\n\nalso [%s] %s", af.State, af.Failure.Message)
	}
	if sr.State == types.SpecStatePending && b.Len() == 0 {
		b.WriteString("pending")
	}
	return b.String()
}
