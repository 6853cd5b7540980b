package backend

import (
	"context"
	"testing"
	"time"
)

// TestSettledRuntimes: a speaker that starts its status writers' workers
// after the first reading (as one did in CI: 145 goroutines at the
// baseline, a steady 162 after the rounds) must have the grown count as its
// baseline; a reading that caught a GC does not lower the heap's.
func TestSettledRuntimes(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := t0
	counts := map[string]func(since time.Duration) Runtime{
		"node1": func(since time.Duration) Runtime {
			if since < 2*time.Second {
				return Runtime{Goroutines: 145, HeapInuse: 10 << 20}
			}
			return Runtime{Goroutines: 162, HeapInuse: 8 << 20}
		},
		"node2": func(time.Duration) Runtime { return Runtime{Goroutines: 150, HeapInuse: 9 << 20} },
	}
	reads := 0
	out, err := SettledRuntimes(context.Background(), []string{"node1", "node2"}, func(n string) (Runtime, error) {
		reads++
		return counts[n](clock.Sub(t0)), nil
	}, func() time.Time { return clock }, func(d time.Duration) { clock = clock.Add(d) })
	if err != nil {
		t.Fatal(err)
	}
	if g := out["node1"].Goroutines; g != 162 {
		t.Errorf("node1's baseline: %v goroutines, want 162 (the count once its writers started)", g)
	}
	if h := out["node1"].HeapInuse; h != 10<<20 {
		t.Errorf("node1's heap baseline: %v, want the larger reading %v", h, 10<<20)
	}
	if g := out["node2"].Goroutines; g != 150 {
		t.Errorf("node2's baseline: %v goroutines, want 150", g)
	}
	// The last growth at 2 s, then SettleQuiet without one.
	if took := clock.Sub(t0); took < 2*time.Second+SettleQuiet || took > 2*time.Second+SettleQuiet+SettlePoll {
		t.Errorf("settled after %v, want %v after the last growth at 2s", took, SettleQuiet)
	}

	// A count that keeps growing is read for SettleMax at most.
	clock, g := t0, 100.0
	out, err = SettledRuntimes(context.Background(), []string{"node1"}, func(string) (Runtime, error) {
		g++
		return Runtime{Goroutines: g}, nil
	}, func() time.Time { return clock }, func(d time.Duration) { clock = clock.Add(d) })
	if err != nil {
		t.Fatal(err)
	}
	if took := clock.Sub(t0); took != SettleMax {
		t.Errorf("a growing count read for %v, want SettleMax %v", took, SettleMax)
	}
	if out["node1"].Goroutines != g {
		t.Errorf("baseline %v, want the last (largest) reading %v", out["node1"].Goroutines, g)
	}
}
