package reports

import (
	"math"
	"slices"
	"testing"
)

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		want    Summary
	}{
		{"empty", nil, Summary{}},
		{"only NaN", []float64{math.NaN()}, Summary{}},
		{"single", []float64{7}, Summary{N: 1, Min: 7, Max: 7, Median: 7, P99: 7, Mean: 7}},
		{"odd count takes the middle", []float64{5, 1, 3}, Summary{N: 3, Min: 1, Max: 5, Median: 3, P99: 5, Mean: 3}},
		{"even count averages the middle two", []float64{4, 1, 10, 2}, Summary{N: 4, Min: 1, Max: 10, Median: 3, P99: 10, Mean: 4.25}},
		// nearest rank: ceil(0.99*100) = 99 → the 99th smallest.
		{"100 samples p99 is the 99th", seq(1, 100), Summary{N: 100, Min: 1, Max: 100, Median: 50.5, P99: 99, Mean: 50.5}},
		// ceil(0.99*200) = 198.
		{"200 samples p99 is the 198th", seq(1, 200), Summary{N: 200, Min: 1, Max: 200, Median: 100.5, P99: 198, Mean: 100.5}},
		// ceil(0.99*101) = ceil(99.99) = 100.
		{"101 samples p99 is the 100th", seq(1, 101), Summary{N: 101, Min: 1, Max: 101, Median: 51, P99: 100, Mean: 51}},
		// ceil(0.99*20) = ceil(19.8) = 20: with few samples p99 is the max.
		{"20 samples p99 is the max", seq(1, 20), Summary{N: 20, Min: 1, Max: 20, Median: 10.5, P99: 20, Mean: 10.5}},
		{"NaN ignored", []float64{2, math.NaN(), 4}, Summary{N: 2, Min: 2, Max: 4, Median: 3, P99: 4, Mean: 3}},
		{"negative values", []float64{-3, -1, -2}, Summary{N: 3, Min: -3, Max: -1, Median: -2, P99: -1, Mean: -2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.samples)
			got := Summarize(in)
			if got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.samples, got, tt.want)
			}
			if !slices.EqualFunc(in, tt.samples, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
				t.Errorf("Summarize modified its input: %v, was %v", in, tt.samples)
			}
		})
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		p    float64
		n    int
		want int
	}{
		{0.99, 1, 1}, {0.99, 100, 99}, {0.99, 1000, 990}, {0.99, 1001, 991},
		{0.5, 4, 2}, {0.5, 5, 3}, {0, 10, 1}, {1, 10, 10},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.p, tt.n); got != tt.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tt.p, tt.n, got, tt.want)
		}
	}
}
