package reports

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		run  Run
	}{
		{"sample", sampleRun()},
		{"empty", Run{Name: "empty"}},
		{"distributions, labels, skipped", Run{
			Name: "dist", Backend: "kind",
			Scenarios: []Scenario{
				{Name: "d", Status: StatusPassed, Labels: []string{"bfd", "skip-lab: x"}, Measurements: []Measurement{
					Distribution("detect", "ms", trials(9, 150, 700, 50), AtMost(900)),
					Distribution("recover", "s", trials(10, 7, 3, 1), nil),
					Distribution("none", "ms", nil, AtMost(1)),
				}},
				{Name: "s", Status: StatusSkipped, Failure: "kind: needs pods", Labels: []string{"skip-kind: needs pods"}},
			},
		}},
		{"non-UTC times and zero fields", Run{
			Name:    "zone",
			Started: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600)),
			Scenarios: []Scenario{{
				Name: "s", Status: StatusPassed, Duration: 1500 * time.Microsecond,
				Measurements: []Measurement{{Name: "m", Value: -0.25}},
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteJSON(&buf, tt.run); err != nil {
				t.Fatal(err)
			}
			got, err := ReadJSON(&buf)
			if err != nil {
				t.Fatal(err)
			}
			// Times compare by instant; the rest must be identical.
			if !sameRun(got, tt.run) {
				t.Errorf("round trip changed the run\n got: %+v\nwant: %+v", got, tt.run)
			}
		})
	}
}

// sameRun compares runs after normalising every time to UTC.
func sameRun(a, b Run) bool {
	var buf1, buf2 bytes.Buffer
	_ = WriteJSON(&buf1, utcRun(a))
	_ = WriteJSON(&buf2, utcRun(b))
	return buf1.String() == buf2.String() && reflect.DeepEqual(utcRun(a), utcRun(b))
}

func utcRun(r Run) Run {
	u := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.UTC()
	}
	r.Started, r.Finished = u(r.Started), u(r.Finished)
	scs := make([]Scenario, len(r.Scenarios))
	copy(scs, r.Scenarios)
	for i := range scs {
		s := &scs[i]
		s.Started = u(s.Started)
		steps := append([]Step(nil), s.Steps...)
		for j := range steps {
			steps[j].At = u(steps[j].At)
		}
		if s.Steps != nil {
			s.Steps = steps
		}
		tls := append([]Timeline(nil), s.Timelines...)
		for j := range tls {
			tls[j].Start = u(tls[j].Start)
		}
		if s.Timelines != nil {
			s.Timelines = tls
		}
	}
	if r.Scenarios != nil {
		r.Scenarios = scs
	}
	return r
}

func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"backend": "lab"`, `"duration_ns": 9412000000`, `"status": "failed"`, `"op": "<="`, `"kind": "fault"`,
		`"statistic": "p99"`, `"statistic": "max"`, `"labels": [`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not JSON", "<html>"},
		{"wrong type", `{"name": 5}`},
		{"trailing data", `{"name": "a"} {"name": "b"}`},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadJSON(strings.NewReader(tt.in)); err == nil {
				t.Errorf("ReadJSON(%q) succeeded", tt.in)
			}
		})
	}
	d := Distribution("d", "ms", []float64{1, math.NaN(), math.Inf(1), 2}, nil)
	if err := WriteJSON(&bytes.Buffer{}, Run{Scenarios: []Scenario{{Measurements: []Measurement{d}}}}); err != nil || len(d.Samples) != 2 {
		t.Errorf("a distribution with NaN and Inf trials: %d samples kept, WriteJSON: %v", len(d.Samples), err)
	}
	nan := Run{Scenarios: []Scenario{{Measurements: []Measurement{{Value: math.NaN()}}}}}
	if err := WriteJSON(&bytes.Buffer{}, nan); err == nil {
		t.Error("WriteJSON of a NaN measurement succeeded")
	}
}

// TestJSONKeepsEverySample checks that every sample of every measurement is
// in the file, in order.
func TestJSONKeepsEverySample(t *testing.T) {
	r := sampleRun()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Scenarios []struct {
			Measurements []struct {
				Name    string    `json:"name"`
				Samples []float64 `json:"samples"`
			} `json:"measurements"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, s := range r.Scenarios {
		for j, m := range s.Measurements {
			got := raw.Scenarios[i].Measurements[j]
			if got.Name != m.Name || !slices.Equal(got.Samples, m.Samples) {
				t.Errorf("measurement %q: %d samples in JSON, want %d", m.Name, len(got.Samples), len(m.Samples))
			}
			n += len(got.Samples)
		}
	}
	if n < 200 {
		t.Errorf("only %d samples in the sample run's JSON", n)
	}
}

func TestReadJSONFile(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteAll(dir, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadJSONFile(p.JSON)
	if err != nil || !sameRun(r, sampleRun()) {
		t.Errorf("ReadJSONFile: %v", err)
	}
	if _, err := ReadJSONFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file read")
	}
	if _, err := ReadJSONFile(p.HTML); err == nil || !strings.Contains(err.Error(), p.HTML) {
		t.Errorf("HTML read as JSON: err = %v, want one naming the file", err)
	}
}
