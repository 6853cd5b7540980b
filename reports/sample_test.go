package reports

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var sampleOut = flag.String("sample-out", "", "if set, TestSampleReport writes the sample reports into this directory")

// sampleBase is the fixed wall-clock start of the sample run.
var sampleBase = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// sampleRun is a realistic lab run: a BFD failover drill, the same drill
// without BFD (hold-timer expiry at 90 s), a failed ECMP spread check and a
// skipped kind-only scenario.
func sampleRun() Run {
	t0 := sampleBase
	bfd := bfdDrill(t0.Add(3 * time.Second))
	hold := holdTimerDrill(bfd.Started.Add(bfd.Duration + 2*time.Second))
	rolling := rollingRestart(hold.Started.Add(hold.Duration + time.Second))
	spread := spreadCheck(rolling.Started.Add(rolling.Duration + time.Second))
	skipped := Scenario{
		Name:        "IPVS kube-proxy keeps connections on the surviving nodes",
		Description: "Needs a real kube-proxy in IPVS mode; runs on the kind backend only.",
		Status:      StatusSkipped,
		Labels:      []string{"skip-lab: no kube-proxy"},
		Started:     spread.Started.Add(spread.Duration),
		Failure:     "backend lab has no kube-proxy (kind only)",
	}
	r := Run{
		Name:    "lab: reference topology",
		Backend: "lab",
		Started: t0,
		Environment: map[string]string{
			"topology":       "reference: 2 ToRs (AS 64512) × 3 nodes (AS 64513), ECMP multipath",
			"go":             "go1.26.8 linux/amd64",
			"gobgp":          "v3.37.0",
			"kube-apiserver": "v1.34.4 (built from source)",
			"kernel":         "6.1.0-28-amd64",
			"host":           "ci-runner-7",
			"ecmplb":         "5b38683",
		},
		Scenarios: []Scenario{bfd, hold, rolling, spread, skipped},
	}
	r.Finished = skipped.Started.Add(time.Second)
	return r
}

// sampleBaseline is an earlier run of the same suite to compare sampleRun
// with: BFD withdraw was faster then, graceful withdraw slower; the ECMP
// spread check passed (node-c met its goal), the kind-only scenario did not
// exist, and a scenario since removed was there.
func sampleBaseline() Run {
	r := sampleRun()
	r.Name = "lab: reference topology (yesterday)"
	r.Started = r.Started.Add(-24 * time.Hour)
	r.Finished = r.Finished.Add(-24 * time.Hour)
	var scenarios []Scenario
	for _, s := range r.Scenarios {
		s.Measurements = slices.Clone(s.Measurements)
		switch {
		case s.Status == StatusSkipped:
			continue
		case s.Status == StatusFailed:
			s.Status, s.Failure, s.Location = StatusPassed, "", ""
		}
		for i, m := range s.Measurements {
			switch m.Name {
			case "hard-fail withdraw, BFD 300ms x3":
				s.Measurements[i] = Distribution(m.Name, m.Unit, trials(3, 150, 610, 40), m.Goal)
			case "graceful withdraw (speaker stopped)":
				s.Measurements[i] = Distribution(m.Name, m.Unit, trials(4, 20, 55, 8), m.Goal)
			case "share of flows, node-c":
				s.Measurements[i].Value = 34.1
			}
		}
		scenarios = append(scenarios, s)
	}
	r.Scenarios = append(scenarios, Scenario{Name: "IPv6 service announced to both ToRs", Status: StatusPassed, Duration: 3 * time.Second})
	return r
}

// trials returns n deterministic samples around mean with the given spread.
func trials(seed uint64, n int, mean, spread float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(int((mean+spread*(rng.Float64()*2-1))*10)) / 10
	}
	return out
}

