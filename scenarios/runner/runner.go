// Package runner plays scenario files (package scenariofile) as Ginkgo
// specs on any backend: one spec per file, one By per step, the figures of
// every timed expectation attached as report entries.
package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/check"
	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
)

// FileLabel is on every spec the runner registers.
const FileLabel = "scenario-file"

// Up brings a backend up on a topology for the running spec and tears it
// down when the spec ends (DeferCleanup).
type Up func(backend.Topology) backend.Backend

// Specs registers one spec per scenario file. A file that does not parse
// becomes a failing spec that names the file, line and field.
func Specs(paths []string, up Up) {
	for _, path := range paths {
		s, err := scenariofile.Load(path)
		if err != nil {
			Failing(path, err)
			continue
		}
		Spec(s, up)
	}
}

// Failing registers a spec that fails with a scenario's parse error.
func Failing(name string, err error) {
	ginkgo.It("scenario file "+name, ginkgo.Label(FileLabel), func() { ginkgo.Fail(err.Error()) })
}

// Spec registers one scenario. It runs serially (its timings must not
// compete with another spec for the CPU).
func Spec(s *scenariofile.Scenario, up Up) {
	labels := append([]string{FileLabel}, s.Labels...)
	for _, b := range slices.Sorted(maps.Keys(s.Skip)) {
		labels = append(labels, ginkgoreport.SkipLabel(b, s.Skip[b])...)
	}
	ginkgo.It(s.Name, ginkgo.Serial, ginkgo.Label(labels...), func() {
		if s.Description != "" {
			ginkgoreport.SetDescription(s.Description)
		}
		b := up(s.Topology)
		r := &run{s: s, b: b, ctx: context.Background(), ips: map[scenariofile.Service]netip.Addr{}, repairs: map[backend.Fault]bool{},
			active: map[backend.Fault]bool{}, start: time.Now(), routes: map[netip.Prefix]string{}}
		// Before the backend goes down, also when a step failed.
		ginkgo.DeferCleanup(r.timelines)
		r.apply(s.Manifests)
		for _, st := range s.Steps {
			ginkgo.By(fmt.Sprintf("%s:%d: %s", filepath.Base(s.File), st.Line, st))
			r.step(st)
		}
	})
}

// run is one scenario being played.
type run struct {
	s   *scenariofile.Scenario
	b   backend.Backend
	ctx context.Context
	// last is when the last action step took effect: the start of every
	// timed expectation after it.
	last time.Time
	// ips holds each Service's address once seen: it must never change.
	ips map[scenariofile.Service]netip.Addr
	// repairs are the faults already given a repair at cleanup (a fault
	// in a repeat is injected many times and repaired once at the end).
	repairs map[backend.Fault]bool
	// active are the lasting faults injected and not yet repaired.
	active map[backend.Fault]bool
	// round is the repeat's round (1-based; 0: not in a repeat) and
	// samples collect its timed expectations' figures by name.
	round, rounds int
	samples       map[string]*series
	// start is when the scenario began; faults its fault and repair steps
	// as they took effect; routes every prefix it expected, with what it
	// is (for the timelines' titles).
	start time.Time
	// lastStep is the last action step, named in timing failures;
	// lastBegan when it began (before it took effect: a restart takes
	// effect when the new process starts, after the old one stopped), the
	// start of `unchanged` and `reestablished`.
	lastStep  scenariofile.Step
	lastBegan time.Time
	faults    []reports.Event
	routes    map[netip.Prefix]string
	// streams are the streams running, by Service.
	streams map[scenariofile.Service]*runningStream
	// refs are the nodes l2 expectations recorded with as, by name
	// (l2owner.go).
	refs map[string]string
}

// maxTimelineFaults bounds the faults one timeline shows: a repeat's later
// rounds look like its first ones, and their distributions are in the
// report.
const maxTimelineFaults = 12

