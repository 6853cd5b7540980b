package router

import (
	"slices"
	"sync"

	"github.com/ecmplb/ecmplb/fabric/control"
)

// eventLog is a bounded, sequenced log of neighbor events.
type eventLog struct {
	mu     sync.Mutex
	seq    uint64
	max    int
	events []control.Event
}

func newEventLog(max int) *eventLog { return &eventLog{max: max} }

func (l *eventLog) add(e control.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	l.events = append(l.events, e)
	if over := len(l.events) - l.max; over > 0 {
		l.events = slices.Delete(l.events, 0, over)
	}
}

func (l *eventLog) after(seq uint64) []control.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearchFunc(l.events, seq+1, func(e control.Event, s uint64) int {
		switch {
		case e.Seq < s:
			return -1
		case e.Seq > s:
			return 1
		}
		return 0
	})
	return slices.Clone(l.events[i:])
}
