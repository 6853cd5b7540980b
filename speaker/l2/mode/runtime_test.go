package mode

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd/bfdtest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
)

type fakeResponder struct {
	mu   sync.Mutex
	want map[string][]netip.Addr
	down map[string]bool // interfaces that do not converge
	sets int
}

func (f *fakeResponder) Set(ifName string, ips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	if len(ips) == 0 {
		delete(f.want, ifName)
		return nil
	}
	f.want[ifName] = slices.Clone(ips)
	if f.down[ifName] {
		return fmt.Errorf("interface %s down", ifName)
	}
	return nil
}

func (f *fakeResponder) Answering(ifName string) []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[ifName] {
		return nil
	}
	return f.want[ifName]
}

// answered returns every IP answered, on any interface.
func (f *fakeResponder) answered() map[netip.Addr]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Addr]bool{}
	for ifName, ips := range f.want {
		if f.down[ifName] {
			continue
		}
		for _, ip := range ips {
			out[ip] = true
		}
	}
	return out
}

type fakeHeartbeat struct {
	mu        sync.Mutex
	peers     []heartbeat.Peer
	receiving bool
	renewing  bool
}

func (f *fakeHeartbeat) SetPeers(p []heartbeat.Peer) { f.mu.Lock(); f.peers = p; f.mu.Unlock() }
func (f *fakeHeartbeat) Run(ctx context.Context, _ func(string, time.Time)) error {
	<-ctx.Done()
	return nil
}
func (f *fakeHeartbeat) Receiving() bool     { f.mu.Lock(); defer f.mu.Unlock(); return f.receiving }
func (f *fakeHeartbeat) SetRenewing(ok bool) { f.mu.Lock(); f.renewing = ok; f.mu.Unlock() }

type statusLog struct {
	mu  sync.Mutex
	now map[string][]string // announced Services and their interfaces
}

func (s *statusLog) SetL2(key string, ifs []string, announced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if announced {
		s.now[key] = ifs
	} else {
		delete(s.now, key)
	}
}

type eventLog struct {
	mu   sync.Mutex
	list []string
}

func (e *eventLog) ServiceEvent(key, reason, msg string) {
	e.mu.Lock()
	e.list = append(e.list, key+" "+reason+": "+msg)
	e.mu.Unlock()
}

func (e *eventLog) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.list
	e.list = nil
	return out
}