// timelines adds to the report, for every route the scenario expected, its
// ECMP set on every ToR over the scenario with the faults marked.
func (r *run) timelines(ctx context.Context) {
	to := time.Time{}
	title := ""
	if len(r.faults) > maxTimelineFaults {
		to = r.faults[maxTimelineFaults].At.Add(-time.Millisecond)
		title = fmt.Sprintf(" (the first %d of %d faults and repairs)", maxTimelineFaults, len(r.faults))
	}
	for _, p := range slices.SortedFunc(maps.Keys(r.routes), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		tl, err := backend.Timeline(ctx, r.b, fmt.Sprintf("%s: %s on every ToR%s", r.routes[p], p, title), p, r.start, to, r.faults)
		if err != nil {
			ginkgo.GinkgoWriter.Printf("timeline of %s: %v\n", p, err)
			continue
		}
		ginkgoreport.AddTimeline(tl)
	}
}

// fault records a fault or repair step for the timelines.
func (r *run) fault(at time.Time, what string, kind string) {
	r.faults = append(r.faults, reports.Event{At: at, Label: what, Kind: kind})
}

// series is the figures of one timed expectation over a repeat's rounds.
type series struct {
	values []float64
	goal   *reports.Goal
	order  int
}

func (r *run) where(st scenariofile.Step) string {
	if r.round > 0 {
		return fmt.Sprintf("%s:%d (%s, round %d of %d)", r.s.File, st.Line, st.Kind, r.round, r.rounds)
	}
	return fmt.Sprintf("%s:%d (%s)", r.s.File, st.Line, st.Kind)
}

// measure records a timed figure: a report entry, or, inside a repeat, one
// sample of its distribution.
func (r *run) measure(name string, value float64, goal *reports.Goal) {
	if r.samples == nil {
		ginkgoreport.AddMeasurement(name, "ms", value, goal)
		return
	}
	s := r.samples[name]
	if s == nil {
		s = &series{goal: goal, order: len(r.samples)}
		r.samples[name] = s
	}
	s.values = append(s.values, value)
}

// repeat plays a repeat step's rounds, then reports each timed
// expectation's distribution (also when a round failed, for the rounds
// done).
func (r *run) repeat(st scenariofile.Step) {
	rep := st.Repeat
	var baseline map[string]backend.Runtime
	if rep.Leaks {
		baseline = r.runtimes(st)
	}
	r.samples, r.rounds = map[string]*series{}, rep.Times
	defer func() {
		names := slices.SortedFunc(maps.Keys(r.samples), func(a, b string) int { return r.samples[a].order - r.samples[b].order })
		for _, name := range names {
			s := r.samples[name]
			ginkgoreport.AddDistribution(fmt.Sprintf("%s (%d rounds)", name, len(s.values)), "ms", s.values, s.goal)
		}
		r.samples, r.round, r.rounds = nil, 0, 0
	}()
	for i := 1; i <= rep.Times; i++ {
		r.round = i
		if rep.Jitter > 0 {
			time.Sleep(rand.N(rep.Jitter)) // a random phase for the round's faults, not a wait for a result
		}
		for _, sub := range rep.Steps {
			if i == 1 {
				ginkgo.By(fmt.Sprintf("%s:%d: %s (every round)", filepath.Base(r.s.File), sub.Line, sub))
			}
			r.step(sub)
		}
	}
	if rep.Leaks {
		r.noLeaks(st, baseline)
	}
}

// runtimes reads every speaker's runtime once it has settled. A speaker
// starts some parts only after its first pass over its inputs (the status
// writers' workers wait for it, the layer 2 writer for the start-up hold):
// a baseline read before then is short of them, and every later reading
// looks like a leak (a CI run: 145 goroutines at the baseline, a steady 162
// after the rounds). So it waits as backend.SettledRuntimes does.
func (r *run) runtimes(st scenariofile.Step) map[string]backend.Runtime {
	out, err := backend.SettledRuntimes(r.ctx, r.b.Topology().NodeNames(), func(n string) (backend.Runtime, error) {
		return r.b.SpeakerRuntime(r.ctx, n)
	}, time.Now, time.Sleep)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), r.where(st))
	return out
}

