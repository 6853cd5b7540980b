package reports_test

import (
	"fmt"

	"github.com/ecmplb/ecmplb/reports"
)

// Thirty detection times: under 100 samples the headline figure is the
// maximum, not a p99.
func ExampleDistribution() {
	var detect []float64
	for i := range 30 {
		detect = append(detect, 700+float64(i*5))
	}
	m := reports.Distribution("tor1: link cut → next-hop withdrawn", "ms", detect, reports.AtMost(900))
	met, _ := m.Met()
	fmt.Println(m.Statistic, m.Value, met)
	fmt.Println(m)
	// Output:
	// max 845 true
	// tor1: link cut → next-hop withdrawn: 845 ms (max) (goal <= 900 ms: met) [n=30 min=700 median=772.5 max=845]
}

func ExampleCompare() {
	run := func(withdrawMs float64, scenarios ...string) reports.Run {
		r := reports.Run{Scenarios: []reports.Scenario{{
			Name:         "hard failure with BFD",
			Status:       reports.StatusPassed,
			Measurements: []reports.Measurement{{Name: "withdraw", Unit: "ms", Value: withdrawMs, Goal: reports.AtMost(900)}},
		}}}
		for _, s := range scenarios {
			r.Scenarios = append(r.Scenarios, reports.Scenario{Name: s, Status: reports.StatusPassed})
		}
		return r
	}
	c := reports.Compare(run(700, "drain"), run(820, "ToR restart"))
	for _, s := range c.Scenarios {
		fmt.Println(s.Name, s.Change)
	}
	for _, m := range c.Moved() {
		fmt.Printf("%s: %v → %v %s (%+.1f%%) %s\n", m.Name, m.Median.Old, m.Median.New, m.Unit, m.Median.Rel*100, m.Verdict())
	}
	// Output:
	// hard failure with BFD compared
	// ToR restart added
	// drain removed
	// withdraw: 700 → 820 ms (+17.1%) worse
}
