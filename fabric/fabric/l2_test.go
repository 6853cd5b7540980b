package fabric_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// l2Topology is the reference topology with a dual-stack L2 segment.
func l2Topology() topology.Topology {
	topo := topology.Default()
	topo.L2 = &topology.L2{Subnet: netip.MustParsePrefix("192.168.50.0/24"), Subnet6: netip.MustParsePrefix("fd00:50::/64")}
	return topo
}

// waitL2Node probes ip from the L2 client until the neighbour watcher saw
// it resolved to node's MAC (node "": left unresolved, FAILED).
func waitL2Node(t *testing.T, f *fabric.Fabric, w *netns.NeighWatch, ip netip.Addr, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := f.ProbeL2(ip); err != nil {
			t.Fatal(err)
		}
		err := w.WaitFor(200*time.Millisecond, func([]netns.NeighEvent) bool {
			e, ok := w.Latest(ip)
			if node == "" {
				return ok && !e.Delete && e.Failed()
			}
			return ok && e.Resolved() && f.L2NodeOfMAC(e.MAC) == node
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v from the L2 client: want node %q: %v", ip, node, err)
		}
	}
}

// The L2 segment: the client resolves every node's own L2 address (IPv4
// and IPv6) to the node's fixed MAC, seen by the neighbour watcher and
// L2Neighbor; a Service IP on the nodes' lo is not answered by their
// kernels (only a speaker's responder may); flows from the L2 client to it
// reach the node whose MAC the client holds and come back over the
// segment; node-down cuts both links and its repair restores the L2 IPv6
// address; a fault limited to the L2 link leaves the segment's up; a
// link flap restores both links by itself.
func TestL2Segment(t *testing.T) {
	f := up(t, l2Topology())
	topo := f.Topology()
	if ns := f.L2ClientNetNS(); ns == "" || !netns.Exists(ns) || !slices.Contains(f.State().Namespaces(), ns) {
		t.Fatalf("L2 client namespace %q missing or not recorded", ns)
	}
	w, err := f.WatchL2Neighbors()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, n := range topo.Nodes {
		for _, ip := range []netip.Addr{topo.L2Addr(n), topo.L2Addr6(n)} {
			waitL2Node(t, f, w, ip, n.Name)
			if nb, node, ok, err := f.L2Neighbor(ip); err != nil || !ok || node != n.Name || nb.MAC.String() != topo.L2NodeMAC(n).String() {
				t.Fatalf("L2Neighbor(%v) = %+v, %q, %v, %v; want %s's MAC %v", ip, nb, node, ok, err, n.Name, topo.L2NodeMAC(n))
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, svc := range []netip.Addr{netip.MustParseAddr("192.168.50.200"), netip.MustParseAddr("fd00:50::1000")} {
		dst := netip.AddrPortFrom(svc, 9000)
		for _, n := range topo.Nodes {
			if err := f.AddNodeAddress(n.Name, svc); err != nil {
				t.Fatal(err)
			}
			r, err := f.StartResponder(n.Name, dst)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		waitL2Node(t, f, w, svc, "") // the kernels keep quiet
		// Stand in for node2's responder: the client holds node2's MAC.
		n2, _ := topo.Node("node2")
		if _, err := netns.Exec(f.L2ClientNetNS(), "ip", "neigh", "replace", svc.String(), "lladdr", topo.L2NodeMAC(n2).String(),
			"dev", fabric.L2ClientInterface, "nud", "reachable"); err != nil {
			t.Fatal(err)
		}
		counts, err := f.SendFlows(ctx, f.L2Client(), dst, 16, 2*time.Second)
		if err != nil || counts["node2"] != 16 {
			t.Fatalf("flows to %v from the L2 client: %v, %v; want all 16 answered by node2", dst, counts, err)
		}
		if err := f.FlushL2Neighbor(svc); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := f.L2Neighbor(svc); err != nil || ok {
			t.Fatalf("entry of %v after the flush: %v, %v", svc, ok, err)
		}
	}

	n2, _ := topo.Node("node2")
	ns := f.NodeNetNS("node2")
	linksUp := func(want ...bool) {
		t.Helper()
		for i, l := range []string{fabric.SegmentInterface, fabric.L2Interface} {
			if up, err := netns.LinkUp(ns, l); err != nil || up != want[i] {
				t.Fatalf("node2's %s up = %v, %v; want %v", l, up, err, want[i])
			}
		}
	}
	for _, tc := range []struct {
		link       string
		downLinks  []bool
		l2CutsOffs bool
	}{
		{link: "", downLinks: []bool{false, false}, l2CutsOffs: true},
		{link: fabric.LinkL2, downLinks: []bool{true, false}, l2CutsOffs: true},
		{link: fabric.LinkSegment, downLinks: []bool{false, true}},
	} {
		flt := fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node2", Link: tc.link}
		if err := f.Fault(ctx, flt); err != nil {
			t.Fatal(err)
		}
		linksUp(tc.downLinks...)
		if err := f.FlushL2Neighbor(topo.L2Addr(n2)); err != nil {
			t.Fatal(err)
		}
		if tc.l2CutsOffs {
			waitL2Node(t, f, w, topo.L2Addr(n2), "")
		}
		if err := f.Repair(ctx, flt); err != nil {
			t.Fatal(err)
		}
		linksUp(true, true)
		for _, ip := range []netip.Addr{topo.L2Addr(n2), topo.L2Addr6(n2)} {
			if err := f.FlushL2Neighbor(ip); err != nil {
				t.Fatal(err)
			}
			waitL2Node(t, f, w, ip, "node2")
		}
		if got, err := netns.RouteNextHops(ns, topo.Clients[0].Link); err != nil || len(got) != 1 {
			t.Fatalf("node2's route to the client after repairing %q: %v, %v", tc.link, got, err)
		}
	}
	// A flap takes both links down and, when it returns, they are up with
	// what the kernel flushed restored.
	if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultLinkFlap, Target: "node2", Duration: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	linksUp(true, true)
	if err := f.FlushL2Neighbor(topo.L2Addr6(n2)); err != nil {
		t.Fatal(err)
	}
	waitL2Node(t, f, w, topo.L2Addr6(n2), "node2")
	if got, err := netns.RouteNextHops(ns, topo.Clients[0].Link); err != nil || len(got) != 1 {
		t.Fatalf("node2's route to the client after a flap: %v, %v", got, err)
	}
	if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeFreeze, Target: "node2", Link: fabric.LinkL2}); err == nil {
		t.Fatal("node-freeze took a link")
	}
	if _, err := w.Events(); err != nil {
		t.Fatalf("neighbour subscription: %v", err)
	}
}
