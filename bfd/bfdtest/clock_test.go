package bfdtest

import (
	"testing"
	"time"
)

func TestClockRunsTimersInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	var got []string
	var at []time.Duration
	record := func(name string) func() {
		return func() { got = append(got, name); at = append(at, c.Now().Sub(start)) }
	}
	c.AfterFunc(30*time.Millisecond, record("c"))
	c.AfterFunc(10*time.Millisecond, record("a"))
	b := c.AfterFunc(20*time.Millisecond, record("b"))
	stopped := c.AfterFunc(15*time.Millisecond, record("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report armed once")
	}
	// A callback that re-arms within the window runs again in the same Advance.
	var n int
	var tick func()
	ticker := c.AfterFunc(0, func() {})
	tick = func() {
		n++
		if n < 3 {
			ticker.Reset(12 * time.Millisecond)
		}
	}
	ticker.Stop()
	ticker = c.AfterFunc(12*time.Millisecond, tick)

	c.Advance(25 * time.Millisecond)
	if want := []string{"a", "b"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if at[0] != 10*time.Millisecond || at[1] != 20*time.Millisecond {
		t.Fatalf("ran at %v", at)
	}
	if n != 2 || c.Now().Sub(start) != 25*time.Millisecond {
		t.Fatalf("re-armed timer ran %d times; now %v", n, c.Now().Sub(start))
	}
	if b.Reset(time.Second) {
		t.Fatal("fired timer reported as armed")
	}
	c.Advance(time.Hour)
	if len(got) != 4 || got[2] != "c" || got[3] != "b" || n != 3 {
		t.Fatalf("ran %v, n=%d", got, n)
	}
	if c.Pending() != 0 {
		t.Fatalf("%d timers pending", c.Pending())
	}
}
