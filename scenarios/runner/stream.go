package runner

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/check"
	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// runningStream is a stream step's stream while the steps after it run.
type runningStream struct {
	s    *stream.Stream
	step scenariofile.Step
}

// startStream starts a stream step's stream; it runs until its stop-stream
// step, or the end of the scenario whatever happens.
func (r *run) startStream(st scenariofile.Step) {
	where := r.where(st)
	sb, ok := r.b.(backend.Streamer)
	if !ok {
		ginkgo.Fail(fmt.Sprintf("%s: the %s backend cannot hold a stream open", where, r.b.Name()))
	}
	ip := r.address(st)
	cfg := stream.Config{Connections: st.Stream.Connections, Interval: st.Stream.Interval, Timeout: st.Stream.Timeout, Settle: flowsSettle}
	s, err := r.openStream(sb, st, netip.AddrPortFrom(ip, st.Stream.Port), cfg)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), where)
	ginkgo.DeferCleanup(func() { s.Stop() }) // a no-op after its stop-stream step
	if r.streams == nil {
		r.streams = map[scenariofile.Service]*runningStream{}
	}
	r.streams[st.Service] = &runningStream{s: s, step: st}
}

// markStreams begins a new window of every running stream: what it loses
// from now on is this step's.
func (r *run) markStreams(st scenariofile.Step) {
	for _, rs := range r.streams {
		rs.s.Mark(fmt.Sprintf("line %d: %s", st.Line, st), time.Now())
	}
}

// stopStream stops the Service's stream, reports its figures per window
// (one per fault and repair since it started) and checks the bounds.
func (r *run) stopStream(st scenariofile.Step) {
	where := r.where(st)
	rs := r.streams[st.Service]
	if rs == nil {
		ginkgo.Fail(fmt.Sprintf("%s: %s has no stream running", where, st.Service))
	}
	delete(r.streams, st.Service)
	res := rs.s.Stop()
	total := res.Total()
	bounds := st.StopStream
	table := streamTable(rs.step, res, r.b.Topology().NodeNames())
	ginkgoreport.AddTable(table)
	what := fmt.Sprintf("line %d: stream to %s", rs.step.Line, st.Service)
	var connGoal, pktGoal *reports.Goal
	if bounds.Lost.Connections >= 0 {
		connGoal = reports.AtMost(float64(bounds.Lost.Connections))
	}
	if bounds.Lost.Packets >= 0 {
		pktGoal = reports.AtMost(float64(bounds.Lost.Packets))
	}
	for _, w := range res.Windows[1:] {
		ginkgoreport.AddMeasurement(fmt.Sprintf("%s, from %s: connections lost (of %d open)", what, w.Label, w.Open), "connections", float64(w.Lost), connGoal)
		ginkgoreport.AddMeasurement(fmt.Sprintf("%s, from %s: packets lost (of %d sent)", what, w.Label, w.Sent), "packets", float64(w.Unanswered), pktGoal)
	}
	if bounds.LostAtLeast.Connections > 0 {
		connGoal = reports.AtLeast(float64(bounds.LostAtLeast.Connections))
	}
	if bounds.LostAtLeast.Packets > 0 {
		pktGoal = reports.AtLeast(float64(bounds.LostAtLeast.Packets))
	}
	ginkgoreport.AddMeasurement(fmt.Sprintf("%s, whole stream: connections lost (of %d held)", what, rs.step.Stream.Connections), "connections", float64(total.Lost), connGoal)
	ginkgoreport.AddMeasurement(fmt.Sprintf("%s, whole stream: packets lost (of %d sent)", what, total.Sent), "packets", float64(total.Unanswered), pktGoal)

	msg := func() string { return where + ": " + tableText(table) }
	if b := bounds.Lost.Connections; b >= 0 {
		gomega.Expect(total.Lost).To(gomega.BeNumerically("<=", b), "%s: %d connections lost, want at most %d", msg(), total.Lost, b)
	}
	if b := bounds.Lost.Packets; b >= 0 {
		gomega.Expect(total.Unanswered).To(gomega.BeNumerically("<=", b), "%s: %d packets lost, want at most %d", msg(), total.Unanswered, b)
	}
	if b := bounds.LostAtLeast.Connections; b > 0 {
		gomega.Expect(total.Lost).To(gomega.BeNumerically(">=", b), "%s: %d connections lost, want at least %d", msg(), total.Lost, b)
	}
	if b := bounds.LostAtLeast.Packets; b > 0 {
		gomega.Expect(total.Unanswered).To(gomega.BeNumerically(">=", b), "%s: %d packets lost, want at least %d", msg(), total.Unanswered, b)
	}
	if len(bounds.Spread) > 0 {
		gomega.Expect(res.Nodes).To(check.SpreadOver(bounds.Spread...), "%s: connections by node", where)
	}
}

// streamTable is a stream's figures: one row per window (the start, then
// each fault and repair), and the whole stream.
func streamTable(st scenariofile.Step, res stream.Result, nodes []string) reports.Table {
	t := reports.Table{
		Title: fmt.Sprintf("line %d: stream to %s, %d %s connections, a packet every %v each (lost: reset, closed or unanswered for %v)",
			st.Line, st.Service, st.Stream.Connections, st.Stream.Proto, st.Stream.Interval, st.Stream.Timeout),
		Header: []string{"from", "connections open", "connections lost", "reopened", "packets sent", "packets lost"},
	}
	for _, n := range nodes {
		t.Header = append(t.Header, "answered by "+n)
	}
	t.Header = append(t.Header, "why lost")
	row := func(w stream.Window, at string) []string {
		cells := []string{w.Label + at, strconv.Itoa(w.Open), strconv.Itoa(w.Lost), strconv.Itoa(w.Reopened), strconv.Itoa(w.Sent), strconv.Itoa(w.Unanswered)}
		for _, n := range nodes {
			cells = append(cells, strconv.Itoa(w.Nodes[n]))
		}
		return append(cells, strings.Join(w.Errors, "; "))
	}
	for i, w := range res.Windows {
		if i+1 < len(res.Windows) && w.Sent == 0 && w.Lost == 0 && w.Reopened == 0 {
			continue // a fault right after the stream started: nothing happened before it
		}
		t.Rows = append(t.Rows, row(w, " ("+w.Start.Format("15:04:05.000")+")"))
	}
	total := res.Total()
	total.Label = fmt.Sprintf("whole stream (%d connections opened)", res.Connections)
	for n := range maps.Keys(total.Nodes) {
		if !slices.Contains(nodes, n) {
			total.Errors = append(total.Errors, fmt.Sprintf("%d connections answered by %q, not a node", total.Nodes[n], n))
		}
	}
	t.Rows = append(t.Rows, row(total, ""))
	return t
}

// tableText renders a table for a failure message.
func tableText(t reports.Table) string {
	var b strings.Builder
	b.WriteString(t.Title + "\n  " + strings.Join(t.Header, " | ") + "\n")
	for _, r := range t.Rows {
		b.WriteString("  " + strings.Join(r, " | ") + "\n")
	}
	return b.String()
}
