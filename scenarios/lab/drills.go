package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// The Service of the example manifests (04-service.yaml).
const (
	ExampleNamespace = "default"
	ExampleService   = "web"
	exampleUDPPort   = 443
)

// Printer prints progress for people; nil prints nothing.
type Printer func(format string, args ...any)

func hostRoute(ip netip.Addr) netip.Prefix { return netip.PrefixFrom(ip, ip.BitLen()) }

// waitAllToRs waits until every ToR holds exactly want for prefix, in the RIB
// and in the kernel FIB.
func (l *Lab) waitAllToRs(ctx context.Context, prefix netip.Prefix, want []netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, tor := range l.Fabric.Topology().ToRs {
		if _, err := l.Fabric.WaitForRoute(ctx, tor.Name, prefix, want); err != nil {
			return errors.Join(fmt.Errorf("%s: %w", tor.Name, err), l.CheckAlive())
		}
		if err := l.Fabric.WaitForKernelRoute(ctx, tor.Name, prefix, want); err != nil {
			return fmt.Errorf("%s kernel FIB: %w", tor.Name, err)
		}
	}
	return nil
}

// Announce applies the example manifests unchanged, gives the example Service
// a ready endpoint on every node, and checks that it gets an EXTERNAL-IP and
// that every ToR installs it as one ECMP route with a next-hop per node.
func (l *Lab) Announce(ctx context.Context, print Printer) (reports.Scenario, netip.Addr, error) {
	r := NewRecorder("announce", "The example manifests applied unchanged; the Service gets an EXTERNAL-IP from 203.0.113.0/24 and every ToR installs one ECMP route with a next-hop per node hosting a ready endpoint.", print)
	ip, err := l.announce(ctx, r)
	return r.Finish(err), ip, err
}

