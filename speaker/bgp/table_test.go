package bgp

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

func c(s string) announce.Community {
	x, err := announce.ParseCommunity(s)
	if err != nil {
		panic(err)
	}
	return x
}

func r(peer, prefix string, lp uint32, comms ...string) announce.Route {
	rt := announce.Route{Peer: peer, Prefix: netip.MustParsePrefix(prefix), LocalPref: lp}
	for _, s := range comms {
		rt.Communities = append(rt.Communities, c(s))
	}
	return rt
}

func fmtChanges(cs []change) []string {
	var out []string
	for _, ch := range cs {
		s := ch.peer + " " + ch.prefix.String()
		if ch.attrs == nil {
			s += " withdraw"
		} else {
			s += " add"
			if ch.attrs.LocalPref != 0 {
				s += " lp=" + itoa(ch.attrs.LocalPref)
			}
			for _, cm := range ch.attrs.Communities {
				s += " " + cm.String()
			}
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func itoa(v uint32) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			return string(b)
		}
	}
}

func TestTableApply(t *testing.T) {
	type step struct {
		svc     string
		routes  []announce.Route
		want    []string
		wantErr string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "add, unchanged, change attrs, withdraw",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0), r("tor2", "203.0.113.5/32", 0)},
					want: []string{"tor1 203.0.113.5/32 add", "tor2 203.0.113.5/32 add"}},
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0), r("tor2", "203.0.113.5/32", 0)}, want: nil},
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0, "1:1"), r("tor2", "203.0.113.5/32", 0)},
					want: []string{"tor1 203.0.113.5/32 add 1:1"}},
				{svc: "a", routes: []announce.Route{r("tor2", "203.0.113.5/32", 0)}, want: []string{"tor1 203.0.113.5/32 withdraw"}},
				{svc: "a", routes: nil, want: []string{"tor2 203.0.113.5/32 withdraw"}},
			},
		},
		{
			name: "one service's change does not touch another's routes",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0)}, want: []string{"tor1 203.0.113.5/32 add"}},
				{svc: "b", routes: []announce.Route{r("tor1", "203.0.113.6/32", 0)}, want: []string{"tor1 203.0.113.6/32 add"}},
				{svc: "b", routes: nil, want: []string{"tor1 203.0.113.6/32 withdraw"}},
			},
		},
		{
			name: "aggregated prefix shared by services: union of communities, withdrawn with the last",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.0/24", 0, "1:1")}, want: []string{"tor1 203.0.113.0/24 add 1:1"}},
				{svc: "b", routes: []announce.Route{r("tor1", "203.0.113.0/24", 0, "2:2")}, want: []string{"tor1 203.0.113.0/24 add 1:1 2:2"}},
				{svc: "a", routes: nil, want: []string{"tor1 203.0.113.0/24 add 2:2"}},
				{svc: "b", routes: nil, want: []string{"tor1 203.0.113.0/24 withdraw"}},
			},
		},
		{
			name: "conflicting local-pref across services sharing a prefix is rejected and changes nothing",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 100)}, want: []string{"ibgp 203.0.113.0/24 add lp=100"}},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 200), r("ibgp", "198.51.100.1/32", 0)},
					wantErr: "localPref 200 conflicts with 100 from service a"},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 100)}, want: nil},
				{svc: "a", routes: nil, want: nil},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 200)}, want: []string{"ibgp 203.0.113.0/24 add lp=200"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable()
			for i, s := range tt.steps {
				got, err := tb.apply(s.svc, s.routes)
				if s.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), s.wantErr) {
						t.Fatalf("step %d: err %v, want %q", i, err, s.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if g := fmtChanges(got); !reflect.DeepEqual(g, s.want) {
					t.Fatalf("step %d: got %q want %q", i, g, s.want)
				}
			}
			// After all steps the table must hold nothing for withdrawn services.
			for p, svcs := range tb.prefixes {
				for _, svc := range svcs {
					if len(tb.services[svc]) == 0 {
						t.Errorf("leftover index entry %s -> %s", p, svc)
					}
				}
			}
		})
	}
}

