package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/ecmplb/ecmplb/reports"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	in := reports.Run{
		Name: "lab: stored", Backend: "lab", Started: start, Finished: start.Add(time.Minute),
		Scenarios: []reports.Scenario{{
			Name: "failover", Status: reports.StatusFailed, Failure: "too slow", Duration: 2 * time.Second,
			Timelines: []reports.Timeline{{Title: "t", Start: start, Lanes: []reports.Lane{{Name: "tor1",
				Events: []reports.Event{{At: start, Label: "fault", Kind: reports.KindFault}}}}}},
		}},
	}
	src, err := reports.WriteAll(filepath.Join(dir, "src"), in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "again")
	if err := run(src.JSON, "", out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{reports.JSONFile, reports.JUnitFile, reports.HTMLFile} {
		a, err := os.ReadFile(filepath.Join(dir, "src", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("re-rendered %s differs from the original", name)
		}
	}
	if err := run(filepath.Join(dir, "missing.json"), "", out); err == nil {
		t.Error("missing input accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(filepath.Join(dir, "bad.json"), "", out); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad input: err = %v, want one naming the file", err)
	}
}

func TestRunCompare(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	samples := func(base float64) []float64 {
		var out []float64
		for i := range 30 {
			out = append(out, base+float64(i))
		}
		return out
	}
	old := reports.Run{Name: "before", Backend: "lab", Started: start, Scenarios: []reports.Scenario{
		{Name: "failover", Status: reports.StatusPassed, Measurements: []reports.Measurement{reports.Distribution("detect", "ms", samples(600), reports.AtMost(900))}},
		{Name: "gone", Status: reports.StatusPassed},
	}}
	new := reports.Run{Name: "after", Backend: "lab", Started: start.Add(time.Hour), Scenarios: []reports.Scenario{
		{Name: "failover", Status: reports.StatusPassed, Measurements: []reports.Measurement{reports.Distribution("detect", "ms", samples(800), reports.AtMost(900))}},
		{Name: "fresh", Status: reports.StatusSkipped, Failure: "kind only"},
	}}
	oldPaths, err := reports.WriteAll(filepath.Join(dir, "old"), old)
	if err != nil {
		t.Fatal(err)
	}
	newPaths, err := reports.WriteAll(filepath.Join(dir, "new"), new)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cmp")
	if err := run(newPaths.JSON, oldPaths.JSON, out); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(out, reports.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var section *html.Node
	var rows, changes []string
	var walk func(n *html.Node, in string)
	walk = func(n *html.Node, in string) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == "comparison" {
					section = n
				}
				if a.Key == "class" && n.Data == "tr" && strings.HasPrefix(a.Val, "cmp-") && in == "moved" {
					rows = append(rows, a.Val)
				}
				if a.Key == "class" && strings.HasPrefix(a.Val, "chg chg-") && in == "scenarios" {
					changes = append(changes, strings.TrimPrefix(a.Val, "chg chg-"))
				}
				if a.Key == "class" && a.Val == "grid cmp" && in == "" {
					in = "moved"
				}
				if a.Key == "class" && a.Val == "grid cmp-scenarios" {
					in = "scenarios"
				}
			}
			if n.Data == "details" {
				in = "all"
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc, "")
	if section == nil {
		t.Fatal("no comparison section")
	}
	// detect: median 614.5 → 814.5 and max 629 → 829, both worse (a <= goal).
	if len(rows) != 1 || rows[0] != "cmp-worse" {
		t.Errorf("moved rows %q, want one worse", rows)
	}
	if strings.Join(changes, ",") != "added,removed" {
		t.Errorf("scenario changes %q, want added,removed", changes)
	}
	// The stored JSON stays the new run alone.
	got, err := os.ReadFile(filepath.Join(out, reports.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(newPaths.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("report.json of a comparison differs from the new run's")
	}
	if err := run(newPaths.JSON, filepath.Join(dir, "missing.json"), out); err == nil {
		t.Error("missing baseline accepted")
	}
}

// brief names only failed scenarios and keeps each short.
func TestBrief(t *testing.T) {
	long := strings.Repeat("x", 1000)
	r := reports.Run{Scenarios: []reports.Scenario{
		{Name: "ok", Status: reports.StatusPassed},
		{Name: "down", Status: reports.StatusFailed, Location: "suite.go:72",
			Failure: "fabric k1 down: netns busy\n" + long + "\nc\nd\ne\nf"},
		{Name: "skip", Status: reports.StatusSkipped, Failure: "not selected"},
	}}
	got := brief(r)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if lines[0] != "FAILED down (suite.go:72)" || lines[1] != "  fabric k1 down: netns busy" {
		t.Fatalf("brief = %q", got)
	}
	if len(lines) != 1+briefLines+1 || !strings.Contains(lines[len(lines)-1], "2 more lines") {
		t.Errorf("brief kept %d lines: %q", len(lines), got)
	}
	if len(lines[2]) > briefWidth+8 || strings.Contains(got, "ok") || strings.Contains(got, "skip") {
		t.Errorf("brief = %q", got)
	}
}
