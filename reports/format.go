package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// formatNumber prints v compactly: integers without decimals, others with at
// most three decimals (or four significant digits when tiny).
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// formatDuration prints d for people: "734ms", "12.345s", "2m03.4s".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return formatNumber(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		return fmt.Sprintf("%.3fs", d.Seconds())
	case d < time.Hour:
		m := d / time.Minute
		return fmt.Sprintf("%dm%04.1fs", m, (d - m*time.Minute).Seconds())
	}
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	return fmt.Sprintf("%dh%02dm%02.0fs", h, m, (d - h*time.Hour - m*time.Minute).Seconds())
}

// formatOffset prints at relative to base as "+1.234s" (or "-0.100s").
func formatOffset(at, base time.Time) string {
	d := at.Sub(base)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%.3fs", sign, d.Seconds())
}

// formatTime prints a wall-clock time in UTC with milliseconds.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 MST")
}

// stepBase is the time steps of s are shown relative to: its start, or else
// its first step.
func stepBase(s Scenario) time.Time {
	if !s.Started.IsZero() || len(s.Steps) == 0 {
		return s.Started
	}
	return s.Steps[0].At
}

// withUnit joins a formatted number and a unit.
func withUnit(v float64, unit string) string {
	if unit == "" {
		return formatNumber(v)
	}
	return formatNumber(v) + " " + unit
}

// goalText prints a goal as "<= 900 ms".
func goalText(g *Goal, unit string) string {
	if g == nil {
		return ""
	}
	return g.Op + " " + withUnit(g.Value, unit)
}

// measurementText is the one-line plain-text form of a measurement.
func measurementText(m Measurement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", m.Name, withUnit(m.Value, m.Unit))
	if m.Statistic != "" {
		fmt.Fprintf(&b, " (%s)", m.Statistic)
	}
	if met, ok := m.Met(); ok {
		verdict := "met"
		if !met {
			verdict = "NOT met"
		}
		fmt.Fprintf(&b, " (goal %s: %s)", goalText(m.Goal, m.Unit), verdict)
	}
	if len(m.Samples) > 0 {
		s := Summarize(m.Samples)
		fmt.Fprintf(&b, " [n=%d min=%s median=%s ", s.N, formatNumber(s.Min), formatNumber(s.Median))
		if s.N >= MinSamplesForP99 {
			fmt.Fprintf(&b, "p99=%s ", formatNumber(s.P99))
		}
		fmt.Fprintf(&b, "max=%s]", formatNumber(s.Max))
	}
	return b.String()
}

// firstLine is the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
