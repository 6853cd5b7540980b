package fabric_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

func prefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := range n {
		a := base
		a[2], a[3] = byte(i>>8), byte(i)
		a[1] += byte(i >> 16)
		out[i] = netip.PrefixFrom(netip.AddrFrom4(a), 32)
	}
	return out
}

// waitAll polls tor's RIB summary until n prefixes have exactly hops next-hops.
func waitAll(ctx context.Context, f *fabric.Fabric, tor string, n, hops int) error {
	var last rib.Summary
	for {
		s, err := f.Summary(ctx, tor)
		if err == nil {
			last = s
			if s.Prefixes == n && s.ByNextHops[hops] == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not all %d prefixes at %d next-hops (last %+v): %w", tor, n, hops, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastChange is the latest history entry after t0 for the prefixes, and the first.
func changeSpan(h []rib.Change, t0 time.Time) (first, last time.Duration) {
	for _, c := range h {
		if !c.At.After(t0) {
			continue
		}
		d := c.At.Sub(t0)
		if first == 0 || d < first {
			first = d
		}
		if d > last {
			last = d
		}
	}
	return first, last
}

// BenchmarkConvergence measures, as the ToR's RIB history and FIB timestamps see it:
// the time for N /32s announced by three nodes at once to reach 3-way ECMP, and the
// time for a hard failure of one node (link down, BFD 300 ms x 3) to shrink all N sets.
//
//	go test ./fabric/fabric/ -run '^$' -bench Convergence -benchtime 1x
func BenchmarkConvergence(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			for range b.N {
				benchConvergence(b, n)
			}
		})
	}
}

func benchConvergence(b *testing.B, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// BFD 300 ms x 3 (MetalLB's default profile) on both sides: 50 ms x 3 flaps on a
	// 2-core machine while 3 x 10k paths are processed.
	topo := testTopology()
	prof := topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}
	topo.BFDProfiles["fast"] = prof
	f, err := fabric.Up(ctx, topo, fabric.Options{Instance: instanceName(nil), Binary: binary, ExitWithCaller: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := f.Down(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	var anns []*fabric.Announcer
	for _, node := range f.Topology().Nodes {
		a, err := f.StartAnnouncer(ctx, node.Name, fabric.AnnouncerOptions{BFD: &prof})
		if err != nil {
			b.Fatal(err)
		}
		anns = append(anns, a)
	}
	if err := f.WaitEstablished(ctx, "tor1"); err != nil {
		b.Fatal(err)
	}
	ps := prefixes(n)
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, a := range anns {
		wg.Add(1)
		go func(a *fabric.Announcer) {
			defer wg.Done()
			if err := a.Announce(ctx, ps...); err != nil {
				b.Error(err)
			}
		}(a)
	}
	wg.Wait()
	if err := waitAll(ctx, f, "tor1", n, 3); err != nil {
		ev, _ := f.Events(context.Background(), "tor1", 0)
		b.Fatalf("%v; %d neighbor events", err, len(ev))
	}
	b.StopTimer()
	h, err := f.History(ctx, "tor1", 0)
	if err != nil {
		b.Fatal(err)
	}
	_, up := changeSpan(h, t0)
	fib, err := f.FIB(ctx, "tor1")
	if err != nil {
		b.Fatal(err)
	}
	var fibLast time.Duration
	for _, r := range fib {
		fibLast = max(fibLast, r.At.Sub(t0))
	}
	seq := h[len(h)-1].Seq
	if ev, err := f.Events(ctx, "tor1", 0); err == nil {
		for _, e := range ev {
			if e.At.After(t0) {
				b.Logf("neighbor event during announce: %+v", e)
			}
		}
	}

	t1 := time.Now()
	if err := f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node1"}); err != nil {
		b.Fatal(err)
	}
	if err := waitAll(ctx, f, "tor1", n, 2); err != nil {
		b.Fatal(err)
	}
	h2, err := f.History(ctx, "tor1", seq)
	if err != nil {
		b.Fatal(err)
	}
	detect, shrink := changeSpan(h2, t1)
	b.ReportMetric(float64(up.Milliseconds()), "ms-rib-3way")
	b.ReportMetric(float64(fibLast.Milliseconds()), "ms-fib-3way")
	b.ReportMetric(float64(detect.Milliseconds()), "ms-bfd-first-withdraw")
	b.ReportMetric(float64(shrink.Milliseconds()), "ms-bfd-all-shrunk")
	b.Logf("%d prefixes: RIB 3-way ECMP after %v, kernel FIB after %v; node1 hard failure: first set shrunk after %v, all %d after %v",
		n, up, fibLast, detect, n, shrink)
}
