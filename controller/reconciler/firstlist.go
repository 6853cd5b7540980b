package reconciler

import (
	"context"
	"sync"
)

// FirstList hands the Service informer's first List to the rebuild. The
// informer's own intake of a List (client-go keys and stores each object
// before it reports its sync: 37-81 ms for 11,000 Services in a restart)
// then runs beside the rebuild's restore of the same Services instead of
// before it. The List is the informer's: a consistent read made after this
// replica acquired its Lease (the informer starts on the leader only), so
// it is what the cache holds at its sync, at the same resourceVersion.
//
// The ListerWatcher publishes it (app.serviceListWatch); only the first
// publication counts, and the rebuild takes it once.
type FirstList struct {
	once sync.Once
	done chan struct{}

	mu    sync.Mutex
	items []*Svc
	rv    string
	taken bool
}

// NewFirstList returns a FirstList nothing is published in yet.
func NewFirstList() *FirstList { return &FirstList{done: make(chan struct{})} }

// Publish records the first List's Services (read only from here on) and
// its resourceVersion; later calls do nothing.
func (f *FirstList) Publish(items []*Svc, resourceVersion string) {
	f.once.Do(func() {
		f.mu.Lock()
		f.items, f.rv = items, resourceVersion
		f.mu.Unlock()
		close(f.done)
	})
}

// Take waits for the List until it is published, until stop is closed
// (whatever was published by then is still taken) or until ctx ends. The
// List is handed out once, and not held after.
func (f *FirstList) Take(ctx context.Context, stop <-chan struct{}) ([]*Svc, string, bool) {
	select {
	case <-f.done:
	case <-stop:
	case <-ctx.Done():
		return nil, "", false
	}
	select {
	case <-f.done:
	default:
		return nil, "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken {
		return nil, "", false
	}
	items, rv := f.items, f.rv
	f.items, f.taken = nil, true
	return items, rv, true
}
