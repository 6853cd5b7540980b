package reports

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// Independent decoding types, so the test does not trust the writer's structs.
type parsedSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Suites   []parsedSuite `xml:"testsuite"`
}

type parsedSuite struct {
	Name       string `xml:"name,attr"`
	Tests      int    `xml:"tests,attr"`
	Failures   int    `xml:"failures,attr"`
	Errors     int    `xml:"errors,attr"`
	Skipped    int    `xml:"skipped,attr"`
	Time       string `xml:"time,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []parsedCase `xml:"testcase"`
}

type parsedCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Time      string `xml:"time,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	SystemOut string `xml:"system-out"`
}

func parseJUnit(t *testing.T, r Run) parsedSuite {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc parsedSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit output does not parse: %v\n%s", err, buf.String())
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("got %d testsuites, want 1", len(doc.Suites))
	}
	if doc.Tests != doc.Suites[0].Tests || doc.Failures != doc.Suites[0].Failures {
		t.Errorf("testsuites totals %d/%d differ from the suite's %d/%d", doc.Tests, doc.Failures, doc.Suites[0].Tests, doc.Suites[0].Failures)
	}
	return doc.Suites[0]
}

func TestJUnitSample(t *testing.T) {
	r := sampleRun()
	s := parseJUnit(t, r)
	if s.Name != r.Name || s.Tests != 5 || s.Failures != 1 || s.Skipped != 1 || s.Errors != 0 {
		t.Errorf("suite = %q tests=%d failures=%d skipped=%d errors=%d, want %q 5/1/1/0",
			s.Name, s.Tests, s.Failures, s.Skipped, s.Errors, r.Name)
	}
	if want := seconds(r.Finished.Sub(r.Started)); s.Time != want {
		t.Errorf("suite time = %s, want %s (Finished-Started)", s.Time, want)
	}
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["backend"] != "lab" || props["gobgp"] != "v3.37.0" {
		t.Errorf("properties = %v, want backend and environment", props)
	}
	tests := []struct {
		name        string
		time        string
		failure     string // message; "" for none
		skipped     bool
		skipMessage string
		outContains []string
	}{
		{name: r.Scenarios[0].Name, time: "9.412", outContains: []string{
			"+4.000s  power off node-b", "hard-fail withdraw, BFD 300ms x3: 763.2 ms (p99) (goal <= 1000 ms: met) [n=200 min=675 median=719.9 p99=763.2 max=764.7]",
			"graceful withdraw (speaker stopped): 47.9 ms (max) (goal <= 250 ms: met) [n=20 min=33.3 median=38.85 max=47.9]",
			"Labels: bfd, failover"}},
		{name: r.Scenarios[1].Name, time: "95.230", outContains: []string{"+93.310s  tor1 hold timer expired"}},
		{name: r.Scenarios[2].Name, time: "68.500", outContains: []string{"minimum next-hops during roll: 5 next-hops (goal >= 5 next-hops: met)"}},
		{name: r.Scenarios[3].Name, time: "6.080", failure: "node-c received 41.2% of flows, want 33.3% ± 5%",
			outContains: []string{"share of flows, node-c: 41.2 % (goal <= 38.3 %: NOT met)"}},
		{name: r.Scenarios[4].Name, time: "0.000", skipped: true, skipMessage: "backend lab has no kube-proxy (kind only)"},
	}
	if len(s.Cases) != len(tests) {
		t.Fatalf("got %d testcases, want %d", len(s.Cases), len(tests))
	}
	for i, tt := range tests {
		c := s.Cases[i]
		if c.Name != tt.name || c.Classname != r.Name || c.Time != tt.time {
			t.Errorf("case %d = %q classname=%q time=%s, want %q %q %s", i, c.Name, c.Classname, c.Time, tt.name, r.Name, tt.time)
		}
		switch {
		case tt.failure == "" && c.Failure != nil:
			t.Errorf("case %d has an unexpected failure %q", i, c.Failure.Message)
		case tt.failure != "" && (c.Failure == nil || c.Failure.Message != tt.failure):
			t.Errorf("case %d failure = %+v, want message %q", i, c.Failure, tt.failure)
		case tt.failure != "" && !strings.Contains(c.Failure.Text, "to be within 5 of") || tt.failure != "" && !strings.Contains(c.Failure.Text, "at scenarios/ecmp_test.go:142"):
			t.Errorf("case %d failure body lacks the full message or location: %q", i, c.Failure.Text)
		}
		if (c.Skipped != nil) != tt.skipped {
			t.Errorf("case %d skipped = %v, want %v", i, c.Skipped != nil, tt.skipped)
		}
		if c.Skipped != nil && c.Skipped.Message != tt.skipMessage {
			t.Errorf("case %d skipped message = %q, want %q", i, c.Skipped.Message, tt.skipMessage)
		}
		for _, want := range tt.outContains {
			if !strings.Contains(c.SystemOut, want) {
				t.Errorf("case %d system-out lacks %q:\n%s", i, want, c.SystemOut)
			}
		}
	}
}

func TestJUnitEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		sc    Scenario
		check func(t *testing.T, s parsedSuite)
	}{
		{"failed without message", Scenario{Name: "x", Status: StatusFailed}, func(t *testing.T, s parsedSuite) {
			if c := s.Cases[0]; c.Failure == nil || c.Failure.Message != "scenario failed" {
				t.Errorf("failure = %+v", c.Failure)
			}
		}},
		{"unknown status is an error", Scenario{Name: "x", Status: "flaky"}, func(t *testing.T, s parsedSuite) {
			if c := s.Cases[0]; c.Error == nil || !strings.Contains(c.Error.Message, "flaky") || s.Errors != 1 {
				t.Errorf("error = %+v, errors=%d", c.Error, s.Errors)
			}
		}},
		{"hostile text survives", Scenario{
			Name:    `<x a="b">&amp; ]]>`,
			Status:  StatusFailed,
			Failure: "bad \x1b[31mcolour\x1b[0m and \x00 nul & </failure>",
		}, func(t *testing.T, s parsedSuite) {
			c := s.Cases[0]
			if c.Name != `<x a="b">&amp; ]]>` {
				t.Errorf("name = %q", c.Name)
			}
			if c.Failure == nil || !strings.Contains(c.Failure.Message, "& </failure>") || !strings.Contains(c.Failure.Message, "colour") {
				t.Errorf("failure = %+v", c.Failure)
			}
		}},
		{"skipped without a reason says so", Scenario{Name: "x", Status: StatusSkipped}, func(t *testing.T, s parsedSuite) {
			if c := s.Cases[0]; c.Skipped == nil || c.Skipped.Message != "no reason given" || s.Skipped != 1 {
				t.Errorf("skipped = %+v, suite skipped=%d", c.Skipped, s.Skipped)
			}
		}},
		{"skipped: first line of the reason", Scenario{Name: "x", Status: StatusSkipped, Failure: "\nkind: needs pods\nmore"}, func(t *testing.T, s parsedSuite) {
			if c := s.Cases[0]; c.Skipped == nil || c.Skipped.Message != "kind: needs pods" || c.Failure != nil {
				t.Errorf("skipped = %+v failure = %+v", c.Skipped, c.Failure)
			}
		}},
		{"nothing to log: no system-out", Scenario{Name: "x", Status: StatusPassed}, func(t *testing.T, s parsedSuite) {
			if s.Cases[0].SystemOut != "" {
				t.Errorf("system-out = %q", s.Cases[0].SystemOut)
			}
		}},
		{"no times: suite time sums scenarios", Scenario{Name: "x", Status: StatusPassed, Duration: 1500 * time.Millisecond}, func(t *testing.T, s parsedSuite) {
			if s.Time != "1.500" || s.Cases[0].Time != "1.500" {
				t.Errorf("times = %s / %s", s.Time, s.Cases[0].Time)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, parseJUnit(t, Run{Name: "edge", Scenarios: []Scenario{tt.sc}}))
		})
	}
}

func TestJUnitKeepsLineBreaks(t *testing.T) {
	var buf bytes.Buffer
	r := Run{Name: "r", Scenarios: []Scenario{{Name: "s", Status: StatusFailed, Failure: "line one\nline two",
		Steps: []Step{{At: sampleBase, Text: "a"}, {At: sampleBase, Text: "b"}}}}}
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "&#xA;") || !strings.Contains(buf.String(), "line one\nline two") {
		t.Errorf("line breaks escaped or lost:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `<failure message="line one" type="failure">`) {
		t.Errorf("failure element malformed:\n%s", buf.String())
	}
}
