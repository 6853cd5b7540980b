package reports

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestHTMLDistributions checks the histogram figures and the tail column of
// the measurements table, parsed from the page.
func TestHTMLDistributions(t *testing.T) {
	tests := []struct {
		name      string
		m         Measurement
		tailCell  string // text of the p99 column
		valueStat string // the statistic shown under the value
		marks     []string
		goalClass string // figure class: goal-met, goal-unmet or ""
	}{
		{"30 samples: max, labelled", Distribution("detect", "ms", trials(5, 30, 700, 40), AtMost(900)),
			"", "max (n < 100, no p99)", []string{"hm-median", "hm-tail", "hm-goal"}, "goal-met"},
		{"150 samples: p99", Distribution("detect", "ms", trials(5, 150, 700, 40), AtMost(710)),
			"", "p99", []string{"hm-median", "hm-goal", "hm-tail"}, "goal-unmet"},
		{"no goal", Distribution("recover", "s", trials(6, 12, 3, 1), nil),
			"", "max (n < 100, no p99)", []string{"hm-median", "hm-tail"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := Summarize(tt.m.Samples)
			if sum.N >= MinSamplesForP99 {
				tt.tailCell = formatNumber(sum.P99)
			} else {
				tt.tailCell = formatNumber(sum.Max) + " max"
			}
			_, doc := renderHTML(t, Run{Name: "r", Scenarios: []Scenario{{Name: "s", Status: StatusPassed, Measurements: []Measurement{tt.m}}}})
			assertSelfContained(t, doc)
			rows := find(find(doc, "table", "measurements")[0], "tr", "")
			cells := find(rows[1], "td", "")
			if got := text(cells[7]); got != tt.tailCell {
				t.Errorf("p99 cell %q, want %q", got, tt.tailCell)
			}
			if got := text(find(cells[1], "div", "stat")[0]); got != tt.valueStat {
				t.Errorf("value statistic %q, want %q", got, tt.valueStat)
			}
			figs := find(doc, "figure", "histogram")
			if len(figs) != 1 {
				t.Fatalf("%d histograms, want 1", len(figs))
			}
			fig := figs[0]
			if tt.goalClass != "" && !hasClass(fig, tt.goalClass) || tt.goalClass == "" && (hasClass(fig, "goal-met") || hasClass(fig, "goal-unmet")) {
				t.Errorf("figure class %q, want %q", attr(fig, "class"), tt.goalClass)
			}
			svg := find(fig, "svg", "hist")[0]
			var marks []string
			for _, g := range find(svg, "g", "mark") {
				for _, c := range strings.Fields(attr(g, "class")) {
					if c != "mark" {
						marks = append(marks, c)
					}
				}
			}
			if strings.Join(marks, " ") != strings.Join(tt.marks, " ") {
				t.Errorf("marks %q, want %q", marks, tt.marks)
			}
			bars := find(svg, "rect", "hbar")
			count := 0
			for _, b := range bars {
				title := text(find(b, "title", "")[0])
				var n, of int
				if err := barCount(title, &n, &of); err != nil || of != sum.N {
					t.Errorf("bar title %q: %v", title, err)
				}
				count += n
			}
			if count != sum.N {
				t.Errorf("bars hold %d samples, want %d", count, sum.N)
			}
			caption := text(find(fig, "div", "hist-caption")[0])
			if !strings.Contains(caption, tt.valueStat) || !strings.Contains(caption, "median "+formatNumber(sum.Median)) {
				t.Errorf("caption %q", caption)
			}
		})
	}
}

// barCount reads "lo … hi unit: N of M" from a bar's title.
func barCount(title string, n, of *int) error {
	_, rest, _ := strings.Cut(title, ": ")
	_, err := fmt.Sscanf(rest, "%d of %d", n, of)
	return err
}

// TestHTMLDistributionWithoutSamples checks that a distribution with no
// samples shows no figure and misses its goal.
func TestHTMLDistributionWithoutSamples(t *testing.T) {
	_, doc := renderHTML(t, Run{Name: "r", Scenarios: []Scenario{{Name: "s", Status: StatusFailed,
		Measurements: []Measurement{Distribution("detect", "ms", nil, AtMost(900))}}}})
	cells := find(find(find(doc, "table", "measurements")[0], "tbody", "")[0], "td", "")
	if got := text(cells[1]); got != "— msno samples" {
		t.Errorf("value cell %q", got)
	}
	if got := strings.TrimSpace(text(cells[3])); got != "✗" {
		t.Errorf("met cell %q, want ✗", got)
	}
	if n := len(find(doc, "figure", "histogram")); n != 0 {
		t.Errorf("%d histograms for no samples", n)
	}
}

