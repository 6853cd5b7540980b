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
