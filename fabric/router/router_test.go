package router

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

func apiPath(t *testing.T, prefix, nextHop, peer string, withdraw bool, communities ...uint32) *api.Path {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: nextHop})
	asPath, _ := anypb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: 2, Numbers: []uint32{65100}}}})
	attrs := []*anypb.Any{origin, nh, asPath}
	if len(communities) > 0 {
		c, _ := anypb.New(&api.CommunitiesAttribute{Communities: communities})
		attrs = append(attrs, c)
	}
	return &api.Path{Nlri: nlri, Pattrs: attrs, IsWithdraw: withdraw, NeighborIp: peer, SourceAsn: 65100,
		Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}}
}

func TestEventPath(t *testing.T) {
	ep, err := eventPath(apiPath(t, "203.0.113.5/32", "10.0.0.21", "10.0.0.21", false, 65100<<16|7))
	if err != nil {
		t.Fatal(err)
	}
	want := rib.Path{NextHop: netip.MustParseAddr("10.0.0.21"), Peer: netip.MustParseAddr("10.0.0.21"), PeerASN: 65100,
		ASPath: []uint32{65100}, Communities: []string{"65100:7"}}
	if ep.Prefix != netip.MustParsePrefix("203.0.113.5/32") || ep.Withdraw || ep.Path.NextHop != want.NextHop ||
		ep.Path.Peer != want.Peer || !slices.Equal(ep.Path.ASPath, want.ASPath) || !slices.Equal(ep.Path.Communities, want.Communities) {
		t.Fatalf("got %+v", ep)
	}
	bad := &api.Path{Nlri: apiPath(t, "203.0.113.5/32", "", "", false).Nlri}
	if _, err := eventPath(bad); err == nil {
		t.Fatal("path without next-hop accepted")
	}
}

type fakeFIB struct {
	mu     sync.Mutex
	routes map[netip.Prefix][]netip.Addr
	calls  int
}

func (f *fakeFIB) Replace(p netip.Prefix, hops []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.routes[p] = slices.Clone(hops)
	return nil
}

func (f *fakeFIB) Delete(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	delete(f.routes, p)
	return nil
}

func (f *fakeFIB) Flush() error { return nil }

func (f *fakeFIB) get(p netip.Prefix) ([]netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.routes[p]
	return h, ok
}

func TestOnBestProgramsRIBAndFIB(t *testing.T) {
	fib := &fakeFIB{routes: map[netip.Prefix][]netip.Addr{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(Config{Name: "t", FIB: true}, WithFIB(fib), WithClock(func() time.Time { return now }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.fibLoop(ctx)
	p5 := netip.MustParsePrefix("203.0.113.5/32")

	steps := []struct {
		paths []*api.Path
		want  []netip.Addr
	}{
		{[]*api.Path{apiPath(t, "203.0.113.5/32", "10.0.0.21", "10.0.0.21", false)}, []netip.Addr{netip.MustParseAddr("10.0.0.21")}},
		{[]*api.Path{
			apiPath(t, "203.0.113.5/32", "10.0.0.22", "10.0.0.22", false),
			apiPath(t, "203.0.113.5/32", "10.0.0.21", "10.0.0.21", false),
		}, []netip.Addr{netip.MustParseAddr("10.0.0.21"), netip.MustParseAddr("10.0.0.22")}},
		{[]*api.Path{apiPath(t, "203.0.113.5/32", "10.0.0.22", "10.0.0.22", true)}, nil},
	}
	for i, s := range steps {
		now = now.Add(time.Second)
		r.onBest(s.paths)
		set, ok := r.RIB().Get(p5)
		if !slices.Equal(set.NextHops(), s.want) || ok != (len(s.want) > 0) {
			t.Fatalf("step %d: rib %v (%v), want %v", i, set.NextHops(), ok, s.want)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, ok := fib.get(p5)
			if slices.Equal(got, s.want) && ok == (len(s.want) > 0) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d: fib %v (%v), want %v", i, got, ok, s.want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	h := r.RIB().History(0)
	if len(h) != 3 || h[2].Kind != rib.KindWithdraw || !h[2].At.Equal(now) {
		t.Fatalf("history %+v", h)
	}
}

func TestConfigFor(t *testing.T) {
	topo := topology.Default()
	topo.Nodes[1].BFDProfile = "default"
	topo.DynamicNeighbors = true
	topo.SetDefaults()
	c, err := ConfigFor(topo, "tor2", "/run/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != netip.MustParseAddr("10.0.0.2") || c.GRPCAddress != "127.0.0.1:50051" || len(c.Neighbors) != 3 {
		t.Fatalf("config %+v", c)
	}
	if c.Neighbors[0].BFD != nil || c.Neighbors[1].BFD == nil || c.Neighbors[1].BFD.TransmitInterval != 300 {
		t.Fatalf("bfd per neighbor: %+v", c.Neighbors)
	}
	if c.DynamicRange != topo.Segment || c.DynamicASN != 65100 {
		t.Fatalf("dynamic: %v %d", c.DynamicRange, c.DynamicASN)
	}
	if _, err := ConfigFor(topo, "nope", ""); err == nil {
		t.Fatal("unknown tor accepted")
	}
}
