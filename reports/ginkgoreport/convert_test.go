package ginkgoreport

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/ecmplb/ecmplb/reports"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func entry(name string, v any) types.ReportEntry {
	return types.ReportEntry{Name: name, Time: t0, Value: types.WrapEntryValue(v)}
}

func fakeReport() types.Report {
	return types.Report{
		SuiteDescription: "scenarios",
		StartTime:        t0,
		EndTime:          t0.Add(time.Minute),
		SpecReports: types.SpecReports{
			{
				LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed,
			},
			{
				ContainerHierarchyTexts: []string{"failover", "with BFD"},
				LeafNodeType:            types.NodeTypeIt, LeafNodeText: "withdraws in under a second",
				State: types.SpecStatePassed, StartTime: t0, RunTime: 9 * time.Second,
				SpecEvents: types.SpecEvents{
					{SpecEventType: types.SpecEventByStart, Message: "power off node-b", TimelineLocation: types.TimelineLocation{Time: t0.Add(4 * time.Second)}},
					{SpecEventType: types.SpecEventByEnd, Message: "power off node-b", TimelineLocation: types.TimelineLocation{Time: t0.Add(5 * time.Second)}},
					{SpecEventType: types.SpecEventByStart, Message: "apply objects", TimelineLocation: types.TimelineLocation{Time: t0.Add(time.Second)}},
				},
				ReportEntries: types.ReportEntries{
					entry(EntryScenarioDescription, "node-b is powered off"),
					entry(EntryMeasurement, reports.Measurement{Name: "withdraw", Unit: "ms", Value: 710, Goal: &reports.Goal{Op: "<=", Value: 1000}}),
					entry(EntryTimeline, reports.Timeline{Title: "tl", Start: t0, Lanes: []reports.Lane{{Name: "tor1", Events: []reports.Event{{At: t0, Label: "fault", Kind: reports.KindFault}}}}}),
					entry(EntryTable, reports.Table{Title: "ECMP", Header: []string{"prefix"}, Rows: [][]string{{"203.0.113.5/32"}}}),
					entry(EntryStep, reports.Step{At: t0.Add(4700 * time.Millisecond), Text: "tor1 BFD down"}),
					entry("someone else's entry", 42),
					entry(EntryMeasurement, "not a measurement"),
				},
			},
			{
				LeafNodeType: types.NodeTypeIt, LeafNodeText: "spreads flows", State: types.SpecStateFailed,
				Failure: types.Failure{Message: "node-c got 41%", Location: types.CodeLocation{FileName: "scenarios/ecmp_test.go", LineNumber: 142}},
			},
			{
				LeafNodeType: types.NodeTypeIt, LeafNodeText: "times out", State: types.SpecStateTimedout,
				Failure:            types.Failure{Message: "context deadline exceeded"},
				AdditionalFailures: []types.AdditionalFailure{{State: types.SpecStateFailed, Failure: types.Failure{Message: "cleanup failed"}}},
			},
			{
				LeafNodeType: types.NodeTypeIt, LeafNodeText: "kind only", State: types.SpecStateSkipped,
				Failure: types.Failure{Message: "no kube-proxy on lab"},
			},
			{LeafNodeType: types.NodeTypeIt, LeafNodeText: "later", State: types.SpecStatePending},
			{
				LeafNodeType: types.NodeTypeAfterSuite, State: types.SpecStatePanicked,
				Failure: types.Failure{Message: "teardown", ForwardedPanic: "nil map"},
			},
		},
	}
}

