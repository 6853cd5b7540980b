package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/internal/netns"
)

func TestScaleTopologyIsValid(t *testing.T) {
	for _, n := range []int{1, 3, 50, 100, 200} {
		topo, err := ScaleTopology(n)
		if err != nil {
			t.Fatalf("ScaleTopology(%d): %v", n, err)
		}
		topo.SetDefaults()
		if err := topo.Validate(); err != nil {
			t.Fatalf("ScaleTopology(%d) is invalid: %v", n, err)
		}
		if len(topo.Nodes) != n {
			t.Fatalf("ScaleTopology(%d) has %d nodes", n, len(topo.Nodes))
		}
		seen := map[netip.Addr]bool{}
		for _, node := range topo.Nodes {
			if seen[node.Address] || !topo.Segment.Contains(node.Address) {
				t.Fatalf("ScaleTopology(%d): node %s address %s repeated or outside %s", n, node.Name, node.Address, topo.Segment)
			}
			seen[node.Address] = true
		}
	}
	for _, n := range []int{0, 201} {
		if _, err := ScaleTopology(n); err == nil {
			t.Fatalf("ScaleTopology(%d) succeeded, want an error naming nodes", n)
		}
	}
}

func TestScalePool(t *testing.T) {
	p := netip.MustParsePrefix(scalePool)
	// RFC 2544's benchmarking range, and all of it at most.
	if bench := netip.MustParsePrefix("198.18.0.0/15"); !bench.Contains(p.Addr()) || p.Bits() < bench.Bits() {
		t.Fatalf("scale pool %s is not within 198.18.0.0/15", p)
	}
	for _, tc := range []struct {
		cidr string
		want int
		ok   bool
	}{
		{"198.18.0.0/15", 131072, true}, {"198.18.0.0/20", 4096, true}, {"198.18.0.5/32", 1, true},
		{"10.0.0.0/1", 0, false}, {"fd00::/64", 0, false}, {"nonsense", 0, false},
	} {
		got, err := poolSize(tc.cidr)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("poolSize(%s) = %d, %v; want %d (ok %v)", tc.cidr, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckScaleSize(t *testing.T) {
	for _, tc := range []struct {
		nodes, services, endpoints int
		wantErr                    string
	}{
		{100, 5000, 3, ""},
		{50, 1000, 3, ""},
		{200, 45000, 200, ""},
		{200, 45001, 200, "services: 45001 is more than the 45000 health-check NodePorts of 20000-64999"},
		{100, 131073, 3, "services: 131073 is outside 1-131072 (the pool 198.18.0.0/15)"},
		{100, 0, 3, "services"},
		{0, 10, 1, "nodes"},
		{201, 10, 1, "nodes: 201 is outside 1-200"},
		{3, 10, 4, "endpoints: 4 is outside 1-3"},
		{3, 10, 0, "endpoints"},
	} {
		err := checkScaleSize(tc.nodes, tc.services, tc.endpoints)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkScaleSize(%d, %d, %d) = %v, want %q", tc.nodes, tc.services, tc.endpoints, err, tc.wantErr)
		}
	}
}

func TestPortRangeSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"30000-32767", 2768}, {"20000-64999", 45000}, {"1-65535", 65535}, {"80-80", 1},
		{"32767-30000", 0}, {"0-10", 0}, {"1-65536", 0}, {"30000", 0}, {"a-b", 0},
	} {
		got, err := portRangeSize(tc.in)
		if got != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("portRangeSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestScaleEndpoints(t *testing.T) {
	nodes := []string{"node1", "node2", "node3", "node4"}
	want := scaleEndpoints(6, 3, nodes)
	if len(want) != 6 {
		t.Fatalf("%d Services, want 6", len(want))
	}
	if got := want[scaleServiceName(0)]; !slices.Equal(got, []string{"node1", "node2", "node3"}) {
		t.Errorf("first Service on %v", got)
	}
	if got := want[scaleServiceName(3)]; !slices.Equal(got, []string{"node4", "node1", "node2"}) {
		t.Errorf("fourth Service wraps to %v", got)
	}
	per := map[string]int{}
	for _, on := range want {
		for _, n := range on {
			per[n]++
		}
	}
	for _, n := range nodes {
		if per[n] < 4 || per[n] > 5 { // 18 endpoints over 4 nodes
			t.Errorf("%s has %d endpoints, want an even spread: %v", n, per[n], per)
		}
	}
	// Names sort in the order written, past 9,999 too.
	if !(scaleServiceName(9999) < scaleServiceName(10000)) || scaleServiceName(4999) != "svc-004999" {
		t.Errorf("names: %s, %s, %s", scaleServiceName(4999), scaleServiceName(9999), scaleServiceName(10000))
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := quantiles(ds, 0.5, 0.9, 0.99, 1)
	want := []time.Duration{50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("quantiles = %v, want %v", got, want)
	}
	if got := quantiles([]time.Duration{7}, 0.5, 1); !slices.Equal(got, []time.Duration{7, 7}) {
		t.Fatalf("one value: %v", got)
	}
	if got := quantiles(nil, 0.5); !slices.Equal(got, []time.Duration{0}) {
		t.Fatalf("none: %v", got)
	}
}

var (
	tPool = netip.MustParsePrefix("198.18.0.0/15")
	pA    = netip.MustParsePrefix("198.18.0.1/32")
	pB    = netip.MustParsePrefix("198.18.0.2/32")
	h1    = netip.MustParseAddr("10.0.0.21")
	h2    = netip.MustParseAddr("10.0.0.22")
	tBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func change(seq uint64, ms int, p netip.Prefix, kind rib.ChangeKind, hops ...netip.Addr) rib.Change {
	return rib.Change{Seq: seq, At: tBase.Add(time.Duration(ms) * time.Millisecond), Prefix: p, Kind: kind, New: hops}
}

func TestTorRIBFollowsHistory(t *testing.T) {
	r := newTorRIB()
	if err := r.apply([]rib.Change{
		change(1, 10, pA, rib.KindAdd, h1),
		change(2, 20, pA, rib.KindUpdate, h1, h2),
		change(3, 30, pB, rib.KindAdd, h2),
		change(4, 40, pB, rib.KindWithdraw),
	}); err != nil {
		t.Fatal(err)
	}
	if r.seq != 4 || len(r.sets) != 1 || r.sets[pA].hops != "10.0.0.21, 10.0.0.22" || !r.sets[pA].at.Equal(tBase.Add(20*time.Millisecond)) {
		t.Fatalf("after 4 changes: seq %d sets %+v", r.seq, r.sets)
	}
	// A change already applied (a batch read twice) is skipped.
	if err := r.apply([]rib.Change{change(4, 40, pB, rib.KindWithdraw), change(5, 50, pB, rib.KindAdd, h1)}); err != nil || r.seq != 5 {
		t.Fatalf("replayed batch: %v, seq %d", err, r.seq)
	}
	if err := r.apply([]rib.Change{change(7, 70, pB, rib.KindWithdraw)}); err == nil {
		t.Fatal("a gap in the history was not reported")
	}
	r.load(9, []rib.ECMPSet{{Prefix: pB, Paths: []rib.Path{{NextHop: h2}}, Since: tBase}})
	if r.seq != 9 || len(r.sets) != 1 || r.sets[pB].hops != "10.0.0.22" {
		t.Fatalf("after load: seq %d sets %+v", r.seq, r.sets)
	}
}

func TestJudge(t *testing.T) {
	set := func(ms int, hops string) torSet {
		return torSet{hops: hops, at: tBase.Add(time.Duration(ms) * time.Millisecond)}
	}
	expect := map[netip.Prefix]string{pA: "10.0.0.21, 10.0.0.22", pB: "10.0.0.22"}
	tors := func(a, b map[netip.Prefix]torSet) map[string]*torRIB {
		return map[string]*torRIB{"tor1": {sets: a}, "tor2": {sets: b}}
	}
	full := map[netip.Prefix]torSet{pA: set(10, "10.0.0.21, 10.0.0.22"), pB: set(20, "10.0.0.22")}

	v := judge(expect, tors(full, map[netip.Prefix]torSet{pA: set(15, "10.0.0.21, 10.0.0.22"), pB: set(30, "10.0.0.22")}), tPool)
	if !v.Done || v.LastToR != "tor2" || v.LastPrefix != pB || !v.Last.Equal(tBase.Add(30*time.Millisecond)) {
		t.Fatalf("converged: %+v", v)
	}
	if !v.Complete[pA].Equal(tBase.Add(15*time.Millisecond)) || !v.Complete[pB].Equal(tBase.Add(30*time.Millisecond)) {
		t.Fatalf("per-prefix completion (the later ToR): %+v", v.Complete)
	}

	v = judge(expect, tors(full, map[netip.Prefix]torSet{pA: set(15, "10.0.0.21"), pB: set(30, "10.0.0.22")}), tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "tor2: 198.18.0.1/32 has {10.0.0.21}") || !v.Last.IsZero() {
		t.Fatalf("one ToR short of a next-hop: %+v", v)
	}

	v = judge(expect, tors(full, map[netip.Prefix]torSet{pA: set(15, "10.0.0.21, 10.0.0.22")}), tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "has {}") {
		t.Fatalf("one ToR missing a prefix: %+v", v)
	}

	extra := map[netip.Prefix]torSet{pA: full[pA], pB: full[pB], netip.MustParsePrefix("198.19.255.255/32"): set(5, "10.0.0.21")}
	outside := map[netip.Prefix]torSet{pA: full[pA], pB: full[pB], netip.MustParsePrefix("10.9.0.0/16"): set(5, "10.0.0.21")}
	v = judge(expect, tors(extra, outside), tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "198.19.255.255/32 has {10.0.0.21}, want no route") {
		t.Fatalf("a stale pool prefix counts, one outside the pool does not: %+v", v)
	}
}

func TestParseRequestTotals(t *testing.T) {
	page := []byte(`# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="metallb.io",resource="servicebgpstatuses",scope="resource",subresource="",verb="POST",version="v1beta1"} 12
apiserver_request_total{code="409",component="apiserver",dry_run="",group="metallb.io",resource="servicebgpstatuses",scope="resource",subresource="",verb="POST",version="v1beta1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="services",scope="resource",subresource="status",verb="PUT",version="v1"} 7
apiserver_request_duration_seconds_count{verb="PUT"} 99
`)
	got, err := parseRequestTotals(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[apiRequest{"POST", "servicebgpstatuses"}] != 15 || got[apiRequest{"PUT", "services/status"}] != 7 {
		t.Fatalf("got %v", got)
	}
	d := requestDelta(map[apiRequest]float64{{"POST", "servicebgpstatuses"}: 5}, got)
	if len(d) != 2 || d[0].N != 10 || d[0].Resource != "servicebgpstatuses" || d[1].N != 7 {
		t.Fatalf("delta %+v", d)
	}
	if _, err := parseRequestTotals([]byte("apiserver_request_total{verb=\"GET\"} many\n")); err == nil {
		t.Fatal("a malformed value was accepted")
	}
}

// TestJudgeFIB: the kernel's notifications folded per prefix (a replace
// wins, a delete removes), judged against the expected sets; the time is
// the notification that completed the last route.
func TestJudgeFIB(t *testing.T) {
	at := func(ms int) time.Time { return tBase.Add(time.Duration(ms) * time.Millisecond) }
	a := netip.MustParseAddr
	ev := func(ms int, p netip.Prefix, del bool, hops ...string) netns.FIBEvent {
		e := netns.FIBEvent{At: at(ms), Delete: del, Prefix: p}
		for _, h := range hops {
			e.NextHops = append(e.NextHops, a(h))
		}
		return e
	}
	expect := map[netip.Prefix]string{pA: "10.0.0.21, 10.0.0.22", pB: "10.0.0.22"}
	stale := netip.MustParsePrefix("198.19.255.255/32")
	tor1 := []netns.FIBEvent{
		ev(5, pA, false, "10.0.0.21"),
		ev(9, stale, false, "10.0.0.21"),
		ev(12, pA, false, "10.0.0.21", "10.0.0.22"),
		ev(14, netip.MustParsePrefix("10.9.0.0/16"), false, "10.0.0.21"), // outside the pool
		ev(20, pB, false, "10.0.0.22"),
		ev(25, stale, true, "10.0.0.21"),
	}
	tor2 := []netns.FIBEvent{
		ev(7, pB, false, "10.0.0.22"),
		ev(8, pA, false, "10.0.0.21", "10.0.0.22"),
		ev(30, pB, true, "10.0.0.22"),  // removed and added again:
		ev(31, pB, false, "10.0.0.22"), // its time is the add's
	}
	fibs := map[string]map[netip.Prefix]torSet{"tor1": fibState(tor1, tPool), "tor2": fibState(tor2, tPool)}
	v := judgeFIB(expect, fibs, tPool)
	if !v.Done || v.LastToR != "tor2" || v.LastPrefix != pB || !v.Last.Equal(at(31)) {
		t.Fatalf("converged: %+v", v)
	}

	fibs["tor1"] = fibState(tor1[:5], tPool) // the stale route not yet deleted
	v = judgeFIB(expect, fibs, tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "kernel FIB: tor1: 198.19.255.255/32 has {10.0.0.21}, want no route") || !v.Last.IsZero() {
		t.Fatalf("a stale pool route: %+v", v)
	}

	fibs["tor1"] = fibState(append(tor1[:1:1], tor1[4]), tPool) // pA has one next-hop of two
	v = judgeFIB(expect, fibs, tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "kernel FIB: tor1: 198.18.0.1/32 has {10.0.0.21}, want {10.0.0.21, 10.0.0.22}") {
		t.Fatalf("a route short of a next-hop: %+v", v)
	}

	fibs["tor2"] = fibState(tor2[:3], tPool) // pB deleted, not yet back
	fibs["tor1"] = fibState(tor1, tPool)
	v = judgeFIB(expect, fibs, tPool)
	if v.Done || v.Wrong != 1 || !strings.Contains(v.Example, "kernel FIB: tor2: 198.18.0.2/32 has {}") {
		t.Fatalf("a deleted route: %+v", v)
	}
}
