package reports

import (
	"math"
	"testing"
)

func TestMeasurementMet(t *testing.T) {
	tests := []struct {
		name         string
		value        float64
		goal         *Goal
		met, hasGoal bool
	}{
		{"no goal", 5, nil, false, false},
		{"<= below", 700, &Goal{"<=", 1000}, true, true},
		{"<= equal", 1000, &Goal{"<=", 1000}, true, true},
		{"<= above", 1000.1, &Goal{"<=", 1000}, false, true},
		{">= above", 3, &Goal{">=", 2}, true, true},
		{">= equal", 2, &Goal{">=", 2}, true, true},
		{">= below", 1, &Goal{">=", 2}, false, true},
		{"< equal", 2, &Goal{"<", 2}, false, true},
		{"> above", 3, &Goal{">", 2}, true, true},
		{"unknown op never met", 1, &Goal{"==", 1}, false, true},
		{"empty op never met", 1, &Goal{"", 1}, false, true},
		{"NaN value never met", math.NaN(), &Goal{"<=", 1}, false, true},
		{"NaN bound never met", 1, &Goal{">=", math.NaN()}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			met, has := Measurement{Name: "x", Value: tt.value, Goal: tt.goal}.Met()
			if met != tt.met || has != tt.hasGoal {
				t.Errorf("Met() = (%v, %v), want (%v, %v)", met, has, tt.met, tt.hasGoal)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	r := Run{Scenarios: []Scenario{
		{Status: StatusPassed}, {Status: StatusFailed}, {Status: StatusPassed},
		{Status: StatusSkipped}, {Status: ""}, {Status: "flaky"},
	}}
	want := Counts{Total: 6, Passed: 2, Failed: 1, Skipped: 1, Other: 2}
	if got := r.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatNumber(3), "3"},
		{formatNumber(759.1), "759.1"},
		{formatNumber(712.34567), "712.346"},
		{formatNumber(0.5), "0.5"},
		{formatNumber(0.001234), "0.001234"},
		{formatNumber(-2), "-2"},
		{formatNumber(math.NaN()), "NaN"},
		{formatDuration(0), "0s"},
		{formatDuration(ms(734)), "734ms"},
		{formatDuration(ms(9412)), "9.412s"},
		{formatDuration(ms(95230)), "1m35.2s"},
		{formatOffset(sampleBase.Add(ms(1234)), sampleBase), "+1.234s"},
		{formatOffset(sampleBase.Add(-ms(100)), sampleBase), "-0.100s"},
		{firstLine("\n  first \nsecond"), "first"},
		{goalText(&Goal{"<=", 1000}, "ms"), "<= 1000 ms"},
		{measurementText(Measurement{Name: "m", Unit: "ms", Value: 9, Goal: &Goal{"<=", 8}, Samples: []float64{9, 1}}),
			"m: 9 ms (goal <= 8 ms: NOT met) [n=2 min=1 median=5 max=9]"},
		{measurementText(Distribution("d", "ms", seq(1, 100), AtMost(98))),
			"d: 99 ms (p99) (goal <= 98 ms: NOT met) [n=100 min=1 median=50.5 p99=99 max=100]"},
		{measurementText(Distribution("d", "ms", seq(1, 99), AtMost(99))),
			"d: 99 ms (max) (goal <= 99 ms: met) [n=99 min=1 median=50 max=99]"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func nanValue() float64 { return math.NaN() }
