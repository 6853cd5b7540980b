package liveness

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

// testCfg: R = 250 ms, K = 3.
var testCfg = Config{Threshold: 750 * ms, Rejoin: 500 * ms, Margin: 100 * ms, MaxTickGap: 250 * ms}

// step is one input, or (advance) a check of the view at a time.
type step struct {
	op   string // known, heard, confirmed, forget, advance
	node string
	t    time.Duration

	// For advance: the expected view ("-" skips a list).
	alive, down []string
	answer      bool
	until       time.Duration // AnswerUntil - t0 when answering
	jumped      bool
}

func known(n string, d time.Duration) step { return step{op: "known", node: n, t: d} }
func heard(n string, d time.Duration) step { return step{op: "heard", node: n, t: d} }
func confirmed(d time.Duration) step       { return step{op: "confirmed", t: d} }
func forget(n string) step                 { return step{op: "forget", node: n} }

// every returns heard steps of node from a to b (inclusive) every p.
func every(n string, a, b, p time.Duration) []step {
	var out []step
	for d := a; d <= b; d += p {
		out = append(out, heard(n, d))
	}
	return out
}

// renewals returns confirmed steps from a to b every p, advancing to each
// (answering from the fourth on when p is 250 ms: ready 100 ms after the
// send at a+750 ms, the first Rejoin+Margin into the run).
func renewals(a, b, p time.Duration) []step {
	var out []step
	for d := a; d <= b; d += p {
		out = append(out, step{op: "advance", t: d, alive: []string{"-"}, down: []string{"-"}, answer: d >= a+1000*ms, until: -1}, confirmed(d))
	}
	return out
}

func seq(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("seq: %T", p))
		}
	}
	return out
}

func view(d time.Duration, alive, down []string) step {
	return step{op: "advance", t: d, alive: alive, down: down, until: -1}
}

func answering(d, until time.Duration, alive []string) step {
	return step{op: "advance", t: d, alive: alive, down: []string{"-"}, answer: true, until: until}
}

func fenced(d time.Duration) step {
	return step{op: "advance", t: d, alive: []string{"-"}, down: []string{"-"}}
}

