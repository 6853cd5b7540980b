package eventgate

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/bfd/bfdtest"
)

const (
	quiet   = 200 * time.Millisecond
	maxHold = 5 * time.Second
)

var t0 = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// waiter is one Wait running against a fake clock. Every time the Wait
// wakes it either returns or goes back to sleep and says so, so the test
// moves the clock only once the gate has looked at the state it is in.
type waiter struct {
	t      *testing.T
	clk    *bfdtest.Clock
	g      *Gate
	sleeps chan time.Time
	res    chan time.Duration
	held   time.Duration
	done   bool
}

func newWaiter(t *testing.T, clk *bfdtest.Clock, g *Gate) *waiter {
	w := &waiter{t: t, clk: clk, g: g, sleeps: make(chan time.Time, 1), res: make(chan time.Duration, 1)}
	g.sleeping = func(until time.Time) { w.sleeps <- until }
	return w
}

// start runs Wait for an Event recorded at recorded and returns once it
// returned or slept.
func (w *waiter) start(recorded time.Time) {
	go func() { w.res <- w.g.Wait(recorded) }()
	w.settle()
}

// settle waits for the Wait's next step: asleep (until when) or returned.
func (w *waiter) settle() time.Time {
	w.t.Helper()
	select {
	case until := <-w.sleeps:
		return until
	case w.held = <-w.res:
		w.done = true
		return time.Time{}
	case <-time.After(10 * time.Second):
		w.t.Fatal("Wait neither slept nor returned within 10 s")
		return time.Time{}
	}
}

// advanceTo moves the clock to at, letting the Wait see every timer of its
// own on the way.
func (w *waiter) advanceTo(at time.Time) {
	w.t.Helper()
	for !w.done {
		due, ok := w.clk.NextDue()
		if !ok || due.After(at) {
			break
		}
		w.clk.AdvanceTo(due)
		w.settle()
	}
	w.clk.AdvanceTo(at)
}

// finish runs the clock until the Wait returns and gives its wait.
func (w *waiter) finish() time.Duration {
	w.t.Helper()
	for !w.done {
		due, ok := w.clk.NextDue()
		if !ok {
			w.t.Fatal("Wait sleeps with no timer armed")
		}
		w.clk.AdvanceTo(due)
		w.settle()
	}
	return w.held
}

// noTimers fails the test if the gate left a timer armed.
func noTimers(t *testing.T, clk *bfdtest.Clock) {
	t.Helper()
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d timers left armed", n)
	}
}

func TestEventsPassWithoutWrites(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	var observed []time.Duration
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold, Observe: func(d time.Duration) { observed = append(observed, d) }})
	if held := g.Wait(clk.Now()); held != 0 {
		t.Errorf("held %v with no write ever made", held)
	}
	done := g.Writing()
	done()
	clk.Advance(quiet)
	if held := g.Wait(clk.Now()); held != 0 {
		t.Errorf("held %v Quiet after the last write", held)
	}
	if !slices.Equal(observed, []time.Duration{0, 0}) {
		t.Errorf("observed %v, want two Events held 0", observed)
	}
	noTimers(t, clk)
}

func TestEventWaitsForWritesAndQuiet(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold})
	w := newWaiter(t, clk, g)
	first, second := g.Writing(), g.Writing()
	w.start(clk.Now())
	if w.done {
		t.Fatalf("an Event passed with two writes in flight (held %v)", w.held)
	}
	w.advanceTo(t0.Add(time.Second))
	first() // one still in flight: the Event sleeps on, until its MaxHold
	if due, _ := clk.NextDue(); w.done || !due.Equal(t0.Add(maxHold)) {
		t.Errorf("with one write still in flight: returned %v, the Event sleeps until %v; want asleep until its MaxHold %v", w.done, due.Sub(t0), maxHold)
	}
	w.advanceTo(t0.Add(2 * time.Second))
	second()
	if until := w.settle(); !until.Equal(t0.Add(2*time.Second + quiet)) {
		t.Errorf("after the last write the Event sleeps until %v, want that write's end + Quiet %v", until.Sub(t0), 2*time.Second+quiet)
	}
	if held := w.finish(); held != 2*time.Second+quiet {
		t.Errorf("held %v, want %v", held, 2*time.Second+quiet)
	}
	noTimers(t, clk)
}

