// Package ginkgoreport is how Ginkgo scenario suites collect their results
// for package reports. Specs attach what they measured to themselves as
// Ginkgo report entries, and one ReportAfterSuite node turns the suite's
// report into a reports.Run. Nothing is kept in package variables: the
// entries travel with each spec's report, so this is safe when Ginkgo runs
// specs in parallel processes (the entries then arrive as JSON, which Run
// decodes the same way).
//
// In a spec:
//
//	It("drops a failed node within detect time", Label("bfd"), ginkgoreport.SkipLabel("kind", "no link cut on kind yet"), func() {
//		ginkgoreport.SetDescription("node2's link is cut 30 times; tor1 runs BFD 300 ms x 3")
//		var detect []float64 // ms, one per fault
//		for range 30 {
//			// inject, wait for the RIB change, repair ...
//			detect = append(detect, float64(withdrawn.Sub(cut).Microseconds())/1000)
//			ginkgoreport.AddTimeline(timelineAroundThisFault) // ECMP set per ToR
//		}
//		m := ginkgoreport.AddDistribution("tor1: link cut → next-hop withdrawn", "ms", detect, reports.AtMost(900))
//		ginkgoreport.AddMeasurement("repair → back on every ToR", "s", back.Seconds(), reports.AtMost(5))
//		Expect(m.Value).To(BeNumerically("<=", 900), m.String())
//	})
//
// reports.ECMPTimeline builds the timeline of one fault from each ToR's
// next-hop set history. All helpers may be called from the spec's goroutines.
//
// A distribution's headline figure is its p99 from 100 samples on and its
// maximum below that (reports.MinSamplesForP99); the goal is checked against
// it and the report marks each goal met or not. For a bound every trial must
// meet, check it on the maximum instead:
//
//	ginkgoreport.AddMeasurements(reports.Distribution(name, "ms", samples, reports.AtMost(3000)).CheckedOn(reports.StatMax))
//
// Once per suite:
//
//	var _ = BeforeSuite(func() {
//		ginkgoreport.SetBackend(backend.Name()) // "lab" or "kind"
//		ginkgoreport.SetEnvironment("kube-apiserver", version)
//	})
//
//	var _ = BeforeEach(func() { ginkgoreport.SkipIfLabelled(backend.Name()) })
//
//	var _ = ReportAfterSuite("ecmplb reports", func(r Report) {
//		run := ginkgoreport.Run(r, ginkgoreport.Options{Name: "scenarios: reference topology"})
//		_, err := reports.WriteAll("reports/out/lab", run)
//		Expect(err).NotTo(HaveOccurred())
//	})
//
// To compare with an earlier run, read its report.json with
// reports.ReadJSONFile and write with reports.WriteAllCompared(dir, run, old)
// instead; or later: go run ./reports/render -compare old/report.json
// new/report.json.
//
// By() calls become the scenario's steps and Ginkgo labels its labels. A
// skipped spec's reason is its Skip message; a spec skipped without one
// (filtered out, say with -ginkgo.label-filter='skip-kind: isEmpty') gets the
// reason from its "skip-<backend>: <reason>" label. Such a reason may not
// contain any of &|!,()/ (Ginkgo's label syntax).
//
// Importing this package imports Ginkgo, which registers its command-line
// flags; import it from test suites only.
package ginkgoreport

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
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
	// EntryBackend holds the name of the backend the suite runs on (a
	// string).
	EntryBackend = "ecmplb/backend"
	// EntryEnvironment holds one environment fact, a reports.Step-like
	// {key, value} pair (see SetEnvironment).
	EntryEnvironment = "ecmplb/environment"
)

// SkipLabelPrefix starts the label that says why a spec does not run on a
// backend: "skip-kind: needs kube-proxy in IPVS mode".
const SkipLabelPrefix = "skip-"