type rig struct {
	t      *testing.T
	clock  *bfdtest.Clock
	r      *Runtime
	s      *state
	resp   *fakeResponder
	hb     *fakeHeartbeat
	status *statusLog
	events *eventLog
	// settled counts OnSettled calls.
	settled int
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newRig(t *testing.T, node string) *rig {
	t.Helper()
	g := &rig{t: t, clock: bfdtest.NewClock(t0), resp: &fakeResponder{want: map[string][]netip.Addr{}, down: map[string]bool{}},
		hb: &fakeHeartbeat{receiving: true}, status: &statusLog{now: map[string][]string{}}, events: &eventLog{}}
	r, err := New(Options{Node: node, Liveness: cfg, Responder: g.resp, Heartbeat: g.hb, Status: g.status, Events: g.events,
		Clock: g.clock, OnSettled: func() { g.settled++ }, Interfaces: func() ([]Link, error) {
			return []Link{{Name: "eth0", Flags: 0x13, MAC: []byte{2, 0, 0, 0, 0, 1}}}, nil // up, broadcast, multicast
		}})
	if err != nil {
		t.Fatal(err)
	}
	g.r = r
	if g.s, err = r.newState(); err != nil {
		t.Fatal(err)
	}
	return g
}

// run steps the runtime every 10 ms until d has passed, calling each (if not
// nil) before every step with the time.
func (g *rig) run(d time.Duration, each func(now time.Time)) {
	end := g.clock.Now().Add(d)
	for g.clock.Now().Before(end) {
		g.clock.Advance(10 * time.Millisecond)
		if each != nil {
			each(g.clock.Now())
		}
		g.r.step(g.s)
	}
}

func (g *rig) services(svcs []*announce.L2Service) {
	for _, s := range svcs {
		g.r.ApplyL2(s.Key, s)
	}
}

// A speaker alone in its cluster answers nothing until Threshold + Rejoin,
// then every Service, on every eligible interface, with its status and an
// Event each; stopping drops every IP without a word to the status.
func TestRuntimeAlone(t *testing.T) {
	g := newRig(t, "a")
	svcs := many(5, []string{"a"})
	g.services(svcs)
	g.r.SetL2Nodes([]announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}})
	g.r.InputsSynced()
	g.run(cfg.Threshold+cfg.Rejoin-10*time.Millisecond, func(time.Time) {
		if n := len(g.resp.answered()); n > 0 {
			t.Fatalf("answering %d IPs before the start-up hold is over", n)
		}
	})
	if g.settled != 0 {
		t.Fatal("settled before the start-up hold is over")
	}
	g.run(20*time.Millisecond, nil)
	if n := len(g.resp.answered()); n != 5 {
		t.Fatalf("answering %d IPs, want 5", n)
	}
	if g.settled != 1 {
		t.Fatalf("OnSettled called %d times, want once with the first choice", g.settled)
	}
	if !g.r.Gate() {
		t.Error("answering, but the responder's gate is closed")
	}
	if len(g.status.now) != 5 || !slices.Equal(g.status.now["ns/s000"], []string{"eth0"}) {
		t.Errorf("status %v", g.status.now)
	}
	if ev := g.events.take(); len(ev) != 5 || ev[0] != `ns/s000 nodeAssigned: announcing from node "a" with protocol "layer2"` {
		t.Errorf("events %q", ev)
	}
	if len(g.hb.peers) != 0 {
		t.Errorf("heartbeat peers %v: itself only in the cluster", g.hb.peers)
	}

	// A Service deleted: no longer answered, its status dropped, no Event.
	g.r.ApplyL2("ns/s004", nil)
	g.run(10*time.Millisecond, nil)
	if n := len(g.resp.answered()); n != 4 || len(g.status.now) != 4 {
		t.Errorf("after a deletion: %d answered, status %v", n, g.status.now)
	}
	if ev := g.events.take(); len(ev) != 0 {
		t.Errorf("events on a deleted Service: %q", ev)
	}

	// The socket failing: this node hears no one and is heard by no one,
	// so it must not answer.
	g.hb.mu.Lock()
	g.hb.receiving = false
	g.hb.mu.Unlock()
	g.run(10*time.Millisecond, nil)
	if n := len(g.resp.answered()); n != 0 {
		t.Errorf("heartbeat socket closed: still answering %d IPs", n)
	}
	if g.r.Gate() {
		t.Error("not answering, but the responder's gate is open")
	}
	if ev := g.events.take(); len(ev) != 4 {
		t.Errorf("events %q, want 4 nodeUnassigned", ev)
	}
	g.hb.mu.Lock()
	g.hb.receiving = true
	g.hb.mu.Unlock()
	g.run(10*time.Millisecond, nil)
	if n := len(g.resp.answered()); n != 4 {
		t.Errorf("socket back: answering %d IPs, want 4", n)
	}

	g.r.stop(g.s)
	if n := len(g.resp.answered()); n != 0 {
		t.Errorf("stopped, still answering %d", n)
	}
}

