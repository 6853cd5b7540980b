package check

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// fake is a Reader with fixed contents.
type fake struct {
	sets map[string]backend.Set
	fib  map[string][]netip.Addr
	hist map[string][]backend.Change
	err  error
}

func (f fake) Topology() backend.Topology { return backend.Topology{Topology: topology.Default()} }
func (f fake) Route(_ context.Context, tor string, p netip.Prefix) (backend.Set, error) {
	if f.err != nil {
		return backend.Set{}, f.err
	}
	s := f.sets[tor]
	if s.Prefix != p {
		return backend.Set{Prefix: p}, nil
	}
	return s, nil
}
func (f fake) KernelRoute(_ context.Context, tor string, _ netip.Prefix) ([]netip.Addr, error) {
	return f.fib[tor], nil
}
func (f fake) History(_ context.Context, tor string) ([]backend.Change, error) {
	return f.hist[tor], nil
}

var (
	ip    = netip.MustParseAddr("203.0.113.5")
	n1    = netip.MustParseAddr("10.0.0.21")
	n2    = netip.MustParseAddr("10.0.0.22")
	n3    = netip.MustParseAddr("10.0.0.23")
	t0    = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	route = func(comms []string, pref uint32, hops ...netip.Addr) backend.Set {
		s := backend.Set{Prefix: backend.HostRoute(ip)}
		for _, h := range hops {
			s.Paths = append(s.Paths, backend.Path{NextHop: h, Communities: comms, LocalPref: pref, ASPath: []uint32{65100}})
		}
		return s
	}
)

func tor1(f fake) Router { return ToR(f, "tor1") }

// outcome runs m against actual and returns whether it matched and its
// failure message.
func outcome(t *testing.T, m interface {
	Match(any) (bool, error)
	FailureMessage(any) string
}, actual any) (bool, string) {
	t.Helper()
	ok, err := m.Match(actual)
	if err != nil {
		t.Fatalf("match error: %v", err)
	}
	if ok {
		return true, ""
	}
	return false, m.FailureMessage(actual)
}

func TestHaveECMP(t *testing.T) {
	both := fake{sets: map[string]backend.Set{"tor1": route(nil, 0, n1, n2)}, fib: map[string][]netip.Addr{"tor1": {n1, n2}}}
	fibBehind := fake{sets: map[string]backend.Set{"tor1": route(nil, 0, n1, n2)}, fib: map[string][]netip.Addr{"tor1": {n1}}}
	tests := []struct {
		name    string
		f       fake
		m       *ECMPMatcher
		ok      bool
		message string
	}{
		{"exact, any order", both, HaveECMP(ip, []netip.Addr{n2, n1}), true, ""},
		{"missing and extra named", both, HaveECMP(ip, []netip.Addr{n1, n3}), false,
			"tor1: 203.0.113.5/32 has next-hops {node1 10.0.0.21, node2 10.0.0.22} in its RIB, want {node1 10.0.0.21, node3 10.0.0.23}: missing {node3 10.0.0.23}, unexpected {node2 10.0.0.22}"},
		{"withdrawn wanted", both, BeWithdrawn(ip), false,
			"tor1: 203.0.113.5/32 has next-hops {node1 10.0.0.21, node2 10.0.0.22} in its RIB, want {} (no route): unexpected {node1 10.0.0.21, node2 10.0.0.22}"},
		{"withdrawn", fake{}, BeWithdrawn("203.0.113.5/32"), true, ""},
		{"kernel FIB behind", fibBehind, HaveECMP(ip, []netip.Addr{n1, n2}), false,
			"tor1: 203.0.113.5/32 has next-hops {node1 10.0.0.21, node2 10.0.0.22} in its RIB but {node1 10.0.0.21} in its kernel FIB: missing {node2 10.0.0.22}"},
		{"RIB only", fibBehind, HaveECMP(ip, []netip.Addr{n1, n2}).InRIBOnly(), true, ""},
		{"read error", fake{err: errors.New("router frozen")}, HaveECMP(ip, nil), false,
			"tor1: reading the route of 203.0.113.5/32: router frozen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, msg := outcome(t, tt.m, tor1(tt.f))
			if ok != tt.ok || msg != tt.message {
				t.Errorf("got %v %q\nwant %v %q", ok, msg, tt.ok, tt.message)
			}
		})
	}
}