// TestHTMLSkippedAndLabels checks that a skipped scenario shows its reason
// (or says it has none) and that labels are shown.
func TestHTMLSkippedAndLabels(t *testing.T) {
	tests := []struct {
		name   string
		s      Scenario
		box    string // failure box title, "" for none
		reason string
	}{
		{"skipped with a reason", Scenario{Name: "a", Status: StatusSkipped, Failure: "kind: needs real pods", Labels: []string{"skip-kind: needs real pods", "ecmp"}}, "Skipped", "kind: needs real pods"},
		{"skipped without one", Scenario{Name: "b", Status: StatusSkipped}, "Skipped", "no reason given"},
		{"failed", Scenario{Name: "c", Status: StatusFailed, Failure: "boom", Labels: []string{"bfd"}}, "Failure", "boom"},
		{"passed", Scenario{Name: "d", Status: StatusPassed}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, doc := renderHTML(t, Run{Name: "r", Scenarios: []Scenario{tt.s}})
			card := find(doc, "section", "scenario")[0]
			boxes := find(card, "div", "failure")
			switch {
			case tt.box == "" && len(boxes) != 0:
				t.Errorf("unexpected failure box %q", text(boxes[0]))
			case tt.box != "" && len(boxes) != 1:
				t.Fatalf("%d failure boxes", len(boxes))
			case tt.box != "":
				if got := text(find(boxes[0], "div", "failure-title")[0]); got != tt.box {
					t.Errorf("box title %q, want %q", got, tt.box)
				}
				if got := text(find(boxes[0], "pre", "")[0]); got != tt.reason {
					t.Errorf("reason %q, want %q", got, tt.reason)
				}
			}
			// The index shows the reason next to the status.
			reasons := find(find(doc, "table", "index")[0], "span", "reason")
			switch {
			case tt.reason == "" && len(reasons) != 0:
				t.Errorf("index shows a reason %q for a passed scenario", text(reasons[0]))
			case tt.reason != "" && (len(reasons) != 1 || text(reasons[0]) != tt.reason):
				t.Errorf("index reasons %d, want %q", len(reasons), tt.reason)
			}
			var labels []string
			for _, l := range find(card, "span", "label") {
				labels = append(labels, text(l))
			}
			if strings.Join(labels, "|") != strings.Join(tt.s.Labels, "|") {
				t.Errorf("labels %q, want %q", labels, tt.s.Labels)
			}
		})
	}
}

// TestHTMLComparison renders the sample run against its baseline and checks
// the comparison section against Compare.
func TestHTMLComparison(t *testing.T) {
	old, cur := sampleBaseline(), sampleRun()
	var buf bytes.Buffer
	if err := WriteHTMLCompared(&buf, cur, old); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	assertSelfContained(t, doc)
	sections := find(doc, "section", "comparison")
	if len(sections) != 1 {
		t.Fatalf("%d comparison sections", len(sections))
	}
	sec := sections[0]
	counts := map[string]string{}
	for _, c := range find(sec, "div", "count") {
		counts[text(find(c, "span", "")[0])] = text(find(c, "b", "")[0])
	}
	// BFD withdraw got slower (p99 ~650 → ~763), graceful withdraw faster
	// (max ~63 → ~48); the spread check failed now and passed then, node-c's
	// share went from 34.1% (goal met) to 41.2% (not met); the kind-only
	// scenario is new, the IPv6 one gone.
	want := map[string]string{"timings worse": "2", "timings better": "1", "outcomes changed": "1", "goals now missed": "1", "scenarios added": "1", "scenarios removed": "1"}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("count %q = %q, want %q (all: %v)", k, counts[k], v, counts)
		}
	}
	c := Compare(old, cur)
	tables := find(sec, "table", "cmp")
	if len(tables) != 2 {
		t.Fatalf("%d comparison tables, want moved and all", len(tables))
	}
	moved := find(find(tables[0], "tbody", "")[0], "tr", "")
	if len(moved) != len(c.Moved()) {
		t.Errorf("%d moved rows, want %d", len(moved), len(c.Moved()))
	}
	if !hasClass(moved[0], "cmp-worse") || !strings.Contains(text(moved[0]), "hard-fail withdraw, BFD 300ms x3") {
		t.Errorf("first moved row %q (class %q), want the worse BFD withdraw first", text(moved[0]), attr(moved[0], "class"))
	}
	// The BFD row shows p99 against p99: 150 and 200 samples.
	if cell := text(find(moved[0], "td", "delta")[1]); !strings.HasPrefix(cell, "p99 ") || !strings.Contains(cell, "%)") {
		t.Errorf("tail cell %q", cell)
	}
	if !hasClass(moved[1], "cmp-worse") || !strings.Contains(text(moved[1]), "share of flows, node-c") || !strings.Contains(text(moved[1]), "met → not met") {
		t.Errorf("second moved row %q, want node-c's share, worse, goal lost", text(moved[1]))
	}
	if cell := text(find(moved[2], "td", "delta")[1]); !strings.HasPrefix(cell, "max ") {
		t.Errorf("graceful tail cell %q, want the max (20 samples)", cell)
	}
	all := 0
	for _, s := range c.Scenarios {
		all += len(s.Measurements)
	}
	if got := len(find(find(tables[1], "tbody", "")[0], "tr", "")); got != all {
		t.Errorf("%d rows in the full table, want %d", got, all)
	}
	changes := map[string]string{}
	for _, tr := range find(find(find(sec, "table", "cmp-scenarios")[0], "tbody", "")[0], "tr", "") {
		tds := find(tr, "td", "")
		changes[text(tds[0])] = text(tds[1])
		if a := find(tds[0], "a", ""); len(a) == 1 {
			id := strings.TrimPrefix(attr(a[0], "href"), "#")
			found := false
			walk(doc, func(n *html.Node) { found = found || attr(n, "id") == id })
			if !found {
				t.Errorf("link %q to no element", id)
			}
		}
	}
	if changes["IPVS kube-proxy keeps connections on the surviving nodes"] != "added" ||
		changes["IPv6 service announced to both ToRs"] != "removed" ||
		changes["ECMP spreads flows evenly across 3 nodes"] != "outcome" {
		t.Errorf("scenario changes %v", changes)
	}

	// Without a baseline there is no comparison section.
	_, plain := renderHTML(t, cur)
	if len(find(plain, "section", "comparison")) != 0 {
		t.Error("comparison section without a baseline")
	}
}
