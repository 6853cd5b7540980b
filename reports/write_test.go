package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "out")
	r := sampleRun()
	p, err := WriteAll(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	want := Paths{JSON: filepath.Join(dir, "report.json"), JUnit: filepath.Join(dir, "junit.xml"), HTML: filepath.Join(dir, "report.html")}
	if p != want {
		t.Errorf("paths = %+v, want %+v", p, want)
	}
	f, err := os.Open(p.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRun(back, r) {
		t.Error("report.json does not read back as the run")
	}
	for path, prefix := range map[string]string{p.JUnit: "<?xml", p.HTML: "<!DOCTYPE html>"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), prefix) {
			t.Errorf("%s starts with %.20q, want %q", path, b, prefix)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in %s, want exactly 3 (no temporary files left)", len(entries), dir)
	}
}

func TestWriteAllErrors(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAll(filepath.Join(blocker, "sub"), sampleRun()); err == nil {
		t.Error("WriteAll under a regular file succeeded")
	}
	// A run JSON cannot hold fails before anything replaces an old report.
	dir := t.TempDir()
	if _, err := WriteAll(dir, sampleRun()); err != nil {
		t.Fatal(err)
	}
	bad := sampleRun()
	bad.Scenarios[0].Measurements[0].Value = nanValue()
	if _, err := WriteAll(dir, bad); err == nil {
		t.Fatal("WriteAll with a NaN measurement succeeded")
	}
	f, err := os.Open(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadJSON(f); err != nil {
		t.Errorf("old report.json damaged by the failed write: %v", err)
	}
}
