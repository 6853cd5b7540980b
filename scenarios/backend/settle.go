package backend

import (
	"context"
	"time"
)

// SettledRuntimes reads every node's speaker (read) until none has grown its
// goroutine count for SettleQuiet, SettleMax at most, and returns each node's
// largest readings: the baseline a leak check compares with.
//
// A speaker starts some parts only after its first pass over its inputs (the
// status writers' workers wait for it, the layer 2 writer for the start-up
// hold), so a single reading right after the routes are up can be short of
// them, and every later reading then looks like a leak (in CI: 144 goroutines
// at the fault suite's baseline, a steady 163 a second later). The largest
// heap reading is kept too, so one that caught a GC right after a burst is not
// taken as the floor. now and pause are the clock (time.Now, time.Sleep
// outside tests).
func SettledRuntimes(ctx context.Context, nodes []string, read func(node string) (Runtime, error),
	now func() time.Time, pause func(time.Duration)) (map[string]Runtime, error) {
	out := map[string]Runtime{}
	start := now()
	grew := start
	for {
		for _, n := range nodes {
			rt, err := read(n)
			if err != nil {
				return nil, err
			}
			b, seen := out[n]
			if !seen || rt.Goroutines > b.Goroutines {
				grew = now()
			}
			out[n] = Runtime{Goroutines: max(b.Goroutines, rt.Goroutines), HeapInuse: max(b.HeapInuse, rt.HeapInuse), GCForced: rt.GCForced}
		}
		if t := now(); t.Sub(grew) >= SettleQuiet || t.Sub(start) >= SettleMax || ctx.Err() != nil {
			return out, nil
		}
		pause(SettlePoll)
	}
}

// How SettledRuntimes waits for the speakers to settle.
const (
	SettlePoll  = 500 * time.Millisecond
	SettleQuiet = 3 * time.Second
	SettleMax   = 20 * time.Second
)