func TestEventHeldAtMostMaxHold(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold})
	w := newWaiter(t, clk, g)
	done := g.Writing()
	w.start(clk.Now())
	// Writes overlap for 20 s: never a pause.
	for at := 100 * time.Millisecond; at < 20*time.Second; at += 100 * time.Millisecond {
		w.advanceTo(t0.Add(at))
		next := g.Writing()
		done() // another in flight: wakes nobody
		done = next
	}
	if !w.done || w.held != maxHold {
		t.Errorf("under writes that never pause: returned %v, held %v; want held MaxHold %v", w.done, w.held, maxHold)
	}
	// An Event recorded 4 s ago waits only the rest of its MaxHold.
	w2 := newWaiter(t, clk, g)
	w2.start(clk.Now().Add(-4 * time.Second))
	if held := w2.finish(); held != time.Second {
		t.Errorf("an Event 4 s old held %v, want 1s", held)
	}
	done()
}

func TestOpenReleasesEverything(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold})
	w := newWaiter(t, clk, g)
	done := g.Writing()
	defer done()
	w.start(clk.Now())
	w.advanceTo(t0.Add(time.Second))
	g.Open()
	w.settle()
	if !w.done || w.held != time.Second {
		t.Errorf("after Open: returned %v, held %v; want returned after 1s", w.done, w.held)
	}
	if held := g.Wait(clk.Now()); held != 0 {
		t.Errorf("an open gate held an Event %v with a write in flight", held)
	}
	noTimers(t, clk)
}

// TestQueueBound: with MaxQueued Events recorded and not written, Events
// go whatever the writes; once the sink takes the last Event recorded, the
// count starts again from it (Events the recorder dropped or skipped are
// forgotten), but not for an Event the correlator made after it (an
// aggregate). Drain waits for the count to reach zero.
func TestQueueBound(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold, MaxQueued: 3})
	w := newWaiter(t, clk, g)
	record := func() time.Time {
		done := g.recorded()
		at := clk.Now() // the recorder stamps the Event
		done()
		return at
	}
	done := g.Writing()
	defer done()
	first := record()
	clk.Advance(time.Millisecond)
	second := record()
	w.start(first)
	if w.done {
		t.Fatalf("held %v with 2 of 3 queued and a write in flight", w.held)
	}
	clk.Advance(time.Millisecond)
	last := record() // 3 queued: the gate lets go
	w.settle()
	if !w.done || w.held != time.Millisecond {
		t.Fatalf("with MaxQueued queued: returned %v after %v, want at once (1ms)", w.done, w.held)
	}
	// The first Event was not written (say the apiserver refused it):
	// still 3 counted, the second goes at once.
	if held := g.Wait(second); held != 0 {
		t.Errorf("held %v with 3 queued", held)
	}
	// An aggregate the correlator stamps later is not the last Event
	// recorded: still 3 counted.
	clk.Advance(time.Millisecond)
	if held := g.Wait(clk.Now()); held != 0 {
		t.Errorf("an aggregate reset the count: held %v", held)
	}
	// The last Event recorded resets the count to itself: held again.
	w2 := newWaiter(t, clk, g)
	w2.start(last)
	if w2.done {
		t.Fatalf("the last Event recorded went at once (held %v): the count did not start again", w2.held)
	}
	g.Open()
	w2.settle()
	drained := make(chan bool)
	go func() { drained <- g.Drain(time.Minute) }()
	g.written()
	if !<-drained {
		t.Error("Drain timed out with the queue written")
	}
	// Drain gives up at its timeout.
	record()
	go func() { drained <- g.Drain(time.Second) }()
	for clk.Pending() == 0 {
		time.Sleep(time.Millisecond) // until Drain has armed its timer
	}
	clk.Advance(time.Second)
	if <-drained {
		t.Error("Drain reported an empty queue with an Event not written")
	}
}

