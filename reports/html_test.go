package reports

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func renderHTML(t *testing.T, r Run) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("HTML does not parse: %v", err)
	}
	return buf.String(), doc
}

// walk visits n and its descendants in document order.
func walk(n *html.Node, visit func(*html.Node)) {
	visit(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, visit)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
}

// find returns the elements under n with the tag (any tag if "") and class
// (any if "").
func find(n *html.Node, tag, class string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && (tag == "" || c.Data == tag) && (class == "" || hasClass(c, class)) {
			out = append(out, c)
		}
	})
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// TestHTMLStructure checks the sample page element by element against the run
// it was rendered from.
func TestHTMLStructure(t *testing.T) {
	r := sampleRun()
	_, doc := renderHTML(t, r)

	if got := text(find(doc, "title", "")[0]); !strings.HasPrefix(got, r.Name) {
		t.Errorf("<title> = %q", got)
	}
	if got := text(find(doc, "h1", "")[0]); got != r.Name {
		t.Errorf("<h1> = %q, want %q", got, r.Name)
	}
	envRows := find(find(doc, "table", "kv")[0], "tr", "")
	if len(envRows) != len(r.Environment) {
		t.Errorf("environment table has %d rows, want %d", len(envRows), len(r.Environment))
	}
	counts := map[string]string{}
	for _, c := range find(doc, "div", "count") {
		counts[text(find(c, "span", "")[0])] = text(find(c, "b", "")[0])
	}
	if counts["passed"] != "3" || counts["failed"] != "1" || counts["skipped"] != "1" || counts["goals met"] != "8/9" {
		t.Errorf("summary counts = %v", counts)
	}
	if n := len(find(find(doc, "table", "index")[0], "tr", "")); n != len(r.Scenarios)+1 {
		t.Errorf("index table has %d rows, want %d", n, len(r.Scenarios)+1)
	}

	cards := find(doc, "section", "scenario")
	if len(cards) != len(r.Scenarios) {
		t.Fatalf("%d scenario cards, want %d", len(cards), len(r.Scenarios))
	}
	totalTimelines := 0
	for i, s := range r.Scenarios {
		card := cards[i]
		t.Run(s.Name, func(t *testing.T) {
			if id := attr(card, "id"); id != fmt.Sprintf("scenario-%d", i+1) {
				t.Errorf("id = %q", id)
			}
			if !hasClass(card, "st-"+string(s.Status)) {
				t.Errorf("card class %q lacks st-%s", attr(card, "class"), s.Status)
			}
			if b := text(find(card, "span", "badge")[0]); b != string(s.Status) {
				t.Errorf("badge = %q", b)
			}
			if got := len(find(card, "div", "failure")); (got == 1) != (s.Failure != "") {
				t.Errorf("%d failure boxes for failure %q", got, s.Failure)
			}
			steps := find(card, "li", "")
			if len(steps) != len(s.Steps) {
				t.Errorf("%d steps, want %d", len(steps), len(s.Steps))
			}
			for j, li := range steps {
				if want := formatOffset(s.Steps[j].At, s.Started); text(find(li, "time", "")[0]) != want {
					t.Errorf("step %d time = %q, want %q", j, text(li), want)
				}
			}
			if len(s.Measurements) > 0 {
				rows := find(find(card, "table", "measurements")[0], "tr", "")[1:]
				if len(rows) != len(s.Measurements) {
					t.Fatalf("%d measurement rows, want %d", len(rows), len(s.Measurements))
				}
				for j, m := range s.Measurements {
					met, has := m.Met()
					wantMark := "—"
					switch {
					case has && met:
						wantMark = "✓"
					case has:
						wantMark = "✗"
					}
					if cells := find(rows[j], "td", ""); strings.TrimSpace(text(cells[3])) != wantMark {
						t.Errorf("measurement %q met cell = %q, want %q", m.Name, text(cells[3]), wantMark)
					}
					if len(m.Samples) > 0 {
						sum := Summarize(m.Samples)
						cells := find(rows[j], "td", "")
						// The p99 column holds the p99 from 100 samples on, and
						// below that the max, labelled as such.
						wantTail := formatNumber(sum.P99)
						if sum.N < MinSamplesForP99 {
							wantTail = formatNumber(sum.Max) + " max"
						}
						if text(cells[4]) != fmt.Sprint(sum.N) || text(cells[7]) != wantTail {
							t.Errorf("measurement %q n/p99 cells = %q/%q, want %d/%q", m.Name, text(cells[4]), text(cells[7]), sum.N, wantTail)
						}
					}
				}
			}
			svgs := find(card, "svg", "chart")
			if len(svgs) != len(s.Timelines) {
				t.Fatalf("%d SVGs, want one per timeline (%d)", len(svgs), len(s.Timelines))
			}
			for j, tl := range s.Timelines {
				svg := svgs[j]
				var names []string
				for _, n := range find(svg, "text", "lane-name") {
					names = append(names, strings.TrimSpace(text(n)[len(text(find(n, "title", "")[0])):]))
				}
				events, faults := 0, 0
				for k, l := range tl.Lanes {
					events += len(l.Events)
					for _, e := range l.Events {
						if e.Kind == KindFault {
							faults++
						}
					}
					if k >= len(names) || names[k] != l.Name {
						t.Errorf("lane names = %q, want lane %d %q", names, k, l.Name)
					}
				}
				if got := len(find(svg, "path", "mk")); got != events {
					t.Errorf("timeline %q: %d markers, want %d", tl.Title, got, events)
				}
				if got := len(find(svg, "path", "step")); got != len(tl.Series) {
					t.Errorf("timeline %q: %d step lines, want %d", tl.Title, got, len(tl.Series))
				}
				if got := len(find(svg, "g", "event")); got != events {
					t.Errorf("timeline %q: %d hoverable events, want %d", tl.Title, got, events)
				}
				for _, g := range find(svg, "g", "event") {
					if len(find(g, "title", "")) != 1 {
						t.Errorf("event without hover title")
					}
				}
				if got := len(find(svg, "line", "fault-line")); got != faults {
					t.Errorf("timeline %q: %d fault lines, want %d", tl.Title, got, faults)
				}
			}
			totalTimelines += len(s.Timelines)
			tables := find(card, "table", "data")
			if len(tables) != len(s.Tables) {
				t.Fatalf("%d data tables, want %d", len(tables), len(s.Tables))
			}
			for j, tb := range s.Tables {
				if got := len(find(find(tables[j], "tbody", "")[0], "tr", "")); got != len(tb.Rows) {
					t.Errorf("table %q: %d rows, want %d", tb.Title, got, len(tb.Rows))
				}
			}
		})
	}
	if got := len(find(doc, "svg", "chart")); got != totalTimelines {
		t.Errorf("page has %d SVGs, want %d", got, totalTimelines)
	}
	assertSelfContained(t, doc)
}