// AddMeasurement attaches a single measured figure with its goal (nil for
// none) to the running spec, e.g.
// AddMeasurement("drain → next-hop withdrawn", "ms", 312, reports.AtMost(1000)).
// It returns the measurement, for asserting on it.
func AddMeasurement(name, unit string, value float64, goal *reports.Goal) reports.Measurement {
	m := reports.Measurement{Name: name, Unit: unit, Value: value, Goal: goal}
	AddMeasurements(m)
	return m
}

// AddDistribution attaches the samples of a repeated measurement (e.g. one
// detection time per injected fault) with its goal (nil for none). The report
// shows a histogram with the median, the p99 (the max under 100 samples) and
// the goal, and checks the goal against the p99 or max (see
// reports.Distribution). It returns the measurement, for asserting on it.
func AddDistribution(name, unit string, samples []float64, goal *reports.Goal) reports.Measurement {
	m := reports.Distribution(name, unit, samples, goal)
	AddMeasurements(m)
	return m
}

// AddMeasurements attaches measurements built elsewhere. Ginkgo prints them
// when the spec fails or runs verbosely.
func AddMeasurements(ms ...reports.Measurement) {
	for _, m := range ms {
		ginkgo.AddReportEntry(EntryMeasurement, m, ginkgo.ReportEntryVisibilityFailureOrVerbose)
	}
}

// AddTimeline attaches a timeline chart to the running spec, typically the
// ECMP next-hop set of each ToR around one fault (not printed on the
// console).
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

// AddResults attaches what a scenario built elsewhere holds (e.g. one
// returned by a backend's drill): its description (when set), steps,
// measurements, timelines and tables. Its name, status and failure are
// ignored: those are the spec's own.
func AddResults(s reports.Scenario) {
	if s.Description != "" {
		SetDescription(s.Description)
	}
	for _, st := range s.Steps {
		AddStep(st.At, st.Text)
	}
	AddMeasurements(s.Measurements...)
	for _, t := range s.Timelines {
		AddTimeline(t)
	}
	for _, t := range s.Tables {
		AddTable(t)
	}
}

// SetBackend records the backend the suite runs on ("lab" or "kind"). Call it
// from BeforeSuite (or any spec); Options.Backend overrides it.
func SetBackend(name string) {
	ginkgo.AddReportEntry(EntryBackend, name, ginkgo.ReportEntryVisibilityNever)
}