func TestWithinDuration(t *testing.T) {
	withHistory := func(at time.Duration) fake {
		return fake{
			sets: map[string]backend.Set{"tor1": route(nil, 0, n1, n3)},
			fib:  map[string][]netip.Addr{"tor1": {n1, n3}},
			hist: map[string][]backend.Change{"tor1": {
				{At: t0.Add(-time.Second), Prefix: backend.HostRoute(ip), New: []netip.Addr{n1, n2, n3}},
				{At: t0.Add(at), Prefix: backend.HostRoute(ip), Old: []netip.Addr{n1, n2, n3}, New: []netip.Addr{n1, n3}},
			}},
		}
	}
	m := HaveECMP(ip, []netip.Addr{n1, n3}).WithinDuration(time.Second, t0)
	if ok, msg := outcome(t, m, tor1(withHistory(870*time.Millisecond))); !ok || m.Took != 870*time.Millisecond {
		t.Errorf("in time: %v %q took %v", ok, msg, m.Took)
	}
	m = HaveECMP(ip, []netip.Addr{n1, n3}).WithinDuration(time.Second, t0)
	ok, msg := outcome(t, m, tor1(withHistory(1500*time.Millisecond)))
	want := "tor1: 203.0.113.5/32 reached {node1 10.0.0.21, node3 10.0.0.23} 1.5s after 12:00:00.000 (RIB timestamp 12:00:01.500), want within 1s"
	if ok || msg != want {
		t.Errorf("late: %v %q\nwant %q", ok, msg, want)
	}
	if m.MatchMayChangeInTheFuture(nil) {
		t.Error("a set reached too late cannot become early: Eventually must stop")
	}
	// Unchanged since the start: reached at once.
	m = HaveECMP(ip, []netip.Addr{n1, n3}).WithinDuration(time.Second, t0.Add(2*time.Second))
	if ok, msg := outcome(t, m, tor1(withHistory(time.Second))); !ok || m.Took != 0 {
		t.Errorf("unchanged: %v %q took %v", ok, msg, m.Took)
	}
}

func TestWithEventually(t *testing.T) {
	g := gomega.NewGomega(func(message string, _ ...int) { t.Fatal(message) })
	f := fake{sets: map[string]backend.Set{"tor1": route(nil, 0, n1)}, fib: map[string][]netip.Addr{"tor1": {n1}}}
	g.Eventually(tor1(f)).WithTimeout(100 * time.Millisecond).Should(HaveECMP(ip, []netip.Addr{n1}))

	var failure string
	g2 := gomega.NewGomega(func(message string, _ ...int) { failure = message })
	g2.Eventually(tor1(f)).WithTimeout(50 * time.Millisecond).WithPolling(10 * time.Millisecond).Should(HaveECMP(ip, []netip.Addr{n1, n2}))
	if !strings.Contains(failure, "tor1: 203.0.113.5/32 has next-hops {node1 10.0.0.21} in its RIB, want {node1 10.0.0.21, node2 10.0.0.22}: missing {node2 10.0.0.22}") {
		t.Errorf("Eventually failure message: %q", failure)
	}
}

func TestPathAttributes(t *testing.T) {
	f := fake{sets: map[string]backend.Set{"tor1": route([]string{"65000:100"}, 100, n1, n2)}}
	for _, m := range []*PathMatcher{HaveCommunity(ip, "65000:100"), HaveLocalPref(ip, 100), HaveASPath(ip, 65100)} {
		if ok, msg := outcome(t, m, tor1(f)); !ok {
			t.Errorf("%s: %s", m.what, msg)
		}
	}
	tests := []struct {
		m    *PathMatcher
		f    fake
		want string
	}{
		{HaveCommunity(ip, "65000:200"), f, "tor1: 203.0.113.5/32: 2 of 2 paths lack community 65000:200 (via node1: communities 65000:100; via node2: communities 65000:100)"},
		{HaveLocalPref(ip, 200), f, "tor1: 203.0.113.5/32: 2 of 2 paths lack local-pref 200 (via node1: local-pref 100; via node2: local-pref 100)"},
		{HaveCommunity(ip, "65000:100"), fake{}, "tor1: no route for 203.0.113.5/32, want one with community 65000:100"},
	}
	for _, tt := range tests {
		if ok, msg := outcome(t, tt.m, tor1(tt.f)); ok || msg != tt.want {
			t.Errorf("got %v %q\nwant %q", ok, msg, tt.want)
		}
	}
}

func TestSpreadOver(t *testing.T) {
	tests := []struct {
		m      *FlowMatcher
		counts map[string]int
		want   string
	}{
		{SpreadOver("node1", "node2"), map[string]int{"node1": 30, "node2": 30}, ""},
		{SpreadOver("node1", "node2"), map[string]int{"node1": 60}, "flows {node1=60}, want them spread over node1, node2: no flow reached node2"},
		{SpreadOver("node1"), map[string]int{"node1": 50, "node3": 8, "": 2}, "flows {unanswered=2 node1=50 node3=8}, want them spread over node1: 8 flows reached node3, which should not announce the route; 2 flows got no answer (allowed 0)"},
		{SpreadOver("node1").AllowingLost(2), map[string]int{"node1": 58, "": 2}, ""},
	}
	for _, tt := range tests {
		ok, msg := outcome(t, tt.m, tt.counts)
		if ok != (tt.want == "") || msg != tt.want {
			t.Errorf("got %v %q\nwant %q", ok, msg, tt.want)
		}
	}
	if _, err := SpreadOver("x").Match(42); err == nil {
		t.Error("a non-count actual must be an error")
	}
	if _, err := HaveECMP(ip, nil).Match("tor1"); err == nil || !strings.Contains(err.Error(), "check.ToR") {
		t.Errorf("a string actual must point at check.ToR: %v", err)
	}
}