// leakBound is how long the speakers get to return to their baseline after
// the last round (a session being set up, a retry in flight).
const leakBound = 30 * time.Second

// noLeaks waits until every speaker's goroutines and in-use heap are back
// within tolerance of the baseline (backend.RuntimeOff).
func (r *run) noLeaks(st scenariofile.Step, baseline map[string]backend.Runtime) {
	start := time.Now()
	gomega.Eventually(func() error {
		var errs []error
		for _, n := range r.b.Topology().NodeNames() {
			rt, err := r.b.SpeakerRuntime(r.ctx, n)
			if err == nil {
				err = backend.RuntimeOff(n, baseline[n], rt)
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}).WithTimeout(leakBound).WithPolling(250*time.Millisecond).Should(gomega.Succeed(), "%s: speakers not back to their baseline after %d rounds", r.where(st), st.Repeat.Times)
	ginkgoreport.AddMeasurement(fmt.Sprintf("line %d: every speaker back to its goroutine and heap baseline after %d rounds", st.Line, st.Repeat.Times), "ms", ms(time.Since(start)), reports.AtMost(ms(leakBound)))
}

func (r *run) files(ms []scenariofile.Manifest) []string {
	var out []string
	for _, m := range ms {
		if m.Path != "" {
			out = append(out, m.Path)
			continue
		}
		dir, err := os.MkdirTemp("", "ecmplb-scenario-")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(os.RemoveAll, dir)
		p := filepath.Join(dir, fmt.Sprintf("line-%d.yaml", m.Line))
		gomega.Expect(os.WriteFile(p, m.Inline, 0o644)).To(gomega.Succeed())
		out = append(out, p)
	}
	return out
}

func (r *run) apply(ms []scenariofile.Manifest) {
	if len(ms) == 0 {
		return
	}
	r.last = time.Now()
	gomega.Expect(r.b.Apply(r.ctx, r.files(ms)...)).To(gomega.Succeed())
}

// reject applies each manifest alone and requires the apiserver to refuse
// it with a message naming the step's field. One that is accepted is deleted
// again, so it cannot disturb the steps after it, and fails the step.
func (r *run) reject(st scenariofile.Step, where string) {
	for i, f := range r.files(st.Reject.Manifests) {
		m := st.Reject.Manifests[i]
		name := m.Path
		if name == "" {
			name = fmt.Sprintf("inline object (line %d)", m.Line)
		}
		out, accepted, err := r.b.TryApply(r.ctx, f)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
		if accepted {
			_ = r.b.Delete(r.ctx, f)
		}
		gomega.Expect(accepted).To(gomega.BeFalse(), "%s: %s was accepted: %s", where, name, out)
		gomega.Expect(out).To(gomega.ContainSubstring(st.Reject.Field), "%s: %s refused without naming %s", where, name, st.Reject.Field)
		ginkgoreport.AddStep(time.Now(), fmt.Sprintf("refused %s: %s", filepath.Base(name), out))
	}
}

func (r *run) step(st scenariofile.Step) {
	where := r.where(st)
	st = r.resolveRefs(st)
	switch st.Kind {
	case scenariofile.StepApply, scenariofile.StepDelete, scenariofile.StepEndpoints, scenariofile.StepFault,
		scenariofile.StepRepair, scenariofile.StepLabel:
		r.lastStep = st // the step timed expectations count from
		r.lastBegan = time.Now()
	}
	if st.Kind == scenariofile.StepFault || st.Kind == scenariofile.StepRepair {
		r.markStreams(st)
	}
	switch st.Kind {
	case scenariofile.StepApply:
		r.apply(st.Manifests)
	case scenariofile.StepDelete:
		r.last = time.Now()
		gomega.Expect(r.b.Delete(r.ctx, r.files(st.Manifests)...)).To(gomega.Succeed(), where)
	case scenariofile.StepEndpoints:
		if et, ok := r.b.(backend.EndpointsTimer); ok {
			at, err := et.SetEndpointStatesAt(r.ctx, st.Service.Namespace, st.Service.Name, st.Endpoints...)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
			r.last = at
			return
		}
		r.last = time.Now()
		gomega.Expect(r.b.SetEndpointStates(r.ctx, st.Service.Namespace, st.Service.Name, st.Endpoints...)).To(gomega.Succeed(), where)
	case scenariofile.StepFault:
		r.bfdUpBefore(st.Fault, where)
		at, err := r.b.Inject(r.ctx, st.Fault)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
		if st.Fault.Kind.Lasts() {
			r.active[st.Fault] = true
		}
		r.last = at
		r.fault(at, "fault: "+st.Fault.String(), reports.KindFault)
		if flt := st.Fault; !r.repairs[flt] {
			r.repairs[flt] = true
			ginkgo.DeferCleanup(func() { _, _ = r.b.Repair(context.Background(), flt) })
		}
	case scenariofile.StepRepair:
		at, err := r.b.Repair(r.ctx, st.Fault)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
		delete(r.active, st.Fault)
		r.last = at
		r.fault(at, "repair: "+st.Fault.String(), reports.KindInfo)
	case scenariofile.StepLabel:
		r.last = time.Now()
		gomega.Expect(r.b.LabelNode(r.ctx, st.Label.Node, st.Label.Set, st.Label.Remove)).To(gomega.Succeed(), where)
	case scenariofile.StepWait:
		time.Sleep(st.Wait) // a hold the scenario asks for (e.g. how long a fault lasts), not a wait for a result
	case scenariofile.StepExpect:
		if st.Expect.Pending {
			r.pending(st)
			return
		}
		if st.Expect.IsL2() {
			r.expectL2(st)
			return
		}
		r.expect(st)
	case scenariofile.StepRepeat:
		r.repeat(st)
	case scenariofile.StepReject:
		r.reject(st, where)
	case scenariofile.StepStream:
		r.startStream(st)
	case scenariofile.StepStopStream:
		r.stopStream(st)
	case scenariofile.StepFlows:
		ip := r.address(st)
		// The routes are checked before; the nodes' own data plane may lag
		// them (kind: kube-proxy programs a newly ready endpoint up to its
		// minimum sync period, 1 s, after the EndpointSlice), so a batch
		// that fails is sent again, for at most flowsSettle.
		want := check.SpreadOver(st.Flows.Spread...).AllowingLost(st.Flows.Lost)
		var counts map[string]int
		deadline := time.Now().Add(flowsSettle)
		for {
			var err error
			counts, err = r.flows(st, netip.AddrPortFrom(ip, st.Flows.Port))
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
			if ok, _ := want.Match(counts); ok || time.Now().After(deadline) {
				break
			}
		}
		for _, n := range r.b.Topology().NodeNames() {
			ginkgoreport.AddMeasurement(fmt.Sprintf("line %d: %s flows answered by %s", st.Line, st.Flows.Proto, n), "flows", float64(counts[n]), nil)
		}
		ginkgoreport.AddMeasurement(fmt.Sprintf("line %d: %s flows lost (of %d)", st.Line, st.Flows.Proto, st.Flows.Count), "flows", float64(counts[""]), reports.AtMost(float64(st.Flows.Lost)))
		gomega.Expect(counts).To(want, where)
	default:
		ginkgo.Fail(fmt.Sprintf("%s: unknown step kind %q", where, st.Kind))
	}
}

// flowsSettle bounds how long a flows step sends batches until one is as
// expected.
const flowsSettle = 5 * time.Second

// bfdUpWait bounds how long a fault on a node waits for the node's BFD
// sessions to be Up.
const bfdUpWait = 30 * time.Second

// bfdUpBefore waits, before a fault on a node while no other fault lasts,
// until every ToR that runs BFD with the node has the session Up: the
// expectations after the fault time a BFD detection, which needs a session
// that is Up. A route can be back on a ToR before its BFD session is (BGP
// came back first), so an expectation that the route is there does not
// tell.
func (r *run) bfdUpBefore(f backend.Fault, where string) {
	if !f.Kind.TargetsNode() || len(r.active) > 0 {
		return
	}
	gomega.Expect(backend.WaitBFDUp(r.ctx, r.b, f.Target, bfdUpWait)).To(gomega.Succeed(), "%s: before the fault", where)
}

// address is the route the step is about: its literal address, or its
// Service's EXTERNAL-IP, which must not change during the scenario. A
// Service seen before and now gone (deleted) keeps its last address, so its
// withdrawal can be expected.
func (r *run) address(st scenariofile.Step) netip.Addr {
	if st.Expect.Address.IsValid() {
		return st.Expect.Address
	}
	old, seen := r.ips[st.Service]
	wait := 30 * time.Second
	if seen {
		wait = time.Second
	}
	ip, err := r.b.ExternalIP(r.ctx, st.Service.Namespace, st.Service.Name, st.Service.Family, wait)
	if seen {
		if err == nil {
			gomega.Expect(ip).To(gomega.Equal(old), "%s: Service %s changed its EXTERNAL-IP", r.where(st), st.Service)
		}
		return old
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), r.where(st))
	r.ips[st.Service] = ip
	return ip
}

func (r *run) expect(st scenariofile.Step) {
	where := r.where(st)
	e := st.Expect
	ip := r.address(st)
	if e.Pool.IsValid() {
		gomega.Expect(e.Pool.Contains(ip)).To(gomega.BeTrue(), "%s: %s has EXTERNAL-IP %s, outside pool %s", where, st.Service, ip, e.Pool)
	}
	route := e.Route(ip)
	if _, ok := r.routes[route]; !ok {
		r.routes[route] = st.Service.String()
		if e.Address.IsValid() {
			r.routes[route] = e.Address.String()
		}
	}
	topo := r.b.Topology()
	tors := make([]string, 0, len(e.ECMP))
	for t := range e.ECMP {
		tors = append(tors, t)
	}
	slices.Sort(tors)
	for _, tor := range tors {
		var want []netip.Addr // empty: withdrawn (NextHops of no node would be every node)
		if len(e.ECMP[tor]) > 0 {
			want = topo.NextHops(ip, e.ECMP[tor]...)
		}
		m := check.HaveECMP(route, want)
		timed := e.Within > 0 || e.NotBefore > 0
		if timed {
			within := e.Within
			if within == 0 {
				within = e.Timeout
			}
			m = m.WithinDuration(within, r.last)
		}
		msg := where
		if timed && r.lastStep.Kind != "" {
			msg = fmt.Sprintf("%s; timed from line %d: %s", where, r.lastStep.Line, r.lastStep)
		}
		for _, node := range e.Reestablished {
			r.reestablished(where, tor, node, e.Timeout)
		}
		gomega.Eventually(check.ToR(r.b, tor)).WithTimeout(e.Timeout).Should(m, r.diagnosis(msg, route))
		if timed {
			var goal *reports.Goal
			if e.Within > 0 {
				goal = reports.AtMost(ms(e.Within))
			}
			r.measure(fmt.Sprintf("line %d: %s reached {%s}", st.Line, tor, strings.Join(e.ECMP[tor], ", ")), ms(m.Took), goal)
			if e.NotBefore > 0 {
				gomega.Expect(m.Took).To(gomega.BeNumerically(">=", e.NotBefore), "%s: %s reached {%s} after %v, not before %v expected", where, tor, strings.Join(e.ECMP[tor], ", "), m.Took, e.NotBefore)
			}
		}
		if e.Unchanged {
			cs, err := backend.ChangesSince(r.ctx, r.b, tor, route, r.lastBegan)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
			gomega.Expect(cs).To(gomega.BeEmpty(), "%s: %s changed %s since %s, want no change", where, tor, route, r.lastBegan.Format("15:04:05.000"))
		}
		for _, c := range e.Communities {
			gomega.Expect(check.ToR(r.b, tor)).To(check.HaveCommunity(route, c), where)
		}
		if e.Communities != nil {
			r.exactCommunities(where, tor, route, e.Communities)
		}
		if e.LocalPref != 0 {
			gomega.Expect(check.ToR(r.b, tor)).To(check.HaveLocalPref(route, e.LocalPref), where)
		}
	}
}

// reestablished waits until tor's BGP session with node has come to
// Established since the last action step.
func (r *run) reestablished(where, tor, node string, timeout time.Duration) {
	n, _ := r.b.Topology().Node(node)
	since := r.lastBegan
	gomega.Eventually(func() (bool, error) {
		evs, err := r.b.Events(r.ctx, tor)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Kind == "bgp" && e.Peer == n.Address && e.New == "established" && !e.At.Before(since) {
				return true, nil
			}
		}
		return false, nil
	}).WithTimeout(timeout).WithPolling(50*time.Millisecond).Should(gomega.BeTrue(),
		"%s: %s's BGP session with %s not established again since %s within %v", where, tor, node, since.Format("15:04:05.000"), timeout)
}

