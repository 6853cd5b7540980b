package reconciler

import (
	"fmt"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(i int) reconcile.Request {
	return reconcile.Request{NamespacedName: keyOfObject("ns", fmt.Sprintf("s%05d", i))}
}

func addAt(q priorityqueue.PriorityQueue[reconcile.Request], prio int, rs ...reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{Priority: &prio}, rs...)
}

func newTestWindow(t *testing.T, window int) *queueWindow {
	t.Helper()
	w := newQueueWindow(priorityqueue.New[reconcile.Request]("test"), window)
	t.Cleanup(w.ShutDown)
	return w
}

// The queue itself never holds more than window settled Services, however
// many are added; they come out once each, in the order they were added.
func TestQueueWindowLetsInAWindowInOrder(t *testing.T) {
	const n, window = 500, 8
	w := newTestWindow(t, window)
	for i := range n {
		addAt(w, PrioritySettled, req(i))
	}
	addAt(w, PrioritySettled, req(3)) // again while held: keeps its place
	if got := w.Len(); got != n {
		t.Fatalf("Len %d, want %d (held ones count)", got, n)
	}
	if got := w.Held(); got != n-window {
		t.Fatalf("Held %d, want %d", got, n-window)
	}
	for i := range n {
		if inner := w.PriorityQueue.Len(); inner > window {
			t.Fatalf("the priority queue holds %d items, want at most %d", inner, window)
		}
		r, prio, shutdown := w.GetWithPriority()
		if shutdown {
			t.Fatal("shut down")
		}
		if r != req(i) || prio != PrioritySettled {
			t.Fatalf("item %d: got %v at priority %d, want %v at %d", i, r, prio, req(i), PrioritySettled)
		}
		w.Done(r)
	}
	if got := w.Len(); got != 0 {
		t.Fatalf("Len %d after all were done, want 0", got)
	}
}

// A Service that waits for an IP is handed out before the settled ones,
// even behind thousands of them.
func TestQueueWindowWorkGoesFirst(t *testing.T) {
	w := newTestWindow(t, 4)
	for i := range 2000 {
		addAt(w, PrioritySettled, req(i))
	}
	addAt(w, PriorityWork, req(99999))
	r, prio, _ := w.GetWithPriority()
	if r != req(99999) || prio != PriorityWork {
		t.Fatalf("first out: %v at priority %d, want the waiting Service at %d", r, prio, PriorityWork)
	}
	w.Done(r)
}

// A held Service wanted again at work priority leaves the line: it is
// handed out once, at that priority, and not again from the line.
func TestQueueWindowPromotesHeld(t *testing.T) {
	const n = 50
	w := newTestWindow(t, 2)
	for i := range n {
		addAt(w, PrioritySettled, req(i))
	}
	w.Add(req(40)) // plain Add: priority 0
	seen := map[reconcile.Request]int{}
	r, prio, _ := w.GetWithPriority()
	if r != req(40) || prio != PriorityWork {
		t.Fatalf("first out: %v at %d, want %v at %d", r, prio, req(40), PriorityWork)
	}
	seen[r]++
	w.Done(r)
	for w.Len() > 0 {
		r, _, _ := w.GetWithPriority()
		seen[r]++
		w.Done(r)
	}
	for i := range n {
		if seen[req(i)] != 1 {
			t.Errorf("%v handed out %d times, want once", req(i), seen[req(i)])
		}
	}
}

// A settled add for a Service whose reconcile runs goes to the queue, which
// runs it again after Done (nothing is lost while the window is full).
func TestQueueWindowReAddWhileRunning(t *testing.T) {
	w := newTestWindow(t, 1)
	addAt(w, PrioritySettled, req(1), req(2))
	r, _, _ := w.GetWithPriority()
	if r != req(1) {
		t.Fatalf("got %v, want %v", r, req(1))
	}
	addAt(w, PrioritySettled, req(1)) // its status write echoed while it runs
	w.Done(r)
	got := map[reconcile.Request]bool{}
	for range 2 {
		r, _, _ := w.GetWithPriority()
		got[r] = true
		w.Done(r)
	}
	if !got[req(1)] || !got[req(2)] {
		t.Fatalf("after Done got %v, want both %v again and %v", got, req(1), req(2))
	}
	if w.Len() != 0 {
		t.Fatalf("Len %d, want 0", w.Len())
	}
}

// Many workers drain a line far longer than the window: each Service once.
func TestQueueWindowConcurrentWorkers(t *testing.T) {
	const n, workers = 3000, 16
	w := newTestWindow(t, 2*workers)
	var mu sync.Mutex
	seen := map[reconcile.Request]int{}
	done := make(chan struct{})
	wait := startWorkers(w, workers, func(r reconcile.Request) {
		mu.Lock()
		seen[r]++
		total := len(seen)
		mu.Unlock()
		if total == n {
			close(done)
		}
	})
	for i := range n {
		prio := PrioritySettled
		if i%10 == 0 {
			prio = PriorityWork
		}
		addAt(w, prio, req(i))
	}
	<-done
	w.ShutDown()
	wait()
	for i := range n {
		if seen[req(i)] != 1 {
			t.Fatalf("%v handed out %d times, want once", req(i), seen[req(i)])
		}
	}
}

