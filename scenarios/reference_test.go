package scenarios_test

import (
	"context"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/scenarios/lab"
)

// measurement returns the named measurement of a scenario.
func measurement(s reports.Scenario, name string) reports.Measurement {
	for _, m := range s.Measurements {
		if m.Name == name {
			return m
		}
	}
	Fail("scenario " + s.Name + " has no measurement " + name)
	return reports.Measurement{}
}

var _ = Describe("reference topology with the example manifests", Ordered, func() {
	var (
		l   *lab.Lab
		ip  netip.Addr
		ctx context.Context
	)
	print := func(format string, args ...any) { GinkgoWriter.Printf(format, args...) }
	record := func(s reports.Scenario) { run.Scenarios = append(run.Scenarios, s) }

	BeforeAll(func() {
		ctx = context.Background()
		var err error
		l, err = lab.Up(ctx, lab.Config{BinDir: binDir})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(l.Down()).To(Succeed()) })
	})

	It("gives the Service an EXTERNAL-IP and every ToR one ECMP route with a next-hop per node", func() {
		s, addr, err := l.Announce(ctx, print)
		record(s)
		Expect(err).NotTo(HaveOccurred())
		ip = addr
		Expect(netip.MustParsePrefix("203.0.113.0/24").Contains(ip)).To(BeTrue())
		for _, tor := range []string{"tor1", "tor2"} {
			set, err := l.Fabric.Route(ctx, tor, netip.PrefixFrom(ip, 32))
			Expect(err).NotTo(HaveOccurred())
			Expect(set.NextHops()).To(ConsistOf(l.Fabric.NodeAddrs("node1", "node2", "node3")))
			for _, p := range set.Paths {
				Expect(p.Communities).To(ContainElement("65000:100"))
				Expect(p.ASPath).To(Equal([]uint32{65100}))
			}
		}
	})

	It("hashes real flows across exactly the announcing nodes", func() {
		s, err := l.Flows(ctx, ip, print)
		record(s)
		Expect(err).NotTo(HaveOccurred())
	})

	It("withdraws exactly the drained node's next-hop", func() {
		s, err := l.Drain(ctx, ip, "node3", print)
		record(s)
		Expect(err).NotTo(HaveOccurred())
	})

	It("drops a hard-failed node within a second with BFD and only at hold-time expiry without", func() {
		s, err := l.HardFail(ctx, ip, "node2", 90*time.Second, print)
		record(s)
		Expect(err).NotTo(HaveOccurred())
		bfd := measurement(s, "tor1 (BFD 300 ms x 3): failure → next-hop withdrawn")
		Expect(bfd.Value).To(BeNumerically("<", 1000), "BFD withdraw in ms")
		plain := measurement(s, "tor2 (no BFD): failure → next-hop withdrawn")
		// Without BFD only the hold timer notices: somewhere between the hold
		// time less one keepalive interval (30 s) and the hold time.
		Expect(plain.Value).To(BeNumerically(">=", 59), "hold-time withdraw in s")
		Expect(plain.Value).To(BeNumerically("<=", 91))
	})
})
