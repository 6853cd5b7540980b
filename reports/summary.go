package reports

import (
	"math"
	"slices"
)

// Summary describes a set of samples.
type Summary struct {
	// N is the number of samples used (NaN samples are ignored).
	N int `json:"n"`
	// Min is the smallest sample.
	Min float64 `json:"min"`
	// Max is the largest sample.
	Max float64 `json:"max"`
	// Median is the middle sample, or the mean of the two middle samples when
	// N is even.
	Median float64 `json:"median"`
	// P99 is the 99th percentile by the nearest-rank method: the smallest
	// sample such that at least 99% of the samples are less or equal.
	P99 float64 `json:"p99"`
	// Mean is the arithmetic mean.
	Mean float64 `json:"mean"`
}

// Summarize computes a Summary of samples without modifying them. NaN samples
// are ignored; with no samples left, the zero Summary is returned.
func Summarize(samples []float64) Summary {
	s := make([]float64, 0, len(samples))
	for _, v := range samples {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	n := len(s)
	if n == 0 {
		return Summary{}
	}
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{
		N:      n,
		Min:    s[0],
		Max:    s[n-1],
		Median: median,
		P99:    s[nearestRank(0.99, n)-1],
		Mean:   sum / float64(n),
	}
}

// nearestRank is the 1-based rank ceil(p*n), clamped to [1, n]. The product is
// rounded to 9 decimals first so that e.g. 0.99*100 is not taken as 99.0000001.
func nearestRank(p float64, n int) int {
	x := math.Round(p*float64(n)*1e9) / 1e9
	r := int(math.Ceil(x))
	return max(1, min(r, n))
}

// MinSamplesForP99 is the number of samples from which a p99 is reported.
// Below it the 99th percentile is not meaningful (with 20 samples it is the
// maximum anyway), so reports show the maximum instead and say so.
const MinSamplesForP99 = 100

// The figures of a distribution a Measurement's Value can be.
const (
	// StatP99 is the 99th percentile (nearest rank).
	StatP99 = "p99"
	// StatMax is the largest sample.
	StatMax = "max"
	// StatMedian is the median.
	StatMedian = "median"
)

// Tail is the distribution's reported tail figure: the p99 over at least
// MinSamplesForP99 samples, the maximum below that. stat (StatP99 or StatMax)
// says which.
func (s Summary) Tail() (stat string, v float64) {
	if s.N >= MinSamplesForP99 {
		return StatP99, s.P99
	}
	return StatMax, s.Max
}

// Distribution is a measurement of repeated trials (e.g. detection times over
// 30 faults): Value is the tail figure by the p99 rule (see Summary.Tail) and
// the goal is checked against it. samples are copied, leaving out NaN and
// infinite ones, which JSON cannot hold.
func Distribution(name, unit string, samples []float64, goal *Goal) Measurement {
	var finite []float64
	for _, v := range samples {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			finite = append(finite, v)
		}
	}
	stat, v := Summarize(finite).Tail()
	return Measurement{
		Name:      name,
		Unit:      unit,
		Value:     v,
		Statistic: stat,
		Samples:   finite,
		Goal:      goal,
	}
}

// CheckedOn returns m with its Value (the figure its goal is checked
// against) set to another statistic of its samples: StatMedian, StatMax, or
// StatP99, which the p99 rule turns into StatMax under MinSamplesForP99
// samples. For a bound every trial must meet:
//
//	reports.Distribution("thaw → back", "ms", samples, reports.AtMost(3000)).CheckedOn(reports.StatMax)
//
// A measurement without samples, or an unknown stat, is returned unchanged.
func (m Measurement) CheckedOn(stat string) Measurement {
	s := Summarize(m.Samples)
	if s.N == 0 {
		return m
	}
	switch stat {
	case StatMedian:
		m.Value, m.Statistic = s.Median, StatMedian
	case StatMax:
		m.Value, m.Statistic = s.Max, StatMax
	case StatP99:
		m.Statistic, m.Value = s.Tail()
	}
	return m
}