func bfdDrill(start time.Time) Scenario {
	fault := start.Add(4 * time.Second)
	at := func(d time.Duration) time.Time { return fault.Add(d) }
	return Scenario{
		Name: "hard node failure with BFD: ToRs withdraw the node in under a second",
		Description: "Service 203.0.113.5 is announced by node-a, node-b and node-c. node-b is powered off " +
			"(its veths go down without a BGP NOTIFICATION); both ToRs must drop node-b from the ECMP set " +
			"via BFD (300ms × 3) long before the BGP hold timer.",
		Status:   StatusPassed,
		Labels:   []string{"bfd", "failover"},
		Started:  start,
		Duration: 9*time.Second + ms(412),
		Steps: []Step{
			{start.Add(ms(12)), "apply IPAddressPool lab-pool (203.0.113.0/28), BGPPeer tor1/tor2 with bfdProfile fast"},
			{start.Add(ms(640)), "Service default/web got 203.0.113.5"},
			{start.Add(ms(2130)), "tor1 and tor2 see 3 next-hops for 203.0.113.5/32"},
			{fault, "power off node-b: set veth nb-tor1, nb-tor2 down"},
			{at(ms(700)), "tor1: BFD session to 10.0.0.12 down (detect time 900ms)"},
			{at(ms(713)), "tor2 withdraws 10.0.0.12; both ToRs at 2 next-hops"},
			{at(ms(5000)), "ECMP set stable for 4s; traffic reaches node-a and node-c only"},
		},
		Measurements: []Measurement{
			Distribution("hard-fail withdraw, BFD 300ms x3", "ms", trials(1, 200, 720, 45), AtMost(1000)),
			Distribution("graceful withdraw (speaker stopped)", "ms", trials(2, 20, 40, 8), AtMost(250)),
			{Name: "packets lost during failover (1k pps probe)", Unit: "packets", Value: 243, Goal: &Goal{Op: "<=", Value: 1000}},
			{Name: "speaker RSS after drill", Unit: "MiB", Value: 38.4},
		},
		Timelines: []Timeline{{
			Title: "node-b powered off: BFD detection and ECMP withdraw",
			Start: fault,
			Lanes: []Lane{
				{Name: "node-b", Events: []Event{
					{at(-ms(1900)), "announce 203.0.113.5/32", KindRoute},
					{fault, "power off (veths down)", KindFault},
				}},
				{Name: "tor1", Events: []Event{
					{at(-ms(2600)), "BFD up 10.0.0.12", KindBFD},
					{at(-ms(1870)), "add 203.0.113.5 via 10.0.0.12", KindRoute},
					{at(ms(700)), "BFD down 10.0.0.12", KindBFD},
					{at(ms(704)), "BGP peer 10.0.0.12 reset", KindBGP},
					{at(ms(710)), "withdraw 203.0.113.5 via 10.0.0.12", KindRoute},
				}},
				{Name: "tor2", Events: []Event{
					{at(-ms(2550)), "BFD up 10.0.1.12", KindBFD},
					{at(-ms(1860)), "add 203.0.113.5 via 10.0.1.12", KindRoute},
					{at(ms(702)), "BFD down 10.0.1.12", KindBFD},
					{at(ms(707)), "BGP peer 10.0.1.12 reset", KindBGP},
					{at(ms(713)), "withdraw 203.0.113.5 via 10.0.1.12", KindRoute},
				}},
				{Name: "prober", Events: []Event{
					{at(-ms(1000)), "1k pps probe started", KindInfo},
					{at(ms(20)), "first loss", KindInfo},
					{at(ms(720)), "loss stops", KindInfo},
				}},
			},
			Series: []Series{
				{Name: "tor1: next-hops for 203.0.113.5", Points: []Point{
					{at(-ms(2600)), 0, "none"},
					{at(-ms(2300)), 1, "10.0.0.11"},
					{at(-ms(1870)), 3, "10.0.0.11, 10.0.0.12, 10.0.0.13"},
					{at(ms(710)), 2, "10.0.0.11, 10.0.0.13"},
				}},
				{Name: "tor2: next-hops for 203.0.113.5", Points: []Point{
					{at(-ms(2550)), 0, "none"},
					{at(-ms(2280)), 2, "10.0.1.11, 10.0.1.13"},
					{at(-ms(1860)), 3, "10.0.1.11, 10.0.1.12, 10.0.1.13"},
					{at(ms(713)), 2, "10.0.1.11, 10.0.1.13"},
				}},
			},
		}},
		Tables: []Table{{
			Title:  "tor1 ECMP set after failover",
			Header: []string{"prefix", "next-hops", "since"},
			Rows: [][]string{
				{"203.0.113.5/32", "10.0.0.11, 10.0.0.13", "+0.710s"},
				{"203.0.113.6/32", "10.0.0.11, 10.0.0.13", "+0.711s"},
				{"203.0.113.9/32", "10.0.0.13", "+0.709s"},
			},
		}},
	}
}

