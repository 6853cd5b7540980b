package runner

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// l2Backend is the backend's L2 segment, or a failure naming the step.
func (r *run) l2Backend(where string) backend.L2 {
	lb, ok := r.b.(backend.L2)
	if !ok {
		ginkgo.Fail(fmt.Sprintf("%s: the %s backend has no L2 segment", where, r.b.Name()))
	}
	return lb
}

// expectL2 waits until the L2 client resolves the step's address to the
// node's MAC and times it, by the neighbour entry's change, from the last
// action step (with flush: from the flush).
func (r *run) expectL2(st scenariofile.Step) {
	where := r.where(st)
	lb := r.l2Backend(where)
	e := st.Expect
	ip := r.address(st)
	if e.Pool.IsValid() {
		gomega.Expect(e.Pool.Contains(ip)).To(gomega.BeTrue(), "%s: %s has EXTERNAL-IP %s, outside pool %s", where, st.Service, ip, e.Pool)
	}
	since := r.last
	if e.Flush {
		since = time.Now()
	}
	ctx, cancel := context.WithTimeout(r.ctx, e.Timeout)
	defer cancel()
	node, at, err := r.waitL2Owner(ctx, lb, where, st, ip, since)
	msg := where
	if !e.Flush && r.lastStep.Kind != "" {
		msg = fmt.Sprintf("%s; timed from line %d: %s", where, r.lastStep.Line, r.lastStep)
	}
	diagnosis := func() string {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		from := since.Add(-time.Second)
		return msg + "\n" + lb.DiagnoseL2(ip, from) + r.b.Diagnose(dctx, from, []netip.Prefix{backend.HostRoute(ip)}, r.b.Topology().NodeNames()...)
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), diagnosis)
	r.recordL2(st, ip, node)
	if e.Within == 0 && e.NotBefore == 0 {
		return
	}
	took := at.Sub(since)
	what := st.Service.String()
	if e.Address.IsValid() {
		what = e.Address.String()
	}
	var goal *reports.Goal
	if e.Within > 0 {
		goal = reports.AtMost(ms(e.Within))
	}
	r.measure(fmt.Sprintf("line %d: L2 client resolved %s to %s", st.Line, what, l2Figure(e)), ms(took), goal)
	if e.Within > 0 {
		gomega.Expect(took).To(gomega.BeNumerically("<=", e.Within), func() string {
			return fmt.Sprintf("%s: the L2 client resolved %s to %s after %v, want within %v", diagnosis(), ip, node, took, e.Within)
		})
	}
	if e.NotBefore > 0 {
		gomega.Expect(took).To(gomega.BeNumerically(">=", e.NotBefore), "%s: the L2 client resolved %s to %s after %v, not before %v expected", msg, ip, node, took, e.NotBefore)
	}
}

// flows sends a flows step's flows: from the L2 client for via: l2, else
// from the backend's client.
func (r *run) flows(st scenariofile.Step, dst netip.AddrPort) (map[string]int, error) {
	if st.Flows.Via != backend.ViaL2 {
		return r.b.Flows(r.ctx, st.Flows.Proto, dst, st.Flows.Count)
	}
	return r.l2Backend(r.where(st)).L2Flows(r.ctx, st.Flows.Proto, dst, st.Flows.Count)
}

// openStream starts a stream step's stream: from the L2 client for via:
// l2, else from the backend's client.
func (r *run) openStream(sb backend.Streamer, st scenariofile.Step, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	if st.Stream.Via != backend.ViaL2 {
		return sb.StartStream(r.ctx, st.Stream.Proto, dst, cfg)
	}
	return r.l2Backend(r.where(st)).StartL2Stream(r.ctx, st.Stream.Proto, dst, cfg)
}
