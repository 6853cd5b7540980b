package fabric_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// TestPerToRHoldTime runs tor1 with a 90 s hold time (the design where it relies on
// BFD) next to tor2 with the topology's 3 s: each router's neighbor state shows its
// own hold time, and a silent node is dropped by tor2 at its hold-time expiry while
// tor1 still holds the session.
func TestPerToRHoldTime(t *testing.T) {
	topo := topology.Default()
	topo.Nodes = topo.Nodes[:1]
	topo.BGP = topology.BGPTimers{HoldTime: topology.Duration(3 * time.Second), KeepaliveInterval: topology.Duration(time.Second)}
	topo.ToRs[0].BGP = &topology.BGPTimers{HoldTime: topology.Duration(90 * time.Second)}
	f := up(t, topo)
	if got := f.Topology().Timers("tor1"); got.HoldTime.Std() != 90*time.Second || got.KeepaliveInterval.Std() != 30*time.Second {
		t.Fatalf("tor1 timers in the fabric's topology: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if _, err := f.StartAnnouncer(ctx, "node1", fabric.AnnouncerOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"tor1": 90 * time.Second, "tor2": 3 * time.Second}
	for tor, hold := range want {
		if err := f.WaitEstablished(ctx, tor, "node1"); err != nil {
			t.Fatal(err)
		}
		ns, err := f.Neighbors(ctx, tor)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 1 || ns[0].HoldTime != hold || ns[0].ConfiguredHoldTime != hold || ns[0].ConfiguredKeepalive != hold/3 {
			t.Errorf("%s neighbors %+v: want negotiated and configured hold time %v, keepalive %v", tor, ns, hold, hold/3)
		}
	}

	// The node falls silent: tor2 drops it at its 3 s hold time, tor1 (90 s) keeps it.
	if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Repair(context.Background(), fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}) })
	deadline := time.Now().Add(8 * time.Second)
	for {
		ns, err := f.Neighbors(ctx, "tor2")
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) == 1 && ns[0].State != "established" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tor2 (hold 3 s) still established 8 s after node1 fell silent: %+v", ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ns, err := f.Neighbors(ctx, "tor1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].State != "established" {
		t.Errorf("tor1 (hold 90 s) dropped node1 before its hold time: %+v", ns)
	}
}