// diagnosis is a failure message made on failure only: msg, then the
// backend's account of the ToRs (route changes, BGP and BFD events since a
// second before the clock started) and of every speaker (its log tail), so
// a report shows why a route came late, not only that it did.
func (r *run) diagnosis(msg string, route netip.Prefix) func() string {
	since := r.last.Add(-time.Second)
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return msg + "\n" + r.b.Diagnose(ctx, since, []netip.Prefix{route}, r.b.Topology().NodeNames()...)
	}
}

// pending expects the Service to get no address: the controller's Warning
// Event about it (of the reason given), and no EXTERNAL-IP.
func (r *run) pending(st scenariofile.Step) {
	where := r.where(st)
	er, ok := r.b.(backend.EventReader)
	if !ok {
		ginkgo.Fail(fmt.Sprintf("%s: the %s backend cannot read Events, which a pending expectation needs", where, r.b.Name()))
	}
	e := st.Expect
	var seen []backend.ServiceEvent
	gomega.Eventually(func() bool {
		evs, err := er.ServiceEvents(r.ctx, st.Service.Namespace, st.Service.Name)
		if err != nil {
			return false
		}
		seen = evs
		for _, ev := range evs {
			if ev.Type == "Warning" && (e.PendingReason == "" || ev.Reason == e.PendingReason) {
				return true
			}
		}
		return false
	}).WithTimeout(e.Timeout).Should(gomega.BeTrue(), func() string {
		var got []string
		for _, ev := range seen {
			got = append(got, fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, ev.Message))
		}
		want := "a Warning Event"
		if e.PendingReason != "" {
			want = "a Warning Event " + e.PendingReason
		}
		return fmt.Sprintf("%s: Service %s: want %s within %v; its Events: %v", where, st.Service, want, e.Timeout, got)
	})
	ip, err := r.b.ExternalIP(r.ctx, st.Service.Namespace, st.Service.Name, "", 200*time.Millisecond)
	gomega.Expect(err).To(gomega.HaveOccurred(), "%s: Service %s should be pending but has EXTERNAL-IP %s", where, st.Service, ip)
}

// exactCommunities requires every path of route on tor to carry exactly
// the communities want, no others (e.g. another advertisement's).
func (r *run) exactCommunities(where, tor string, route netip.Prefix, want []string) {
	set, err := r.b.Route(r.ctx, tor, route)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
	want = slices.Sorted(slices.Values(want))
	topo := r.b.Topology()
	for _, p := range set.Paths {
		got := slices.Sorted(slices.Values(p.Communities))
		gomega.Expect(got).To(gomega.Equal(want), "%s: %s: %s via %s carries communities %v, want exactly %v", where, tor, route, topo.NodeOf(p.NextHop), got, want)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
