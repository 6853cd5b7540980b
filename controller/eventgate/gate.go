// Package eventgate holds the controller's Events back while it writes
// Service allocations. An Event costs the apiserver about what a status
// patch costs, and a backlog of new Services is bound by the apiserver: sent
// as they are recorded, the Events of a backlog compete with its writes.
// Held, they go once the writes have paused for Quiet, and each Event waits
// at most MaxHold from when it was recorded, however long the writes go on:
// a long backlog delays Events by MaxHold, never indefinitely.
//
// The gate drops nothing, and it does not push client-go's recorder queue
// to drop: that queue takes 1,000 Events waiting for the sink and silently
// drops any beyond, so the gate stops holding once MaxQueued Events are
// recorded and not yet written. The count is kept from the recorder's
// side: an Event the recorder dropped or skipped stays counted, erring
// high, until the sink takes the last Event recorded and the count starts
// again from it. At shutdown the gate opens and Drain waits (bounded) for
// the queue to be written, since client-go's broadcaster abandons what is
// still queued once it is shut down.
package eventgate

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/ecmplb/ecmplb/bfd"
)

// Defaults of the gate.
const (
	// DefaultQuiet is how long after the last write Events flow again: a
	// backlog's writes follow each other within milliseconds.
	DefaultQuiet = 200 * time.Millisecond
	// DefaultMaxHold bounds each Event's wait.
	DefaultMaxHold = 5 * time.Second
	// DefaultMaxQueued keeps the held Events below client-go's recorder
	// queue of 1,000.
	DefaultMaxQueued = 900
)

// Options configure a gate.
type Options struct {
	// Clock defaults to the real one.
	Clock bfd.Clock
	// Quiet: Events wait until no write ended within it.
	Quiet time.Duration
	// MaxHold bounds each Event's wait from when it was recorded.
	MaxHold time.Duration
	// MaxQueued: with this many Events recorded and not yet written, none
	// is held.
	MaxQueued int
	// Observe, if set, receives how long each write attempt of an Event
	// waited at the gate (zero for those let through at once; an Event
	// queued behind a held one waits in client-go's queue, not here).
	Observe func(held time.Duration)
}

// Gate tracks the writes in flight and holds Events while there are any.
type Gate struct {
	o        Options
	sleeping func(until time.Time) // tests: a Wait goes to sleep

	mu       sync.Mutex
	inflight int
	last     time.Time // when the last write ended
	queued   int       // Events recorded and not yet written (errs high)
	// recording: the span of the latest call into the recorder, which
	// stamps its Event within it (an Event the correlator makes later, an
	// aggregate, is stamped after it).
	recording struct{ from, to time.Time }
	open      bool // holds nothing any more (shutdown)
	// changed is closed and replaced when the last write in flight ends,
	// the queue reaches MaxQueued or empties, or the gate opens.
	changed chan struct{}
}

// New returns a gate.
func New(o Options) *Gate {
	if o.Clock == nil {
		o.Clock = bfd.RealClock()
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	return &Gate{o: o, changed: make(chan struct{})}
}

// Writing marks a write to the apiserver in flight; done ends it. Safe for
// concurrent use.
func (g *Gate) Writing() (done func()) {
	g.mu.Lock()
	g.inflight++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.inflight--
			g.last = g.o.Clock.Now()
			if g.inflight == 0 {
				g.signal()
			}
			g.mu.Unlock()
		})
	}
}

// recorded counts an Event handed to the recorder; the recorder has
// stamped it when done is called.
func (g *Gate) recorded() (done func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queued++
	from := g.o.Clock.Now()
	g.recording.from, g.recording.to = from, time.Time{}
	if g.queued == g.o.MaxQueued {
		g.signal()
	}
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.recording.from.Equal(from) {
			g.recording.to = g.o.Clock.Now()
		}
	}
}

// written counts an Event the sink wrote.
func (g *Gate) written() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.queued > 0 {
		g.queued--
		if g.queued == 0 {
			g.signal()
		}
	}
}

