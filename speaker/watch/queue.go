package watch

import "sync"

// queue collects Service keys to recompute and flags for configuration and
// Node changes.
// Adding a key that is already queued is free, so a burst of events for one Service
// costs one recompute.
type queue struct {
	mu     sync.Mutex
	keys   map[string]struct{}
	config bool
	nodes  bool
	signal chan struct{}
}

func newQueue() *queue {
	return &queue{keys: map[string]struct{}{}, signal: make(chan struct{}, 1)}
}

func (q *queue) poke() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) add(key string) {
	q.mu.Lock()
	q.keys[key] = struct{}{}
	q.mu.Unlock()
	q.poke()
}

func (q *queue) configChanged() {
	q.mu.Lock()
	q.config = true
	q.mu.Unlock()
	q.poke()
}

// nodesChanged marks a change of some Node (layer 2 mode reads them all).
func (q *queue) nodesChanged() {
	q.mu.Lock()
	q.nodes = true
	q.mu.Unlock()
	q.poke()
}

// take returns and clears what is queued.
func (q *queue) take() (keys []string, config, nodes bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k := range q.keys {
		keys = append(keys, k)
	}
	clear(q.keys)
	config, q.config = q.config, false
	nodes, q.nodes = q.nodes, false
	return keys, config, nodes
}
