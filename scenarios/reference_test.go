package scenarios_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	. "github.com/ecmplb/ecmplb/scenarios/check"
)

// The reference topology with the example manifests applied unchanged. tor1
// runs BFD and keeps the examples' 90 s hold time; tor2, without BFD, offers
// a 9 s hold time (the examples' BGPPeers ask for 90 s; a session takes the
// smaller), so the hard failure without BFD takes seconds, not minutes. The
// specs read every ToR's role and timers from the topology.
var _ = Describe("reference topology with the example manifests", Ordered, Serial, Label("reference"), func() {
	const hold = 9 * time.Second
	var (
		b     backend.Backend
		topo  backend.Topology
		ip    netip.Addr
		ctx   = context.Background()
		tor   func(string) Router
		nodes func(...string) []netip.Addr
	)
	others := func(node string) []string {
		var out []string
		for _, n := range topo.NodeNames() {
			if n != node {
				out = append(out, n)
			}
		}
		return out
	}
	everyToR := func(f func(name string)) {
		for _, name := range topo.ToRNames() {
			f(name)
		}
	}

	BeforeAll(func() {
		b = up(backend.Reference(hold))
		topo = b.Topology()
		tor = func(name string) Router { return ToR(b, name) }
		nodes = topo.Addrs
	})

	It("gives the Service an EXTERNAL-IP and every ToR one ECMP route with a next-hop per node", func() {
		ginkgoreport.SetDescription("The example manifests applied unchanged; the Service gets an EXTERNAL-IP from 203.0.113.0/24 and every ToR installs one ECMP route with a next-hop per node hosting a ready endpoint, with the advertisement's community.")
		files, err := filepath.Glob(filepath.Join(b.Root(), "deploy", "examples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		sort.Strings(files)
		By("kubectl apply -f deploy/examples/*.yaml")
		Expect(b.Apply(ctx, files...)).To(Succeed())
		By("a ready endpoint of default/web on every node")
		t0 := time.Now()
		Expect(b.SetEndpoints(ctx, "default", "web", topo.NodeNames()...)).To(Succeed())
		ip, err = b.ExternalIP(ctx, "default", "web", "", 30*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(netip.MustParsePrefix("203.0.113.0/24").Contains(ip)).To(BeTrue(), "EXTERNAL-IP %s from the pool", ip)
		everyToR(func(name string) {
			Eventually(tor(name)).WithTimeout(60 * time.Second).Should(HaveECMP(ip, nodes()))
			Expect(tor(name)).To(HaveCommunity(ip, "65000:100"))
			Expect(tor(name)).To(HaveASPath(ip, 65100))
		})
		ginkgoreport.AddMeasurement("EndpointSlice written → ECMP set complete on every ToR (cold start)", "s", time.Since(t0).Seconds(), nil)
	})

	It("hashes real UDP and TCP flows across exactly the announcing nodes", Label("skip-kind: UDP flows need a UDP port but the example Service and the echo pods serve TCP only"), func() {
		for _, proto := range []string{"udp", "tcp"} {
			By("60 " + proto + " flows from the client")
			counts, err := b.Flows(ctx, proto, netip.AddrPortFrom(ip, 443), 60)
			Expect(err).NotTo(HaveOccurred())
			Expect(counts).To(SpreadOver(topo.NodeNames()...))
			for n, c := range counts {
				ginkgoreport.AddMeasurement(proto+" flows answered by "+n, "flows", float64(c), nil)
			}
		}
	})

	It("withdraws exactly the drained node's next-hop", Label("skip-kind: UDP flows need a UDP port but the example Service and the echo pods serve TCP only"), func() {
		const bound = 2 * time.Second
		drained := topo.NodeNames()[len(topo.NodeNames())-1]
		rest := others(drained)
		By("the last endpoint leaves " + drained)
		t0 := time.Now()
		Expect(b.SetEndpoints(ctx, "default", "web", rest...)).To(Succeed())
		everyToR(func(name string) {
			m := HaveECMP(ip, nodes(rest...)).WithinDuration(bound, t0)
			Eventually(tor(name)).WithTimeout(30 * time.Second).Should(m)
			ginkgoreport.AddMeasurement(name+": EndpointSlice write → next-hop withdrawn", "ms", ms(m.Took), reports.AtMost(ms(bound)))
		})
		counts, err := b.Flows(ctx, "udp", netip.AddrPortFrom(ip, 443), 60)
		Expect(err).NotTo(HaveOccurred())
		Expect(counts).To(SpreadOver(rest...))

		By("the endpoint comes back")
		t1 := time.Now()
		Expect(b.SetEndpoints(ctx, "default", "web", topo.NodeNames()...)).To(Succeed())
		everyToR(func(name string) {
			m := HaveECMP(ip, nodes()).WithinDuration(bound, t1)
			Eventually(tor(name)).WithTimeout(30 * time.Second).Should(m)
			ginkgoreport.AddMeasurement(name+": EndpointSlice write → next-hop added", "ms", ms(m.Took), reports.AtMost(ms(bound)))
		})
	})

	It("drops a hard-failed node within the BFD detect time where BFD runs, and at hold-time expiry where it does not", func() {
		failed := topo.NodeNames()[1]
		rest := others(failed)
		ginkgoreport.SetDescription(failed + "'s link is cut on the node side (no FIN, no NOTIFICATION). The ToRs that run BFD with it must drop it within the detect time + 350 ms; the others only when the BGP hold time expires (between hold − keepalive and hold + 1 s).")
		cut := backend.Fault{Kind: backend.FaultLinkCut, Target: failed}
		t0, err := b.Inject(ctx, cut)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = b.Repair(ctx, cut) })
		for _, name := range topo.BFDToRs(failed) {
			bound := topo.DetectTime(name, failed) + 350*time.Millisecond
			m := HaveECMP(ip, nodes(rest...)).WithinDuration(bound, t0)
			Eventually(tor(name)).WithTimeout(10 * time.Second).Should(m)
			ginkgoreport.AddMeasurement(name+" (BFD): link cut → next-hop withdrawn", "ms", ms(m.Took), reports.AtMost(ms(bound)))
		}
		for _, name := range topo.PlainToRs(failed) {
			hold := topo.HoldTimeOf(name)
			bound := hold + time.Second
			m := HaveECMP(ip, nodes(rest...)).WithinDuration(bound, t0)
			Eventually(tor(name)).WithTimeout(bound + 10*time.Second).Should(m)
			ginkgoreport.AddMeasurement(name+" (no BFD): link cut → next-hop withdrawn", "ms", ms(m.Took), reports.AtMost(ms(bound)))
			Expect(m.Took).To(BeNumerically(">=", hold-topo.KeepaliveOf(name)), "%s can only notice at hold-time expiry", name)
		}

		By("the link is repaired")
		t1, err := b.Repair(ctx, cut)
		Expect(err).NotTo(HaveOccurred())
		const back = 10 * time.Second
		everyToR(func(name string) {
			m := HaveECMP(ip, nodes()).WithinDuration(back, t1)
			Eventually(tor(name)).WithTimeout(back + 5*time.Second).Should(m)
			ginkgoreport.AddMeasurement(name+": repair → next-hop back", "ms", ms(m.Took), reports.AtMost(ms(back)))
		})
	})
})

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
