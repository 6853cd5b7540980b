package reports

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Geometry of a timeline chart, in SVG user units. The SVG scales to the
// page width; these are chosen for a page about 1150px wide.
const (
	chartWidth    = 1120.0
	chartLeft     = 150.0 // lane names and y tick labels live left of this
	chartRight    = chartWidth - 24
	chartTop      = 6.0
	laneHeight    = 58.0
	dodgeDistance = 9.0 // markers closer than this (x) are dodged vertically
	seriesGap     = 14.0
	seriesTitleH  = 22.0
	seriesPlotH   = 96.0
	seriesPadTop  = 16.0 // room for the value label over the highest step
	axisHeight    = 46.0
	labelFontPx   = 11.0
	charWidthPx   = 6.3 // rough advance of one character at labelFontPx
	maxLabelRunes = 34
	maxNameRunes  = 22
)

// chartView is a timeline laid out for the SVG template: every coordinate is
// computed here so the template only places elements.
type chartView struct {
	Title string
	frame
	ZeroX      float64
	ShowZero   bool
	AxisTitle  string
	Ticks      []xTick
	Faults     []faultLine
	Lanes      []laneView
	Series     []seriesView
	Legend     []legendItem
	Empty      bool
	EmptyY     float64
	PlotHeight float64
}

// frame is the geometry every SVG chart shares: its size, the plot area's
// left, right and top edges, and the y of the x axis.
type frame struct {
	Width     float64
	Height    float64
	PlotLeft  float64
	PlotRight float64
	PlotTop   float64
	AxisY     float64
}

type xTick struct {
	X     float64
	Label string
}

type faultLine struct {
	X     float64
	Title string
}

type laneView struct {
	Name    string // possibly shortened
	Full    string
	Top     float64
	Mid     float64
	Height  float64
	Stripe  bool
	Markers []markerView
}

type markerView struct {
	X, Y   float64
	Path   string
	Class  string
	Title  string
	Label  string // visible label; empty when it would not fit
	LX, LY float64
	Anchor string

	// label placement bookkeeping, see layoutLane
	row           int
	start, before float64 // label's left edge; row's right edge before it
	text          string  // label without the "(+N)" suffix
	more          int     // hidden labels counted in the suffix
	rowEnd        *float64
}

type seriesView struct {
	Name    string
	TitleY  float64
	Top     float64 // plot area
	Bottom  float64
	Class   string
	YTicks  []yTick
	Path    string
	Hovers  []hoverRect
	Dots    []dotView
	Labels  []textView
	NoPoint bool
}

type yTick struct {
	Y     float64
	Label string
}

type hoverRect struct {
	X, Y, W, H float64
	Title      string
}

type dotView struct {
	X, Y  float64
	Title string
}

type textView struct {
	X, Y float64
	Text string
}

type legendItem struct {
	Kind  string
	Class string
}

// dodgeOffsets are the vertical offsets of successive markers in a cluster.
var dodgeOffsets = []float64{0, -9, 9}

// knownKinds orders the event kinds in the legend.
var knownKinds = []string{KindFault, KindBGP, KindBFD, KindRoute, KindInfo}

func kindClass(kind string) string {
	if slices.Contains(knownKinds, kind) {
		return "k-" + kind
	}
	return "k-other"
}

// markerPath draws the marker shape of an event kind centred on (x, y), so
// kinds differ by shape as well as colour.
func markerPath(kind string, x, y float64) string {
	switch kind {
	case KindFault: // diamond
		r := 7.0
		return fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ", x, y-r, x+r, y, x, y+r, x-r, y)
	case KindBFD: // triangle
		r := 6.5
		return fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fZ", x, y-r, x+r, y+r*0.75, x-r, y+r*0.75)
	case KindRoute: // square
		r := 5.0
		return fmt.Sprintf("M%.1f %.1fh%.1fv%.1fh%.1fZ", x-r, y-r, 2*r, 2*r, -2*r)
	case KindInfo: // small circle
		return circlePath(x, y, 4)
	case KindBGP:
		return circlePath(x, y, 5.5)
	}
	// anything else: a plus sign
	r, w := 6.0, 1.6
	return fmt.Sprintf("M%.1f %.1fh%.1fv%.1fh%.1fv%.1fh%.1fv%.1fh%.1fv%.1fh%.1fv%.1fh%.1fZ",
		x-w, y-r, 2*w, r-w, r-w, 2*w, -(r - w), r-w, -2*w, -(r - w), -(r - w), -2*w, r-w)
}