func (l *Lab) announce(ctx context.Context, r *Recorder) (netip.Addr, error) {
	files, err := filepath.Glob(filepath.Join(l.Root, "deploy", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		return netip.Addr{}, fmt.Errorf("no example manifests in deploy/examples: %v", err)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := l.Apply(ctx, f); err != nil {
			return netip.Addr{}, err
		}
		r.Step("kubectl apply -f %s", filepath.Base(f))
	}
	nodes := l.NodeNames()
	if err := l.SetEndpoints(ctx, ExampleNamespace, ExampleService, nodes...); err != nil {
		return netip.Addr{}, err
	}
	r.Step("EndpointSlice for %s/%s: a ready endpoint on %s", ExampleNamespace, ExampleService, strings.Join(nodes, ", "))
	start := time.Now()
	ip, err := l.WaitExternalIP(ctx, ExampleNamespace, ExampleService, "", 30*time.Second)
	if err != nil {
		return ip, err
	}
	r.Step("Service %s/%s EXTERNAL-IP %s (after %s)", ExampleNamespace, ExampleService, ip, time.Since(start).Round(time.Millisecond))
	pool := netip.MustParsePrefix("203.0.113.0/24")
	if !pool.Contains(ip) {
		return ip, fmt.Errorf("EXTERNAL-IP %s is outside the example pool %s", ip, pool)
	}
	want := l.Fabric.NodeAddrs(nodes...)
	if err := l.waitAllToRs(ctx, hostRoute(ip), want, 60*time.Second); err != nil {
		return ip, err
	}
	r.Measure(reports.Measurement{Name: "EndpointSlice written → ECMP set complete on every ToR (cold start)", Unit: "s", Value: time.Since(start).Seconds()})
	table, err := l.ECMPTable(ctx, "ECMP sets after announcement", hostRoute(ip))
	if err != nil {
		return ip, err
	}
	r.S.Tables = append(r.S.Tables, table)
	for _, row := range table.Rows {
		r.Step("%s: %s via {%s} communities %s", row[0], row[1], row[2], row[3])
		if !strings.Contains(row[3], "65000:100") {
			return ip, fmt.Errorf("%s: route %s lacks community 65000:100 (has %q)", row[0], row[1], row[3])
		}
	}
	return ip, nil
}

// NodeNames lists the fabric's nodes.
func (l *Lab) NodeNames() []string {
	var out []string
	for _, n := range l.Fabric.Topology().Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Flows sends real UDP flows from the client namespace to the Service IP and
// checks that the ToR's kernel spreads them over exactly the announcing
// nodes.
func (l *Lab) Flows(ctx context.Context, ip netip.Addr, print Printer) (reports.Scenario, error) {
	r := NewRecorder("ecmp-flows", "Real packets: UDP flows from a client behind tor1 to the Service IP are hashed per flow (L4) across the announcing nodes by tor1's kernel FIB.", print)
	err := l.flows(ctx, r, ip, l.NodeNames())
	return r.Finish(err), err
}

// prepareDataPlane makes every node own the Service IP (as kube-proxy would)
// and answer UDP on it with its name.
func (l *Lab) prepareDataPlane(ip netip.Addr) (func(), error) {
	return l.prepareDataPlaneProto("udp", netip.AddrPortFrom(ip, exampleUDPPort))
}

func (l *Lab) flows(ctx context.Context, r *Recorder, ip netip.Addr, expect []string) error {
	undo, err := l.prepareDataPlane(ip)
	if err != nil {
		return err
	}
	defer undo()
	const n = 60
	counts, err := l.Fabric.SendFlows(ctx, l.clientName(), netip.AddrPortFrom(ip, exampleUDPPort), n, 2*time.Second)
	if err != nil {
		return err
	}
	return checkFlows(r, counts, n, expect)
}

func checkFlows(r *Recorder, counts map[string]int, n int, expect []string) error {
	var parts []string
	for _, node := range expect {
		parts = append(parts, fmt.Sprintf("%s=%d", node, counts[node]))
		r.Measure(reports.Measurement{Name: "flows answered by " + node, Unit: "flows", Value: float64(counts[node])})
	}
	r.Step("%d UDP flows from the client: %s (unanswered %d)", n, strings.Join(parts, " "), counts[""])
	if counts[""] > 0 {
		return fmt.Errorf("%d of %d flows got no answer", counts[""], n)
	}
	want := map[string]bool{}
	for _, node := range expect {
		want[node] = true
		if counts[node] == 0 {
			return fmt.Errorf("no flow reached %s, which announces the route: %v", node, counts)
		}
	}
	for node, c := range counts {
		if !want[node] && c > 0 {
			return fmt.Errorf("%d flows reached %s, which does not announce the route", c, node)
		}
	}
	return nil
}

func (l *Lab) clientName() string {
	cs := l.Fabric.Topology().Clients
	if len(cs) == 0 {
		return ""
	}
	return cs[0].Name
}

// Drain removes the Service's endpoint from one node and checks that exactly
// that node's next-hop leaves every ToR (and that flows stop reaching it),
// then puts the endpoint back.
func (l *Lab) Drain(ctx context.Context, ip netip.Addr, node string, print Printer) (reports.Scenario, error) {
	r := NewRecorder("drain-endpoint", fmt.Sprintf("Draining the last endpoint on %s withdraws exactly that node's next-hop from every ToR; restoring it brings the next-hop back.", node), print)
	from := time.Now()
	err := l.drain(ctx, r, ip, node)
	if tl, terr := l.Timeline(ctx, "drain "+node, hostRoute(ip), from, nil); terr == nil {
		r.S.Timelines = append(r.S.Timelines, tl)
	}
	return r.Finish(err), err
}

func (l *Lab) drain(ctx context.Context, r *Recorder, ip netip.Addr, node string) error {
	prefix := hostRoute(ip)
	var rest []string
	for _, n := range l.NodeNames() {
		if n != node {
			rest = append(rest, n)
		}
	}
	t0 := time.Now()
	if err := l.SetEndpoints(ctx, ExampleNamespace, ExampleService, rest...); err != nil {
		return err
	}
	r.Step("EndpointSlice rewritten without %s", node)
	want := l.Fabric.NodeAddrs(rest...)
	if err := l.waitAllToRs(ctx, prefix, want, 30*time.Second); err != nil {
		return err
	}
	for _, tor := range l.Fabric.Topology().ToRs {
		c, err := l.FirstChange(ctx, tor.Name, prefix, t0, want)
		if err != nil {
			return err
		}
		r.Measure(reports.Measurement{Name: tor.Name + ": EndpointSlice write → next-hop withdrawn", Unit: "ms",
			Value: msSince(t0, c.At)})
	}
	undo, err := l.prepareDataPlane(ip)
	if err != nil {
		return err
	}
	counts, err := l.Fabric.SendFlows(ctx, l.clientName(), netip.AddrPortFrom(ip, exampleUDPPort), 60, 2*time.Second)
	undo()
	if err != nil {
		return err
	}
	if err := checkFlows(r, counts, 60, rest); err != nil {
		return err
	}

	t1 := time.Now()
	all := l.NodeNames()
	if err := l.SetEndpoints(ctx, ExampleNamespace, ExampleService, all...); err != nil {
		return err
	}
	r.Step("endpoint on %s restored", node)
	wantAll := l.Fabric.NodeAddrs(all...)
	if err := l.waitAllToRs(ctx, prefix, wantAll, 30*time.Second); err != nil {
		return err
	}
	for _, tor := range l.Fabric.Topology().ToRs {
		c, err := l.FirstChange(ctx, tor.Name, prefix, t1, wantAll)
		if err != nil {
			return err
		}
		r.Measure(reports.Measurement{Name: tor.Name + ": EndpointSlice write → next-hop added", Unit: "ms", Value: msSince(t1, c.At)})
	}
	return nil
}

// HardFail takes a node's link down on the node side (no FIN, no
// NOTIFICATION, no BFD: the node falls silent) and measures, from the ToRs'
// RIB histories, when each ToR drops its next-hop: a ToR with a BFD session
// to the node within the detection time, a ToR without BFD only when its BGP
// hold time expires. Which ToR runs BFD and each ToR's hold time come from
// the topology. Then it repairs the link and waits for the node to come back
// on every ToR.
func (l *Lab) HardFail(ctx context.Context, ip netip.Addr, node string, print Printer) (reports.Scenario, error) {
	topo := backend.Topology{Topology: l.Fabric.Topology()}
	var roles []string
	for _, tor := range topo.BFDToRs(node) {
		roles = append(roles, fmt.Sprintf("%s runs BFD (detect time %s) with the node and must drop it within it + 100 ms", tor, topo.DetectTime(tor, node)))
	}
	for _, tor := range topo.PlainToRs(node) {
		roles = append(roles, fmt.Sprintf("%s has no BFD and keeps it until its hold time (%s) expires", tor, topo.HoldTimeOf(tor)))
	}
	r := NewRecorder("hard-fail "+node, fmt.Sprintf("%s hard-fails (link down on the node side: no FIN, no NOTIFICATION). %s.", node, strings.Join(roles, "; ")), print)
	var faults []reports.Event
	from := time.Now()
	err := l.hardFail(ctx, r, topo, ip, node, &faults)
	if tl, terr := l.Timeline(ctx, "hard failure of "+node, hostRoute(ip), from, faults); terr == nil {
		r.S.Timelines = append(r.S.Timelines, tl)
	}
	return r.Finish(err), err
}

func (l *Lab) hardFail(ctx context.Context, r *Recorder, topo backend.Topology, ip netip.Addr, node string, faults *[]reports.Event) error {
	prefix := hostRoute(ip)
	var rest []string
	for _, n := range l.NodeNames() {
		if n != node {
			rest = append(rest, n)
		}
	}
	want := l.Fabric.NodeAddrs(rest...)
	flt := fabric.Fault{Kind: fabric.FaultNodeDown, Target: node}
	t0 := time.Now()
	if err := l.Fabric.Fault(ctx, flt); err != nil {
		return err
	}
	*faults = append(*faults, reports.Event{At: t0, Label: node + " link down (hard failure)", Kind: "fault"})
	r.Step("fault injected at %s: %s link down on the node side", t0.Format("15:04:05.000"), node)

	slowestBFD := 0.0 // ms
	for _, tor := range topo.BFDToRs(node) {
		detect := topo.DetectTime(tor, node)
		ctx1, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := l.Fabric.WaitForRoute(ctx1, tor, prefix, want)
		cancel()
		if err != nil {
			return fmt.Errorf("%s did not drop %s within 10 s despite BFD: %w", tor, node, err)
		}
		c, err := l.FirstChange(ctx, tor, prefix, t0, want)
		if err != nil {
			return err
		}
		bfdMs := msSince(t0, c.At)
		slowestBFD = max(slowestBFD, bfdMs)
		r.Measure(reports.Measurement{Name: fmt.Sprintf("%s (BFD, detect time %s): failure → next-hop withdrawn", tor, detect), Unit: "ms", Value: bfdMs,
			Goal: &reports.Goal{Op: "<=", Value: float64((detect + 100*time.Millisecond).Milliseconds())}})
		r.Step("%s dropped %s after %.0f ms (BFD)", tor, node, bfdMs)
	}

	for _, tor := range topo.PlainToRs(node) {
		holdTime := topo.HoldTimeOf(tor)
		r.Step("waiting for %s (no BFD) to hit its %s hold time", tor, holdTime)
		ctx2, cancel := context.WithTimeout(ctx, holdTime+30*time.Second)
		_, err := l.Fabric.WaitForRoute(ctx2, tor, prefix, want)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while waiting for %s to drop %s: %w", tor, node, ctx.Err())
			}
			return fmt.Errorf("%s did not drop %s within the hold time + 30 s: %w", tor, node, err)
		}
		c, err := l.FirstChange(ctx, tor, prefix, t0, want)
		if err != nil {
			return err
		}
		plainS := msSince(t0, c.At) / 1000
		r.Measure(reports.Measurement{Name: tor + " (no BFD): failure → next-hop withdrawn", Unit: "s", Value: plainS,
			Goal: &reports.Goal{Op: "<=", Value: holdTime.Seconds() + 1}})
		r.Step("%s dropped %s after %.1f s (hold time %s)", tor, node, plainS, holdTime)
		if slowestBFD > 0 && slowestBFD/1000 >= plainS {
			return fmt.Errorf("BFD gave no gain: %.0f ms vs %s %.1f s", slowestBFD, tor, plainS)
		}
	}

	t1 := time.Now()
	if err := l.Fabric.Repair(ctx, flt); err != nil {
		return err
	}
	*faults = append(*faults, reports.Event{At: t1, Label: node + " link repaired", Kind: "fault"})
	r.Step("link of %s repaired", node)
	wantAll := l.Fabric.NodeAddrs(l.NodeNames()...)
	if err := l.waitAllToRs(ctx, prefix, wantAll, 60*time.Second); err != nil {
		return err
	}
	r.Measure(reports.Measurement{Name: "repair → next-hop back on every ToR", Unit: "s", Value: time.Since(t1).Seconds()})
	r.Step("%s is back in every ToR's ECMP set", node)
	return nil
}

func msSince(t0, t time.Time) float64 { return float64(t.Sub(t0).Microseconds()) / 1000 }
