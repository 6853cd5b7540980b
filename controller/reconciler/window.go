package reconciler

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// settledWindow is the Service controller's queue: controller-runtime's
// priority queue, with the Services added at PrioritySettled held in a line
// of their own and let into it at most window at a time.
//
// The priority queue walks every item it holds each time an item is added
// or handed out. After a restart at 11,000 Services, all of them settled,
// that walk was a third of the controller's CPU while it started (the
// restart CPU profile of `make bench-controller`), spent while the one
// Service waiting for an IP waited too. Held, they cost a map entry and a
// slot in a slice each, and the queue stays small.
//
// Held Services keep their order. A Service added again at any other
// priority, or while one of its reconciles is let in, goes to the queue at
// once (the queue de-duplicates and keeps the higher priority), so settled
// work never delays other work. Len counts held Services too.
type settledWindow struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	window int

	mu   sync.Mutex
	held map[reconcile.Request]uint64 // -> its place in line
	line []heldItem                   // in order; stale places are skipped
	seq  uint64
	in   map[reconcile.Request]struct{} // let in and not Done yet

	stop sync.Once
}

type heldItem struct {
	req reconcile.Request
	seq uint64
}

func newSettledWindow(q priorityqueue.PriorityQueue[reconcile.Request], window int) *settledWindow {
	return &settledWindow{PriorityQueue: q, window: max(window, 1),
		held: map[reconcile.Request]uint64{}, in: map[reconcile.Request]struct{}{}}
}

var _ priorityqueue.PriorityQueue[reconcile.Request] = (*settledWindow)(nil)

// AddWithOpts holds ready Services added at PrioritySettled; everything
// else goes to the queue.
func (w *settledWindow) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if w.PriorityQueue.ShuttingDown() {
		return
	}
	settled := o.Priority != nil && *o.Priority == PrioritySettled && o.After <= 0 && !o.RateLimited
	ready := o.After <= 0 && !o.RateLimited
	var pass []reconcile.Request
	w.mu.Lock()
	for _, r := range items {
		_, inside := w.in[r]
		switch {
		case settled && !inside:
			if _, ok := w.held[r]; !ok {
				w.seq++
				w.held[r] = w.seq
				w.line = append(w.line, heldItem{req: r, seq: w.seq})
			}
		default:
			if ready {
				// Wanted now at a priority of its own: it leaves the line.
				delete(w.held, r)
			}
			pass = append(pass, r)
		}
	}
	w.mu.Unlock()
	if len(pass) > 0 {
		w.PriorityQueue.AddWithOpts(o, pass...)
	}
	w.letIn()
}

// letIn moves held Services into the queue while fewer than window of them
// are inside.
func (w *settledWindow) letIn() {
	w.mu.Lock()
	var batch []reconcile.Request
	for len(w.in) < w.window && len(w.held) > 0 {
		h := w.line[0]
		w.line[0] = heldItem{}
		w.line = w.line[1:]
		if seq, ok := w.held[h.req]; !ok || seq != h.seq {
			continue // left the line, or holds a later place
		}
		delete(w.held, h.req)
		w.in[h.req] = struct{}{}
		batch = append(batch, h.req)
	}
	if len(w.held) == 0 {
		w.line = nil // let go of the spent backing array
	}
	w.mu.Unlock()
	if len(batch) > 0 {
		p := PrioritySettled
		w.PriorityQueue.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, batch...)
	}
}

// Done ends a reconcile; a settled one makes room for the next.
func (w *settledWindow) Done(r reconcile.Request) {
	w.PriorityQueue.Done(r)
	w.mu.Lock()
	_, inside := w.in[r]
	delete(w.in, r)
	w.mu.Unlock()
	if inside {
		w.letIn()
	}
}

func (w *settledWindow) Add(r reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{}, r)
}

func (w *settledWindow) AddAfter(r reconcile.Request, d time.Duration) {
	w.AddWithOpts(priorityqueue.AddOpts{After: d}, r)
}

func (w *settledWindow) AddRateLimited(r reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, r)
}

// Held is the number of Services waiting in line.
func (w *settledWindow) Held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

// Len counts the held Services with the queue's ready ones.
func (w *settledWindow) Len() int {
	return w.Held() + w.PriorityQueue.Len()
}

// ShutDown shuts the queue down (once; held Services are dropped).
func (w *settledWindow) ShutDown() {
	w.stop.Do(func() { w.dropHeld(); w.PriorityQueue.ShutDown() })
}

// ShutDownWithDrain shuts the queue down once the Services handed out are
// done (held ones are dropped).
func (w *settledWindow) ShutDownWithDrain() {
	w.stop.Do(func() { w.dropHeld(); w.PriorityQueue.ShutDownWithDrain() })
}

func (w *settledWindow) dropHeld() {
	w.mu.Lock()
	w.held, w.line = map[reconcile.Request]uint64{}, nil
	w.mu.Unlock()
}

// newServiceQueue is the Service controller's NewQueue: the priority queue
// controller-runtime would make, in a settledWindow.
func newServiceQueue(window int, held func(func() int)) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		w := newSettledWindow(priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
			o.RateLimiter = rl
		}), window)
		held(w.Held)
		return w
	}
}
