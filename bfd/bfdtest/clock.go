// Package bfdtest provides a fake clock for deterministic tests of code that
// uses package bfd (or any code taking a bfd.Clock).
package bfdtest

import (
	"sort"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
)

// Clock is a manually advanced bfd.Clock. Timer callbacks run synchronously
// inside Advance, in deadline order, with Now() equal to their deadline.
// It is safe for concurrent use; callbacks may create, stop and reset timers.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*Timer]struct{}
}

// NewClock returns a fake clock that starts at start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*Timer]struct{}{}}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the fake time reaches Now()+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) bfd.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{c: c, f: f}
	c.arm(t, d)
	return t
}

func (c *Clock) arm(t *Timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.seq++
	t.when = c.now.Add(d)
	t.seq = c.seq
	c.timers[t] = struct{}{}
}

// Advance moves the fake time forward by d, running every timer that falls
// due on the way (including timers those callbacks arm within the window).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	c.AdvanceTo(target)
}

// AdvanceTo moves the fake time forward to t (never backwards).
func (c *Clock) AdvanceTo(target time.Time) {
	for {
		c.mu.Lock()
		next := c.nextDue(target)
		if next == nil {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		delete(c.timers, next)
		if next.when.After(c.now) {
			c.now = next.when
		}
		f := next.f
		c.mu.Unlock()
		f()
	}
}

func (c *Clock) nextDue(target time.Time) *Timer {
	var due []*Timer
	for t := range c.timers {
		if !t.when.After(target) {
			due = append(due, t)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].when.Equal(due[j].when) {
			return due[i].when.Before(due[j].when)
		}
		return due[i].seq < due[j].seq
	})
	return due[0]
}

// Pending returns how many timers are armed.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDue returns when the earliest armed timer falls due (false: none is
// armed): a test can wait until code under test has armed the timer it
// expects before advancing the clock.
func (c *Clock) NextDue() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for t := range c.timers {
		if next.IsZero() || t.when.Before(next) {
			next = t.when
		}
	}
	return next, !next.IsZero()
}

// Timer is a fake timer created by Clock.AfterFunc.
type Timer struct {
	c    *Clock
	f    func()
	when time.Time
	seq  uint64
}

// Stop disarms the timer; it reports whether the timer was armed.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	return armed
}

// Reset re-arms the timer to fire d after the current fake time; it reports
// whether the timer was armed before.
func (t *Timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	t.c.arm(t, d)
	return armed
}
