package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// WriteJSON writes r as indented JSON. Durations are in nanoseconds, times in
// RFC 3339 with nanoseconds. ReadJSON reads it back unchanged. It fails on
// values JSON cannot hold (NaN or infinite measurements).
func WriteJSON(w io.Writer, r Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep goals readable: "<=" rather than "\u003c="
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report %q: %w", r.Name, err)
	}
	return nil
}

// ReadJSON reads a Run written by WriteJSON.
func ReadJSON(r io.Reader) (Run, error) {
	var run Run
	dec := json.NewDecoder(r)
	if err := dec.Decode(&run); err != nil {
		return Run{}, fmt.Errorf("read JSON report: %w", err)
	}
	if dec.More() {
		return Run{}, fmt.Errorf("read JSON report: trailing data after the run")
	}
	return run, nil
}

// ReadJSONFile reads a Run from a report.json file, e.g. a previous run's to
// compare with (WriteAllCompared). Errors name the file.
func ReadJSONFile(path string) (Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return Run{}, err
	}
	defer f.Close()
	r, err := ReadJSON(f)
	if err != nil {
		return Run{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
