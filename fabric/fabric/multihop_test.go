package fabric_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/frrlab"
)

// TestMultihopBFD runs multi-hop BFD (RFC 5883, UDP 4784) between the ToRs and
// node1 and node2, as a speaker does for a BGPPeer with ebgpMultiHop: on a
// GoBGP ToR (the bfd package's multi-hop sessions) and on an FRR ToR (bfdd's
// multihop peers, bgpd's neighbors ebgp-multihop). The sessions come Up as
// multi-hop ones, and a node's link cut withdraws it far below the 3 s hold
// time, with a BFD Down event; the repair brings it back.
func TestMultihopBFD(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fabric")
	}
	for _, flavour := range []string{topology.FlavourGoBGP, topology.FlavourFRR} {
		t.Run(flavour, func(t *testing.T) {
			if flavour == topology.FlavourFRR {
				frrlab.Require(t)
			}
			topo := testTopology()
			mh := topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3, Multihop: true, MinimumTTL: 250}
			topo.BFDProfiles = map[string]topology.BFDProfile{"multihop": mh}
			for i := range topo.ToRs {
				topo.ToRs[i].Flavour = flavour
			}
			topo.Nodes[0].BFDProfile = "multihop"
			topo.Nodes[1].BFDProfile = "multihop"
			testMultihopBFD(t, topo)
		})
	}
}

func testMultihopBFD(t *testing.T, topo topology.Topology) {
	f := up(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tors := []string{"tor1", "tor2"}
	all := addrs("10.0.0.21", "10.0.0.22", "10.0.0.23")
	mh := f.Topology().BFDProfiles["multihop"]
	for _, n := range f.Topology().Nodes {
		opts := fabric.AnnouncerOptions{Prefixes: []netip.Prefix{svc}}
		if n.BFDProfile != "" {
			opts.BFD = &mh
		}
		if _, err := f.StartAnnouncer(ctx, n.Name, opts); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(t *testing.T, tor string, want []netip.Addr, within time.Duration) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, within)
		defer wcancel()
		if _, err := f.WaitForRoute(wctx, tor, svc, want); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("multi-hop sessions come Up", func(t *testing.T) {
		for _, tor := range tors {
			wait(t, tor, all, 30*time.Second)
			for _, node := range []string{"node1", "node2"} {
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
				err := f.WaitForBFD(wctx, tor, node, "Up")
				wcancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			sessions, err := f.BFDPeers(ctx, tor)
			if err != nil {
				t.Fatal(err)
			}
			var peers []netip.Addr
			for _, s := range sessions {
				peers = append(peers, s.Peer)
				if s.State != "Up" || !s.Multihop {
					t.Errorf("%s: session %+v, want Up and multi-hop", tor, s)
				}
			}
			slices.SortFunc(peers, netip.Addr.Compare)
			if !slices.Equal(peers, addrs("10.0.0.21", "10.0.0.22")) {
				t.Errorf("%s: bfd peers %v, want node1 and node2 only", tor, peers)
			}
		}
	})

	t.Run("a silent node is withdrawn by multi-hop BFD", func(t *testing.T) {
		t0 := time.Now()
		if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node2"}); err != nil {
			t.Fatal(err)
		}
		log := f.FaultLog()
		at := log[len(log)-1].At
		want := addrs("10.0.0.21", "10.0.0.23")
		for _, tor := range tors {
			wait(t, tor, want, 5*time.Second)
			d := changeAfter(t, f, tor, svc, t0, want).At.Sub(at)
			t.Logf("%s: node2's link cut, multi-hop BFD 300ms x 3: withdrawn after %v", tor, d)
			if d >= 2*time.Second {
				t.Errorf("%s: withdrawn after %v: not BFD (detection 900 ms), the 3 s hold timer", tor, d)
			}
			ev, err := f.Events(ctx, tor, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(ev, func(e fabric.Event) bool {
				return e.Kind == "bfd" && e.Peer == netip.MustParseAddr("10.0.0.22") && e.New == "Down" && e.At.After(t0)
			}) {
				t.Errorf("%s: no BFD Down event for node2: %+v", tor, ev)
			}
		}
	})

	t.Run("repair brings the node back", func(t *testing.T) {
		if err := f.Repair(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node2"}); err != nil {
			t.Fatal(err)
		}
		for _, tor := range tors {
			wait(t, tor, all, 30*time.Second)
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			err := f.WaitForBFD(wctx, tor, "node2", "Up")
			wcancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}
