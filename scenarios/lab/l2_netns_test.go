package lab

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// requireRootLab is set where the tests that need root must run (CI runs
// as root): without root they then fail instead of skipping.
const requireRootLab = "ECMPLB_REQUIRE_ROOTLAB"

// l2Fabric brings up the reference fabric with an L2 segment, removed when
// the test ends, and the lab backend's L2 side on it (no apiserver, no
// speakers: a node's own kernel stands in for a speaker's responder).
func l2Fabric(t *testing.T) Backend {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv(requireRootLab) != "" {
			t.Fatalf("needs root for network namespaces and %s is set", requireRootLab)
		}
		t.Skip("needs root for network namespaces")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := fabric.BuildBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	topo := topology.Default()
	topo.L2 = &topology.L2{Subnet: netip.MustParsePrefix("192.168.50.0/24")}
	f, err := fabric.Up(ctx, topo, fabric.Options{Binary: bin, ExitWithCaller: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.Down(ctx); err != nil {
			t.Error(err)
		}
	})
	w, err := f.WatchL2Neighbors()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return Backend{&Lab{Fabric: f, l2watch: w}}
}

// answer makes node's kernel answer ARP for ip on its L2 interface (the
// address on that interface: arp_ignore=1 answers it), as a speaker's
// responder would; the returned function stops it.
func answer(t *testing.T, b Backend, node string, ip netip.Addr) func() {
	t.Helper()
	ns, p := b.Fabric.NodeNetNS(node), netip.PrefixFrom(ip, 32)
	if err := netns.AddAddress(ns, fabric.L2Interface, p); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := netns.DelAddress(ns, fabric.L2Interface, p); err != nil {
			t.Fatal(err)
		}
	}
}

// The lab's L2 side: WaitL2Owner sees the client resolve a Service IP to
// the answering node (at once when it already held it, afresh after a
// flush), L2Flows and an L2 stream reach that node, and a cut of the
// node's L2 link alone leaves the IP unresolved until the repair.
func TestL2Backend(t *testing.T) {
	b := l2Fabric(t)
	ip := netip.MustParseAddr("192.168.50.200")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait := func(node string, since time.Time, flush bool, bound time.Duration) (time.Time, error) {
		wctx, wcancel := context.WithTimeout(ctx, bound)
		defer wcancel()
		return b.WaitL2Owner(wctx, ip, node, since, flush)
	}

	stop := answer(t, b, "node2", ip)
	start := time.Now()
	at, err := wait("node2", start, false, 5*time.Second)
	if err != nil || at.Before(start) || at.Sub(start) > 2*time.Second {
		t.Fatalf("WaitL2Owner(node2) = %v after the start, %v", at.Sub(start), err)
	}
	later := time.Now()
	if at, err := wait("node2", later, false, time.Second); err != nil || !at.Equal(later) {
		t.Fatalf("WaitL2Owner of an entry held already = %v, %v; want the since %v", at, err, later)
	}
	for _, proto := range []string{"udp", "tcp"} {
		counts, err := b.L2Flows(ctx, proto, netip.AddrPortFrom(ip, 443), 8)
		if err != nil || counts["node2"] != 8 {
			t.Fatalf("%s flows via l2 = %v, %v; want 8 answered by node2", proto, counts, err)
		}
	}

	stop()
	stop = answer(t, b, "node3", ip)
	defer func() { stop() }()
	if _, err := wait("node3", time.Now(), true, 5*time.Second); err != nil {
		t.Fatalf("after a flush: %v", err)
	}
	s, err := b.StartL2Stream(ctx, "tcp", netip.AddrPortFrom(ip, 443), stream.Config{Connections: 3, Interval: 10 * time.Millisecond, Timeout: time.Second, Settle: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the stream runs
	res := s.Stop()
	if tot := res.Total(); tot.Lost != 0 || tot.Sent == 0 || res.Nodes["node3"] != res.Connections {
		t.Fatalf("stream via l2: %+v, connections by node %v", tot, res.Nodes)
	}

	cut := backend.Fault{Kind: backend.FaultLinkCut, Target: "node3", Link: backend.LinkL2}
	if _, err := b.Inject(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if up, err := netns.LinkUp(b.Fabric.NodeNetNS("node3"), fabric.SegmentInterface); err != nil || !up {
		t.Fatalf("the segment link after cutting the L2 one: up %v, %v", up, err)
	}
	if _, err := wait("node3", time.Now(), true, 1500*time.Millisecond); err == nil {
		t.Fatal("node3 resolved with its L2 link cut")
	} else {
		t.Logf("with the L2 link cut: %v", err)
	}
	if _, err := b.Repair(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if _, err := wait("node3", time.Now(), true, 5*time.Second); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if d := b.DiagnoseL2(ip, start); len(d) == 0 {
		t.Fatal("no diagnosis")
	}
	t.Log(b.DiagnoseL2(ip, start))
}