// TestRandomWrites runs random write schedules around an Event, many
// times, and checks the wait against the rule worked out independently:
// the Event goes at the first moment from its recording on when no write
// is in flight and none ended within Quiet, or at its MaxHold.
func TestRandomWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 7))
	for trial := range 1000 {
		clk := bfdtest.NewClock(t0)
		g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold})
		w := newWaiter(t, clk, g)
		type write struct{ start, end time.Duration }
		var writes []write
		// Starts fall at .3 ms, ends (and so ends + Quiet) at .7 ms, the
		// Event and its MaxHold at whole ms: no two kinds of moment meet,
		// so the order of things at one instant never matters.
		for range rng.IntN(12) {
			s := time.Duration(rng.IntN(8000))*time.Millisecond + 300*time.Microsecond
			writes = append(writes, write{s, s + time.Duration(rng.IntN(1500))*time.Millisecond + 400*time.Microsecond})
		}
		recorded := time.Duration(rng.IntN(3000)) * time.Millisecond

		// What the rule says.
		inflight := func(at time.Duration) bool {
			return slices.ContainsFunc(writes, func(x write) bool { return x.start <= at && at < x.end })
		}
		lastEnd := func(at time.Duration) (time.Duration, bool) {
			var last time.Duration
			seen := false
			for _, x := range writes {
				if x.end <= at && (!seen || x.end > last) {
					last, seen = x.end, true
				}
			}
			return last, seen
		}
		candidates := []time.Duration{recorded, recorded + maxHold}
		for _, x := range writes {
			candidates = append(candidates, x.end+quiet)
		}
		slices.Sort(candidates)
		want := recorded + maxHold
		for _, c := range candidates {
			if c < recorded || c >= want {
				continue
			}
			if last, seen := lastEnd(c); !inflight(c) && (!seen || last+quiet <= c) {
				want = c
				break
			}
		}

		// What the gate does: every start and end at its time, the Event
		// recorded (and its Wait started) at its own.
		type action struct {
			at    time.Duration
			kind  int // 0 end, 1 start, 2 the Event
			write int
		}
		var acts []action
		for i, x := range writes {
			acts = append(acts, action{x.start, 1, i}, action{x.end, 0, i})
		}
		acts = append(acts, action{recorded, 2, -1})
		slices.SortStableFunc(acts, func(a, b action) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return a.kind - b.kind
		})
		dones := make([]func(), len(writes))
		started, running := false, 0
		for _, a := range acts {
			if started {
				w.advanceTo(t0.Add(a.at))
			} else {
				clk.AdvanceTo(t0.Add(a.at))
			}
			switch a.kind {
			case 0:
				dones[a.write]()
				if running--; running == 0 && started && !w.done {
					w.settle() // the last write in flight ended: the Event wakes
				}
			case 1:
				dones[a.write] = g.Writing()
				running++
			case 2:
				w.start(t0.Add(recorded))
				started = true
			}
		}
		if got := w.finish(); got != want-recorded {
			t.Fatalf("trial %d: writes %v, Event at %v: held %v, want %v", trial, writes, recorded, got, want-recorded)
		}
		if n := clk.Pending(); n != 0 {
			t.Fatalf("trial %d: %d timers left armed", trial, n)
		}
	}
}

// sink records what reaches it.
type sink struct {
	mu  sync.Mutex
	ops []string
}

func (s *sink) note(op string, e *corev1.Event) (*corev1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op+" "+e.Name)
	return e, nil
}

func (s *sink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ops)
}

func (s *sink) Create(e *corev1.Event) (*corev1.Event, error) { return s.note("create", e) }
func (s *sink) Update(e *corev1.Event) (*corev1.Event, error) { return s.note("update", e) }
func (s *sink) Patch(e *corev1.Event, _ []byte) (*corev1.Event, error) {
	return s.note("patch", e)
}

func TestSinkPassesEventsThroughTheGate(t *testing.T) {
	clk := bfdtest.NewClock(t0)
	g := New(Options{Clock: clk, Quiet: quiet, MaxHold: maxHold})
	w := newWaiter(t, clk, g)
	inner := &sink{}
	s := Sink{EventSink: inner, Gate: g}
	done := g.Writing()
	ev := func(name string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name}, LastTimestamp: metav1.NewTime(clk.Now())}
	}
	go func() {
		for _, f := range []func() error{
			func() error { _, err := s.Create(ev("a")); return err },
			func() error { _, err := s.Patch(ev("a"), []byte("{}")); return err },
			func() error { _, err := s.Update(ev("b")); return err },
		} {
			if err := f(); err != nil {
				t.Error(err)
			}
		}
	}()
	w.settle() // the Create sleeps: a write is in flight
	if got := inner.got(); len(got) != 0 {
		t.Errorf("%v reached the sink with a write in flight", got)
	}
	w.advanceTo(t0.Add(time.Second))
	done()
	if until := w.settle(); !until.Equal(t0.Add(time.Second + quiet)) {
		t.Errorf("after the write the Create sleeps until %v, want %v", until.Sub(t0), time.Second+quiet)
	}
	if got := inner.got(); len(got) != 0 {
		t.Errorf("%v reached the sink within Quiet of the write", got)
	}
	clk.Advance(quiet)
	// The Create goes, and the Patch and Update behind it, with no write
	// since, do not wait.
	want := []string{"create a", "patch a", "update b"}
	deadline := time.Now().Add(10 * time.Second)
	for got := inner.got(); !slices.Equal(got, want); got = inner.got() {
		if len(got) >= len(want) || time.Now().After(deadline) {
			t.Fatalf("sink got %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
	noTimers(t, clk)
}