func holdTimerDrill(start time.Time) Scenario {
	fault := start.Add(3 * time.Second)
	at := func(d time.Duration) time.Time { return fault.Add(d) }
	return Scenario{
		Name:        "hard node failure without BFD: withdraw waits for the hold timer",
		Description: "Same drill with BFD disabled: the ToRs only notice when the 90s BGP hold timer expires.",
		Status:      StatusPassed,
		Started:     start,
		Duration:    95*time.Second + ms(230),
		Steps: []Step{
			{start.Add(ms(5)), "BGPPeer tor1/tor2 without bfdProfile, holdTime 90s"},
			{fault, "power off node-b"},
			{at(90*time.Second + ms(310)), "tor1 hold timer expired; 203.0.113.5 via 10.0.0.12 withdrawn"},
		},
		Measurements: []Measurement{
			{Name: "hard-fail withdraw, hold timer 90s", Unit: "s", Value: 90.31, Goal: &Goal{Op: "<=", Value: 95}},
		},
		Timelines: []Timeline{{
			Title: "node-b powered off, no BFD",
			Start: fault,
			Lanes: []Lane{
				{Name: "node-b", Events: []Event{{fault, "power off", KindFault}}},
				{Name: "tor1", Events: []Event{
					{at(30 * time.Second), "keepalive missed", KindBGP},
					{at(60 * time.Second), "keepalive missed", KindBGP},
					{at(90*time.Second + ms(300)), "hold timer expired", KindBGP},
					{at(90*time.Second + ms(310)), "withdraw via 10.0.0.12", KindRoute},
				}},
			},
			Series: []Series{{Name: "tor1: next-hops for 203.0.113.5", Points: []Point{
				{fault.Add(-2 * time.Second), 3, "10.0.0.11, 10.0.0.12, 10.0.0.13"},
				{at(90*time.Second + ms(310)), 2, "10.0.0.11, 10.0.0.13"},
			}}},
		}},
	}
}

