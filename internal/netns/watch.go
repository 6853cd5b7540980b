package netns

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// timed is an event a watcher records: it knows when it was received.
type timed interface{ when() time.Time }

// watchLog is what the netlink watchers (FIBWatch, NeighWatch) share: the
// events of one subscription as the kernel reported them, in order,
// timestamped on receipt, and the subscription's error. A broken
// subscription (the socket overran) is recorded as an error, since what was
// missed is unknown.
type watchLog[E timed] struct {
	// what names the watched table in errors ("FIB", "neighbour").
	what string
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	events []E
	err    error
	kick   chan struct{}
}

func newWatchLog[E timed](what string) *watchLog[E] {
	return &watchLog[E]{what: what, done: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// pump records what ch delivers (rec turns an update into an event, ok
// false to leave it out) until Close, or until ch closes, which is a
// failure unless Close closed it.
func pump[E timed, U any](w *watchLog[E], ns string, ch <-chan U, rec func(U, time.Time) (E, bool)) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.done:
				return
			case u, ok := <-ch:
				if !ok {
					select {
					case <-w.done:
					default:
						w.fail(fmt.Errorf("%s subscription in %s ended", w.what, ns))
					}
					return
				}
				if e, ok := rec(u, time.Now()); ok {
					w.add(e)
				}
			}
		}
	}()
}

func (w *watchLog[E]) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = errors.Join(w.err, err)
}

func (w *watchLog[E]) add(e E) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Events returns what was recorded so far, oldest first, and the
// subscription's error (nil while every notification arrived).
func (w *watchLog[E]) Events() ([]E, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events), w.err
}

// Since returns the events recorded at or after t.
func (w *watchLog[E]) Since(t time.Time) []E {
	evs, _ := w.Events()
	i := 0
	for i < len(evs) && evs[i].when().Before(t) {
		i++
	}
	return evs[i:]
}

// WaitFor waits until cond holds on the events recorded so far, or fails after
// timeout. cond is checked at once and after each new event.
func (w *watchLog[E]) WaitFor(timeout time.Duration, cond func([]E) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		evs, err := w.Events()
		if err != nil {
			return err
		}
		if cond(evs) {
			return nil
		}
		select {
		case <-w.kick:
		case <-deadline.C:
			return fmt.Errorf("%s condition not met within %v; events: %v", w.what, timeout, evs)
		}
	}
}

// Close ends the subscription and waits for its goroutine.
func (w *watchLog[E]) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}
