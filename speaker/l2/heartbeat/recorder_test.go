package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// testInterval is short so that the tests wait little; every wait is on
// receipts, with a deadline far above it.
const testInterval = 50 * time.Millisecond

// recorder is a heard function that keeps every receipt, with the sender's
// sequence when seqOf is set, and wakes waiters.
type recorder struct {
	mu      sync.Mutex
	times   map[string][]time.Time
	seqs    map[string][]uint64
	changed chan struct{} // closed, and replaced, at every receipt
	// seqOf is the sequence last accepted from node: read in heard, which
	// runs after the datagram's acceptance and before the next one's (one
	// receive goroutine), it is the sequence of the datagram heard.
	seqOf func(node string) uint64
}

func newRecorder() *recorder {
	return &recorder{times: map[string][]time.Time{}, seqs: map[string][]uint64{}, changed: make(chan struct{})}
}

func (r *recorder) heard(node string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times[node] = append(r.times[node], at)
	if r.seqOf != nil {
		r.seqs[node] = append(r.seqs[node], r.seqOf(node))
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// heardAfter is how many datagrams from node were heard with a sequence
// above seq.
func (r *recorder) heardAfter(node string, seq uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.seqs[node] {
		if q > seq {
			n++
		}
	}
	return n
}

// lastRound is the sequence of the speaker's latest round: a round above it
// starts after the call, with the peers and links of then.
func (s *speaker) lastRound() uint64 {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	var last uint64
	for _, r := range s.h.sends.rounds {
		last = max(last, r.seq)
	}
	return last
}

// skipped is how many of node's datagrams are missing between the first and
// the last heard (lost, or overtaken and then dropped as stale): the gaps in
// their sequences. The kernel's scheduling does not count, only datagrams.
func (r *recorder) skipped(node string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	s := r.seqs[node]
	for i := 1; i < len(s); i++ {
		if s[i] > s[i-1] { // a new incarnation starts its sequence over
			n += s[i] - s[i-1] - 1
		}
	}
	return n
}

// count is how many receipts from node, and how many of them after since.
func (r *recorder) count(node string, since time.Time) (all, after int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.times[node]
	i, _ := slices.BinarySearchFunc(ts, since, time.Time.Compare)
	return len(ts), len(ts) - i
}

func (r *recorder) receipts(node string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times[node])
}

// wait re-checks cond at every receipt (and every interval, for conditions
// on other state such as counters) until it holds, and fails t after timeout.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(testInterval)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not after %v", what, timeout)
		}
	}
}

// waitHeard waits until node has been heard n times after since.
func (r *recorder) waitHeard(t *testing.T, node string, n int, since time.Time, what string) {
	t.Helper()
	r.wait(t, 5*time.Second, fmt.Sprintf("%s: %d receipts from %s", what, n, node), func() bool {
		_, after := r.count(node, since)
		return after >= n
	})
}

// speaker is one Heartbeat under test, with its metrics and receipts.
type speaker struct {
	name string
	h    *Heartbeat
	reg  *prometheus.Registry
	rec  *recorder
	stop func()
}

// startSpeaker runs a Heartbeat whose sockets are opened through enter
// (nil: on the host). It is stopped at the end of the test at the latest.
func startSpeaker(t *testing.T, cfg Config, enter func(func() error) error) *speaker {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = testInterval
	}
	s := &speaker{name: cfg.Node, reg: prometheus.NewRegistry(), rec: newRecorder()}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("speaker", cfg.Node)
	h, err := New(cfg, log, s.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.minBackoff, h.maxBackoff = 20*time.Millisecond, 200*time.Millisecond
	if enter != nil {
		h.enter = enter
	}
	s.h = h
	s.rec.seqOf = func(node string) uint64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		if x, ok := h.senders[node]; ok {
			return x.seq
		}
		return 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, s.rec.heard) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Run: %v", cfg.Node, err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s: Run did not return 5s after its context ended", cfg.Node)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func (s *speaker) counter(name string, labels ...string) float64 {
	switch name {
	case "sent":
		return testutil.ToFloat64(s.h.m.sent)
	case "received":
		return testutil.ToFloat64(s.h.m.received)
	case "dropped":
		return testutil.ToFloat64(s.h.m.dropped.WithLabelValues(labels...))
	case "send_errors":
		return testutil.ToFloat64(s.h.m.sendErrors)
	case "socket_errors":
		return testutil.ToFloat64(s.h.m.socketErrors)
	}
	panic(name)
}

// goroutineBaseline returns a check that the goroutines are back to their
// number at the call, waited for (a closed socket's poller goroutine may
// take a moment), to be run after every speaker stopped.
func goroutineBaseline(t *testing.T) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines after every Run returned, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func peers(ps ...any) []Peer {
	var out []Peer
	for i := 0; i < len(ps); i += 2 {
		out = append(out, Peer{Node: ps[i].(string), Addr: netip.MustParseAddr(ps[i+1].(string))})
	}
	return out
}

// firstAfter is the first receipt from node after since (zero: none).
func (r *recorder) firstAfter(node string, since time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.times[node]
	if i, _ := slices.BinarySearchFunc(ts, since, time.Time.Compare); i < len(ts) {
		return ts[i]
	}
	return time.Time{}
}

// rttCount is how many round trip times the speaker observed.
func (s *speaker) rttCount() uint64 {
	var m dto.Metric
	if err := s.h.m.rtt.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}