// rollingRestart restarts the speakers of six nodes one after the other: a
// busy chart with many lanes and events.
func rollingRestart(start time.Time) Scenario {
	nodes := []string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-f"}
	first := start.Add(2 * time.Second)
	sc := Scenario{
		Name:        "rolling speaker restart keeps at least 5 of 6 next-hops",
		Description: "The speaker DaemonSet is rolled node by node; each speaker withdraws gracefully before exiting and re-announces after start.",
		Status:      StatusPassed,
		Started:     start,
		Duration:    68*time.Second + ms(500),
	}
	tor1 := Lane{Name: "tor1"}
	tor2 := Lane{Name: "tor2"}
	count := Series{Name: "tor1: next-hops for 203.0.113.7", Points: []Point{{first.Add(-time.Second), 6, "6 nodes"}}}
	var lanes []Lane
	var gaps []float64
	for i, n := range nodes {
		stop := first.Add(time.Duration(i) * 11 * time.Second)
		back := stop.Add(ms(4200 + float64(i)*130))
		ip := fmt.Sprintf("10.0.0.%d", 11+i)
		lanes = append(lanes, Lane{Name: n, Events: []Event{
			{stop, "SIGTERM speaker", KindInfo},
			{stop.Add(ms(35)), "withdraw sent", KindRoute},
			{back.Add(-ms(800)), "speaker started", KindInfo},
			{back, "announce 203.0.113.7/32", KindRoute},
		}})
		tor1.Events = append(tor1.Events,
			Event{stop.Add(ms(38)), "withdraw via " + ip, KindRoute},
			Event{stop.Add(ms(60)), "session " + ip + " closed", KindBGP},
			Event{back.Add(-ms(500)), "session " + ip + " up", KindBGP},
			Event{back.Add(ms(4)), "add via " + ip, KindRoute})
		tor2.Events = append(tor2.Events,
			Event{stop.Add(ms(40)), "withdraw via " + ip, KindRoute},
			Event{back.Add(ms(6)), "add via " + ip, KindRoute})
		count.Points = append(count.Points,
			Point{stop.Add(ms(38)), 5, "without " + ip},
			Point{back.Add(ms(4)), 6, "6 nodes"})
		sc.Steps = append(sc.Steps, Step{stop, "restart speaker on " + n})
		gaps = append(gaps, float64(back.Sub(stop).Milliseconds())/1000)
	}
	sc.Measurements = []Measurement{
		Distribution("next-hop absent per restart", "s", gaps, AtMost(10)),
		{Name: "minimum next-hops during roll", Unit: "next-hops", Value: 5, Goal: &Goal{Op: ">=", Value: 5}},
	}
	sc.Timelines = []Timeline{{
		Title:  "rolling restart, 6 speakers",
		Start:  first,
		Lanes:  append([]Lane{tor1, tor2}, lanes...),
		Series: []Series{count},
	}}
	return sc
}

func spreadCheck(start time.Time) Scenario {
	return Scenario{
		Name:        "ECMP spreads flows evenly across 3 nodes",
		Description: "3000 distinct flows to 203.0.113.5; each node should receive a third ±5%.",
		Status:      StatusFailed,
		Started:     start,
		Duration:    6*time.Second + ms(80),
		Failure: "node-c received 41.2% of flows, want 33.3% ± 5%\n" +
			"Expected\n    <float64>: 41.2\nto be within 5 of\n    <float64>: 33.3",
		Location: "scenarios/ecmp_test.go:142",
		Steps: []Step{
			{start.Add(ms(100)), "start 3000 flows from client netns (random source ports)"},
			{start.Add(ms(5900)), "collect per-node counters"},
		},
		Measurements: []Measurement{
			{Name: "share of flows, node-a", Unit: "%", Value: 29.9, Goal: &Goal{Op: "<=", Value: 38.3}},
			{Name: "share of flows, node-b", Unit: "%", Value: 28.9, Goal: &Goal{Op: "<=", Value: 38.3}},
			{Name: "share of flows, node-c", Unit: "%", Value: 41.2, Goal: &Goal{Op: "<=", Value: 38.3}},
		},
		Tables: []Table{{
			Title:  "flows per node",
			Header: []string{"node", "next-hop", "flows", "share"},
			Rows: [][]string{
				{"node-a", "10.0.0.11", "897", "29.9%"},
				{"node-b", "10.0.0.12", "867", "28.9%"},
				{"node-c", "10.0.0.13", "1236", "41.2%"},
			},
		}},
	}
}

// TestSampleReport renders the sample run in all formats. With
// -sample-out=DIR it also keeps the files, for looking at the page:
//
//	go test ./reports -run TestSampleReport -args -sample-out=$PWD/reports/out/sample
func TestSampleReport(t *testing.T) {
	dir := t.TempDir()
	if *sampleOut != "" {
		dir = *sampleOut
	}
	p, err := WriteAll(dir, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.JSON, p.JUnit, p.HTML} {
		if filepath.Dir(f) != filepath.Clean(dir) {
			t.Errorf("%s not in %s", f, dir)
		}
	}
	compared, err := WriteAllCompared(filepath.Join(dir, "compared"), sampleRun(), sampleBaseline())
	if err != nil {
		t.Fatal(err)
	}
	if *sampleOut != "" {
		fmt.Println(p.HTML)
		fmt.Println(compared.HTML)
	}
}
