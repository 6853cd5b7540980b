package reports

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Geometry of a distribution histogram, in SVG user units.
const (
	histWidth      = 560.0
	histLeft       = 44.0
	histRight      = histWidth - 16
	histMarkRowH   = 14.0 // one row of mark labels above the plot
	histMarkRows   = 3
	histPlotH      = 120.0
	histAxisHeight = 36.0
)

// histogramView is a distribution laid out for the SVG template.
type histogramView struct {
	Title string
	Unit  string
	frame
	Bars   []histBar
	XTicks []xTick
	YTicks []yTick
	Marks  []histMark
	// GoalOff says where the goal is when it lies far outside the samples
	// and is left off the scale.
	GoalOff string
	// Caption sums the distribution up in words.
	Caption string
	Met     bool
	HasGoal bool
}

type histBar struct {
	X, Y, W, H float64
	Title      string
}

// histMark is a vertical line across the plot: the median, the tail (p99 or
// max) or the goal.
type histMark struct {
	X      float64
	Class  string
	Label  string
	LabelX float64
	LabelY float64
	Anchor string
}

// layoutHistogram draws m's samples as a histogram with the median, the tail
// figure by the p99 rule and the goal marked.
func layoutHistogram(m Measurement) histogramView {
	sum := Summarize(m.Samples)
	bins := Histogram(m.Samples, histogramBins(sum.N))
	plotTop := 6 + histMarkRows*histMarkRowH
	h := histogramView{
		Title: m.Name,
		Unit:  m.Unit,
		frame: frame{Width: histWidth, PlotLeft: histLeft, PlotRight: histRight, PlotTop: plotTop, AxisY: plotTop + histPlotH},
	}
	h.Height = h.AxisY + histAxisHeight
	h.Met, h.HasGoal = m.Met()
	tailStat, tail := sum.Tail()
	h.Caption = fmt.Sprintf("n = %d · median %s · %s %s", sum.N, withUnit(sum.Median, m.Unit), tailLabel(tailStat, sum.N), withUnit(tail, m.Unit))
	if len(bins) == 0 {
		return h
	}

	lo, hi := bins[0].Lo, bins[len(bins)-1].Hi
	if g := m.Goal; g != nil && !math.IsNaN(g.Value) && !math.IsInf(g.Value, 0) {
		// Show the goal on the scale when that does not squash the samples
		// into less than a quarter of the width.
		span := hi - lo
		switch {
		case g.Value >= lo && g.Value <= hi:
		case g.Value > hi && g.Value-lo <= 4*span:
			hi = g.Value + span*0.05
		case g.Value < lo && hi-g.Value <= 4*span:
			lo = g.Value - span*0.05
		default:
			arrow := "→"
			if g.Value < lo {
				arrow = "←"
			}
			h.GoalOff = fmt.Sprintf("goal %s is off the scale %s", prettyOps(goalText(g, m.Unit)), arrow)
		}
	}
	x := func(v float64) float64 { return histLeft + (v-lo)/(hi-lo)*(histRight-histLeft) }

	maxCount := 0
	for _, b := range bins {
		maxCount = max(maxCount, b.Count)
	}
	ticks := yTicks(0, float64(maxCount), true)
	top := ticks[len(ticks)-1]
	y := func(c float64) float64 { return h.AxisY - c/top*histPlotH }
	for _, t := range ticks {
		h.YTicks = append(h.YTicks, yTick{Y: y(t), Label: formatNumber(t)})
	}
	for _, b := range bins {
		if b.Count == 0 {
			continue
		}
		h.Bars = append(h.Bars, histBar{
			X: x(b.Lo) + 0.5, W: max(x(b.Hi)-x(b.Lo)-1, 1),
			Y: y(float64(b.Count)), H: h.AxisY - y(float64(b.Count)),
			Title: fmt.Sprintf("%s … %s %s: %d of %d", formatNumber(b.Lo), formatNumber(b.Hi), m.Unit, b.Count, sum.N),
		})
	}
	step := niceStep((hi - lo) / 6)
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+1e-9; v += step {
		h.XTicks = append(h.XTicks, xTick{X: x(v), Label: formatNumber(math.Round(v/step) * step)})
	}

	marks := []histMark{
		{X: x(sum.Median), Class: "hm-median", Label: "median " + formatNumber(sum.Median)},
		{X: x(tail), Class: "hm-tail", Label: tailLabel(tailStat, sum.N) + " " + formatNumber(tail)},
	}
	if m.Goal != nil && h.GoalOff == "" && !math.IsNaN(m.Goal.Value) {
		marks = append(marks, histMark{X: x(m.Goal.Value), Class: "hm-goal", Label: "goal " + prettyOps(goalText(m.Goal, ""))})
	}
	marks = slices.DeleteFunc(marks, func(m histMark) bool { return math.IsNaN(m.X) || math.IsInf(m.X, 0) })
	h.Marks = placeMarkLabels(marks, plotTop)
	return h
}

// tailLabel names the tail figure; a maximum stands in for a p99 below
// MinSamplesForP99 samples, and says so.
func tailLabel(stat string, n int) string {
	if stat == StatMax && n > 0 && n < MinSamplesForP99 {
		return fmt.Sprintf("max (n < %d, no p99)", MinSamplesForP99)
	}
	return stat
}

// placeMarkLabels puts each mark's label in the first row above the plot
// where it does not overlap a label placed before it, left to right.
func placeMarkLabels(marks []histMark, plotTop float64) []histMark {
	slices.SortStableFunc(marks, func(a, b histMark) int { return cmp.Compare(a.X, b.X) })
	rowEnd := make([]float64, histMarkRows)
	for i := range rowEnd {
		rowEnd[i] = math.Inf(-1)
	}
	for i := range marks {
		m := &marks[i]
		w := textWidth(m.Label)
		start, anchor := m.X+3, "start"
		if start+w > histWidth-2 {
			start, anchor = m.X-3-w, "end"
		}
		row := histMarkRows - 1
		for r := range rowEnd {
			if start >= rowEnd[r]+4 {
				row = r
				break
			}
		}
		rowEnd[row] = start + w
		m.Anchor, m.LabelX = anchor, m.X+3
		if anchor == "end" {
			m.LabelX = m.X - 3
		}
		m.LabelY = plotTop - 4 - float64(row)*histMarkRowH
	}
	return marks
}