// run plays steps on a new Table. With autoTick the Table is also advanced
// every MaxTickGap/2 up to the time of each step, as a timely caller does.
func run(t *testing.T, cfg Config, autoTick bool, steps []step) {
	t.Helper()
	tb, err := New(cfg, "self", t0)
	if err != nil {
		t.Fatal(err)
	}
	last := time.Duration(0)
	for i, s := range steps {
		if autoTick && s.op != "forget" {
			for ; last+cfg.MaxTickGap/2 < s.t; last += cfg.MaxTickGap / 2 {
				tb.Advance(at(last + cfg.MaxTickGap/2))
			}
		}
		if s.op == "advance" {
			last = s.t
		}
		switch s.op {
		case "known":
			tb.Known(s.node, at(s.t))
		case "heard":
			tb.Heard(s.node, at(s.t))
		case "confirmed":
			tb.Confirmed(at(s.t))
		case "forget":
			tb.Forget(s.node)
		case "advance":
			v := tb.Advance(at(s.t))
			where := fmt.Sprintf("step %d (advance to %v)", i, s.t)
			if len(s.alive) != 1 || s.alive[0] != "-" {
				if !slices.Equal(v.Alive, s.alive) {
					t.Errorf("%s: alive %v, want %v", where, v.Alive, s.alive)
				}
			}
			if len(s.down) != 1 || s.down[0] != "-" {
				if !slices.Equal(v.Down, s.down) {
					t.Errorf("%s: down %v, want %v", where, v.Down, s.down)
				}
			}
			if v.Answer != s.answer {
				t.Errorf("%s: answer %v, want %v (until %v)", where, v.Answer, s.answer, v.AnswerUntil.Sub(t0))
			}
			if s.answer && s.until >= 0 && !v.AnswerUntil.Equal(at(s.until)) {
				t.Errorf("%s: answer until %v, want %v", where, v.AnswerUntil.Sub(t0), s.until)
			}
			if v.Jumped != s.jumped {
				t.Errorf("%s: jumped %v, want %v", where, v.Jumped, s.jumped)
			}
			if !v.Next.After(at(s.t)) || v.Next.After(at(s.t+cfg.MaxTickGap/2)) {
				t.Errorf("%s: next %v, want within (now, now+MaxTickGap/2]", where, v.Next.Sub(t0))
			}
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
	}
}

func TestPeers(t *testing.T) {
	var nilList []string
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"nothing heard: nobody", seq(view(100*ms, nilList, nilList))},
		{"known at start: alive at once, dead after the threshold", seq(
			known("a", 0), known("b", 0),
			view(0, []string{"a", "b"}, nilList),
			heard("b", 250*ms), heard("b", 500*ms), heard("b", 750*ms),
			view(750*ms, []string{"a", "b"}, nilList), // a: exactly the threshold
			view(750*ms+1, []string{"b"}, []string{"a"}),
		)},
		{"steady renewals stay alive; silence kills after exactly the threshold", seq(
			known("a", 0), every("a", 200*ms, 2000*ms, 200*ms),
			view(2000*ms, []string{"a"}, nilList),
			view(2750*ms, []string{"a"}, nilList),
			view(2750*ms+1, nilList, []string{"a"}),
		)},
		{"a new node is alive after Rejoin of renewals", seq(
			heard("n", 100*ms), view(100*ms, nilList, []string{"n"}),
			heard("n", 350*ms),
			view(599*ms, nilList, []string{"n"}),
			heard("n", 600*ms),
			view(600*ms, []string{"n"}, nilList),
		)},
		{"a node that comes back: down until it has renewed for Rejoin", seq(
			known("a", 0), every("a", 250*ms, 1000*ms, 250*ms),
			view(1000*ms, []string{"a"}, nilList),
			view(1751*ms, nilList, []string{"a"}), // silent since 1000 ms
			every("a", 3000*ms, 3250*ms, 250*ms),
			view(3499*ms, nilList, []string{"a"}),
			view(3600*ms, nilList, []string{"a"}), // no receipt Rejoin into the run yet
			heard("a", 3600*ms),
			view(3600*ms, []string{"a"}, nilList),
			every("a", 3850*ms, 5000*ms, 250*ms),
			view(5000*ms, []string{"a"}, nilList),
		)},
		{"flapping: renewals 1 s apart never make it alive", seq(
			known("a", 0), view(0, []string{"a"}, nilList),
			heard("a", 1000*ms), view(1000*ms, nilList, []string{"a"}),
			heard("a", 2000*ms), view(2000*ms, nilList, []string{"a"}),
			heard("a", 3000*ms), view(3000*ms, nilList, []string{"a"}),
			view(3500*ms, nilList, []string{"a"}),
		)},
		{"flapping: one gap above the threshold restarts Rejoin", seq(
			known("a", 0), every("a", 250*ms, 1000*ms, 250*ms),
			view(1000*ms, []string{"a"}, nilList),
			view(1751*ms, nilList, []string{"a"}),
			heard("a", 1800*ms), // the run starts at 1800
			view(1800*ms, nilList, []string{"a"}),
			heard("a", 2000*ms), heard("a", 2200*ms),
			view(2200*ms, nilList, []string{"a"}), // 400 ms into it
			heard("a", 3000*ms),                   // gap 800 ms: the run restarts at 3000
			view(3000*ms, nilList, []string{"a"}),
			heard("a", 3250*ms),
			view(3250*ms, nilList, []string{"a"}),
			heard("a", 3500*ms),
			view(3500*ms, []string{"a"}, nilList),
		)},
		{"out of order and duplicate receipts change nothing", seq(
			known("a", 0), heard("a", 500*ms), heard("a", 200*ms), heard("a", 500*ms),
			view(1250*ms, []string{"a"}, nilList),
			view(1250*ms+1, nilList, []string{"a"}),
		)},
		{"forget drops a node", seq(
			known("a", 0), known("b", 0), forget("a"),
			view(100*ms, []string{"b"}, nilList),
		)},
		{"own renewals are not peers", seq(
			heard("self", 0), known("self", 0),
			view(100*ms, nilList, nilList),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, testCfg, true, tc.steps) })
	}
}