// viaJSON is r as it arrives from another parallel process, or from a
// stored Ginkgo JSON report: report entry values as JSON only.
func viaJSON(t *testing.T, r types.Report) types.Report {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out types.Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRun(t *testing.T) {
	// The same report in process (raw Go values) and as it arrives from a
	// parallel process or a stored Ginkgo JSON report (JSON only).
	for name, r := range map[string]types.Report{"in process": fakeReport(), "via JSON": viaJSON(t, fakeReport())} {
		t.Run(name, func(t *testing.T) {
			run := Run(r, Options{Backend: "lab", Environment: map[string]string{"k": "v"}})
			if run.Name != "scenarios" || run.Backend != "lab" || !run.Started.Equal(t0) || run.Finished.Sub(run.Started) != time.Minute || run.Environment["k"] != "v" {
				t.Errorf("run header = %q %q %v %v %v", run.Name, run.Backend, run.Started, run.Finished, run.Environment)
			}
			type want struct {
				name, failure, location string
				status                  reports.Status
			}
			wants := []want{
				{"failover with BFD withdraws in under a second", "", "", reports.StatusPassed},
				{"spreads flows", "node-c got 41%", "scenarios/ecmp_test.go:142", reports.StatusFailed},
				{"times out", "[timedout] context deadline exceeded\n\nalso [failed] cleanup failed", "", reports.StatusFailed},
				{"kind only", "no kube-proxy on lab", "", reports.StatusSkipped},
				{"later", "pending", "", reports.StatusSkipped},
				{"AfterSuite", "[panicked] teardown\npanic: nil map", "", reports.StatusFailed},
			}
			if len(run.Scenarios) != len(wants) {
				t.Fatalf("%d scenarios, want %d (passed BeforeSuite left out)", len(run.Scenarios), len(wants))
			}
			for i, w := range wants {
				s := run.Scenarios[i]
				if s.Name != w.name || s.Failure != w.failure || s.Location != w.location || s.Status != w.status {
					t.Errorf("scenario %d = %q %q %q %q, want %q %q %q %q", i, s.Name, s.Failure, s.Location, s.Status, w.name, w.failure, w.location, w.status)
				}
			}

			s := run.Scenarios[0]
			if s.Description != "node-b is powered off" || s.Duration != 9*time.Second || !s.Started.Equal(t0) {
				t.Errorf("description/duration/start = %q %v %v", s.Description, s.Duration, s.Started)
			}
			var steps []string
			for _, st := range s.Steps {
				steps = append(steps, st.Text)
			}
			if got := strings.Join(steps, " | "); !strings.HasPrefix(got, "unreadable report entry ecmplb/measurement: ") || !strings.HasSuffix(got, " | apply objects | power off node-b | tor1 BFD down") {
				t.Errorf("steps = %q: want the unreadable entry (at t0), then By() starts and step entries in time order", got)
			}
			if len(s.Measurements) != 1 || s.Measurements[0].Value != 710 || s.Measurements[0].Goal == nil || s.Measurements[0].Goal.Value != 1000 {
				t.Errorf("measurements = %+v", s.Measurements)
			}
			if len(s.Timelines) != 1 || len(s.Timelines[0].Lanes) != 1 || !s.Timelines[0].Lanes[0].Events[0].At.Equal(t0) {
				t.Errorf("timelines = %+v", s.Timelines)
			}
			if len(s.Tables) != 1 || s.Tables[0].Rows[0][0] != "203.0.113.5/32" {
				t.Errorf("tables = %+v", s.Tables)
			}
		})
	}
}

func TestRunNameOption(t *testing.T) {
	if got := Run(fakeReport(), Options{Name: "lab: reference topology"}).Name; got != "lab: reference topology" {
		t.Errorf("name = %q", got)
	}
}

func TestSkipReasons(t *testing.T) {
	skipped := func(labels []string, message string, state types.SpecState) types.SpecReport {
		return types.SpecReport{
			LeafNodeType: types.NodeTypeIt, LeafNodeText: "s", LeafNodeLabels: labels,
			State: state, Failure: types.Failure{Message: message},
		}
	}
	tests := []struct {
		name        string
		spec        types.SpecReport
		backend     string
		labelFilter string
		want        string
	}{
		{"Skip message wins", skipped([]string{"skip-lab: label reason"}, "message reason", types.SpecStateSkipped), "lab", "", "message reason"},
		{"label for this backend", skipped([]string{"bfd", "skip-lab: needs real pods"}, "", types.SpecStateSkipped), "lab", "", "lab: needs real pods"},
		{"label key case and spaces", skipped([]string{"Skip-Lab :  spaced  "}, "", types.SpecStateSkipped), "lab", "", "lab: spaced"},
		{"a label for another backend does not explain it", skipped([]string{"skip-kind: no link cut"}, "", types.SpecStateSkipped), "lab", "", "skipped without a message (a focus or skip filter, or an interrupt)"},
		{"label for this backend before another's", skipped([]string{"skip-kind: a", "skip-lab: b"}, "", types.SpecStateSkipped), "lab", "", "lab: b"},
		{"backend unknown", skipped([]string{"skip-kind: no link cut"}, "", types.SpecStateSkipped), "", "", "kind: no link cut"},
		{"label filter", skipped([]string{"bfd"}, "", types.SpecStateSkipped), "lab", "!bfd", `not selected by the label filter "!bfd"`},
		{"ordered container: Ginkgo's message", skipped([]string{"skip-kind: x"}, "Spec skipped because an earlier spec in an ordered container failed", types.SpecStateSkipped), "lab", "", "Spec skipped because an earlier spec in an ordered container failed"},
		{"pending", skipped(nil, "", types.SpecStatePending), "lab", "bfd", "pending"},
		{"no reason at all", skipped(nil, "", types.SpecStateSkipped), "lab", "", "skipped without a message (a focus or skip filter, or an interrupt)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := types.Report{SpecReports: types.SpecReports{tt.spec}}
			r.SuiteConfig.LabelFilter = tt.labelFilter
			run := Run(r, Options{Backend: tt.backend})
			if len(run.Scenarios) != 1 {
				t.Fatalf("%d scenarios", len(run.Scenarios))
			}
			s := run.Scenarios[0]
			if s.Status != reports.StatusSkipped || s.Failure != tt.want {
				t.Errorf("status %q reason %q, want skipped %q", s.Status, s.Failure, tt.want)
			}
			if !slices.Equal(s.Labels, tt.spec.Labels()) {
				t.Errorf("labels %q, want %q", s.Labels, tt.spec.Labels())
			}
		})
	}
}

