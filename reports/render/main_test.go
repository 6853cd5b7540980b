package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if err := run(src.JSON, out); err != nil {
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
	if err := run(filepath.Join(dir, "missing.json"), out); err == nil {
		t.Error("missing input accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(filepath.Join(dir, "bad.json"), out); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad input: err = %v, want one naming the file", err)
	}
}