// Two nodes: a answers its share only while b is heard and echoes a's
// heartbeats; b silent, a takes b's Services (first its own fence closes,
// as b's last echo ages: then alone); b heard without echoing (it no longer
// hears a): a stops answering before b may list it down, and takes nothing.
func TestRuntimeTwoNodes(t *testing.T) {
	g := newRig(t, "a")
	svcs := many(40, []string{"a", "b"})
	g.services(svcs)
	g.r.SetL2Nodes([]announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Name: "b", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}}})

	hearB, bEchoes := true, true
	var lastSend time.Time
	beat := func(now time.Time) { // b sends every 100 ms, echoing a's round of 100 ms before
		if now.Sub(t0)%(100*time.Millisecond) != 0 {
			return
		}
		if hearB {
			g.r.heard("b", now)
			if bEchoes {
				g.r.Echoed("b", now.Add(-100*time.Millisecond))
			}
		}
		lastSend = now
	}
	owners := Compute(Inputs{Self: "a", Services: svcs, Alive: []string{"a", "b"}}).Owner
	mineOnly := func(now time.Time) {
		for _, s := range svcs {
			if g.resp.answered()[s.IPs[0]] && owners[s.Key] != "a" {
				t.Fatalf("%v: a answers %s, b's, while b is alive", now.Sub(t0), s.Key)
			}
		}
	}
	g.run(cfg.Threshold+cfg.Rejoin+200*time.Millisecond, func(now time.Time) { beat(now); mineOnly(now) })
	if want := len(Compute(Inputs{Self: "a", Services: svcs, Alive: []string{"a", "b"}}).Serving); len(g.resp.answered()) != want || want == 0 || want == 40 {
		t.Fatalf("a answers %d IPs, want its share %d", len(g.resp.answered()), want)
	}
	if got := g.hb.peers; len(got) != 2 || got[0].Node != "b" {
		t.Errorf("heartbeat peers %v, want b's two addresses", got)
	}
	g.run(2*time.Second, func(now time.Time) { beat(now); mineOnly(now) })

	// b stops.
	hearB = false
	stopped := g.clock.Now()
	var all time.Time
	g.run(2*time.Second, func(now time.Time) {
		beat(now)
		if all.IsZero() && len(g.resp.answered()) == 40 {
			all = now
		}
	})
	if all.IsZero() {
		t.Fatalf("b stopped: a never answered all 40")
	}
	if took := all.Sub(stopped); took > cfg.Threshold+50*time.Millisecond {
		t.Errorf("a took b's Services %v after b's last heartbeat, want within Threshold", took)
	}
	g.events.take()

	// b back: after Rejoin, each answers its own share again, and a gives b's
	// share up no later than b may take it (b's own hold is longer).
	hearB = true
	back := g.clock.Now()
	g.run(cfg.Rejoin+500*time.Millisecond, func(now time.Time) { beat(now) })
	if n, want := len(g.resp.answered()), len(Compute(Inputs{Self: "a", Services: svcs, Alive: []string{"a", "b"}}).Serving); n != want {
		t.Errorf("b back for %v: a answers %d, want %d", g.clock.Now().Sub(back), n, want)
	}
	g.events.take()

	// b hears a no longer (no echoes) but still sends: a fences itself
	// before b's Threshold after a's last heartbeat b received passes.
	bEchoes = false
	lastEchoed := lastSend.Add(-100 * time.Millisecond)
	var fenced time.Time
	g.run(time.Second, func(now time.Time) {
		beat(now)
		if fenced.IsZero() && len(g.resp.answered()) == 0 {
			fenced = now
		}
	})
	if fenced.IsZero() {
		t.Fatal("a kept answering though b no longer hears it")
	}
	if deadline := lastEchoed.Add(cfg.Threshold - cfg.Margin); fenced.After(deadline.Add(10 * time.Millisecond)) {
		t.Errorf("a fenced at %v, after its deadline %v", fenced.Sub(t0), deadline.Sub(t0))
	}
	if len(g.status.now) != 0 {
		t.Errorf("fenced, status still %v", slices.Collect(maps.Keys(g.status.now)))
	}
	if ev := g.events.take(); len(ev) == 0 || !containsAll(ev, "may not answer") {
		t.Errorf("events %q, want nodeUnassigned saying why", ev)
	}
}

func containsAll(ev []string, sub string) bool {
	return !slices.ContainsFunc(ev, func(e string) bool { return !strings.Contains(e, sub) })
}