// TestFence checks the fencing rule with testCfg: this node answers from
// Rejoin+Margin (600 ms) after the first confirmed renewal of a run, until
// Threshold-Margin (650 ms) after the send of the last one; the others
// declare it dead no earlier than 750 ms after that send: 100 ms of margin.
func TestFence(t *testing.T) {
	self := []string{"self"}
	var nilList []string
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"never confirmed: never answers", seq(fenced(0), fenced(5000*ms))},
		{"answers Margin after the first send Rejoin+Margin into the run", seq(
			confirmed(0), fenced(599*ms),
			confirmed(250*ms), confirmed(500*ms),
			fenced(700*ms),
			confirmed(750*ms),
			fenced(849*ms),
			answering(850*ms, 1400*ms, self),
		)},
		{"stops Threshold-Margin after the last confirmed send", seq(
			renewals(0, 2000*ms, 250*ms),
			answering(2649*ms, 2650*ms, self),
			fenced(2650*ms),
			fenced(2750*ms), // the others declare it dead from here on
		)},
		{"a late confirmation of an old send extends nothing", seq(
			renewals(0, 1000*ms, 250*ms),
			confirmed(900*ms),
			answering(1600*ms, 1650*ms, self),
			fenced(1650*ms),
		)},
		{"cut off, then back: waits Rejoin+Margin from the first new renewal", seq(
			renewals(0, 1000*ms, 250*ms),
			fenced(1650*ms),
			confirmed(3000*ms), confirmed(3250*ms), confirmed(3500*ms),
			fenced(3599*ms),
			confirmed(3750*ms),
			fenced(3849*ms),
			answering(3850*ms, 4400*ms, self),
		)},
		{"a silence shorter than Threshold-Margin keeps answering", seq(
			renewals(0, 1000*ms, 250*ms),
			confirmed(1650*ms),
			answering(1650*ms, 2300*ms, self),
		)},
		{"a silence just above Threshold-Margin is a new run", seq(
			renewals(0, 1000*ms, 250*ms),
			fenced(1650*ms), confirmed(1651*ms),
			fenced(1700*ms),
			confirmed(1900*ms), confirmed(2150*ms), confirmed(2251*ms),
			fenced(2350*ms),
			answering(2351*ms, 2901*ms, self),
		)},
		{"peers and self together", seq(
			known("a", 0), renewals(0, 1000*ms, 250*ms), every("a", 250*ms, 1000*ms, 250*ms),
			answering(1000*ms, 1650*ms, []string{"a", "self"}),
			view(1750*ms+1, nilList, []string{"a"}),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, testCfg, true, tc.steps) })
	}
}

func TestClockJumps(t *testing.T) {
	var nilList []string
	jump := func(s step) step { s.jumped = true; return s }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"this process paused 5 s: peers keep their ages, its own window has closed", seq(
			known("a", 0), renewals(0, 1000*ms, 250*ms), every("a", 250*ms, 1000*ms, 250*ms),
			answering(1000*ms, 1650*ms, []string{"a", "self"}),
			jump(view(6000*ms, []string{"a"}, nilList)), // a's age is still 0
			view(6200*ms, []string{"a"}, nilList),
			view(6400*ms, []string{"a"}, nilList),
			view(6600*ms, []string{"a"}, nilList),
			view(6750*ms, []string{"a"}, nilList),
			view(6750*ms+1, nilList, []string{"a"}),
		)},
		{"backlog handled after a pause counts as fresh", seq(
			known("a", 0), known("b", 0), view(0, []string{"a", "b"}, nilList),
			heard("a", 100*ms), view(200*ms, []string{"a", "b"}, nilList), // a aged 100 ms
			heard("b", 5000*ms), // received on resuming, before the next Advance
			jump(view(5100*ms, []string{"a", "b"}, nilList)),
			view(5300*ms, []string{"a", "b"}, nilList),
			view(5500*ms, []string{"a", "b"}, nilList),
			view(5650*ms, []string{"a", "b"}, nilList), // a: 100 ms before, 650 after
			view(5650*ms+1, []string{"b"}, []string{"a"}),
			view(5750*ms, []string{"b"}, []string{"a"}),
			view(5750*ms+1, nilList, []string{"a", "b"}),
		)},
		{"a dead node stays dead over a pause", seq(
			known("a", 0), view(200*ms, []string{"a"}, nilList), view(400*ms, []string{"a"}, nilList),
			view(600*ms, []string{"a"}, nilList), view(751*ms, nilList, []string{"a"}),
			jump(view(9000*ms, nilList, []string{"a"})),
		)},
		{"clock steps back 10 s: ages kept, own confirmations distrusted", seq(
			known("a", 0), renewals(0, 1000*ms, 250*ms), every("a", 250*ms, 1000*ms, 250*ms),
			answering(1100*ms, 1650*ms, []string{"a", "self"}),
			jump(view(-9000*ms, []string{"a"}, nilList)), // a aged 100 ms; self fenced
			confirmed(-8950*ms),                          // sent after the step: counts, starts a run
			confirmed(-9100*ms),                          // from before the step: ignored
			view(-8800*ms, []string{"a"}, nilList),
			confirmed(-8700*ms),
			view(-8600*ms, []string{"a"}, nilList),
			confirmed(-8450*ms),
			view(-8350*ms, []string{"a"}, nilList), // a aged exactly 750 ms
			confirmed(-8350*ms),                    // 600 ms into the run
			view(-8340*ms, nilList, []string{"a"}),
			step{op: "advance", t: -8250 * ms, alive: []string{"self"}, down: []string{"a"}, answer: true, until: -7700 * ms},
		)},
		{"a timely caller never jumps", seq(
			known("a", 0), heard("a", 250*ms), view(250*ms, []string{"a"}, nilList),
			heard("a", 500*ms), view(500*ms, []string{"a"}, nilList),
			view(750*ms, []string{"a"}, nilList), heard("a", 900*ms), view(1000*ms, []string{"a"}, nilList),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, testCfg, false, tc.steps) })
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Threshold: 0, Margin: 1, MaxTickGap: 1},
		{Threshold: 750 * ms, Margin: 0, MaxTickGap: 100 * ms},
		{Threshold: 750 * ms, Margin: 750 * ms, MaxTickGap: 100 * ms},
		{Threshold: 750 * ms, Margin: 100 * ms, MaxTickGap: 0},
		{Threshold: 750 * ms, Margin: 100 * ms, MaxTickGap: 750 * ms},
		{Threshold: 750 * ms, Margin: 100 * ms, MaxTickGap: 100 * ms, Rejoin: -1},
	} {
		if _, err := New(c, "x", t0); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if _, err := New(testCfg, "x", t0); err != nil {
		t.Errorf("New(testCfg): %v", err)
	}
}