// assertSelfContained fails if the page would run script or load anything.
func assertSelfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignobject":
			t.Errorf("page has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			switch {
			case strings.HasPrefix(k, "on"):
				t.Errorf("<%s> has event handler %s=%q", n.Data, a.Key, a.Val)
			case k == "src" || k == "srcset" || k == "xlink:href":
				t.Errorf("<%s> loads %s=%q", n.Data, a.Key, a.Val)
			case k == "href" && !strings.HasPrefix(a.Val, "#"):
				t.Errorf("<%s> links outside the page: %q", n.Data, a.Val)
			case k == "style" && strings.Contains(a.Val, "url("):
				t.Errorf("<%s> style loads %q", n.Data, a.Val)
			}
		}
		if n.Data == "style" && (strings.Contains(text(n), "url(") || strings.Contains(text(n), "@import")) {
			t.Error("stylesheet loads external resources")
		}
	})
}

func TestHTMLEscapesHostileStrings(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	const attrBreak = `" onmouseover="alert(1)`
	at := sampleBase
	hostile := evil + attrBreak + `</svg><img src=x>&amp;`
	r := Run{
		Name:        hostile,
		Backend:     hostile,
		Started:     at,
		Environment: map[string]string{hostile: hostile},
		Scenarios: []Scenario{{
			Name:        hostile,
			Description: hostile,
			Status:      Status(hostile),
			Started:     at,
			Failure:     hostile,
			Location:    hostile,
			Steps:       []Step{{At: at, Text: hostile}},
			Measurements: []Measurement{
				{Name: hostile, Unit: hostile, Value: 1, Goal: &Goal{Op: hostile, Value: 2}, Samples: []float64{1, 2}},
			},
			Timelines: []Timeline{{
				Title: hostile,
				Start: at,
				Lanes: []Lane{{Name: hostile, Events: []Event{
					{At: at, Label: hostile, Kind: hostile},
					{At: at.Add(time.Second), Label: hostile, Kind: KindFault},
				}}},
				Series: []Series{{Name: hostile, Points: []Point{{At: at, Value: 1, Label: hostile}}}},
			}},
			Tables: []Table{{Title: hostile, Header: []string{hostile}, Rows: [][]string{{hostile}}}},
		}},
	}
	raw, doc := renderHTML(t, r)
	for _, bad := range []string{"<script", "<img", "onmouseover=\"alert", "</svg><"} {
		if strings.Contains(strings.ToLower(raw), bad) {
			t.Errorf("raw HTML contains %q", bad)
		}
	}
	assertSelfContained(t, doc)
	if got := len(find(doc, "svg", "chart")); got != 1 {
		t.Errorf("page has %d timeline SVGs, want 1", got)
	}
	// The hostile text must still be shown, intact, as text.
	visible := text(doc)
	if n := strings.Count(visible, hostile); n < 10 {
		t.Errorf("hostile string shown intact %d times, want it in every field (≥10)", n)
	}
	for _, m := range find(doc, "path", "mk") {
		if c := attr(m, "class"); c != "mk k-other" && c != "mk k-fault" {
			t.Errorf("marker class %q: kinds must map to known classes", c)
		}
	}
	if b := find(doc, "span", "badge"); len(b) == 0 || !hasClass(b[0], "st-unknown") {
		t.Error("unknown status not rendered as st-unknown")
	}
}