// Drain waits until every Event recorded has been written, or timeout
// (the count errs high when the recorder dropped or skipped one); it
// reports whether the queue emptied. Open the gate first.
func (g *Gate) Drain(timeout time.Duration) bool {
	fired := make(chan struct{})
	t := g.o.Clock.AfterFunc(timeout, func() { close(fired) })
	defer t.Stop()
	for {
		g.mu.Lock()
		empty, changed := g.queued == 0, g.changed
		g.mu.Unlock()
		if empty {
			return true
		}
		select {
		case <-changed:
		case <-fired:
			return false
		}
	}
}

// Open stops holding Events, for good: at shutdown the queued ones go at
// once.
func (g *Gate) Open() {
	g.mu.Lock()
	g.open = true
	g.signal()
	g.mu.Unlock()
}

// signal wakes the waiters; g.mu is held.
func (g *Gate) signal() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// Wait returns once an Event recorded at recorded may be sent: no write in
// flight and none ended within Quiet, or the Event is MaxHold old, or
// MaxQueued Events are queued, or the gate is open. It returns how long it
// waited.
func (g *Gate) Wait(recorded time.Time) time.Duration {
	g.mu.Lock()
	if r := g.recording; !r.to.IsZero() && !recorded.Before(r.from) && !recorded.After(r.to) {
		// The last Event recorded: none is queued behind it (as far as
		// the recorder's concurrent callers allow: they err by a few).
		g.queued = 1
	}
	g.mu.Unlock()
	start := g.o.Clock.Now()
	if recorded.IsZero() || recorded.After(start) {
		recorded = start
	}
	deadline := recorded.Add(g.o.MaxHold)
	for {
		g.mu.Lock()
		now := g.o.Clock.Now()
		until := deadline
		if g.inflight == 0 {
			until = earliest(g.last.Add(g.o.Quiet), deadline)
		}
		if g.open || g.queued >= g.o.MaxQueued || !now.Before(until) {
			g.mu.Unlock()
			held := now.Sub(start)
			if g.o.Observe != nil {
				g.o.Observe(held)
			}
			return held
		}
		changed := g.changed
		g.mu.Unlock()
		fired := make(chan struct{})
		t := g.o.Clock.AfterFunc(until.Sub(now), func() { close(fired) })
		if g.sleeping != nil {
			g.sleeping(until)
		}
		select {
		case <-changed:
			t.Stop()
		case <-fired:
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Sink holds each Event at the gate before passing it on: Events are
// written one at a time, in the order they were recorded, so the ones
// behind a held Event wait with it.
type Sink struct {
	record.EventSink
	Gate *Gate
}

// Create writes a new Event once the gate lets it through.
func (s Sink) Create(e *corev1.Event) (*corev1.Event, error) {
	s.Gate.Wait(recordedAt(e))
	return s.done(s.EventSink.Create(e))
}

// Update writes an Event again once the gate lets it through.
func (s Sink) Update(e *corev1.Event) (*corev1.Event, error) {
	s.Gate.Wait(recordedAt(e))
	return s.done(s.EventSink.Update(e))
}

// Patch counts a repeated Event once the gate lets it through.
func (s Sink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	s.Gate.Wait(recordedAt(e))
	return s.done(s.EventSink.Patch(e, data))
}

// done counts a written Event off the queue (a failed write is retried or
// given up by client-go: either way it stays counted, erring high).
func (s Sink) done(e *corev1.Event, err error) (*corev1.Event, error) {
	if err == nil {
		s.Gate.written()
	}
	return e, err
}

// recordedAt is when the recorder made the Event (its latest occurrence).
func recordedAt(e *corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.FirstTimestamp.Time
}

// Recorder counts every Event handed to it at the gate before passing it
// to rec: the Events recorded and not yet written are the queue MaxQueued
// bounds.
type Recorder struct {
	record.EventRecorder
	Gate *Gate
}

// Event records an Event.
func (r Recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	defer r.Gate.recorded()()
	r.EventRecorder.Event(obj, eventtype, reason, message)
}

// Eventf records an Event with a formatted message.
func (r Recorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	defer r.Gate.recorded()()
	r.EventRecorder.Eventf(obj, eventtype, reason, format, args...)
}

// AnnotatedEventf records an Event with annotations.
func (r Recorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, format string, args ...any) {
	defer r.Gate.recorded()()
	r.EventRecorder.AnnotatedEventf(obj, annotations, eventtype, reason, format, args...)
}
