package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// The JUnit XML schema as understood by common CI systems (Jenkins, GitLab,
// GitHub test reporters).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is element text written with its line breaks kept as they are
// (encoding/xml would turn each into &#xA; in ",chardata" fields), so the
// file stays readable as text.
type junitText struct {
	Text string
}

// MarshalXML writes the element with its text as one character-data token.
func (t junitText) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.CharData(t.Text)); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

type junitProblem struct {
	Message string
	Type    string
	Text    string
}

// MarshalXML writes <failure message=".." type="..">text</failure>, keeping
// the text's line breaks.
func (p junitProblem) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "message"}, Value: p.Message})
	if p.Type != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: p.Type})
	}
	return junitText{Text: p.Text}.MarshalXML(e, start)
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit writes r as JUnit XML: a <testsuites> root holding one
// <testsuite> for the run (with the backend and environment as properties),
// and one <testcase> per scenario with classname set to the run's name and
// time in seconds. A failed scenario gets a <failure> whose message is the
// first line of its failure and whose body is the whole failure; a skipped
// one gets <skipped message="reason"/> (the first line of its Failure); a
// scenario with an unknown status gets an <error>. Labels, steps and
// measurements go to <system-out>.
func WriteJUnit(w io.Writer, r Run) error {
	c := r.Counts()
	suite := junitSuite{
		Name:     r.Name,
		Tests:    c.Total,
		Failures: c.Failed,
		Errors:   c.Other,
		Skipped:  c.Skipped,
		Time:     seconds(runDuration(r)),
	}
	if !r.Started.IsZero() {
		suite.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	if r.Backend != "" {
		suite.Properties = append(suite.Properties, junitProperty{Name: "backend", Value: r.Backend})
	}
	for _, k := range slices.Sorted(maps.Keys(r.Environment)) {
		suite.Properties = append(suite.Properties, junitProperty{Name: k, Value: r.Environment[k]})
	}
	for _, s := range r.Scenarios {
		suite.Cases = append(suite.Cases, junitCaseFor(r.Name, s))
	}
	doc := junitSuites{
		Name: r.Name, Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit report %q: %w", r.Name, err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JUnit report %q: %w", r.Name, err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit report %q: %w", r.Name, err)
	}
	return nil
}

func junitCaseFor(classname string, s Scenario) junitCase {
	tc := junitCase{Name: s.Name, Classname: classname, Time: seconds(s.Duration)}
	if out := systemOut(s); out != "" {
		tc.SystemOut = &junitText{Text: out}
	}
	failure := s.Failure
	if s.Location != "" {
		failure = strings.TrimRight(failure, "\n") + "\n\nat " + s.Location
	}
	switch s.Status {
	case StatusPassed:
	case StatusFailed:
		msg := firstLine(s.Failure)
		if msg == "" {
			msg = "scenario failed"
		}
		tc.Failure = &junitProblem{Message: msg, Type: "failure", Text: failure}
	case StatusSkipped:
		msg := firstLine(s.Failure)
		if msg == "" {
			msg = "no reason given"
		}
		tc.Skipped = &junitSkipped{Message: msg}
	default:
		tc.Error = &junitProblem{
			Message: fmt.Sprintf("unknown scenario status %q", s.Status),
			Type:    "error",
			Text:    failure,
		}
	}
	return tc
}

// systemOut is the plain-text log of a scenario: description, steps with
// times relative to the scenario's start, and measurements.
func systemOut(s Scenario) string {
	var b strings.Builder
	if s.Description != "" {
		b.WriteString(s.Description)
		b.WriteString("\n\n")
	}
	if len(s.Labels) > 0 {
		fmt.Fprintf(&b, "Labels: %s\n\n", strings.Join(s.Labels, ", "))
	}
	if len(s.Steps) > 0 {
		b.WriteString("Steps:\n")
		base := stepBase(s)
		for _, st := range s.Steps {
			fmt.Fprintf(&b, "  %s  %s\n", formatOffset(st.At, base), st.Text)
		}
	}
	if len(s.Measurements) > 0 {
		if b.Len() > 0 && len(s.Steps) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("Measurements:\n")
		for _, m := range s.Measurements {
			fmt.Fprintf(&b, "  %s\n", measurementText(m))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// runDuration is the run's wall time, or the sum of its scenarios' durations
// when start or finish is unknown.
func runDuration(r Run) time.Duration {
	if !r.Started.IsZero() && !r.Finished.IsZero() && !r.Finished.Before(r.Started) {
		return r.Finished.Sub(r.Started)
	}
	var d time.Duration
	for _, s := range r.Scenarios {
		d += s.Duration
	}
	return d
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}
