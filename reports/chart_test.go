package reports

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNiceStep(t *testing.T) {
	tests := []struct{ raw, want float64 }{
		{0.07, 0.1}, {0.1, 0.1}, {0.11, 0.2}, {0.3, 0.5}, {0.6, 1}, {1, 1},
		{1.5, 2}, {3, 5}, {7, 10}, {11, 20}, {0, 1}, {-1, 1}, {math.NaN(), 1},
	}
	for _, tt := range tests {
		if got := niceStep(tt.raw); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}

func TestYTicks(t *testing.T) {
	tests := []struct {
		name     string
		lo, hi   float64
		integers bool
		want     []float64
	}{
		{"next-hop counts 0..3", 0, 3, true, []float64{0, 1, 2, 3}},
		{"single value", 0, 0, true, []float64{0, 1}},
		{"counts 0..1", 0, 1, true, []float64{0, 1}},
		{"counts 0..16", 0, 16, true, []float64{0, 5, 10, 15, 20}},
		{"fractions", 0, 0.9, false, []float64{0, 0.5, 1}},
		{"large counts", 0, 40, true, []float64{0, 10, 20, 30, 40}},
		{"values", 0, 712.5, false, []float64{0, 200, 400, 600, 800}},
		{"negative", -2, 3, true, []float64{-2, -1, 0, 1, 2, 3}},
		{"counts 0..6", 0, 6, true, []float64{0, 2, 4, 6}},
		{"counts 0..7", 0, 7, true, []float64{0, 2, 4, 6, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := yTicks(tt.lo, tt.hi, tt.integers)
			if !slices.EqualFunc(got, tt.want, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
				t.Errorf("yTicks(%v, %v, %v) = %v, want %v", tt.lo, tt.hi, tt.integers, got, tt.want)
			}
		})
	}
}

func TestLayoutTimeline(t *testing.T) {
	zero := sampleBase
	at := func(sec float64) time.Time { return zero.Add(time.Duration(sec * float64(time.Second))) }
	tl := Timeline{
		Title: "failover",
		Start: zero,
		Lanes: []Lane{
			{Name: "node-b", Events: []Event{{at(0), "power off", KindFault}}},
			{Name: "tor1", Events: []Event{
				// out of order on purpose; drawn sorted
				{at(0.71), "withdraw via 10.0.0.12", KindRoute},
				{at(0.7), "BFD down 10.0.0.12", KindBFD},
				{at(0.705), "BGP reset", KindBGP},
				{at(0.706), "another", "weird"},
			}},
		},
		Series: []Series{{Name: "tor1: next-hops", Points: []Point{
			{at(0.71), 2, "10.0.0.11, 10.0.0.13"},
			{at(-1), 3, "10.0.0.11, 10.0.0.12, 10.0.0.13"},
		}}},
	}
	c := layoutTimeline(tl)

	if c.ZeroX <= chartLeft || !c.ShowZero {
		t.Errorf("domain should start at -1 and show the zero line: ZeroX=%v ShowZero=%v", c.ZeroX, c.ShowZero)
	}
	// x axis: -1 .. 0.71 plus 4% → ticks every 0.2 s with one decimal, "0.0" not "-0.0".
	var labels []string
	for i, tk := range c.Ticks {
		labels = append(labels, tk.Label)
		if i > 0 && tk.X <= c.Ticks[i-1].X {
			t.Errorf("ticks not increasing: %v", c.Ticks)
		}
		if tk.X < chartLeft-1e-9 || tk.X > chartRight+1e-9 {
			t.Errorf("tick %q at %v outside the plot", tk.Label, tk.X)
		}
	}
	if want := "-1.0 -0.8 -0.6 -0.4 -0.2 0.0 0.2 0.4 0.6"; strings.Join(labels, " ") != want {
		t.Errorf("tick labels = %q, want %q", strings.Join(labels, " "), want)
	}
	zeroX := c.Ticks[5].X
	if math.Abs(zeroX-c.ZeroX) > 1e-9 {
		t.Errorf("tick 0.0 at %v, zero line at %v", zeroX, c.ZeroX)
	}
	if len(c.Faults) != 1 || math.Abs(c.Faults[0].X-zeroX) > 1e-9 {
		t.Errorf("fault line %+v, want one at x=%v (t=0)", c.Faults, zeroX)
	}

	tor1 := c.Lanes[1]
	if len(tor1.Markers) != 4 {
		t.Fatalf("tor1 has %d markers", len(tor1.Markers))
	}
	var xs []float64
	for _, m := range tor1.Markers {
		xs = append(xs, m.X)
	}
	if !slices.IsSorted(xs) {
		t.Errorf("markers not sorted by time: %v", xs)
	}
	if tor1.Markers[0].Class != "k-bfd" || tor1.Markers[3].Class != "k-route" || tor1.Markers[2].Class != "k-other" {
		t.Errorf("marker classes = %s %s %s %s", tor1.Markers[0].Class, tor1.Markers[1].Class, tor1.Markers[2].Class, tor1.Markers[3].Class)
	}
	// The four are within a few pixels: dodged vertically, and every event is
	// either labelled or counted as "(+N)" on the label before it.
	if tor1.Markers[0].Y == tor1.Markers[1].Y || tor1.Markers[1].Y == tor1.Markers[2].Y {
		t.Errorf("clustered markers not dodged: %v %v %v", tor1.Markers[0].Y, tor1.Markers[1].Y, tor1.Markers[2].Y)
	}
	accounted := 0
	for _, m := range tor1.Markers {
		if m.Label == "" {
			continue
		}
		accounted++
		if i := strings.LastIndex(m.Label, "(+"); i >= 0 {
			var n int
			if _, err := fmt.Sscanf(m.Label[i:], "(+%d)", &n); err != nil {
				t.Errorf("label %q: %v", m.Label, err)
			}
			accounted += n
		}
	}
	if accounted != len(tor1.Markers) {
		var labels []string
		for _, m := range tor1.Markers {
			labels = append(labels, m.Label)
		}
		t.Errorf("labels %q account for %d of %d events", labels, accounted, len(tor1.Markers))
	}
	if tor1.Markers[0].Label == "" {
		t.Error("first event of the cluster unlabelled")
	}
	for _, m := range tor1.Markers {
		if !strings.Contains(m.Title, "tor1") || !strings.Contains(m.Title, "+0.7") {
			t.Errorf("hover title %q lacks lane and time", m.Title)
		}
	}
	assertLabelsDoNotOverlap(t, c)

	s := c.Series[0]
	if len(s.YTicks) != 4 || s.YTicks[0].Label != "0" || s.YTicks[3].Label != "3" {
		t.Errorf("y ticks = %+v, want 0..3", s.YTicks)
	}
	y3, y2 := s.YTicks[3].Y, s.YTicks[2].Y
	x0, x071 := chartLeft, tor1.Markers[3].X
	want := "M" + f1(x0) + " " + f1(y3) + "H" + f1(x071) + "V" + f1(y2) + "H" + f1(chartRight)
	if s.Path != want {
		t.Errorf("step path = %q, want %q", s.Path, want)
	}
	if len(s.Hovers) != 2 || !strings.Contains(s.Hovers[1].Title, "10.0.0.11, 10.0.0.13") || !strings.Contains(s.Hovers[0].Title, "-1.000s … +0.710s: 3") {
		t.Errorf("hover titles = %q", []string{s.Hovers[0].Title, s.Hovers[1].Title})
	}
}

// f1 formats like the chart's path coordinates.
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// assertLabelsDoNotOverlap checks that visible labels in the same lane row
// never overlap.
func assertLabelsDoNotOverlap(t *testing.T, c chartView) {
	t.Helper()
	for _, l := range c.Lanes {
		type span struct{ a, b float64 }
		rows := map[float64][]span{}
		for _, m := range l.Markers {
			if m.Label == "" {
				continue
			}
			w := textWidth(m.Label)
			sp := span{m.LX, m.LX + w}
			if m.Anchor == "end" {
				sp = span{m.LX - w, m.LX}
			}
			for _, o := range rows[m.LY] {
				if sp.a < o.b && o.a < sp.b {
					t.Errorf("lane %s: label %q overlaps another", l.Full, m.Label)
				}
			}
			rows[m.LY] = append(rows[m.LY], sp)
		}
	}
}

func TestLayoutTimelineWithoutStart(t *testing.T) {
	first := sampleBase.Add(5 * time.Second)
	c := layoutTimeline(Timeline{Lanes: []Lane{{Name: "a", Events: []Event{
		{At: first.Add(90 * time.Second), Label: "withdraw", Kind: KindRoute},
		{At: first, Label: "fault", Kind: KindFault},
	}}}})
	if c.ZeroX != chartLeft {
		t.Errorf("zero at %v, want the earliest event at the left edge", c.ZeroX)
	}
	if !strings.Contains(c.AxisTitle, "12:00:05.000") {
		t.Errorf("axis title %q does not name the earliest event's time", c.AxisTitle)
	}
	var labels []string
	for _, tk := range c.Ticks {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "0 10 20 30 40 50 60 70 80 90" {
		t.Errorf("ticks = %q", got)
	}
}