// simulate runs node A's own table and observer B's table over random
// renewal schedules: A renews every r; a write is lost with some chance (A
// unconfirmed, B hears nothing), or committed with its answer lost (B hears
// it, A does not); B receives a committed renewal after a delay in [0,
// maxDelay]. Long outages (the apiserver cut off) come and go. B's clock is
// offset from A's by an hour. It returns the time in which A answered while
// B considered A not alive (B would give A's IPs to another node: two
// answering), and how long A answered in all.
func simulate(seed uint64, cfg Config, r, maxDelay time.Duration) (split, answered time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 1))
	offset := time.Hour
	a, _ := New(cfg, "A", t0)
	b, _ := New(cfg, "B", t0.Add(offset))
	type ev struct {
		t    time.Duration
		kind int // 0 confirm at A, 1 receipt at B
		sent time.Duration
	}
	var evs []ev
	outage := false
	for s := time.Duration(0); s < 30*time.Second; s += r {
		if rng.Float64() < 0.03 {
			outage = !outage
		}
		if outage {
			continue
		}
		switch x := rng.Float64(); {
		case x < 0.1: // lost
		case x < 0.15: // committed, answer lost
			evs = append(evs, ev{t: s + time.Duration(rng.Int64N(int64(maxDelay)+1)), kind: 1})
		default:
			rtt := time.Duration(rng.Int64N(int64(20 * ms)))
			evs = append(evs, ev{t: s + rtt, kind: 0, sent: s})
			evs = append(evs, ev{t: s + time.Duration(rng.Int64N(int64(maxDelay)+1)), kind: 1})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].t < evs[j].t })
	const tick = ms
	i := 0
	for now := time.Duration(0); now < 31*time.Second; now += tick {
		for ; i < len(evs) && evs[i].t <= now; i++ {
			if evs[i].kind == 0 {
				a.Confirmed(at(evs[i].sent))
			} else {
				b.Heard("A", at(evs[i].t).Add(offset))
			}
		}
		va := a.Advance(at(now))
		vb := b.Advance(at(now).Add(offset))
		if va.Answer {
			answered += tick
			if !slices.Contains(vb.Alive, "A") {
				split += tick
			}
		}
	}
	return split, answered
}

// TestFenceNeverSplits: with every delivery within Margin, node A never
// answers while an observer considers it dead, over outages, lost writes
// and lost answers; and the test can tell: with deliveries up to 3x Margin
// it finds such moments.
func TestFenceNeverSplits(t *testing.T) {
	var answered time.Duration
	for seed := range uint64(40) {
		split, ans := simulate(seed, testCfg, 250*ms, testCfg.Margin)
		if split > 0 {
			t.Errorf("seed %d: A answered for %v while B took it for dead", seed, split)
		}
		answered += ans
	}
	if answered < 40*10*time.Second {
		t.Errorf("A answered for %v in 40 runs of 30 s: the schedule is too harsh to show anything", answered)
	}
	var late time.Duration
	for seed := range uint64(40) {
		split, _ := simulate(seed, testCfg, 250*ms, 3*testCfg.Margin)
		late += split
	}
	if late == 0 {
		t.Errorf("deliveries up to 3x Margin never made A answer while B took it for dead: the check cannot fail")
	}
	t.Logf("A answered %v in all; with deliveries up to 3x Margin, %v of split", answered, late)
}