func TestHTMLEmptyRun(t *testing.T) {
	_, doc := renderHTML(t, Run{})
	if got := text(find(doc, "h1", "")[0]); got != "(unnamed run)" {
		t.Errorf("h1 = %q", got)
	}
	if len(find(doc, "section", "scenario")) != 0 || len(find(doc, "svg", "")) != 0 {
		t.Error("empty run rendered scenarios or charts")
	}
	// A timeline with nothing in it still gets its (empty) chart.
	_, doc = renderHTML(t, Run{Scenarios: []Scenario{{Name: "s", Status: StatusPassed, Timelines: []Timeline{{Title: "nothing"}}}}})
	if svgs := find(doc, "svg", ""); len(svgs) != 1 || !strings.Contains(text(svgs[0]), "no events or data points") {
		t.Errorf("empty timeline: %d SVGs", len(svgs))
	}
}

func TestLooksNumeric(t *testing.T) {
	tests := map[string]bool{
		"1236": true, "41.2%": true, "+0.710s": true, "-3": true, "12 ms": true, "38.4MiB": true,
		"10.0.0.11": false, "203.0.113.5/32": false, "node-a": false, "": false, "%": false, "1e3": true,
		"5 packets": false,
	}
	for in, want := range tests {
		if got := looksNumeric(in); got != want {
			t.Errorf("looksNumeric(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestHTMLOddData renders data that is legal but awkward; charts must keep
// finite coordinates whatever the input.
func TestHTMLOddData(t *testing.T) {
	at := sampleBase
	tests := []struct {
		name string
		tl   Timeline
	}{
		{"single event, no start", Timeline{Lanes: []Lane{{Name: "a", Events: []Event{{At: at, Label: "x", Kind: KindInfo}}}}}},
		{"events before start", Timeline{Start: at, Lanes: []Lane{{Name: "a", Events: []Event{{At: at.Add(-time.Hour), Label: "x"}, {At: at, Label: "y"}}}}}},
		{"same instant", Timeline{Start: at, Lanes: []Lane{{Name: "a", Events: []Event{{At: at, Label: "x"}, {At: at, Label: "y"}, {At: at, Label: "z"}}}}}},
		{"NaN and Inf points", Timeline{Start: at, Series: []Series{{Name: "s", Points: []Point{{At: at, Value: math.NaN()}, {At: at.Add(time.Second), Value: math.Inf(1)}, {At: at.Add(2 * time.Second), Value: 1}}}}}},
		{"only bad points", Timeline{Start: at, Series: []Series{{Name: "s", Points: []Point{{At: at, Value: math.NaN()}}}}}},
		{"constant negative series", Timeline{Start: at, Series: []Series{{Name: "s", Points: []Point{{At: at, Value: -4}, {At: at.Add(time.Millisecond), Value: -4}}}}}},
		{"tiny span", Timeline{Start: at, Lanes: []Lane{{Name: "a", Events: []Event{{At: at.Add(time.Microsecond), Label: "x"}}}}}},
		{"long labels and names", Timeline{Start: at, Lanes: []Lane{{Name: strings.Repeat("n", 80), Events: []Event{{At: at, Label: strings.Repeat("label ", 40)}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run{Name: "odd", Scenarios: []Scenario{{
				Name: "s", Status: StatusPassed, Duration: -time.Second,
				Measurements: []Measurement{{Name: "m", Value: math.NaN(), Samples: []float64{math.Inf(1), 1}, Goal: &Goal{Op: "<=", Value: 1}}},
				Timelines:    []Timeline{tt.tl},
			}}}
			_, doc := renderHTML(t, r)
			svgs := find(doc, "svg", "")
			if len(svgs) != 2 {
				t.Fatalf("%d SVGs, want a timeline and a histogram", len(svgs))
			}
			walk(doc, func(n *html.Node) {
				for _, a := range n.Attr {
					if strings.Contains(a.Val, "NaN") || strings.Contains(a.Val, "Inf") {
						t.Errorf("<%s %s=%q> is not a finite coordinate", n.Data, a.Key, a.Val)
					}
				}
			})
		})
	}
}
