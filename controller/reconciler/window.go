package reconciler

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// queueWindow is the Service controller's queue: controller-runtime's
// priority queue, with the Services added ready at PriorityWork and at
// PrioritySettled held in two lines of their own and let into it at most
// window of each at a time.
//
// The priority queue walks every item it holds each time an item is added
// or handed out. After a restart at 11,000 Services, all of them settled,
// that walk was a third of the controller's CPU while it started (the
// restart CPU profile of `make bench-controller`), spent while the one
// Service waiting for an IP waited too; at a first start with 11,000
// Services waiting for an IP it was 0.4 s of CPU (BenchmarkQueue),
// and 13% of the backlog's CPU profile at 1,000. Held, they cost a map
// entry and a slot in a slice each, and the queue stays small.
//
// Held Services keep their order (the queue's own order within a priority).
// Settled Services are let in only while no Service waits in the work line,
// and the work line has a window of its own, so settled work never delays
// other work. A Service added again while held keeps its place (in the work
// line if either add was at work priority); added at any other priority,
// after a delay, rate limited, or while one of its reconciles is let in, it
// goes to the queue at once (the queue de-duplicates and keeps the higher
// priority). Len counts held Services too.
type queueWindow struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	window int

	mu     sync.Mutex
	lines  [2]line
	seq    uint64
	in     map[reconcile.Request]int // let in and not Done yet -> its line
	inLine [2]int                    // how many of in came from each line

	stop sync.Once
}

// The two lines, in the order they are let in.
const (
	workLine = iota
	settledLine
)

// linePriority is the priority a line's Services enter the queue at.
var linePriority = [2]int{PriorityWork, PrioritySettled}

// line is Services in order of arrival; places of Services that left it are
// skipped when reached.
type line struct {
	held  map[reconcile.Request]uint64 // -> its place in line
	order []heldItem
}

type heldItem struct {
	req reconcile.Request
	seq uint64
}

func newQueueWindow(q priorityqueue.PriorityQueue[reconcile.Request], window int) *queueWindow {
	w := &queueWindow{PriorityQueue: q, window: max(window, 1), in: map[reconcile.Request]int{}}
	for i := range w.lines {
		w.lines[i].held = map[reconcile.Request]uint64{}
	}
	return w
}

var _ priorityqueue.PriorityQueue[reconcile.Request] = (*queueWindow)(nil)

// AddWithOpts holds ready Services added at PriorityWork (or no priority)
// and PrioritySettled; everything else goes to the queue.
func (w *queueWindow) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if w.PriorityQueue.ShuttingDown() {
		return
	}
	ready := o.After <= 0 && !o.RateLimited
	to := -1 // the queue
	switch {
	case !ready:
	case o.Priority == nil || *o.Priority == PriorityWork:
		to = workLine
	case *o.Priority == PrioritySettled:
		to = settledLine
	}
	var pass []reconcile.Request
	w.mu.Lock()
	for _, r := range items {
		_, inside := w.in[r]
		_, inWork := w.lines[workLine].held[r]
		switch {
		case inside || to < 0:
			if ready {
				// Wanted now at a priority of its own: it leaves the lines.
				delete(w.lines[workLine].held, r)
				delete(w.lines[settledLine].held, r)
			}
			pass = append(pass, r)
		case inWork:
			// Keeps its place.
		case to == workLine:
			delete(w.lines[settledLine].held, r)
			w.hold(workLine, r)
		default:
			if _, ok := w.lines[settledLine].held[r]; !ok {
				w.hold(settledLine, r)
			}
		}
	}
	w.mu.Unlock()
	if len(pass) > 0 {
		w.PriorityQueue.AddWithOpts(o, pass...)
	}
	w.letIn()
}

// hold puts r at the end of line l (w.mu held).
func (w *queueWindow) hold(l int, r reconcile.Request) {
	w.seq++
	w.lines[l].held[r] = w.seq
	w.lines[l].order = append(w.lines[l].order, heldItem{req: r, seq: w.seq})
}

// letIn moves held Services into the queue while fewer than window of their
// line are inside: the work line's first, the settled line's only when no
// Service waits in the work line.
func (w *queueWindow) letIn() {
	var batch [2][]reconcile.Request
	w.mu.Lock()
	for l := range w.lines {
		ln := &w.lines[l]
		if l == settledLine && len(w.lines[workLine].held) > 0 {
			break
		}
		for w.inLine[l] < w.window && len(ln.held) > 0 {
			h := ln.order[0]
			ln.order[0] = heldItem{}
			ln.order = ln.order[1:]
			if seq, ok := ln.held[h.req]; !ok || seq != h.seq {
				continue // left the line
			}
			delete(ln.held, h.req)
			w.in[h.req] = l
			w.inLine[l]++
			batch[l] = append(batch[l], h.req)
		}
		if len(ln.held) == 0 {
			ln.order = nil // let go of the spent backing array
		}
	}
	w.mu.Unlock()
	for l, b := range batch {
		if len(b) > 0 {
			p := linePriority[l]
			w.PriorityQueue.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, b...)
		}
	}
}

// Done ends a reconcile; one let in from a line makes room for the next.
func (w *queueWindow) Done(r reconcile.Request) {
	w.PriorityQueue.Done(r)
	w.mu.Lock()
	l, inside := w.in[r]
	if inside {
		delete(w.in, r)
		w.inLine[l]--
	}
	w.mu.Unlock()
	if inside {
		w.letIn()
	}
}

func (w *queueWindow) Add(r reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{}, r)
}

func (w *queueWindow) AddAfter(r reconcile.Request, d time.Duration) {
	w.AddWithOpts(priorityqueue.AddOpts{After: d}, r)
}

func (w *queueWindow) AddRateLimited(r reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, r)
}

// Held is the number of Services waiting in the lines.
func (w *queueWindow) Held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines[workLine].held) + len(w.lines[settledLine].held)
}

// Len counts the held Services with the queue's ready ones.
func (w *queueWindow) Len() int {
	return w.Held() + w.PriorityQueue.Len()
}

// ShutDown shuts the queue down (once; held Services are dropped).
func (w *queueWindow) ShutDown() {
	w.stop.Do(func() { w.dropHeld(); w.PriorityQueue.ShutDown() })
}

// ShutDownWithDrain shuts the queue down once the Services handed out are
// done (held ones are dropped).
func (w *queueWindow) ShutDownWithDrain() {
	w.stop.Do(func() { w.dropHeld(); w.PriorityQueue.ShutDownWithDrain() })
}

func (w *queueWindow) dropHeld() {
	w.mu.Lock()
	for i := range w.lines {
		w.lines[i] = line{held: map[reconcile.Request]uint64{}}
	}
	w.mu.Unlock()
}

// newServiceQueue is the Service controller's NewQueue: the priority queue
// controller-runtime would make, in a queueWindow.
func newServiceQueue(window int, held func(func() int)) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		w := newQueueWindow(priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
			o.RateLimiter = rl
		}), window)
		held(w.Held)
		return w
	}
}
