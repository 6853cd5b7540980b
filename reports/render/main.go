// Command render re-renders a stored JSON scenario report into JSON, JUnit XML
// and HTML, optionally comparing it with an earlier run:
//
//	go run ./reports/render -in report.json -out reports/out/again
//	go run ./reports/render -compare old/report.json -out reports/out/cmp new/report.json
//
//	go run ./reports/render -failures report.json
//
// With -failures it writes nothing and prints, for each failed scenario,
// its name, location and the start of its failure message: short enough
// to survive in the tail of a CI log that keeps only the last lines.
//
// With -compare, the HTML page starts with what changed since the old run:
// which timings moved (median and p99, or max under 100 samples; absolute and
// relative), which scenarios were added or removed and whose outcome changed.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ecmplb/ecmplb/reports"
)

func main() {
	in := flag.String("in", "", "JSON report to read (written by reports.WriteJSON); - for stdin; or give it as the argument")
	compare := flag.String("compare", "", "an earlier run's JSON report to compare the report with")
	out := flag.String("out", "reports/out", "directory to write report.json, junit.xml and report.html into")
	failures := flag.Bool("failures", false, "print the failed scenarios in brief instead of rendering")
	flag.Parse()
	if *in == "" && flag.NArg() == 1 {
		*in = flag.Arg(0)
	} else if flag.NArg() > 0 {
		*in = ""
	}
	if *in == "" {
		fmt.Fprintln(os.Stderr, "usage: render [-compare old/report.json] [-out dir] (-in report.json | report.json)")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if *failures {
		r, err := read(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
		fmt.Print(brief(r))
		return
	}
	if err := run(*in, *compare, *out); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(in, compare, out string) error {
	r, err := read(in)
	if err != nil {
		return err
	}
	var p reports.Paths
	if compare != "" {
		old, err := read(compare)
		if err != nil {
			return err
		}
		p, err = reports.WriteAllCompared(out, r, old)
		if err != nil {
			return err
		}
		c := reports.Compare(old, r)
		fmt.Printf("compared with %s: %d timings moved by %g%% or more\n", compare, len(c.Moved()), reports.MovedRelative*100)
	} else if p, err = reports.WriteAll(out, r); err != nil {
		return err
	}
	fmt.Println(p.JSON)
	fmt.Println(p.JUnit)
	fmt.Println(p.HTML)
	return nil
}

// read reads a JSON report from a file, or from stdin for "-".
func read(path string) (reports.Run, error) {
	if path != "-" {
		return reports.ReadJSONFile(path)
	}
	r, err := reports.ReadJSON(os.Stdin)
	if err != nil {
		return reports.Run{}, fmt.Errorf("stdin: %w", err)
	}
	return r, nil
}

// briefLines and briefWidth bound what brief prints of one failure.
const (
	briefLines = 4
	briefWidth = 240
)

// brief lists r's failed scenarios: name, location, and the first lines of
// the failure message, each cut to briefWidth.
func brief(r reports.Run) string {
	var b strings.Builder
	for _, s := range r.Scenarios {
		if s.Status != reports.StatusFailed {
			continue
		}
		fmt.Fprintf(&b, "FAILED %s (%s)\n", s.Name, s.Location)
		lines := strings.Split(strings.TrimSpace(s.Failure), "\n")
		for i, l := range lines {
			if i == briefLines {
				fmt.Fprintf(&b, "  ... %d more lines in the report\n", len(lines)-i)
				break
			}
			if l = strings.TrimSpace(l); len(l) > briefWidth {
				l = l[:briefWidth] + "..."
			}
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}
