package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Paths are the files WriteAll wrote.
type Paths struct {
	// JSON is the path of report.json.
	JSON string
	// JUnit is the path of junit.xml.
	JUnit string
	// HTML is the path of report.html.
	HTML string
}

// File names used by WriteAll.
const (
	// JSONFile is the name of the JSON report.
	JSONFile = "report.json"
	// JUnitFile is the name of the JUnit XML report.
	JUnitFile = "junit.xml"
	// HTMLFile is the name of the HTML report.
	HTMLFile = "report.html"
)

// WriteAll writes report.json, junit.xml and report.html for r into dir,
// creating dir if needed. Each file is rendered completely before it replaces
// an existing one, so a failed render never leaves a truncated report.
func WriteAll(dir string, r Run) (Paths, error) {
	return writeAll(dir, r, WriteHTML)
}

// WriteAllCompared is WriteAll with the HTML page comparing r against
// baseline, an earlier run (see WriteHTMLCompared). The JSON and JUnit files
// hold r alone.
func WriteAllCompared(dir string, r, baseline Run) (Paths, error) {
	return writeAll(dir, r, func(w io.Writer, r Run) error { return WriteHTMLCompared(w, r, baseline) })
}

func writeAll(dir string, r Run, writeHTML func(io.Writer, Run) error) (Paths, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Paths{}, fmt.Errorf("create report directory: %w", err)
	}
	p := Paths{
		JSON:  filepath.Join(dir, JSONFile),
		JUnit: filepath.Join(dir, JUnitFile),
		HTML:  filepath.Join(dir, HTMLFile),
	}
	for _, f := range []struct {
		path  string
		write func(io.Writer, Run) error
	}{
		{p.JSON, WriteJSON},
		{p.JUnit, WriteJUnit},
		{p.HTML, writeHTML},
	} {
		var buf bytes.Buffer
		if err := f.write(&buf, r); err != nil {
			return Paths{}, err
		}
		if err := replaceFile(f.path, buf.Bytes()); err != nil {
			return Paths{}, err
		}
	}
	return p, nil
}

// replaceFile writes data to a temporary file next to path and renames it
// over path.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
