package lease

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
)

const ns = "ecmplb-liveness"

// R = 250 ms, K = 3; Margin above the watch delivery measured on a quiet
// apiserver (leasebench: p99 63 ms, max 124 ms at 100 nodes and R = 1 s).
var (
	period = 250 * time.Millisecond
	cfg    = liveness.Config{Threshold: 750 * time.Millisecond, Rejoin: 500 * time.Millisecond, Margin: 150 * time.Millisecond, MaxTickGap: 250 * time.Millisecond}
)

// stamped is a view with the time it was handed over.
type stamped struct {
	at time.Time
	v  liveness.View
}

// member is one running speaker's liveness.
type member struct {
	node   string
	cancel context.CancelFunc
	done   chan struct{}
	views  chan stamped
}

func start(t *testing.T, leases Leases, node string) *member {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{node: node, cancel: cancel, done: make(chan struct{}), views: make(chan stamped, 4096)}
	go func() {
		defer close(m.done)
		err := Run(ctx, Options{Leases: leases, Namespace: ns, Node: node, Period: period, Liveness: cfg,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("member", node),
			OnView: func(v liveness.View) {
				select {
				case m.views <- stamped{time.Now(), v}:
				default:
					t.Errorf("%s: view channel full", node)
				}
			}})
		if err != nil {
			t.Errorf("%s: Run: %v", node, err)
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

// waitFor returns the first view (from now on) that satisfies ok, failing
// the test after timeout.
func (m *member) waitFor(t *testing.T, what string, timeout time.Duration, ok func(liveness.View) bool) stamped {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case s := <-m.views:
			if ok(s.v) {
				return s
			}
		case <-deadline:
			t.Fatalf("%s: no view with %s within %v", m.node, what, timeout)
		}
	}
}

func (m *member) drain() {
	for {
		select {
		case <-m.views:
		default:
			return
		}
	}
}

func allAnswering(nodes ...string) func(liveness.View) bool {
	return func(v liveness.View) bool {
		for _, n := range nodes {
			if !slices.Contains(v.Alive, n) {
				return false
			}
		}
		return v.Answer
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newClient returns the typed clientset's Leases.
func newClient(t *testing.T, env *testenv.Env) Leases {
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs.CoordinationV1().Leases(ns)
}

// newREST returns NewREST's Leases, which the speaker uses.
func newREST(t *testing.T, env *testenv.Env) Leases {
	l, err := NewREST(env.Config, ns)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestStoppedSpeakerDeclaredDead stops one of three speakers at random
// phases of its renewal period, five times, and waits for the other two to
// list it down: within Threshold plus the delivery of its last renewal of
// the stop (the stop falls up to one period after that renewal, so no
// earlier than Threshold - Period). Restarted, it is back at both after
// Rejoin, and answers again.
func TestStoppedSpeakerDeclaredDead(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Namespaces: []string{ns}})
	cs := newClient(t, env)
	a, b := start(t, cs, "a"), start(t, cs, "b")
	c := start(t, cs, "c")
	for _, m := range []*member{a, b, c} {
		m.waitFor(t, "a, b, c alive and answering", 20*time.Second, allAnswering("a", "b", "c"))
	}
	const bound = 300 * time.Millisecond // delivery and scheduling on a shared machine
	for trial := range 5 {
		time.Sleep(rand.N(period)) // a random phase; nothing is asserted on the sleep
		a.drain()
		b.drain()
		stopped := time.Now()
		c.stop()
		for _, m := range []*member{a, b} {
			s := m.waitFor(t, "c down", cfg.Threshold+2*time.Second, func(v liveness.View) bool { return slices.Contains(v.Down, "c") })
			took := s.at.Sub(stopped)
			t.Logf("trial %d: %s lists c down %v after the stop", trial, m.node, took.Round(time.Millisecond))
			if took > cfg.Threshold+bound || took < cfg.Threshold-period {
				t.Errorf("trial %d: %s listed c down %v after the stop, want within [%v, %v]", trial, m.node, took, cfg.Threshold-period, cfg.Threshold+bound)
			}
			if !s.v.Answer || !slices.Contains(s.v.Alive, m.node) {
				t.Errorf("trial %d: %s stopped answering: %+v", trial, m.node, s.v)
			}
		}
		c = start(t, cs, "c")
		back := time.Now()
		for _, m := range []*member{a, b} {
			s := m.waitFor(t, "c alive again", 10*time.Second, func(v liveness.View) bool { return slices.Contains(v.Alive, "c") })
			if took := s.at.Sub(back); took < cfg.Rejoin {
				t.Errorf("trial %d: %s took c back %v after its restart, before Rejoin %v", trial, m.node, took, cfg.Rejoin)
			}
		}
		c.waitFor(t, "c answering", 10*time.Second, allAnswering("a", "b", "c"))
	}
}

// accepted wraps Leases and notes, per Lease, when the last write the
// apiserver accepted was sent: a stopping apiserver still accepts writes
// for a while after the signal, so the cut's start does not bound them.
type accepted struct {
	Leases
	mu   sync.Mutex
	sent map[string]time.Time
}

func (a *accepted) note(name string, sent time.Time, err error) {
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if sent.After(a.sent[name]) {
		a.sent[name] = sent
	}
}

func (a *accepted) last(name string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent[name]
}

func (a *accepted) Create(ctx context.Context, l *coordv1.Lease, opts metav1.CreateOptions) (*coordv1.Lease, error) {
	sent := time.Now()
	out, err := a.Leases.Create(ctx, l, opts)
	a.note(l.Name, sent, err)
	return out, err
}

func (a *accepted) Update(ctx context.Context, l *coordv1.Lease, opts metav1.UpdateOptions) (*coordv1.Lease, error) {
	sent := time.Now()
	out, err := a.Leases.Update(ctx, l, opts)
	a.note(l.Name, sent, err)
	return out, err
}

// TestCutOffSpeakerFences stops the apiserver under three speakers: each
// stops answering by Threshold - Margin after its last renewal the
// apiserver accepted (timed by a wrapper that starts its clock after the
// speaker's own), and before the others could list it down (Threshold
// after they received that renewal). With the apiserver back, all answer
// again.
func TestCutOffSpeakerFences(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Namespaces: []string{ns}})
	cs := &accepted{Leases: newREST(t, env), sent: map[string]time.Time{}}
	ms := []*member{start(t, cs, "a"), start(t, cs, "b"), start(t, cs, "c")}
	last := map[string]stamped{}
	for _, m := range ms {
		last[m.node] = m.waitFor(t, "a, b, c alive and answering", 20*time.Second, allAnswering("a", "b", "c"))
	}
	time.Sleep(rand.N(period)) // a random phase; nothing is asserted on the sleep
	cut := time.Now()
	env.StopAPIServer()
	t.Logf("apiserver stopped in %v", time.Since(cut).Round(time.Millisecond))

	fenced := map[string]time.Time{}
	deadline := map[string]time.Time{}          // each node's last AnswerUntil
	downAt := map[string]map[string]time.Time{} // observer -> node -> first listed down
	for _, m := range ms {
		downAt[m.node] = map[string]time.Time{}
		for {
			s := m.waitFor(t, "fenced and every other node down", 10*time.Second, func(liveness.View) bool { return true })
			for _, n := range s.v.Down {
				if _, ok := downAt[m.node][n]; !ok {
					downAt[m.node][n] = s.at
				}
			}
			if s.v.Answer {
				last[m.node] = s
			} else if _, ok := fenced[m.node]; !ok {
				fenced[m.node] = s.at
			}
			if _, ok := fenced[m.node]; ok && len(downAt[m.node]) == len(ms)-1 {
				break
			}
		}
		until := last[m.node].v.AnswerUntil
		renewed := cs.last(NamePrefix + m.node)
		t.Logf("%s: last renewal accepted %v after the cut; answered until %v after the cut (its deadline %v), fenced at %v",
			m.node, renewed.Sub(cut).Round(time.Millisecond), last[m.node].at.Sub(cut).Round(time.Millisecond),
			until.Sub(cut).Round(time.Millisecond), fenced[m.node].Sub(cut).Round(time.Millisecond))
		if until.After(renewed.Add(cfg.Threshold - cfg.Margin)) {
			t.Errorf("%s: deadline %v after its last accepted renewal, beyond Threshold-Margin %v", m.node, until.Sub(renewed), cfg.Threshold-cfg.Margin)
		}
		// The view saying so may come late (a stalled process): the
		// responder's gate holds AnswerUntil itself, reply by reply.
		deadline[m.node] = until
	}
	for obs, downs := range downAt {
		for n, at := range downs {
			t.Logf("%s lists %s down %v after the cut", obs, n, at.Sub(cut).Round(time.Millisecond))
			// Another node takes over only after this one's deadline.
			if !at.After(deadline[n]) {
				t.Errorf("%s listed %s down at %v, before %s's answering deadline %v", obs, n, at.Sub(cut), n, deadline[n].Sub(cut))
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	for _, m := range ms {
		s := m.waitFor(t, "answering again", 30*time.Second, allAnswering("a", "b", "c"))
		t.Logf("%s answers again %v after the apiserver was ready", m.node, s.at.Sub(up).Round(time.Millisecond))
	}
}
