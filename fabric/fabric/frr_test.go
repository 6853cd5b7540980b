package fabric_test

import (
	"context"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/frrlab"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// TestFRRToR runs ToRs of flavour frr (real zebra, bgpd and bfdd) next to a
// GoBGP ToR, and alone, and reads them through the same control API: the same
// ECMP sets, history, BFD detection, the BFD faults, tor-restart, and nothing
// left behind by Down.
func TestFRRToR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs FRR ToRs")
	}
	frrlab.Require(t)
	for _, tc := range []struct {
		name string
		frr  []string // ToRs of flavour frr
	}{
		{"tor1 frr, tor2 gobgp", []string{"tor1"}},
		{"all frr", []string{"tor1", "tor2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := testTopology()
			for i := range topo.ToRs {
				if slices.Contains(tc.frr, topo.ToRs[i].Name) {
					topo.ToRs[i].Flavour = topology.FlavourFRR
				}
			}
			testFRRToR(t, topo, tc.frr)
		})
	}
}

// TestFRRNodesAddedAtRuntime adds a dynamic and a static neighbor with BFD to
// an FRR ToR at run time and removes them.
func TestFRRNodesAddedAtRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an FRR ToR")
	}
	frrlab.Require(t)
	testNodesAddedAtRuntime(t, topology.FlavourFRR)
}