// environmentFact is the value of an EntryEnvironment entry.
type environmentFact struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SetEnvironment records a fact about the environment (a version, the
// topology, the host) for the run's environment table. Call it from
// BeforeSuite or any spec; Options.Environment overrides it per key.
func SetEnvironment(key, value string) {
	ginkgo.AddReportEntry(EntryEnvironment, environmentFact{Key: key, Value: value}, ginkgo.ReportEntryVisibilityNever)
}

// SkipLabel is the label that skips a spec on backend, for reason:
// It("...", ginkgoreport.SkipLabel("kind", "needs a link cut"), func() {...}).
// reason may not contain any of &|!,()/.
func SkipLabel(backend, reason string) ginkgo.Labels {
	return ginkgo.Label(SkipLabelPrefix + backend + ": " + reason)
}

// SkipIfLabelled skips the running spec, with the label's reason as the Skip
// message, when it carries a "skip-<backend>: <reason>" label. Call it from a
// top-level BeforeEach.
func SkipIfLabelled(backend string) {
	if reason, ok := skipReason(ginkgo.CurrentSpecReport().Labels(), backend); ok {
		ginkgo.Skip(reason)
	}
}

// skipReason finds the "skip-<backend>: <reason>" label and returns its
// reason prefixed by the backend, or "not on <backend>" when it gives none.
func skipReason(labels []string, backend string) (string, bool) {
	key := SkipLabelPrefix + backend
	for _, l := range labels {
		k, reason, _ := strings.Cut(l, ":")
		if strings.EqualFold(strings.TrimSpace(k), key) {
			reason = strings.TrimSpace(reason)
			if reason == "" {
				return "not on " + backend, true
			}
			return backend + ": " + reason, true
		}
	}
	return "", false
}

// anySkipReason is the reason of the first "skip-<something>: <reason>"
// label, for a spec skipped without a message on an unknown backend.
func anySkipReason(labels []string) (string, bool) {
	for _, l := range labels {
		k, _, _ := strings.Cut(l, ":")
		if b, ok := strings.CutPrefix(strings.TrimSpace(k), SkipLabelPrefix); ok && b != "" {
			return skipReason(labels, b)
		}
	}
	return "", false
}

// Options say what Run cannot learn from a Ginkgo report.
type Options struct {
	// Name names the run; the suite description when empty.
	Name string
	// Backend is "lab" or "kind"; when empty, the one recorded with
	// SetBackend.
	Backend string
	// Environment is copied into the run, over what SetEnvironment recorded.
	Environment map[string]string
}

// Run converts a Ginkgo suite report into a reports.Run: one scenario per It
// spec, plus one per setup or teardown node (BeforeSuite, AfterSuite, ...)
// that failed, since such a failure is what explains the others. Scenarios
// are in source order (by file and line), whatever order Ginkgo ran them in
// (randomized, or spread over parallel processes), so that runs read and
// compare alike.
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
	env := map[string]string{}
	for _, sr := range r.SpecReports {
		for _, e := range sr.ReportEntries {
			switch e.Name {
			case EntryBackend:
				var b string
				if decode(e, &b) == nil && run.Backend == "" {
					run.Backend = b
				}
			case EntryEnvironment:
				var f environmentFact
				if decode(e, &f) == nil && f.Key != "" {
					env[f.Key] = f.Value
				}
			}
		}
	}
	maps.Copy(env, o.Environment)
	if len(env) > 0 {
		run.Environment = env
	}
	specs := slices.Clone(r.SpecReports)
	slices.SortStableFunc(specs, func(a, b types.SpecReport) int {
		la, lb := a.LeafNodeLocation, b.LeafNodeLocation
		return cmp.Or(strings.Compare(la.FileName, lb.FileName), cmp.Compare(la.LineNumber, lb.LineNumber))
	})
	for _, sr := range specs {
		if sr.LeafNodeType != types.NodeTypeIt && !sr.Failed() {
			continue
		}
		s := Scenario(sr)
		if s.Status == reports.StatusSkipped && sr.Failure.Message == "" {
			s.Failure = skippedWithoutMessage(sr, run.Backend, r.SuiteConfig.LabelFilter)
		}
		run.Scenarios = append(run.Scenarios, s)
	}
	return run
}

// skippedWithoutMessage explains a skip that has no message (Ginkgo gives
// one for Skip() and for specs after a failure in an ordered container): the
// skip label for the backend (any skip label when the backend is unknown),
// else the label filter, else Ginkgo's other reasons.
func skippedWithoutMessage(sr types.SpecReport, backend, labelFilter string) string {
	labels := sr.Labels()
	if backend != "" {
		if reason, ok := skipReason(labels, backend); ok {
			return reason
		}
	} else if reason, ok := anySkipReason(labels); ok {
		return reason
	}
	switch {
	case sr.State == types.SpecStatePending:
		return "pending"
	case labelFilter != "":
		return fmt.Sprintf("not selected by the label filter %q", labelFilter)
	}
	return "skipped without a message (a focus or skip filter, or an interrupt)"
}

// Scenario converts one Ginkgo spec report. Report entries that cannot be
// decoded are listed in the scenario's steps rather than dropped.
func Scenario(sr types.SpecReport) reports.Scenario {
	s := reports.Scenario{
		Name:     specName(sr),
		Status:   status(sr.State),
		Started:  sr.StartTime,
		Duration: sr.RunTime,
		Labels:   sr.Labels(),
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
