package fabric_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

var (
	svc  = netip.MustParsePrefix("203.0.113.5/32")
	svc2 = netip.MustParsePrefix("203.0.113.6/32")
	svc6 = netip.MustParsePrefix("2001:db8::5/128")
)

// testTopology is the reference topology with a 3 s hold time and BFD (300 ms x 3,
// MetalLB's default, robust on a loaded 2-core machine) towards node1 and node2; node3
// has no BFD. The detection benchmark measures tighter profiles.
func testTopology() topology.Topology {
	t := topology.Default()
	t.BGP = topology.BGPTimers{HoldTime: topology.Duration(3 * time.Second), KeepaliveInterval: topology.Duration(time.Second)}
	t.BFDProfiles = map[string]topology.BFDProfile{"fast": {ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}}
	t.Nodes[0].BFDProfile = "fast"
	t.Nodes[1].BFDProfile = "fast"
	return t
}

// changeAfter returns the first RIB change of prefix after t0 whose new next-hops
// equal want.
func changeAfter(t *testing.T, f *fabric.Fabric, tor string, prefix netip.Prefix, t0 time.Time, want []netip.Addr) rib.Change {
	t.Helper()
	h, err := f.History(context.Background(), tor, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range h {
		if c.Prefix == prefix && c.At.After(t0) && slices.Equal(c.New, want) {
			return c
		}
	}
	t.Fatalf("%s: no change of %v to %v after %v in history %+v", tor, prefix, want, t0, h)
	return rib.Change{}
}

func TestFabric(t *testing.T) {
	f := up(t, testTopology())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	all := addrs("10.0.0.21", "10.0.0.22", "10.0.0.23")
	all6 := addrs("fd00:10::21", "fd00:10::22", "fd00:10::23")
	tors := []string{"tor1", "tor2"}
	fast := f.Topology().BFDProfiles["fast"]

	anns := map[string]*fabric.Announcer{}
	for _, n := range f.Topology().Nodes {
		opts := fabric.AnnouncerOptions{Prefixes: []netip.Prefix{svc, svc2, svc6}}
		if n.BFDProfile != "" {
			opts.BFD = &fast
		}
		a, err := f.StartAnnouncer(ctx, n.Name, opts)
		if err != nil {
			t.Fatal(err)
		}
		anns[n.Name] = a
	}

	wait := func(t *testing.T, tor string, p netip.Prefix, want []netip.Addr, within time.Duration) rib.ECMPSet {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		s, err := f.WaitForRoute(wctx, tor, p, want)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("ECMP set on both ToRs and in the kernel FIB", func(t *testing.T) {
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if err := f.WaitForRouteAll(wctx, svc, all); err != nil {
			t.Fatal(err)
		}
		routes, err := f.Routes(ctx, svc)
		if err != nil || len(routes) != 2 {
			t.Fatalf("routes %v %v", routes, err)
		}
		for _, tor := range tors {
			for _, p := range []netip.Prefix{svc, svc2} {
				s := wait(t, tor, p, all, 15*time.Second)
				if len(s.Paths) != 3 || s.Paths[0].PeerASN != 65100 || !slices.Equal(s.Paths[0].ASPath, []uint32{65100}) {
					t.Errorf("%s %v paths: %+v", tor, p, s.Paths)
				}
				if err := f.WaitForKernelRoute(ctx, tor, p, all); err != nil {
					t.Error(err)
				}
			}
			// IPv6 routes over the IPv4 sessions, with the nodes' IPv6 next-hops.
			wait(t, tor, svc6, all6, 5*time.Second)
			if err := f.WaitForKernelRoute(ctx, tor, svc6, all6); err != nil {
				t.Error(err)
			}
			ns, err := f.Neighbors(ctx, tor)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				if n.State != "established" || n.Accepted != 3 {
					t.Errorf("%s neighbor %+v", tor, n)
				}
			}
			sessions, err := f.BFDPeers(ctx, tor)
			if err != nil {
				t.Fatal(err)
			}
			var peers []netip.Addr
			for _, s := range sessions {
				peers = append(peers, s.Peer)
				if s.State != "Up" {
					t.Errorf("%s bfd %+v", tor, s)
				}
			}
			slices.SortFunc(peers, netip.Addr.Compare)
			if !slices.Equal(peers, addrs("10.0.0.21", "10.0.0.22")) {
				t.Errorf("%s bfd peers %v, want node1 and node2 only", tor, peers)
			}
		}
	})

	t.Run("flows spread across the announcing nodes", func(t *testing.T) {
		for _, n := range f.Topology().Nodes {
			if err := f.AddNodeAddress(n.Name, svc.Addr()); err != nil {
				t.Fatal(err)
			}
			r, err := f.StartResponder(n.Name, netip.AddrPortFrom(svc.Addr(), 9000))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		before := map[string]uint64{}
		for _, n := range f.Topology().Nodes {
			st, err := f.NodeLinkStats(n.Name)
			if err != nil {
				t.Fatal(err)
			}
			before[n.Name] = st.RxPackets
		}
		counts, err := f.SendFlows(ctx, "client", netip.AddrPortFrom(svc.Addr(), 9000), 64, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range f.Topology().Nodes {
			st, _ := f.NodeLinkStats(n.Name)
			if got := st.RxPackets - before[n.Name]; got < uint64(counts[n.Name]) {
				t.Errorf("%s received %d packets, fewer than the %d flows it answered", n.Name, got, counts[n.Name])
			}
		}
		t.Logf("64 flows: %v", counts)
		if counts[""] != 0 {
			t.Errorf("%d flows got no reply: %v", counts[""], counts)
		}
		if len(counts) < 2 {
			t.Errorf("all flows took one next-hop: %v", counts)
		}
		for name := range counts {
			if _, ok := f.Topology().Node(name); !ok && name != "" {
				t.Errorf("reply from unknown responder %q", name)
			}
		}
		for _, n := range f.Topology().Nodes {
			if err := f.AddNodeAddress(n.Name, svc6.Addr()); err != nil {
				t.Fatal(err)
			}
			r, err := f.StartResponder(n.Name, netip.AddrPortFrom(svc6.Addr(), 9000))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		counts6, err := f.SendFlows(ctx, "client", netip.AddrPortFrom(svc6.Addr(), 9000), 64, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("64 IPv6 flows: %v", counts6)
		if counts6[""] != 0 || len(counts6) < 2 {
			t.Errorf("IPv6 flows: %v, want all answered by at least two nodes", counts6)
		}
	})

	t.Run("withdraw shrinks and empties the set", func(t *testing.T) {
		if err := anns["node3"].Withdraw(ctx, svc2); err != nil {
			t.Fatal(err)
		}
		wait(t, "tor1", svc2, addrs("10.0.0.21", "10.0.0.22"), 5*time.Second)
		for _, n := range []string{"node1", "node2"} {
			if err := anns[n].Withdraw(ctx, svc2); err != nil {
				t.Fatal(err)
			}
		}
		for _, tor := range tors {
			wait(t, tor, svc2, nil, 5*time.Second)
			if err := f.WaitForKernelRoute(ctx, tor, svc2, nil); err != nil {
				t.Error(err)
			}
		}
		h, _ := f.History(ctx, "tor1", 0)
		last := h[len(h)-1]
		if last.Prefix != svc2 || last.Kind != rib.KindWithdraw || len(last.New) != 0 {
			t.Errorf("last change %+v, want withdraw of %v", last, svc2)
		}
	})

	t.Run("hard node failure with BFD is detected far below the hold time", func(t *testing.T) {
		for _, tor := range tors {
			if err := f.WaitForBFD(ctx, tor, "node1", "Up"); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}); err != nil {
			t.Fatal(err)
		}
		log := f.FaultLog()
		last := log[len(log)-1]
		if last.Action != "inject" || last.Fault.Target != "node1" || last.At.Before(t0) || last.At.After(time.Now()) {
			t.Fatalf("fault log %+v", log)
		}
		want := addrs("10.0.0.22", "10.0.0.23")
		for _, tor := range tors {
			wait(t, tor, svc, want, 5*time.Second)
			wait(t, tor, svc6, addrs("fd00:10::22", "fd00:10::23"), time.Second)
			c := changeAfter(t, f, tor, svc, t0, want)
			d := c.At.Sub(last.At)
			t.Logf("%s: node1 hard failure with BFD 300ms x 3 withdrawn after %v", tor, d)
			if d >= 3*time.Second {
				t.Errorf("%s: BFD withdrawal took %v, not faster than the 3s hold time", tor, d)
			}
			ev, _ := f.Events(ctx, tor, 0)
			if !slices.ContainsFunc(ev, func(e fabric.Event) bool {
				return e.Kind == "bfd" && e.Peer == netip.MustParseAddr("10.0.0.21") && e.New == "Down" && e.At.After(t0)
			}) {
				t.Errorf("%s: no BFD Down event for node1: %+v", tor, ev)
			}
		}
	})

	t.Run("hard node failure without BFD waits for the hold timer", func(t *testing.T) {
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node3"}); err != nil {
			t.Fatal(err)
		}
		want := addrs("10.0.0.22")
		for _, tor := range tors {
			wait(t, tor, svc, want, 8*time.Second)
			d := changeAfter(t, f, tor, svc, t0, want).At.Sub(t0)
			t.Logf("%s: node3 hard failure without BFD (hold 3s) withdrawn after %v", tor, d)
			if d < time.Second {
				t.Errorf("%s: withdrawn after %v, before any hold timer could expire", tor, d)
			}
		}
	})

	t.Run("repair restores the full set", func(t *testing.T) {
		for _, n := range []string{"node1", "node3"} {
			if err := f.Repair(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: n}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tor := range tors {
			wait(t, tor, svc, all, 20*time.Second)
		}
		// A link down flushed the node's routes back to the client and its
		// IPv6 address (keep_addr_on_down is off): the repair restores them,
		// or the routes come back to a node that cannot answer.
		topo := f.Topology()
		c := topo.Clients[0]
		tor, _ := topo.ToR(c.ToR)
		for _, n := range []string{"node1", "node3"} {
			for _, r := range []struct {
				dst netip.Prefix
				via netip.Addr
			}{{c.Link, tor.Address}, {c.Link6, tor.Address6}} {
				hops, err := netns.RouteNextHops(f.NodeNetNS(n), r.dst)
				if err != nil || !slices.Equal(hops, []netip.Addr{r.via}) {
					t.Errorf("%s after the repair: route to %v via %v (%v), want via %v", n, r.dst, hops, err, r.via)
				}
			}
		}
	})

	t.Run("graceful drain withdraws at once and comes back", func(t *testing.T) {
		drain := fabric.Fault{Kind: fabric.FaultNodeDrain, Target: "node2"}
		if err := f.Fault(ctx, drain); err != nil {
			t.Fatal(err)
		}
		for _, tor := range tors {
			wait(t, tor, svc, addrs("10.0.0.21", "10.0.0.23"), 2*time.Second)
			ns, _ := f.Neighbors(ctx, tor)
			if i := slices.IndexFunc(ns, func(n fabric.Neighbor) bool { return n.Name == "node2" }); i < 0 || !ns[i].AdminDown {
				t.Errorf("%s: node2 not admin down: %+v", tor, ns)
			}
		}
		if err := f.Repair(ctx, drain); err != nil {
			t.Fatal(err)
		}
		for _, tor := range tors {
			wait(t, tor, svc, all, 20*time.Second)
		}
	})

	t.Run("frozen node is withdrawn after the hold time", func(t *testing.T) {
		freeze := fabric.Fault{Kind: fabric.FaultNodeFreeze, Target: "node3"}
		if err := f.Fault(ctx, freeze); err != nil {
			t.Fatal(err)
		}
		wait(t, "tor1", svc, addrs("10.0.0.21", "10.0.0.22"), 8*time.Second)
		if err := f.Repair(ctx, freeze); err != nil {
			t.Fatal(err)
		}
		wait(t, "tor1", svc, all, 20*time.Second)
	})

	t.Run("ToR failure leaves the other ToR untouched and recovers", func(t *testing.T) {
		before, err := f.History(ctx, "tor1", 0)
		if err != nil {
			t.Fatal(err)
		}
		torDown := fabric.Fault{Kind: fabric.FaultToRDown, Target: "tor2"}
		if err := f.Fault(ctx, torDown); err != nil {
			t.Fatal(err)
		}
		pid := f.State().Routers["tor2"].PID
		if st, err := proc.ReadStat(pid); err != nil || st.State != "T" {
			t.Errorf("tor2 router (pid %d) state %q (%v), want stopped", pid, st.State, err)
		}
		if up, err := netns.LinkUp(f.NetNS("tor2"), fabric.SegmentInterface); err != nil || up {
			t.Errorf("tor2 segment link up=%v err=%v", up, err)
		}
		time.Sleep(4 * time.Second) // longer than the nodes' hold time towards tor2
		after, err := f.History(ctx, "tor1", before[len(before)-1].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != 0 {
			t.Errorf("tor1 changed while tor2 was down: %+v", after)
		}
		if err := f.Repair(ctx, torDown); err != nil {
			t.Fatal(err)
		}
		wait(t, "tor2", svc, all, 25*time.Second)
		if err := f.WaitForKernelRoute(ctx, "tor2", svc, all); err != nil {
			t.Error(err)
		}
	})

	t.Run("link flap", func(t *testing.T) {
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultLinkFlap, Target: "node1", Duration: time.Second}); err != nil {
			t.Fatal(err)
		}
		wait(t, "tor1", svc, all, 20*time.Second)
		changeAfter(t, f, "tor1", svc, t0, addrs("10.0.0.22", "10.0.0.23"))
	})
}

func TestStaleInstanceIsDetectedAndDestroyed(t *testing.T) {
	topo := topology.Topology{
		Segment: netip.MustParsePrefix("10.9.0.0/24"),
		ToRs:    []topology.ToR{{Name: "r1", Address: netip.MustParseAddr("10.9.0.1"), ASN: 65000}},
		Nodes:   []topology.Node{{Name: "n1", Address: netip.MustParseAddr("10.9.0.11"), ASN: 65100}},
	}
	f := up(t, topo)
	st := f.State()
	if _, err := fabric.Up(context.Background(), topo, fabric.Options{Instance: f.Instance(), Binary: binary}); err == nil {
		t.Fatal("second Up with the same instance succeeded")
	}
	for _, p := range st.Routers {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ins, err := fabric.List("")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ins, func(i fabric.Instance) bool { return i.Name == f.Instance() })
		if i < 0 {
			t.Fatalf("instance %s not listed: %+v", f.Instance(), ins)
		}
		if ins[i].Stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance not stale after its routers were killed: %+v", ins[i])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := fabric.Destroy(context.Background(), f.Instance(), ""); err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Namespaces() {
		if netns.Exists(ns) {
			t.Errorf("namespace %s survived Destroy", ns)
		}
	}
	if _, err := os.Stat(f.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir survived Destroy: %v", err)
	}
}

func TestNodesAddedAtRuntime(t *testing.T) { testNodesAddedAtRuntime(t, topology.FlavourGoBGP) }

// testNodesAddedAtRuntime runs with a ToR of the given flavour (see also
// TestFRRNodesAddedAtRuntime).
func testNodesAddedAtRuntime(t *testing.T, flavour string) {
	topo := topology.Topology{
		Segment:          netip.MustParsePrefix("10.9.0.0/24"),
		ToRs:             []topology.ToR{{Name: "r1", Address: netip.MustParseAddr("10.9.0.1"), ASN: 65000, Flavour: flavour}},
		Nodes:            []topology.Node{{Name: "n1", Address: netip.MustParseAddr("10.9.0.11"), ASN: 65100}},
		DynamicNeighbors: true,
		BFDProfiles:      map[string]topology.BFDProfile{"p": {ReceiveInterval: 100, TransmitInterval: 100}},
		BGP:              topology.BGPTimers{HoldTime: topology.Duration(3 * time.Second)},
	}
	f := up(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	added := []topology.Node{
		{Name: "n2", Address: netip.MustParseAddr("10.9.0.12"), ASN: 65100},                  // dynamic neighbor
		{Name: "n3", Address: netip.MustParseAddr("10.9.0.13"), ASN: 65100, BFDProfile: "p"}, // static, with BFD
	}
	for _, n := range added {
		if err := f.AddNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if !netns.Exists(f.NodeNetNS(n.Name)) {
			t.Fatalf("no namespace for %s", n.Name)
		}
	}
	if err := f.AddNode(ctx, topology.Node{Name: "n4", Address: netip.MustParseAddr("10.9.0.12"), ASN: 65100}); err == nil {
		t.Fatal("node with a used address accepted")
	}
	p := netip.MustParsePrefix("192.0.2.10/32")
	for _, n := range []string{"n1", "n2", "n3"} {
		opts := fabric.AnnouncerOptions{Prefixes: []netip.Prefix{p}}
		if n == "n3" {
			prof := topo.BFDProfiles["p"]
			opts.BFD = &prof
		}
		if _, err := f.StartAnnouncer(ctx, n, opts); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if _, err := f.WaitForRoute(wctx, "r1", p, addrs("10.9.0.11", "10.9.0.12", "10.9.0.13")); err != nil {
		t.Fatal(err)
	}
	if flavour == topology.FlavourFRR {
		// FRR 8.4 restarts a BFD session once after its BGP session came up
		// (fabric/README.md, ToR flavours).
		if err := f.WaitForBFD(ctx, "r1", "n3", "Up"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WaitForRoute(ctx, "r1", p, addrs("10.9.0.11", "10.9.0.12", "10.9.0.13")); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := f.Neighbors(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		wantDynamic := n.Address == netip.MustParseAddr("10.9.0.12")
		if n.Dynamic != wantDynamic || n.State != "established" {
			t.Errorf("neighbor %+v: want dynamic=%v, established", n, wantDynamic)
		}
		if n.Address == netip.MustParseAddr("10.9.0.13") && n.BFD != "Up" {
			t.Errorf("n3 BFD %q, want Up", n.BFD)
		}
	}
	for _, n := range []string{"n2", "n3"} {
		ns := f.NodeNetNS(n)
		if err := f.RemoveNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if netns.Exists(ns) {
			t.Errorf("namespace %s of %s survived RemoveNode", ns, n)
		}
		if f.NodeNetNS(n) != "" {
			t.Errorf("%s still known after RemoveNode", n)
		}
	}
	wctx2, wcancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel2()
	if _, err := f.WaitForRoute(wctx2, "r1", p, addrs("10.9.0.11")); err != nil {
		t.Fatal(err)
	}
}
