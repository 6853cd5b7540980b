package reports

import (
	"math"
	"slices"
)

// Bin is one bar of a histogram: the samples v with Lo <= v < Hi.
type Bin struct {
	// Lo is the bin's inclusive lower edge.
	Lo float64
	// Hi is the bin's exclusive upper edge.
	Hi float64
	// Count is the number of samples in the bin.
	Count int
}

// Histogram bins samples into equal bins whose width is 1, 2 or 5 times a
// power of ten and whose edges are multiples of that width, so the axis reads
// in round numbers. about is the number of bins wanted; the result has from
// about/2.5 to about+2 bins, covering the smallest to the largest sample. NaN and infinite samples are ignored; with none left the result is
// empty. All samples equal give one bin around them.
func Histogram(samples []float64, about int) []Bin {
	var vals []float64
	for _, v := range samples {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	about = max(about, 1)
	lo, hi := slices.Min(vals), slices.Max(vals)
	var width float64
	if hi == lo {
		width = niceStep(math.Max(math.Abs(lo), 1) / 10)
	} else {
		width = niceStep((hi - lo) / float64(about))
	}
	start := math.Floor(lo/width+1e-9) * width
	n := int(math.Floor((hi-start)/width+1e-9)) + 1
	bins := make([]Bin, n)
	for i := range bins {
		bins[i] = Bin{Lo: start + float64(i)*width, Hi: start + float64(i+1)*width}
	}
	for _, v := range vals {
		i := int(math.Floor((v-start)/width + 1e-9))
		bins[max(0, min(i, n-1))].Count++
	}
	return bins
}

// histogramBins is how many bins a distribution of n samples gets: about
// the square root of n, at least 5 and at most 30.
func histogramBins(n int) int {
	return max(5, min(30, int(math.Ceil(math.Sqrt(float64(n))))))
}
