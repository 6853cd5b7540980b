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

// Each line: the queue itself never holds more than window of its
// Services, however many are added; they come out once each, at the
// line's priority, in the order they were added. A Service added again
// while held keeps its place (a settled add too, while it waits for work).
func TestQueueWindowLetsInAWindowInOrder(t *testing.T) {
	const n, window = 500, 8
	for _, tc := range []struct {
		prio  int
		again []int
	}{
		{PrioritySettled, []int{PrioritySettled}},
		{PriorityWork, []int{PriorityWork, PrioritySettled}},
	} {
		w := newTestWindow(t, window)
		for i := range n {
			addAt(w, tc.prio, req(i))
		}
		for _, p := range tc.again {
			addAt(w, p, req(30))
		}
		if got := w.Len(); got != n {
			t.Fatalf("priority %d: Len %d, want %d (held ones count)", tc.prio, got, n)
		}
		if got := w.Held(); got != n-window {
			t.Fatalf("priority %d: Held %d, want %d", tc.prio, got, n-window)
		}
		for i := range n {
			if inner := w.PriorityQueue.Len(); inner > window {
				t.Fatalf("priority %d: the priority queue holds %d items, want at most %d", tc.prio, inner, window)
			}
			r, prio, shutdown := w.GetWithPriority()
			if shutdown {
				t.Fatal("shut down")
			}
			if r != req(i) || prio != tc.prio {
				t.Fatalf("item %d: got %v at priority %d, want %v at %d", i, r, prio, req(i), tc.prio)
			}
			w.Done(r)
		}
		if got := w.Len(); got != 0 {
			t.Fatalf("priority %d: Len %d after all were done, want 0", tc.prio, got)
		}
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

// BenchmarkQueue drains, with 32 workers, a restart's queue work (11,000
// settled Services from the informer's first List and one that waits for
// an IP) and a first start's (11,000 that wait for an IP), with
// controller-runtime's priority queue alone and in the window.
func BenchmarkQueue(b *testing.B) {
	const n, workers = 11000, 32
	reqs := make([]reconcile.Request, n+1)
	for i := range reqs {
		reqs[i] = req(i)
	}
	for _, load := range []struct {
		name string
		add  func(q priorityqueue.PriorityQueue[reconcile.Request])
		n    int
	}{
		{"restart", func(q priorityqueue.PriorityQueue[reconcile.Request]) {
			for _, r := range reqs[:n] { // one event each, as the informer adds them
				addAt(q, PrioritySettled, r)
			}
			addAt(q, PriorityWork, reqs[n])
		}, n + 1},
		{"backlog", func(q priorityqueue.PriorityQueue[reconcile.Request]) {
			for _, r := range reqs[:n] {
				addAt(q, PriorityWork, r)
			}
		}, n},
	} {
		for _, queue := range []struct {
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
			b.Run(load.name+"/"+queue.name, func(b *testing.B) {
				for b.Loop() {
					q := queue.make()
					var left sync.WaitGroup
					left.Add(load.n)
					wait := startWorkers(q, workers, func(reconcile.Request) { left.Done() })
					load.add(q)
					left.Wait()
					q.ShutDown()
					wait()
				}
			})
		}
	}
}
