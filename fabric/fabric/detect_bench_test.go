package fabric_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// BenchmarkHardFailDetection freezes node1's speaker (SIGSTOP: the node falls silent,
// as in a power loss; the methodology of the FRR reference figures) ECMPLB_FABRIC_TRIALS
// times (default 10) per BFD profile, and reports the time from the freeze taking
// effect to the ToR's RIB dropping node1 from the set: min, median and max.
//
//	go test ./fabric/fabric/ -run '^$' -bench HardFailDetection -benchtime 1x
func BenchmarkHardFailDetection(b *testing.B) {
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("ECMPLB_FABRIC_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	for _, p := range []topology.BFDProfile{
		{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3},
		{ReceiveInterval: 50, TransmitInterval: 50, DetectMultiplier: 3},
	} {
		b.Run(fmt.Sprintf("bfd=%dmsx%d", p.TransmitInterval, p.DetectMultiplier), func(b *testing.B) {
			for range b.N {
				benchDetection(b, p, trials)
			}
		})
	}
}

func benchDetection(b *testing.B, prof topology.BFDProfile, trials int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topo := testTopology()
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
	for _, n := range []string{"node1", "node2"} {
		if _, err := f.StartAnnouncer(ctx, n, fabric.AnnouncerOptions{Prefixes: []netip.Prefix{svc}, BFD: &prof}); err != nil {
			b.Fatal(err)
		}
	}
	both, rest := addrs("10.0.0.21", "10.0.0.22"), addrs("10.0.0.22")
	var ds []time.Duration
	freeze := fabric.Fault{Kind: fabric.FaultNodeFreeze, Target: "node1"}
	for i := range trials {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := f.WaitForRoute(wctx, "tor1", svc, both); err != nil {
			wcancel()
			b.Fatal(err)
		}
		// BGP may be back before BFD (which sends at 1/s until Up).
		if err := f.WaitForBFD(wctx, "tor1", "node1", "Up"); err != nil {
			wcancel()
			b.Fatal(err)
		}
		if err := quiet(wctx, f, "tor1", time.Second); err != nil {
			wcancel()
			b.Fatal(err)
		}
		h, err := f.History(ctx, "tor1", 0)
		if err != nil {
			b.Fatal(err)
		}
		seq := h[len(h)-1].Seq
		evs, _ := f.Events(ctx, "tor1", 0)
		evSeq := evs[len(evs)-1].Seq
		if err := f.Fault(ctx, freeze); err != nil {
			b.Fatal(err)
		}
		log := f.FaultLog()
		at := log[len(log)-1].At
		if _, err := f.WaitForRoute(wctx, "tor1", svc, rest); err != nil {
			wcancel()
			b.Fatal(err)
		}
		wcancel()
		h, err = f.History(ctx, "tor1", seq)
		if err != nil {
			b.Fatal(err)
		}
		j := slices.IndexFunc(h, func(c rib.Change) bool { return c.Prefix == svc && slices.Equal(c.New, rest) })
		if j < 0 {
			b.Fatalf("trial %d: no change in %+v", i, h)
		}
		d := h[j].At.Sub(at)
		ds = append(ds, d)
		if d > 4*time.Duration(prof.TransmitInterval*prof.DetectMultiplier)*time.Millisecond {
			evs, _ := f.Events(ctx, "tor1", evSeq)
			b.Logf("trial %d: slow withdrawal %v after freeze at %v; events: %+v", i, d, at.Format("15:04:05.000000"), evs)
		}
		if err := f.Repair(ctx, freeze); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[0]), "ms-min")
	b.ReportMetric(ms(ds[len(ds)/2]), "ms-median")
	b.ReportMetric(ms(ds[len(ds)-1]), "ms-max")
	b.Logf("BFD %d ms x %d, %d freezes of node1: RIB withdrawal after min %v / median %v / max %v",
		prof.TransmitInterval, prof.DetectMultiplier, len(ds), ds[0], ds[len(ds)/2], ds[len(ds)-1])
}

// quiet waits until tor's neighbor event log has been still for d.
func quiet(ctx context.Context, f *fabric.Fabric, tor string, d time.Duration) error {
	var lastSeq uint64
	since := time.Now()
	for {
		evs, err := f.Events(ctx, tor, 0)
		if err != nil {
			return err
		}
		if n := len(evs); n > 0 && evs[n-1].Seq != lastSeq {
			lastSeq, since = evs[n-1].Seq, time.Now()
		}
		if time.Since(since) >= d {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
