// Command render re-renders a stored JSON scenario report into JSON, JUnit XML
// and HTML:
//
//	go run ./reports/render -in report.json -out reports/out/again
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ecmplb/ecmplb/reports"
)

func main() {
	in := flag.String("in", "", "JSON report to read (written by reports.WriteJSON); - for stdin")
	out := flag.String("out", "reports/out", "directory to write report.json, junit.xml and report.html into")
	flag.Parse()
	if *in == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: render -in report.json [-out dir]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f := os.Stdin
	if in != "-" {
		var err error
		if f, err = os.Open(in); err != nil {
			return err
		}
		defer f.Close()
	}
	r, err := reports.ReadJSON(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	p, err := reports.WriteAll(out, r)
	if err != nil {
		return err
	}
	fmt.Println(p.JSON)
	fmt.Println(p.JUnit)
	fmt.Println(p.HTML)
	return nil
}