// An interface that does not converge leaves its Services out of the
// status until it does; the runtime reads back every 250 ms meanwhile.
func TestRuntimeStatusReadBack(t *testing.T) {
	g := newRig(t, "a")
	g.resp.down["eth1"] = true
	g.services([]*announce.L2Service{svc("ns/x", "192.0.2.1", []string{"a"}, []string{"eth1"}, false),
		svc("ns/y", "192.0.2.2", []string{"a"}, []string{"eth0", "eth1"}, false)})
	g.r.SetL2Nodes([]announce.L2Node{{Name: "a"}})
	g.run(cfg.Threshold+cfg.Rejoin+10*time.Millisecond, nil)
	if _, ok := g.status.now["ns/x"]; ok || !slices.Equal(g.status.now["ns/y"], []string{"eth0"}) {
		t.Fatalf("status %v, want ns/y on eth0 only", g.status.now)
	}
	g.resp.mu.Lock()
	delete(g.resp.down, "eth1")
	g.resp.mu.Unlock()
	g.run(300*time.Millisecond, nil)
	if !slices.Equal(g.status.now["ns/x"], []string{"eth1"}) || !slices.Equal(g.status.now["ns/y"], []string{"eth0", "eth1"}) {
		t.Errorf("status %v after eth1 converged", g.status.now)
	}
}

// Heartbeats go out only while some Service is announced in layer 2 mode: a
// cluster without L2Advertisements (BGP only) sends nothing between nodes,
// and a speaker run against Node objects whose addresses are not reachable
// from where it runs sends them nothing either.
func TestHeartbeatsOnlyWithL2Services(t *testing.T) {
	g := newRig(t, "a")
	g.r.SetL2Nodes([]announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Name: "b", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}})
	g.r.InputsSynced()
	peers := func() []heartbeat.Peer {
		g.hb.mu.Lock()
		defer g.hb.mu.Unlock()
		return g.hb.peers
	}
	g.run(50*time.Millisecond, nil)
	if p := peers(); len(p) != 0 {
		t.Fatalf("heartbeat peers %v without a layer 2 Service", p)
	}
	svcs := many(2, []string{"a", "b"})
	g.services(svcs)
	g.run(10*time.Millisecond, nil)
	if p := peers(); len(p) != 1 || p[0].Node != "b" {
		t.Fatalf("heartbeat peers %v with layer 2 Services, want b", p)
	}
	for _, s := range svcs {
		g.r.ApplyL2(s.Key, nil)
	}
	g.run(10*time.Millisecond, nil)
	if p := peers(); len(p) != 0 {
		t.Fatalf("heartbeat peers %v after the last layer 2 Service went", p)
	}
}

// The first layer 2 Service starts the heartbeats; until then a speaker
// that heard no one was alone only because it asked no one. It must not
// answer the new Service alone (a gratuitous ARP that it withdraws a step
// later misleads the clients) until the others had Threshold to answer.
func TestFirstServiceWaitsForHeartbeats(t *testing.T) {
	g := newRig(t, "a")
	g.r.SetL2Nodes([]announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Name: "b", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}})
	g.r.InputsSynced()
	g.run(cfg.Threshold+cfg.Rejoin+500*time.Millisecond, nil)
	if !g.s.dec.Alone {
		t.Fatalf("without Services and heartbeats: decision %+v, want alone", g.s.dec)
	}
	g.services(many(1, []string{"a", "b"}))
	start := g.clock.Now()
	var firstAnswer time.Time
	g.run(cfg.Threshold+200*time.Millisecond, func(now time.Time) {
		if firstAnswer.IsZero() && len(g.resp.answered()) > 0 {
			firstAnswer = now
		}
	})
	if firstAnswer.IsZero() {
		t.Fatalf("b never answered: the Service was not answered alone %v after the heartbeats started", cfg.Threshold+200*time.Millisecond)
	}
	if waited := firstAnswer.Sub(start); waited <= cfg.Threshold {
		t.Fatalf("answered alone %v after the first Service started the heartbeats, want after %v", waited, cfg.Threshold)
	}
}