// startWorkers runs workers that take Services from q, call each and mark
// them done, until q shuts down; the returned func waits for them.
func startWorkers(q priorityqueue.PriorityQueue[reconcile.Request], workers int, each func(reconcile.Request)) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, _, shutdown := q.GetWithPriority()
				if shutdown {
					return
				}
				each(r)
				q.Done(r)
			}
		}()
	}
	return wg.Wait
}

// BenchmarkRestartQueue is a restart's queue work: 11,000 settled Services
// from the informer's first List and one that waits for an IP, drained by
// 32 workers, with controller-runtime's priority queue alone and in a
// queueWindow of 64.
func BenchmarkRestartQueue(b *testing.B) {
	const n, workers = 11000, 32
	for _, tc := range []struct {
		name string
		make func() priorityqueue.PriorityQueue[reconcile.Request]
	}{
		{"priorityqueue", func() priorityqueue.PriorityQueue[reconcile.Request] {
			return priorityqueue.New[reconcile.Request]("bench")
		}},
		{"queueWindow", func() priorityqueue.PriorityQueue[reconcile.Request] {
			return newQueueWindow(priorityqueue.New[reconcile.Request]("bench"), 2*workers)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reqs := make([]reconcile.Request, n)
			for i := range reqs {
				reqs[i] = req(i)
			}
			for b.Loop() {
				q := tc.make()
				var left sync.WaitGroup
				left.Add(n + 1)
				wait := startWorkers(q, workers, func(reconcile.Request) { left.Done() })
				for _, r := range reqs {
					addAt(q, PrioritySettled, r)
				}
				addAt(q, PriorityWork, req(n))
				left.Wait()
				q.ShutDown()
				wait()
			}
		})
	}
}

// BenchmarkBacklogQueue is a first start's queue work: 11,000 Services
// that wait for an IP, drained by 32 workers, with controller-runtime's
// priority queue alone and in the window.
func BenchmarkBacklogQueue(b *testing.B) {
	const n, workers = 11000, 32
	for _, tc := range []struct {
		name string
		make func() priorityqueue.PriorityQueue[reconcile.Request]
	}{
		{"priorityqueue", func() priorityqueue.PriorityQueue[reconcile.Request] {
			return priorityqueue.New[reconcile.Request]("bench")
		}},
		{"window", func() priorityqueue.PriorityQueue[reconcile.Request] {
			return newQueueWindow(priorityqueue.New[reconcile.Request]("bench"), 2*workers)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reqs := make([]reconcile.Request, n)
			for i := range reqs {
				reqs[i] = req(i)
			}
			for b.Loop() {
				q := tc.make()
				var left sync.WaitGroup
				left.Add(n)
				wait := startWorkers(q, workers, func(reconcile.Request) { left.Done() })
				for _, r := range reqs {
					addAt(q, PriorityWork, r)
				}
				left.Wait()
				q.ShutDown()
				wait()
			}
		})
	}
}

// Services that wait for an IP wait in a line of their own beyond the
// window: the queue never holds more than window of them, and they come
// out once each, in the order they were added.
func TestQueueWindowHoldsWork(t *testing.T) {
	const n, window = 500, 8
	w := newTestWindow(t, window)
	for i := range n {
		addAt(w, PriorityWork, req(i))
	}
	addAt(w, PrioritySettled, req(5)) // settled while it waits for work: keeps its place
	addAt(w, PriorityWork, req(7))    // again while held: keeps its place
	if got := w.Held(); got != n-window {
		t.Fatalf("Held %d, want %d", got, n-window)
	}
	for i := range n {
		if inner := w.PriorityQueue.Len(); inner > window {
			t.Fatalf("the priority queue holds %d items, want at most %d", inner, window)
		}
		r, prio, _ := w.GetWithPriority()
		if r != req(i) || prio != PriorityWork {
			t.Fatalf("item %d: got %v at priority %d, want %v at %d", i, r, prio, req(i), PriorityWork)
		}
		w.Done(r)
	}
	if got := w.Len(); got != 0 {
		t.Fatalf("Len %d after all were done, want 0", got)
	}
}

// While Services wait in the work line no settled one is let in: every
// Service that waits for an IP is handed out before every settled one
// not already let in, and a settled Service wanted for work moves to the
// work line once.
func TestQueueWindowSettledWaitsForWork(t *testing.T) {
	const n, window = 20, 2
	w := newTestWindow(t, window)
	for i := range n {
		addAt(w, PrioritySettled, req(i))
	}
	for i := n; i < 2*n; i++ {
		addAt(w, PriorityWork, req(i))
	}
	addAt(w, PriorityWork, req(10)) // held settled, now work: to the end of the work line
	var out []reconcile.Request
	for w.Len() > 0 {
		r, _, _ := w.GetWithPriority()
		out = append(out, r)
		w.Done(r)
	}
	want := []reconcile.Request{}
	for i := n; i < 2*n; i++ {
		want = append(want, req(i))
	}
	want = append(want, req(10), req(0), req(1)) // the two let in before any work arrived
	for i := 2; i < n; i++ {
		if i != 10 {
			want = append(want, req(i))
		}
	}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("handed out\n%v\nwant\n%v", out, want)
	}
}
