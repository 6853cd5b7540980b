package bfd

import "sync"

// subscriber queues events for one Subscribe caller; a goroutine forwards
// them to the caller's channel.
type subscriber struct {
	mu     sync.Mutex
	queue  []StateChange
	wake   chan struct{}
	done   chan struct{}
	out    chan StateChange
	closer sync.Once
}

func newSubscriber() *subscriber {
	s := &subscriber{
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		out:  make(chan StateChange, 64),
	}
	go s.run()
	return s
}

func (s *subscriber) push(ev StateChange) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.out)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			ev := s.queue[0]
			s.queue[0] = StateChange{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			select {
			case s.out <- ev:
			case <-s.done:
				return
			}
		}
	}
}

func (s *subscriber) cancel() { s.closer.Do(func() { close(s.done) }) }