func circlePath(x, y, r float64) string {
	return fmt.Sprintf("M%.1f %.1fa%.1f %.1f 0 1 0 %.1f 0a%.1f %.1f 0 1 0 %.1f 0Z", x-r, y, r, r, 2*r, r, r, -2*r)
}

// xScale maps seconds since the timeline's start to x.
type xScale struct {
	lo, hi float64
}

func (s xScale) x(sec float64) float64 {
	return chartLeft + (sec-s.lo)/(s.hi-s.lo)*(chartRight-chartLeft)
}

// timelineZero is the zero of the x axis: Start, or the earliest timestamp.
func timelineZero(t Timeline) time.Time {
	if !t.Start.IsZero() {
		return t.Start
	}
	var first time.Time
	visit := func(at time.Time) {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	for _, l := range t.Lanes {
		for _, e := range l.Events {
			visit(e.At)
		}
	}
	for _, s := range t.Series {
		for _, p := range s.Points {
			visit(p.At)
		}
	}
	return first
}

// layoutTimeline computes the chart of t.
func layoutTimeline(t Timeline) chartView {
	zero := timelineZero(t)
	rel := func(at time.Time) float64 { return at.Sub(zero).Seconds() }

	lo, hi, seen := 0.0, 0.0, false
	see := func(v float64) {
		lo, hi, seen = min(lo, v), max(hi, v), true
	}
	kindsSeen := map[string]bool{}
	for _, l := range t.Lanes {
		for _, e := range l.Events {
			see(rel(e.At))
			kindsSeen[kindClass(e.Kind)] = true
		}
	}
	for _, s := range t.Series {
		for _, p := range s.Points {
			see(rel(p.At))
		}
	}
	if hi-lo <= 0 {
		hi = lo + 1
	}
	hi += (hi - lo) * 0.04 // room for the last marker and its label
	step := niceStep((hi - lo) / 10)
	sc := xScale{lo: lo, hi: hi}

	c := chartView{
		Title:     t.Title,
		frame:     frame{Width: chartWidth, PlotLeft: chartLeft, PlotRight: chartRight, PlotTop: chartTop},
		ZeroX:     sc.x(0),
		ShowZero:  lo < 0,
		AxisTitle: "seconds since " + formatTime(zero),
	}
	for _, k := range knownKinds {
		if kindsSeen["k-"+k] {
			c.Legend = append(c.Legend, legendItem{Kind: k, Class: "k-" + k})
		}
	}
	if kindsSeen["k-other"] {
		c.Legend = append(c.Legend, legendItem{Kind: "other", Class: "k-other"})
	}

	y := chartTop
	for i, l := range t.Lanes {
		c.Lanes = append(c.Lanes, layoutLane(l, i, y, sc, zero))
		for _, e := range l.Events {
			if e.Kind == KindFault {
				c.Faults = append(c.Faults, faultLine{
					X:     sc.x(rel(e.At)),
					Title: fmt.Sprintf("%s %s: %s", l.Name, formatOffset(e.At, zero), e.Label),
				})
			}
		}
		y += laneHeight
	}
	for i, s := range t.Series {
		y += seriesGap
		c.Series = append(c.Series, layoutSeries(s, i, y, sc, zero))
		y += seriesTitleH + seriesPlotH
	}
	if !seen {
		c.Empty = true
		c.EmptyY = y + 28
		y += 44
	}
	c.AxisY = y + 4
	c.PlotHeight = c.AxisY - chartTop
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+1e-9; v += step {
		c.Ticks = append(c.Ticks, xTick{X: sc.x(v), Label: fmt.Sprintf("%.*f", decimals, v+0)})
	}
	for i := range c.Ticks { // avoid "-0"
		if c.Ticks[i].Label == fmt.Sprintf("-%.*f", decimals, 0.0) {
			c.Ticks[i].Label = fmt.Sprintf("%.*f", decimals, 0.0)
		}
	}
	c.Height = c.AxisY + axisHeight
	return c
}

func layoutLane(l Lane, index int, top float64, sc xScale, zero time.Time) laneView {
	lv := laneView{
		Name:   shorten(l.Name, maxNameRunes),
		Full:   l.Name,
		Top:    top,
		Mid:    top + laneHeight/2,
		Height: laneHeight,
		Stripe: index%2 == 0,
	}
	events := slices.Clone(l.Events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	// Visible labels go above the marker, or below when the space above is
	// taken; when both are taken the label is left to the hover title and the
	// last visible label nearby says how many more there are. Markers closer
	// than a marker's width are dodged up and down so none hides another.
	rowEnd := [2]float64{math.Inf(-1), math.Inf(-1)}
	rowY := [2]float64{lv.Mid - 14, lv.Mid + 23}
	clusterX, clusterN := math.Inf(-1), 0
	for _, e := range events {
		x := sc.x(e.At.Sub(zero).Seconds())
		if x-clusterX < dodgeDistance {
			clusterN++
		} else {
			clusterX, clusterN = x, 0
		}
		y := lv.Mid + dodgeOffsets[clusterN%len(dodgeOffsets)]
		m := markerView{
			X: x, Y: y,
			Path:  markerPath(e.Kind, x, y),
			Class: kindClass(e.Kind),
			Title: fmt.Sprintf("%s  %s\n%s  [%s]", l.Name, formatOffset(e.At, zero), e.Label, e.Kind),
		}
		text := shorten(e.Label, maxLabelRunes)
		w := textWidth(text)
		start, anchor, lx := x+9, "start", x+9
		if start+w > chartWidth-4 {
			start, anchor, lx = x-9-w, "end", x-9
		}
		placed := false
		for row := range rowEnd {
			if text != "" && start >= rowEnd[row]+6 && start >= 4 {
				m.Label, m.LX, m.LY, m.Anchor = text, lx, rowY[row], anchor
				m.row, m.start, m.before, m.text, m.rowEnd = row, start, rowEnd[row], text, &rowEnd[row]
				rowEnd[row] = start + w
				placed = true
				break
			}
		}
		if !placed {
			countHidden(lv.Markers, x)
		}
		lv.Markers = append(lv.Markers, m)
	}
	return lv
}

// countHidden records an event at x whose label did not fit as "(+N)" on the
// nearest visible label close by that still fits its row when longer: it grows
// right (anchor start) or left (anchor end).
func countHidden(markers []markerView, x float64) {
	for i := len(markers) - 1; i >= 0 && x-markers[i].X < 3*dodgeDistance; i-- {
		m := &markers[i]
		if m.Label == "" {
			continue
		}
		longer := fmt.Sprintf("%s (+%d)", m.text, m.more+1)
		grow := textWidth(longer) - textWidth(m.Label)
		switch {
		case m.Anchor == "start" && m.start+textWidth(longer) <= chartWidth-4 && m.start+textWidth(m.Label) >= *m.rowEnd-0.01:
			*m.rowEnd += grow // only when it is still the row's last label
		case m.Anchor == "end" && m.start-grow >= m.before+6 && m.start-grow >= 4:
			m.start -= grow
		default:
			continue
		}
		m.Label, m.more = longer, m.more+1
		return
	}
}

func layoutSeries(s Series, index int, top float64, sc xScale, zero time.Time) seriesView {
	sv := seriesView{
		Name:   s.Name,
		TitleY: top + 14,
		Top:    top + seriesTitleH,
		Bottom: top + seriesTitleH + seriesPlotH,
		Class:  fmt.Sprintf("s%d", index%6),
	}
	points := slices.Clone(s.Points)
	slices.SortStableFunc(points, func(a, b Point) int { return a.At.Compare(b.At) })
	var vals []float64
	for _, p := range points {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			vals = append(vals, p.Value)
		}
	}
	if len(vals) == 0 {
		sv.NoPoint = true
		return sv
	}
	lo, hi := min(0, slices.Min(vals)), slices.Max(vals)
	ticks := yTicks(lo, hi, allIntegers(vals))
	lo, hi = ticks[0], ticks[len(ticks)-1]
	plotTop := sv.Top + seriesPadTop
	yOf := func(v float64) float64 { return sv.Bottom - (v-lo)/(hi-lo)*(sv.Bottom-plotTop) }
	for _, v := range ticks {
		sv.YTicks = append(sv.YTicks, yTick{Y: yOf(v), Label: formatNumber(v)})
	}

	var path strings.Builder
	end := sc.x(sc.hi)
	first := true
	for i, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		x, y := sc.x(p.At.Sub(zero).Seconds()), yOf(p.Value)
		next, until := end, "end"
		if i+1 < len(points) {
			next = sc.x(points[i+1].At.Sub(zero).Seconds())
			until = formatOffset(points[i+1].At, zero)
		}
		if first {
			fmt.Fprintf(&path, "M%.1f %.1f", x, y)
			first = false
		} else {
			fmt.Fprintf(&path, "V%.1f", y)
		}
		fmt.Fprintf(&path, "H%.1f", next)

		title := fmt.Sprintf("%s\n%s … %s: %s", s.Name, formatOffset(p.At, zero), until, formatNumber(p.Value))
		if p.Label != "" {
			title += "\n" + p.Label
		}
		sv.Hovers = append(sv.Hovers, hoverRect{X: x, Y: sv.Top, W: max(next-x, 2), H: sv.Bottom - sv.Top, Title: title})
		sv.Dots = append(sv.Dots, dotView{X: x, Y: y, Title: title})

		room := next - x - 10
		value := formatNumber(p.Value)
		full := value
		if p.Label != "" {
			full = value + " · " + shorten(p.Label, 60)
		}
		switch {
		case textWidth(full) <= room:
			sv.Labels = append(sv.Labels, textView{X: x + 5, Y: y - 5, Text: full})
		case textWidth(value) <= room:
			sv.Labels = append(sv.Labels, textView{X: x + 5, Y: y - 5, Text: value})
		}
	}
	sv.Path = path.String()
	return sv
}

// yTicks returns tick values covering [lo, hi]; the first and last are the
// axis bounds. Integer data (e.g. next-hop counts) gets integer ticks.
func yTicks(lo, hi float64, integers bool) []float64 {
	if hi-lo <= 0 {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 4)
	if integers && hi-lo <= 5 {
		step = 1 // small counts (next-hops): every value gets a tick
	} else if integers {
		step = max(1, math.Ceil(step))
		if (hi-lo)/step > 6 {
			step = niceStep((hi - lo) / 4)
			step = max(1, math.Round(step))
		}
	}
	start := math.Floor(lo/step+1e-9) * step
	stop := math.Ceil(hi/step-1e-9) * step
	var out []float64
	for v := start; v <= stop+step*1e-6; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if len(out) < 2 {
		out = append(out, start+step)
	}
	return out
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func allIntegers(vs []float64) bool {
	for _, v := range vs {
		if v != math.Trunc(v) {
			return false
		}
	}
	return true
}

func textWidth(s string) float64 {
	return float64(utf8.RuneCountInString(s))*charWidthPx + 2
}

// shorten cuts s to at most n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