// TestRunBackendAndEnvironment checks that backend and environment entries
// recorded in setup nodes (which are not scenarios) reach the run, also when
// they arrive as JSON from another parallel process.
func TestRunBackendAndEnvironment(t *testing.T) {
	r := types.Report{SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed, ReportEntries: types.ReportEntries{
			entry(EntryBackend, "kind"),
			entry(EntryEnvironment, environmentFact{Key: "kind", Value: "v0.30.0"}),
			entry(EntryEnvironment, environmentFact{Key: "node-image", Value: "offline"}),
		}},
		{LeafNodeType: types.NodeTypeIt, LeafNodeText: "x", State: types.SpecStatePassed},
	}}
	tests := []struct {
		name    string
		report  types.Report
		opts    Options
		backend string
		env     map[string]string
	}{
		{"recorded", r, Options{}, "kind", map[string]string{"kind": "v0.30.0", "node-image": "offline"}},
		{"recorded via JSON", viaJSON(t, r), Options{}, "kind", map[string]string{"kind": "v0.30.0", "node-image": "offline"}},
		{"options win", r, Options{Backend: "lab", Environment: map[string]string{"kind": "other"}}, "lab", map[string]string{"kind": "other", "node-image": "offline"}},
		{"nothing recorded", types.Report{}, Options{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := Run(tt.report, tt.opts)
			if run.Backend != tt.backend || !maps.Equal(run.Environment, tt.env) {
				t.Errorf("backend %q env %v, want %q %v", run.Backend, run.Environment, tt.backend, tt.env)
			}
		})
	}
	if n := len(Run(r, Options{}).Scenarios); n != 1 {
		t.Errorf("%d scenarios: a passed BeforeSuite is not one", n)
	}
}

// TestRunSourceOrder checks that scenarios come in source order whatever
// order the specs ran in (randomized, or merged from parallel processes).
func TestRunSourceOrder(t *testing.T) {
	spec := func(text, file string, line int) types.SpecReport {
		return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, State: types.SpecStatePassed,
			LeafNodeLocation: types.CodeLocation{FileName: file, LineNumber: line}}
	}
	tests := []struct {
		name  string
		specs types.SpecReports
		want  string
	}{
		{"by line", types.SpecReports{spec("c", "a_test.go", 30), spec("a", "a_test.go", 10), spec("b", "a_test.go", 20)}, "a b c"},
		{"by file, then line", types.SpecReports{spec("z", "b_test.go", 1), spec("y", "a_test.go", 99)}, "y z"},
		{"same place keeps run order", types.SpecReports{spec("second", "a_test.go", 5), spec("first", "a_test.go", 5)}, "second first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, s := range Run(types.Report{SpecReports: tt.specs}, Options{}).Scenarios {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("order %q, want %q", got, tt.want)
			}
		})
	}
}
