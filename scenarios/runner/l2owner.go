package runner

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
)

// resolve is a node name with a reference ($name) replaced by the node
// recorded under it.
func (r *run) resolve(name string) string {
	if !scenariofile.IsRef(name) {
		return name
	}
	node, ok := r.refs[strings.TrimPrefix(name, scenariofile.RefPrefix)]
	if !ok {
		ginkgo.Fail(fmt.Sprintf("%s: %s names no node yet (no l2 expectation recorded it)", r.s.File, name))
	}
	return node
}

// resolveRefs is the step with the references of its fault's node and its
// flows' spread resolved (an l2 expectation resolves its own).
func (r *run) resolveRefs(st scenariofile.Step) scenariofile.Step {
	switch st.Kind {
	case scenariofile.StepFault, scenariofile.StepRepair:
		st.Fault.Target = r.resolve(st.Fault.Target)
	case scenariofile.StepFlows:
		spread := make([]string, len(st.Flows.Spread))
		for i, n := range st.Flows.Spread {
			spread[i] = r.resolve(n)
		}
		st.Flows.Spread = spread
	}
	return st
}

// waitL2Owner waits until the L2 client resolves ip to one of the
// expectation's nodes and returns which, and since when.
func (r *run) waitL2Owner(ctx context.Context, lb backend.L2, where string, st scenariofile.Step, ip netip.Addr, since time.Time) (string, time.Time, error) {
	e := st.Expect
	cands := e.L2Candidates(r.resolve)
	gomega.Expect(cands).NotTo(gomega.BeEmpty(), "%s: every node the expectation names is excluded", where)
	if ao, ok := r.b.(backend.L2AnyOwner); ok {
		return ao.WaitL2OwnerOf(ctx, ip, cands, since, e.Flush)
	}
	if len(cands) > 1 {
		ginkgo.Fail(fmt.Sprintf("%s: the %s backend waits for one node's MAC only, not any of %s", where, r.b.Name(), strings.Join(cands, ", ")))
	}
	at, err := lb.WaitL2Owner(ctx, ip, cands[0], since, e.Flush)
	return cands[0], at, err
}

// recordL2 records the node found under the expectation's as, and checks
// exclusive: no sign of two owners of ip since the last action step began.
func (r *run) recordL2(st scenariofile.Step, ip netip.Addr, node string) {
	e := st.Expect
	if e.As != "" {
		if r.refs == nil {
			r.refs = map[string]string{}
		}
		r.refs[e.As] = node
		ginkgoreport.AddStep(time.Now(), fmt.Sprintf("line %d: %s%s is %s (the node answering for %v)", st.Line, scenariofile.RefPrefix, e.As, node, ip))
	}
	if !e.Exclusive {
		return
	}
	where := r.where(st)
	ex, ok := r.b.(backend.L2Exclusive)
	if !ok {
		ginkgo.Fail(fmt.Sprintf("%s: the %s backend cannot tell two owners of an address apart (exclusive)", where, r.b.Name()))
	}
	since := r.lastBegan
	if since.IsZero() {
		since = r.start
	}
	signs, err := ex.L2Exclusive(r.ctx, ip, since)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
	if r.samples == nil { // a repeat's figures are durations
		ginkgoreport.AddMeasurement(fmt.Sprintf("line %d: signs of two owners of %v", st.Line, ip), "signs", float64(len(signs)), reports.AtMost(0))
	}
	gomega.Expect(signs).To(gomega.BeEmpty(), "%s: %v had two owners at once since %s:\n  %s", where, ip, since.Format("15:04:05.000"), strings.Join(signs, "\n  "))
}

// l2Figure names the node or nodes an l2 expectation's figure is about.
func l2Figure(e scenariofile.Expect) string {
	if e.L2 != "" {
		return e.L2
	}
	s := "any of " + strings.Join(slices.Clone(e.L2Any), ", ")
	if len(e.L2Except) > 0 {
		s += " but " + strings.Join(e.L2Except, ", ")
	}
	return s
}
