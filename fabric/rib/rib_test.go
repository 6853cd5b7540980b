package rib

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	p5  = netip.MustParsePrefix("203.0.113.5/32")
	p6  = netip.MustParsePrefix("203.0.113.6/32")
	n21 = netip.MustParseAddr("10.0.0.21")
	n22 = netip.MustParseAddr("10.0.0.22")
	n23 = netip.MustParseAddr("10.0.0.23")
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func via(hops ...netip.Addr) []Path {
	var out []Path
	for _, h := range hops {
		out = append(out, Path{NextHop: h, Peer: h, PeerASN: 65100})
	}
	return out
}

func addrs(a ...netip.Addr) []netip.Addr { return append([]netip.Addr{}, a...) }

func TestApply(t *testing.T) {
	type step struct {
		updates []Update
		want    []Change // Seq and At are filled in by the test
		wantSet map[netip.Prefix][]netip.Addr
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "add then grow then shrink then withdraw",
			steps: []step{
				{updates: []Update{{p5, via(n21)}}, want: []Change{{Prefix: p5, Kind: KindAdd, Old: addrs(), New: addrs(n21)}}},
				{updates: []Update{{p5, via(n22, n21)}}, want: []Change{{Prefix: p5, Kind: KindUpdate, Old: addrs(n21), New: addrs(n21, n22)}}},
				{updates: []Update{{p5, via(n21, n22, n23)}}, want: []Change{{Prefix: p5, Kind: KindUpdate, Old: addrs(n21, n22), New: addrs(n21, n22, n23)}}},
				{updates: []Update{{p5, via(n23)}}, want: []Change{{Prefix: p5, Kind: KindUpdate, Old: addrs(n21, n22, n23), New: addrs(n23)}},
					wantSet: map[netip.Prefix][]netip.Addr{p5: {n23}}},
				{updates: []Update{{p5, nil}}, want: []Change{{Prefix: p5, Kind: KindWithdraw, Old: addrs(n23), New: addrs()}},
					wantSet: map[netip.Prefix][]netip.Addr{}},
			},
		},
		{
			name: "same set again records nothing",
			steps: []step{
				{updates: []Update{{p5, via(n21, n22)}}, want: []Change{{Prefix: p5, Kind: KindAdd, Old: addrs(), New: addrs(n21, n22)}}},
				{updates: []Update{{p5, via(n22, n21)}}, want: nil, wantSet: map[netip.Prefix][]netip.Addr{p5: {n21, n22}}},
			},
		},
		{
			name: "withdraw of unknown prefix is ignored",
			steps: []step{
				{updates: []Update{{p6, nil}}, want: nil, wantSet: map[netip.Prefix][]netip.Addr{}},
			},
		},
		{
			name: "several prefixes in one batch",
			steps: []step{
				{updates: []Update{{p5, via(n21)}, {p6, via(n22, n23)}}, want: []Change{
					{Prefix: p5, Kind: KindAdd, Old: addrs(), New: addrs(n21)},
					{Prefix: p6, Kind: KindAdd, Old: addrs(), New: addrs(n22, n23)},
				}},
				{updates: []Update{{p5, nil}, {p6, via(n22)}}, want: []Change{
					{Prefix: p5, Kind: KindWithdraw, Old: addrs(n21), New: addrs()},
					{Prefix: p6, Kind: KindUpdate, Old: addrs(n22, n23), New: addrs(n22)},
				}, wantSet: map[netip.Prefix][]netip.Addr{p6: {n22}}},
			},
		},
		{
			name: "two paths with one next-hop count once",
			steps: []step{
				{updates: []Update{{p5, []Path{{NextHop: n21, Peer: n21}, {NextHop: n21, Peer: n22}}}},
					want:    []Change{{Prefix: p5, Kind: KindAdd, Old: addrs(), New: addrs(n21)}},
					wantSet: map[netip.Prefix][]netip.Addr{p5: {n21}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(0)
			var seq uint64
			var all []Change
			for i, s := range tc.steps {
				at := t0.Add(time.Duration(i) * time.Second)
				got := r.Apply(at, s.updates)
				for j := range s.want {
					seq++
					s.want[j].Seq, s.want[j].At = seq, at
				}
				if !equalChanges(got, s.want) {
					t.Fatalf("step %d: changes\n got %+v\nwant %+v", i, got, s.want)
				}
				all = append(all, s.want...)
				if s.wantSet != nil {
					if r.Len() != len(s.wantSet) {
						t.Fatalf("step %d: %d prefixes, want %d", i, r.Len(), len(s.wantSet))
					}
					for p, hops := range s.wantSet {
						set, ok := r.Get(p)
						if !ok || !slices.Equal(set.NextHops(), hops) {
							t.Fatalf("step %d: %v = %v (%v), want %v", i, p, set.NextHops(), ok, hops)
						}
					}
				}
			}
			if h := r.History(0); !equalChanges(h, all) {
				t.Fatalf("history\n got %+v\nwant %+v", h, all)
			}
		})
	}
}

func TestSinceOnlyMovesOnChange(t *testing.T) {
	r := New(0)
	r.Apply(t0, []Update{{p5, via(n21)}})
	r.Apply(t0.Add(time.Second), []Update{{p5, []Path{{NextHop: n21, Peer: n21, MED: 7}}}})
	s, _ := r.Get(p5)
	if !s.Since.Equal(t0) || s.Paths[0].MED != 7 {
		t.Fatalf("got %+v", s)
	}
}

func TestHistoryAfterAndTrim(t *testing.T) {
	r := New(3)
	for i := range 5 {
		hops := via(n21)
		if i%2 == 1 {
			hops = via(n21, n22)
		}
		r.Apply(t0.Add(time.Duration(i)*time.Second), []Update{{p5, hops}})
	}
	h := r.History(0)
	if len(h) != 3 || h[0].Seq != 3 || h[2].Seq != 5 {
		t.Fatalf("trimmed history: %+v", h)
	}
	if h := r.History(4); len(h) != 1 || h[0].Seq != 5 {
		t.Fatalf("history after 4: %+v", h)
	}
	if h := r.History(5); len(h) != 0 {
		t.Fatalf("history after 5: %+v", h)
	}
}

func TestLookupLongestMatch(t *testing.T) {
	r := New(0)
	r.Apply(t0, []Update{{netip.MustParsePrefix("203.0.113.0/24"), via(n21)}, {p5, via(n22)}})
	tests := []struct {
		addr string
		want netip.Prefix
		ok   bool
	}{
		{"203.0.113.5", p5, true},
		{"203.0.113.9", netip.MustParsePrefix("203.0.113.0/24"), true},
		{"198.51.100.1", netip.Prefix{}, false},
	}
	for _, tc := range tests {
		s, ok := r.Lookup(netip.MustParseAddr(tc.addr))
		if ok != tc.ok || s.Prefix != tc.want {
			t.Errorf("Lookup(%s) = %v %v, want %v %v", tc.addr, s.Prefix, ok, tc.want, tc.ok)
		}
	}
}

func TestGroup(t *testing.T) {
	path := func(h netip.Addr) Path { return Path{NextHop: h, Peer: h} }
	tests := []struct {
		name string
		in   []EventPath
		want []Update
	}{
		{name: "full set of one prefix", in: []EventPath{{Prefix: p5, Path: path(n21)}, {Prefix: p5, Path: path(n22)}},
			want: []Update{{p5, []Path{path(n21), path(n22)}}}},
		{name: "emptied set arrives as one withdraw", in: []EventPath{{Prefix: p5, Path: path(n21), Withdraw: true}},
			want: []Update{{p5, nil}}},
		{name: "interleaved prefixes", in: []EventPath{
			{Prefix: p5, Path: path(n21)}, {Prefix: p6, Path: path(n23), Withdraw: true}, {Prefix: p5, Path: path(n22)}},
			want: []Update{{p5, []Path{path(n21), path(n22)}}, {p6, nil}}},
		{name: "unmasked prefix", in: []EventPath{{Prefix: netip.MustParsePrefix("203.0.113.7/24"), Path: path(n21)}},
			want: []Update{{netip.MustParsePrefix("203.0.113.0/24"), []Path{path(n21)}}}},
		{name: "empty", in: nil, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Group(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Prefix != tc.want[i].Prefix || !slices.EqualFunc(got[i].Paths, tc.want[i].Paths, func(a, b Path) bool {
					return a.NextHop == b.NextHop && a.Peer == b.Peer
				}) {
					t.Fatalf("update %d: got %+v want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func equalChanges(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return x.Seq == y.Seq && x.At.Equal(y.At) && x.Prefix == y.Prefix && x.Kind == y.Kind &&
			slices.Equal(x.Old, y.Old) && slices.Equal(x.New, y.New)
	})
}

func TestWaitHistory(t *testing.T) {
	r := New(0)
	r.Apply(t0, []Update{{p5, via(n21)}})
	if h := r.WaitHistory(context.Background(), 0); len(h) != 1 || h[0].Seq != 1 {
		t.Fatalf("a change already there is returned at once: %+v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if h := r.WaitHistory(ctx, 1); len(h) != 0 {
		t.Fatalf("no change after 1: got %+v", h)
	}
	if ctx.Err() == nil {
		t.Fatal("returned before its context ended without a change")
	}
	got := make(chan []Change)
	go func() { got <- r.WaitHistory(context.Background(), 1) }()
	// An update that leaves the set as it was records no change and wakes
	// nobody; the next real change does.
	r.Apply(t0.Add(time.Second), []Update{{p5, via(n21)}})
	r.Apply(t0.Add(2*time.Second), []Update{{p5, via(n21, n22)}})
	select {
	case h := <-got:
		if len(h) != 1 || h[0].Seq != 2 || h[0].Kind != KindUpdate {
			t.Fatalf("woken with %+v, want the update with seq 2", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitHistory not woken by a change")
	}
}