// TestTableModel drives the table with random route sets of a few Services over
// a few prefixes and peers (some shared, some with local-prefs that conflict)
// and checks every answer against a model that merges from scratch: apply
// returns exactly the difference of what is announced before and after, a
// conflicting change is refused and changes nothing, and wanted, announced
// and the per-peer counts agree with the model.
func TestTableModel(t *testing.T) {
	peers := []string{"tor1", "tor2", "ibgp"}
	prefixes := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("203.0.113.5/32"),
		netip.MustParsePrefix("203.0.113.6/32"), netip.MustParsePrefix("2001:db8::/64")}
	comms := []announce.Community{c("1:1"), c("2:2"), c("no-export"), c("large:1:2:3")}
	svcs := []string{"a", "b", "c", "d"}

	type model map[string][]announce.Route
	// merge is what the model announces for every (peer, prefix).
	merge := func(m model) map[routeKey]Attrs {
		out := map[routeKey]Attrs{}
		for _, svc := range svcs {
			for _, r := range m[svc] {
				k := routeKey{r.Peer, r.Prefix}
				a := out[k]
				if r.LocalPref != 0 {
					a.LocalPref = r.LocalPref
				}
				var u []announce.Community
				for _, x := range append(slices.Clone(a.Communities), r.Communities...) {
					if !slices.Contains(u, x) {
						u = append(u, x)
					}
				}
				slices.SortFunc(u, func(x, y announce.Community) int {
					switch {
					case x == y:
						return 0
					case x.Less(y):
						return -1
					}
					return 1
				})
				a.Communities = u
				out[k] = a
			}
		}
		return out
	}
	conflicts := func(m model, svc string, routes []announce.Route) bool {
		for _, r := range routes {
			for _, o := range svcs {
				if o == svc {
					continue
				}
				for _, or := range m[o] {
					if or.Peer == r.Peer && or.Prefix == r.Prefix && or.LocalPref != 0 && r.LocalPref != 0 && or.LocalPref != r.LocalPref {
						return true
					}
				}
			}
		}
		return false
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 200; run++ {
		tb, m := newTable(), model{}
		for step := 0; step < 50; step++ {
			svc := svcs[rng.IntN(len(svcs))]
			var routes []announce.Route
			seen := map[routeKey]bool{}
			for n := rng.IntN(4); n > 0; n-- {
				r := announce.Route{Peer: peers[rng.IntN(len(peers))], Prefix: prefixes[rng.IntN(len(prefixes))]}
				if seen[routeKey{r.Peer, r.Prefix}] {
					continue
				}
				seen[routeKey{r.Peer, r.Prefix}] = true
				if r.Peer == "ibgp" && rng.IntN(2) == 0 {
					r.LocalPref = uint32(100 * (1 + rng.IntN(2)))
				}
				for _, x := range comms {
					if rng.IntN(3) == 0 {
						r.Communities = append(r.Communities, x)
					}
				}
				slices.SortFunc(r.Communities, func(x, y announce.Community) int {
					if x.Less(y) {
						return -1
					}
					return 1
				})
				routes = append(routes, r)
			}
			before := merge(m)
			got, err := tb.apply(svc, routes)
			if conflicts(m, svc, routes) {
				if err == nil || !strings.Contains(err.Error(), "conflicts with") {
					t.Fatalf("run %d step %d: %s %v: err %v, want a conflict", run, step, svc, routes, err)
				}
			} else {
				if err != nil {
					t.Fatalf("run %d step %d: %v", run, step, err)
				}
				if len(routes) == 0 {
					delete(m, svc)
				} else {
					m[svc] = routes
				}
			}
			after := merge(m)
			var want []change
			for k, a := range after {
				if b, had := before[k]; !had || !b.equal(a) {
					want = append(want, change{peer: k.peer, prefix: k.prefix, attrs: &a, isNew: !had})
				}
			}
			for k := range before {
				if _, has := after[k]; !has {
					want = append(want, change{peer: k.peer, prefix: k.prefix})
				}
			}
			if g, w := fmtChanges(got), fmtChanges(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("run %d step %d: %s %v: changes %q, want %q", run, step, svc, routes, g, w)
			}
			news := func(cs []change) (n int) {
				for _, c := range cs {
					if c.isNew {
						n++
					}
				}
				return n
			}
			if news(got) != news(want) {
				t.Fatalf("run %d step %d: %d changes marked new, want %d", run, step, news(got), news(want))
			}
			counts := map[string]int{}
			for _, p := range peers {
				ann := map[netip.Prefix]Attrs{}
				for k, a := range after {
					if k.peer == p {
						ann[k.prefix] = a
						counts[p]++
					}
				}
				if g := tb.announced(p); !reflect.DeepEqual(g, ann) {
					t.Fatalf("run %d step %d: announced(%s) %v, want %v", run, step, p, g, ann)
				}
				for _, pfx := range prefixes {
					a, ok := tb.wanted(routeKey{p, pfx})
					wa, wok := after[routeKey{p, pfx}]
					if ok != wok || (ok && !a.equal(wa)) {
						t.Fatalf("run %d step %d: wanted(%s, %s) %v %v, want %v %v", run, step, p, pfx, a, ok, wa, wok)
					}
				}
			}
			if g := tb.counts(); !reflect.DeepEqual(g, counts) && !(len(g) == 0 && len(counts) == 0) {
				t.Fatalf("run %d step %d: counts %v, want %v", run, step, g, counts)
			}
		}
	}
}

// TestTableMemory bounds what the table holds per Service at 10,000 Services
// with a /32 each towards 2 peers (communities shared, as announce hands
// them out): about 600 bytes when it kept a per-peer entry with its own copy of the
// announced attributes, 339 since it keeps only the routes and a prefix index.
func TestTableMemory(t *testing.T) {
	const n, bound = 10000, 420
	comms := []announce.Community{c("65000:1")}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "bench/svc-" + itoa(uint32(i))
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	tb := newTable()
	for i, key := range keys {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32)
		if _, err := tb.apply(key, []announce.Route{{Peer: "peer1", Prefix: p, Communities: comms}, {Peer: "peer2", Prefix: p, Communities: comms}}); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(heap()-h0) / n
	runtime.KeepAlive(tb)
	t.Logf("%.0f bytes per Service", per)
	if per > bound {
		t.Errorf("the table holds %.0f bytes per Service, want <= %d", per, bound)
	}
}