func testFRRToR(t *testing.T, topo topology.Topology, frrToRs []string) {
	// The daemons of every FRR ToR, for the check that Down leaves none. This
	// cleanup is registered before up's, so it runs after Down.
	var daemons []int
	var f *fabric.Fabric
	t.Cleanup(func() {
		for _, pid := range daemons {
			if st, err := proc.ReadStat(pid); err == nil && st.State != "Z" {
				t.Errorf("FRR daemon %d left running after Down", pid)
			}
		}
		if f == nil {
			return
		}
		for _, tor := range frrToRs {
			if pids := frrlab.PIDs(f.NetNS(tor)); len(pids) > 0 {
				t.Errorf("%s: FRR pid files left after Down: %v", tor, pids)
			}
		}
	})
	f = up(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	all := addrs("10.0.0.21", "10.0.0.22", "10.0.0.23")
	all6 := addrs("fd00:10::21", "fd00:10::22", "fd00:10::23")
	tors := []string{"tor1", "tor2"}
	fast := f.Topology().BFDProfiles["fast"]
	frrToR := frrToRs[0]
	recordDaemons := func() {
		for _, tor := range frrToRs {
			pids := frrlab.PIDs(f.NetNS(tor))
			if len(pids) != 3 {
				t.Fatalf("%s: FRR daemons %v, want zebra, bfdd and bgpd", tor, pids)
			}
			for _, pid := range pids {
				daemons = append(daemons, pid)
			}
		}
	}
	recordDaemons()

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
		wctx, wcancel := context.WithTimeout(ctx, within)
		defer wcancel()
		s, err := f.WaitForRoute(wctx, tor, p, want)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitBFD := func(t *testing.T, tor, node, state string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if err := f.WaitForBFD(wctx, tor, node, state); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("both ToRs show the same exact ECMP set", func(t *testing.T) {
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := f.WaitForRouteAll(wctx, svc, all); err != nil {
			t.Fatal(err)
		}
		for _, tor := range tors {
			for _, p := range []netip.Prefix{svc, svc2} {
				s := wait(t, tor, p, all, 15*time.Second)
				for _, path := range s.Paths {
					if path.PeerASN != 65100 || !slices.Equal(path.ASPath, []uint32{65100}) || path.Peer != path.NextHop {
						t.Errorf("%s %v path %+v, want peer = next-hop in AS 65100", tor, p, path)
					}
				}
			}
			wait(t, tor, svc6, all6, 10*time.Second)
			if err := f.WaitForKernelRoute(ctx, tor, svc6, all6); err != nil {
				t.Error(err)
			}
			if err := f.WaitForKernelRoute(ctx, tor, svc, all); err != nil {
				t.Error(err)
			}
		}
		fib, err := f.FIB(ctx, frrToR)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(fib, func(r control.FIBRoute) bool { return r.Prefix == svc }); i < 0 || !slices.Equal(fib[i].NextHops, all) {
			t.Errorf("%s FIB %+v, want %v via %v", frrToR, fib, svc, all)
		}
		ns, err := f.Neighbors(ctx, frrToR)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 3 {
			t.Errorf("%s neighbors %+v, want the three nodes", frrToR, ns)
		}
		for _, n := range ns {
			if n.State != "established" || n.Accepted != 3 || n.Name == "" || n.ConfiguredHoldTime != 3*time.Second {
				t.Errorf("%s neighbor %+v", frrToR, n)
			}
		}
		for _, node := range []string{"node1", "node2"} {
			waitBFD(t, frrToR, node, "Up")
		}
		sessions, err := f.BFDPeers(ctx, frrToR)
		if err != nil {
			t.Fatal(err)
		}
		var peers []netip.Addr
		for _, s := range sessions {
			peers = append(peers, s.Peer)
		}
		if !slices.Equal(peers, addrs("10.0.0.21", "10.0.0.22")) {
			t.Errorf("%s bfd peers %v, want node1 and node2 only", frrToR, peers)
		}
	})

	t.Run("withdraw empties the set with a history entry", func(t *testing.T) {
		for _, n := range []string{"node1", "node2", "node3"} {
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
		h, err := f.History(ctx, frrToR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(h, func(c rib.Change) bool {
			return c.Prefix == svc2 && c.Kind == rib.KindWithdraw && len(c.New) == 0
		}) {
			t.Errorf("%s history %+v has no withdraw of %v", frrToR, h, svc2)
		}
	})

	t.Run("a node's link cut is detected by BFD", func(t *testing.T) {
		for _, tor := range tors {
			waitBFD(t, tor, "node1", "Up")
		}
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}); err != nil {
			t.Fatal(err)
		}
		log := f.FaultLog()
		cut := log[len(log)-1].At
		want := addrs("10.0.0.22", "10.0.0.23")
		for _, tor := range tors {
			wait(t, tor, svc, want, 5*time.Second)
			d := changeAfter(t, f, tor, svc, t0, want).At.Sub(cut)
			t.Logf("%s (%s): node1 link cut, BFD 300ms x 3, next-hop gone after %v (from its history)", tor, flavourOf(f, tor), d)
			// BFD detects after 600-900 ms; the 3 s hold time would be later.
			if d < 500*time.Millisecond || d > 900*time.Millisecond+500*time.Millisecond {
				t.Errorf("%s: withdrawn %v after the cut, want BFD's detection time (600-900 ms) + 500 ms margin", tor, d)
			}
		}
		ev, err := f.Events(ctx, frrToR, 0)
		if err != nil {
			t.Fatal(err)
		}
		n1 := netip.MustParseAddr("10.0.0.21")
		if !slices.ContainsFunc(ev, func(e fabric.Event) bool { return e.Kind == "bfd" && e.Peer == n1 && e.New == "Down" && e.At.After(t0) }) {
			t.Errorf("%s: no BFD Down event for node1: %+v", frrToR, ev)
		}
		if !slices.ContainsFunc(ev, func(e fabric.Event) bool {
			return e.Kind == "bgp" && e.Peer == n1 && e.Old == "established" && e.At.After(t0)
		}) {
			t.Errorf("%s: BGP session to node1 did not drop: %+v", frrToR, ev)
		}
		if err := f.Repair(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}); err != nil {
			t.Fatal(err)
		}
		for _, tor := range tors {
			wait(t, tor, svc, all, 20*time.Second)
		}
	})

	t.Run("BFD admin down keeps BGP; mute is a path failure", func(t *testing.T) {
		waitBFD(t, frrToR, "node2", "Up")
		h, _ := f.History(ctx, frrToR, 0)
		before := uint64(0)
		if len(h) > 0 {
			before = h[len(h)-1].Seq
		}
		admin := fabric.Fault{Kind: fabric.FaultBFDAdminDown, Target: "node2", ToR: frrToR}
		if err := f.Fault(ctx, admin); err != nil {
			t.Fatal(err)
		}
		waitBFD(t, frrToR, "node2", "AdminDown")
		if err := f.Repair(ctx, admin); err != nil {
			t.Fatal(err)
		}
		waitBFD(t, frrToR, "node2", "Up")
		if h, _ := f.History(ctx, frrToR, before); len(h) > 0 {
			t.Errorf("%s: BFD AdminDown moved routes: %+v", frrToR, h)
		}

		t0 := time.Now()
		flap := fabric.Fault{Kind: fabric.FaultBFDFlap, Target: "node2", ToR: frrToR, Duration: 1500 * time.Millisecond}
		if err := f.Fault(ctx, flap); err != nil {
			t.Fatal(err)
		}
		// The node hears nothing from the ToR, declares the path failed and
		// drops its BGP session: the ToR loses node2 and gets it back.
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		c := waitChange(wctx, t, f, frrToR, svc, t0, addrs("10.0.0.21", "10.0.0.23"))
		t.Logf("%s: BFD muted towards node2: next-hop gone after %v", frrToR, c.At.Sub(t0))
		wait(t, frrToR, svc, all, 30*time.Second)
	})

	t.Run("tor-restart", func(t *testing.T) {
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultToRRestart, Target: frrToR}); err != nil {
			t.Fatal(err)
		}
		for _, pid := range daemons[:3] {
			if st, err := proc.ReadStat(pid); err == nil && st.State != "Z" {
				t.Errorf("old FRR daemon %d still running after the restart", pid)
			}
		}
		recordDaemons()
		s := wait(t, frrToR, svc, all, 30*time.Second)
		t.Logf("%s: full set back %v after the restart began", frrToR, time.Since(t0))
		if !s.Since.After(t0) {
			t.Errorf("%s: set since %v, before the restart at %v", frrToR, s.Since, t0)
		}
		waitBFD(t, frrToR, "node1", "Up")
	})

	// A router killed outright (no graceful stop) leaves its daemons to Down.
	if len(frrToRs) > 1 {
		p := f.State().Routers[frrToRs[1]]
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !netns.Exists(f.NetNS(frrToRs[1])) {
			t.Fatal("namespace gone")
		}
	}
}

// waitChange waits for a change of prefix after t0 to the next-hops want in
// tor's history and returns it (a set that is there only for a moment is
// found too, where WaitForRoute might miss it).
func waitChange(ctx context.Context, t *testing.T, f *fabric.Fabric, tor string, prefix netip.Prefix, t0 time.Time, want []netip.Addr) rib.Change {
	t.Helper()
	for {
		h, err := f.History(ctx, tor, 0)
		if err == nil {
			for _, c := range h {
				if c.Prefix == prefix && c.At.After(t0) && slices.Equal(c.New, want) {
					return c
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no change of %v to %v after %v in history %+v (%v)", tor, prefix, want, t0, h, err)
			return rib.Change{}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func flavourOf(f *fabric.Fabric, tor string) string {
	r, _ := f.Topology().ToR(tor)
	return r.RouterFlavour()
}
