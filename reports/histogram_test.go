package reports

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestHistogram(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		about   int
		want    []Bin
	}{
		{"empty", nil, 10, nil},
		{"only NaN and Inf", []float64{math.NaN(), math.Inf(1), math.Inf(-1)}, 10, nil},
		{"one sample: a tenth of its size, rounded", []float64{712}, 10, []Bin{{700, 800, 1}}},
		{"all equal", []float64{3, 3, 3}, 5, []Bin{{3, 3.5, 3}}},
		{"all zero", []float64{0, 0}, 5, []Bin{{0, 0.1, 2}}},
		// span 9 / 10 bins → width 1 (0.9 rounded up); 0..9 in ten bins.
		{"integers", seq(0, 9), 10, []Bin{{0, 1, 1}, {1, 2, 1}, {2, 3, 1}, {3, 4, 1}, {4, 5, 1}, {5, 6, 1}, {6, 7, 1}, {7, 8, 1}, {8, 9, 1}, {9, 10, 1}}},
		// A sample on an edge goes into the bin it starts.
		{"edges are inclusive below", []float64{10, 20, 20, 30}, 2, []Bin{{10, 20, 1}, {20, 30, 2}, {30, 40, 1}}},
		// span 95 / 5 = 19 → width 20; edges at multiples of 20.
		{"round edges", []float64{603, 650, 651, 698}, 5, []Bin{{600, 620, 1}, {620, 640, 0}, {640, 660, 2}, {660, 680, 0}, {680, 700, 1}}},
		{"negative values", []float64{-1.5, -0.2, 0.4}, 4, []Bin{{-1.5, -1, 1}, {-1, -0.5, 0}, {-0.5, 0, 1}, {0, 0.5, 1}}},
		{"NaN ignored", []float64{1, math.NaN(), 2}, 1, []Bin{{1, 2, 1}, {2, 3, 1}}},
		{"about below 1 taken as 1", []float64{1, 2}, 0, []Bin{{1, 2, 1}, {2, 3, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Histogram(tt.samples, tt.about)
			if len(got) != len(tt.want) {
				t.Fatalf("Histogram = %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i].Lo-tt.want[i].Lo) > 1e-9 || math.Abs(got[i].Hi-tt.want[i].Hi) > 1e-9 || got[i].Count != tt.want[i].Count {
					t.Errorf("bin %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestHistogramProperties checks, over many sizes and spreads, that every
// finite sample lands in exactly one bin, the bins tile the range without
// gaps, and their number stays near the one asked for.
func TestHistogramProperties(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		n := int(seed * 7)
		samples := trials(seed, n, 500, float64(seed*seed))
		for _, about := range []int{1, 5, 12, 30} {
			bins := Histogram(samples, about)
			total := 0
			for i, b := range bins {
				total += b.Count
				if b.Hi <= b.Lo || (i > 0 && math.Abs(bins[i-1].Hi-b.Lo) > 1e-9) {
					t.Fatalf("seed %d: bins %v do not tile", seed, bins)
				}
			}
			if total != n {
				t.Errorf("seed %d about %d: %d samples binned, want %d", seed, about, total, n)
			}
			if bins[0].Lo > slices.Min(samples) || bins[len(bins)-1].Hi <= slices.Max(samples) {
				t.Errorf("seed %d: bins %v…%v miss the range %v…%v", seed, bins[0].Lo, bins[len(bins)-1].Hi, slices.Min(samples), slices.Max(samples))
			}
			if slices.Min(samples) != slices.Max(samples) && (float64(len(bins)) < float64(about)/2.5-1 || len(bins) > about+2) {
				t.Errorf("seed %d about %d: %d bins", seed, about, len(bins))
			}
		}
	}
}

func TestTailRule(t *testing.T) {
	tests := []struct {
		name     string
		samples  []float64
		wantStat string
		want     float64
	}{
		{"no samples", nil, StatMax, 0},
		{"one sample", []float64{5}, StatMax, 5},
		{"99 samples: max", seq(1, 99), StatMax, 99},
		{"100 samples: p99", seq(1, 100), StatP99, 99},
		{"1000 samples: p99", seq(1, 1000), StatP99, 990},
		{"99 samples and a NaN: still max", append(seq(1, 99), math.NaN()), StatMax, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stat, v := Summarize(tt.samples).Tail()
			if stat != tt.wantStat || v != tt.want {
				t.Errorf("Tail = %s %v, want %s %v", stat, v, tt.wantStat, tt.want)
			}
			m := Distribution("d", "ms", tt.samples, AtMost(tt.want))
			if m.Statistic != tt.wantStat || m.Value != tt.want || len(m.Samples) != Summarize(tt.samples).N {
				t.Errorf("Distribution = %+v", m)
			}
			met, has := m.Met()
			if wantMet := Summarize(tt.samples).N > 0; !has || met != wantMet {
				t.Errorf("Met = %v %v, want %v (a distribution without samples never meets its goal)", met, has, wantMet)
			}
		})
	}
	samples := []float64{3, 1, 2}
	m := Distribution("d", "ms", samples, nil)
	samples[0] = 100
	if m.Samples[0] != 3 {
		t.Error("Distribution shares the caller's slice")
	}
}

func TestLayoutHistogram(t *testing.T) {
	tests := []struct {
		name      string
		m         Measurement
		marks     []string // mark classes, left to right
		tailLabel string
		goalOff   bool
	}{
		{"under 100 samples the max is marked and labelled", Distribution("d", "ms", trials(1, 30, 700, 50), AtMost(900)),
			[]string{"hm-median", "hm-tail", "hm-goal"}, "max (n < 100, no p99)", false},
		{"from 100 samples the p99", Distribution("d", "ms", trials(1, 150, 700, 50), AtMost(900)),
			[]string{"hm-median", "hm-tail", "hm-goal"}, "p99", false},
		{"goal below the samples", Distribution("d", "flows", trials(1, 20, 100, 10), AtLeast(80)),
			[]string{"hm-goal", "hm-median", "hm-tail"}, "max (n < 100, no p99)", false},
		{"goal far away is left off the scale", Distribution("d", "s", trials(1, 20, 0.7, 0.1), AtMost(90)),
			[]string{"hm-median", "hm-tail"}, "max (n < 100, no p99)", true},
		{"no goal", Distribution("d", "ms", []float64{5, 5, 5}, nil),
			[]string{"hm-median", "hm-tail"}, "max (n < 100, no p99)", false},
		{"infinite sample: no mark at infinity", Measurement{Name: "d", Samples: []float64{1, 2, math.Inf(1)}},
			[]string{"hm-median"}, "max (n < 100, no p99)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := layoutHistogram(tt.m)
			var classes []string
			for i, mk := range h.Marks {
				classes = append(classes, mk.Class)
				if mk.X < h.PlotLeft-1e-9 || mk.X > h.PlotRight+1e-9 {
					t.Errorf("mark %s at %v outside the plot %v…%v", mk.Class, mk.X, h.PlotLeft, h.PlotRight)
				}
				if mk.LabelY >= h.PlotTop || mk.LabelY < 0 {
					t.Errorf("mark %s label at y %v, want above the plot (top %v)", mk.Class, mk.LabelY, h.PlotTop)
				}
				if i > 0 && mk.X < h.Marks[i-1].X {
					t.Errorf("marks not in x order")
				}
				if mk.Class == "hm-tail" && !strings.HasPrefix(mk.Label, tt.tailLabel+" ") {
					t.Errorf("tail mark %q, want it labelled %q", mk.Label, tt.tailLabel)
				}
			}
			if !slices.Equal(classes, tt.marks) {
				t.Errorf("marks %q, want %q", classes, tt.marks)
			}
			if (h.GoalOff != "") != tt.goalOff {
				t.Errorf("goal off the scale = %q, want %v", h.GoalOff, tt.goalOff)
			}
			if !strings.Contains(h.Caption, tt.tailLabel) {
				t.Errorf("caption %q lacks %q", h.Caption, tt.tailLabel)
			}
			sum := 0
			for _, b := range Histogram(tt.m.Samples, histogramBins(Summarize(tt.m.Samples).N)) {
				if b.Count > 0 {
					sum++
				}
			}
			if len(h.Bars) != sum {
				t.Errorf("%d bars, want one per non-empty bin (%d)", len(h.Bars), sum)
			}
			for _, b := range h.Bars {
				if b.X < h.PlotLeft || b.X+b.W > h.PlotRight+1e-9 || b.Y < h.PlotTop || math.Abs(b.Y+b.H-h.AxisY) > 1e-9 {
					t.Errorf("bar %+v outside the plot", b)
				}
			}
		})
	}
}

func TestCheckedOn(t *testing.T) {
	tests := []struct {
		name     string
		m        Measurement
		stat     string
		wantStat string
		want     float64
		met      bool
	}{
		{"every trial: max of 150", Distribution("d", "ms", seq(1, 150), AtMost(149)), StatMax, StatMax, 150, false},
		{"median", Distribution("d", "ms", seq(1, 150), AtMost(149)), StatMedian, StatMedian, 75.5, true},
		{"p99 from 100 samples", Distribution("d", "ms", seq(1, 100), nil).CheckedOn(StatMax), StatP99, StatP99, 99, false},
		{"p99 under 100 samples is the max", Distribution("d", "ms", seq(1, 50), nil), StatP99, StatMax, 50, false},
		{"unknown stat: unchanged", Distribution("d", "ms", seq(1, 50), nil), "p50", StatMax, 50, false},
		{"no samples: unchanged", Measurement{Name: "d", Value: 7, Goal: AtMost(8)}, StatMax, "", 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.CheckedOn(tt.stat)
			if got.Statistic != tt.wantStat || got.Value != tt.want || len(got.Samples) != len(tt.m.Samples) {
				t.Errorf("CheckedOn(%s) = %+v, want %s %v", tt.stat, got, tt.wantStat, tt.want)
			}
			if met, _ := got.Met(); met != tt.met && got.Goal != nil {
				t.Errorf("met = %v, want %v", met, tt.met)
			}
		})
	}
}
