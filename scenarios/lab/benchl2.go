package lab

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// L2BenchOptions tune RunL2Bench.
type L2BenchOptions struct {
	// Nodes (default 5) and Services (default 100).
	Nodes, Services int
	// Trials is the number of failovers measured (default 20).
	Trials int
	// Fault is what each trial does to the owner of its Service's IP:
	// cut-link (every link of the node: it is gone, the default),
	// freeze-node or freeze-speaker (backend.FaultKind names).
	Fault backend.FaultKind
	// Seed of the random choices (Services, phases); 0: from the clock.
	Seed uint64
	Out  io.Writer
}

// The goals of make bench-l2 (issue 14).
const (
	// L2SpreadGoal bounds the busiest node's IPs over the mean.
	L2SpreadGoal = 1.1
	// L2FailoverGoal bounds the time from a node's failure until the L2
	// client's traffic reaches the new node, in every trial.
	L2FailoverGoal = 2 * time.Second
)

// l2BenchProbe is the interval of the trials' UDP probes; l2BenchARP of the
// ARP watch's requests (two owners at once).
const (
	l2BenchProbe = 10 * time.Millisecond
	l2BenchARP   = 20 * time.Millisecond
	// l2BenchPort is the UDP port the probes go to (the lab's responders
	// answer on any port; no Service port is involved).
	l2BenchPort = 9000
	// l2MaxNodes: the nodes' L2 addresses (their segment addresses' host
	// parts, .21 upwards) must stay below the pool, the subnet's upper
	// half.
	l2MaxNodes = 100
)

// l2AdvertisementFile is MetalLB's documented L2Advertisement with no spec
// (every pool), applied unchanged.
const l2AdvertisementFile = "deploy/examples/metallb-docs/03-l2advertisement-all-pools.yaml"

// L2Trial is one failover trial's figures.
type L2Trial struct {
	Service, Owner, Next string
	IP                   netip.Addr
	// Failover: the fault → the first probe answered by another node.
	// Failback: the repair → the first probe answered by the owner again.
	Failover, Failback time.Duration
	// Runs is the sequence of nodes that answered the probes (each run of
	// answers once): owner, next, owner for a clean trial. Stable leaves
	// out the runs of fewer than 3 answers (30 ms): answers reordered at a
	// switch.
	Runs, Stable []string
	// MACChanges is how many times the L2 client's neighbour entry for the
	// IP changed to another node's MAC during the trial (2 for a clean one).
	MACChanges int
	// Doubles are the ARP requests answered by two nodes at once.
	Doubles []ARPDouble
	// Requests is how many ARP requests the watch sent for the IP.
	Requests uint64
	// FaultAt and RepairAt are when the fault and its repair took effect.
	FaultAt, RepairAt time.Time
	Err               error
}

// doublesAround counts the trial's double answers before the repair (the
// failover) and after it (the return).
func (t L2Trial) doublesAround() (failover, back int) {
	for _, d := range t.Doubles {
		if d.At.Before(t.RepairAt) {
			failover++
		} else {
			back++
		}
	}
	return failover, back
}

// flapped tells whether the trial's traffic or the L2 client's entry went
// other ways than owner → next → owner.
func (t L2Trial) flapped() bool {
	return len(t.Stable) > 3 || t.MACChanges > 2 || slices.Contains(t.Runs, "")
}

// RunL2Bench is make bench-l2: a lab with the L2 segment and opts.Nodes
// nodes, MetalLB's plain L2Advertisement, opts.Services Services
// (externalTrafficPolicy Cluster, endpoints on every node). It prints the
// spread of the IPs over the nodes as the L2 client resolves them (and as
// the ServiceL2Status objects say), the failover time over opts.Trials
// trials (a node failure at a random phase → the L2 client's traffic
// answered by another node), whether an IP was ever answered by two nodes
// at once, and the speakers' memory and CPU; each goal PASS or FAIL. A
// missed goal is an error.
func RunL2Bench(ctx context.Context, cfg Config, opts L2BenchOptions) (err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 5
	}
	if opts.Services == 0 {
		opts.Services = 100
	}
	if opts.Trials == 0 {
		opts.Trials = 20
	}
	if opts.Fault == "" {
		opts.Fault = backend.FaultLinkCut
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	switch opts.Fault {
	case backend.FaultLinkCut, backend.FaultNodeFreeze, backend.FaultSpeakerFreeze:
	default:
		return fmt.Errorf("fault: %q is none of %s (node down: every link cut), %s, %s", opts.Fault, backend.FaultLinkCut, backend.FaultNodeFreeze, backend.FaultSpeakerFreeze)
	}
	if opts.Nodes < 2 || opts.Nodes > l2MaxNodes {
		return fmt.Errorf("nodes: %d is outside 2-%d", opts.Nodes, l2MaxNodes)
	}
	topo, err := L2BenchTopology(opts.Nodes, opts.Services)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed>>1|1))
	print := func(format string, args ...any) { fmt.Fprintf(opts.Out, format, args...) }
	cfg.Topology = &topo

	print("== starting a lab of %d nodes (one speaker each) with an L2 segment %v\n", opts.Nodes, topo.L2.Subnet)
	t0 := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if derr := l.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	topo = l.Fabric.Topology()
	print("   up in %s (pool %v, the L2 client at %v)\n", time.Since(t0).Round(time.Millisecond), topo.L2.Pool, topo.L2.ClientAddress)
	b := l.AsBackend()

	pool, err := writeL2Pool(l.Dir, topo.L2.Pool)
	if err != nil {
		return err
	}
	adv := filepath.Join(l.Root, l2AdvertisementFile)
	print("== kubectl apply: an IPAddressPool of %v and MetalLB's L2Advertisement, unchanged (%s)\n", topo.L2.Pool, l2AdvertisementFile)
	if err := l.Apply(ctx, pool, adv); err != nil {
		return err
	}
	usageStart := l.usage()

	want := make(map[string][]string, opts.Services)
	for i := range opts.Services {
		want[scaleServiceName(i)] = l.NodeNames()
	}
	print("== writing %d Services (externalTrafficPolicy Cluster) with a ready endpoint on each of the %d nodes\n", opts.Services, opts.Nodes)
	written, err := l.writeScaleServices(ctx, want, corev1.ServiceExternalTrafficPolicyCluster)
	if err != nil {
		return err
	}
	var lastWrite time.Time
	for _, at := range written {
		lastWrite = later(lastWrite, at)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	ips := make(map[string]netip.Addr, len(names))
	for _, n := range names {
		ip, err := l.WaitExternalIP(ctx, "default", n, "", 2*time.Minute)
		if err != nil {
			return err
		}
		ips[n] = ip
	}

	print("== the L2 client resolves every Service IP (a datagram to each, again every 500 ms until answered)\n")
	owners, resolvedAt, err := l.resolveL2(ctx, ips, 2*time.Minute)
	if err != nil {
		return err
	}
	print("   all %d resolved %.3f s after the last Service write\n", len(ips), resolvedAt.Sub(lastWrite).Seconds())
	spread := countByNode(owners, l.NodeNames())
	ratio := spreadRatio(spread)
	print("   IPs per node (the L2 client's neighbour table): %s\n", formatSpread(spread, l.NodeNames()))
	statusLine := l.l2StatusSpread(ctx, owners)
	print("   %s\n", statusLine)

	print("== %d failover trials: %s of the node answering a Service IP, at a random phase; a UDP probe every %v from the L2 client, an ARP request every %v (two owners at once); seed %d\n",
		opts.Trials, describeL2Fault(opts.Fault), l2BenchProbe, l2BenchARP, opts.Seed)
	usageTrials := l.usage()
	trialsStart := time.Now()
	var trials []L2Trial
	for i := range opts.Trials {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		svc := names[rng.IntN(len(names))]
		t := l.l2Trial(ctx, b, opts.Fault, svc, ips[svc], owners, rng)
		trials = append(trials, t)
		if t.Err != nil {
			print("   %2d  %s %-15v %s: %v\n", i+1, svc, t.IP, t.Owner, t.Err)
			continue
		}
		dOver, dBack := t.doublesAround()
		runs := strings.Join(t.Runs, "→")
		if !slices.Equal(t.Runs, t.Stable) {
			runs += " (≥ 30 ms: " + strings.Join(t.Stable, "→") + ")"
		}
		print("   %2d  %s %-15v %s → %s  failover %4.0f ms  back %5.0f ms  answered by %s  MAC changes %d  ARP requests %d, answered twice %d (failover) + %d (return)\n",
			i+1, svc, t.IP, t.Owner, t.Next, ms(t.Failover), ms(t.Failback), runs, t.MACChanges, t.Requests, dOver, dBack)
		if len(t.Doubles) > 0 {
			print("       fault %s, repair %s; %s", t.FaultAt.Format("15:04:05.000"), t.RepairAt.Format("15:04:05.000"), t.Doubles[0])
			if len(t.Doubles) > 1 {
				print(" ... %s", t.Doubles[len(t.Doubles)-1])
			}
			print("\n")
		}
	}
	trialsWall := time.Since(trialsStart)
	usageEnd := l.usage()

	var failovers []time.Duration
	var failed, flapped, doubled int
	var doubles, doublesBack int
	for _, t := range trials {
		if t.Err != nil {
			failed++
			continue
		}
		failovers = append(failovers, t.Failover)
		doubles += len(t.Doubles)
		_, back := t.doublesAround()
		doublesBack += back
		if len(t.Doubles) > 0 {
			doubled++
		}
		if t.flapped() {
			flapped++
		}
	}
	q := quantiles(slices.Clone(failovers), 0, 0.5, 1)

	print("\n%-22s %9s %9s %9s %12s\n", "speaker", "RSS MiB", "peak MiB", "CPU s", "trials CPU s")
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range usageEnd {
			if strings.HasPrefix(k, "speaker-") && !yield(k) {
				return
			}
		}
	}) {
		u := usageEnd[n]
		if u.err != nil {
			print("%-22s unread: %v\n", n, u.err)
			continue
		}
		print("%-22s %9.1f %9.1f %9.1f %12.1f\n", n, mib(u.RSS), mib(u.PeakRSS), u.CPU.Seconds(), (u.CPU - usageTrials[n].CPU).Seconds())
	}
	var speakerCPU float64
	for n, u := range usageEnd {
		if strings.HasPrefix(n, "speaker-") {
			speakerCPU += (u.CPU - usageStart[n].CPU).Seconds()
		}
	}
	print("(all speakers: %.1f CPU s from the L2 configuration on, %.0f s of wall time; the trials %.0f s)\n",
		speakerCPU, time.Since(t0).Seconds(), trialsWall.Seconds())

	spreadOK := ratio <= L2SpreadGoal
	failoverOK := failed == 0 && len(failovers) > 0 && q[2] <= L2FailoverGoal
	cleanOK := failed == 0 && doubles == 0 && flapped == 0
	print("\ngoals:\n")
	print("  %s spread: busiest node %d IPs, mean %.1f: %.2fx (goal ≤ %.1fx; %d Services, %d nodes)\n",
		passFail(spreadOK), maxCount(spread), float64(len(owners))/float64(opts.Nodes), ratio, L2SpreadGoal, len(owners), opts.Nodes)
	if len(failovers) > 0 {
		print("  %s failover (%s → the L2 client's traffic answered by another node): min / median / max %.0f / %.0f / %.0f ms over %d trials (goal max ≤ %.0f ms)",
			passFail(failoverOK), describeL2Fault(opts.Fault), ms(q[0]), ms(q[1]), ms(q[2]), len(failovers), ms(L2FailoverGoal))
	} else {
		print("  %s failover: no trial measured", passFail(false))
	}
	if failed > 0 {
		print("; %d trials failed", failed)
	}
	print("\n")
	print("  %s one owner at a time: %d ARP requests answered by two nodes (in %d trials; %d of them after the repair); %d trials whose traffic or the client's entry went other ways than owner → next → owner (goal: none)\n",
		passFail(cleanOK), doubles, doubled, doublesBack, flapped)
	if err := l.CheckAlive(); err != nil {
		return err
	}
	var missed []string
	for _, g := range []struct {
		ok   bool
		name string
	}{{spreadOK, "spread"}, {failoverOK, "failover"}, {cleanOK, "one owner at a time"}} {
		if !g.ok {
			missed = append(missed, g.name)
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("goals missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

// L2BenchTopology is ScaleTopology(nodes) with an L2 segment whose pool
// holds services addresses: 192.168.50.0/24 (pool 192.168.50.128/25) up to
// 128 Services, else 192.168.0.0/16 (pool 192.168.128.0/17).
func L2BenchTopology(nodes, services int) (topology.Topology, error) {
	topo, err := ScaleTopology(nodes)
	if err != nil {
		return topo, err
	}
	topo.Name = fmt.Sprintf("l2-bench-%d", nodes)
	subnet := netip.MustParsePrefix("192.168.50.0/24")
	if services > 128 {
		subnet = netip.MustParsePrefix("192.168.0.0/16")
	}
	if services < 1 || services > 1<<(31-subnet.Bits()) {
		return topo, fmt.Errorf("services: %d is outside 1-%d", services, 1<<(31-subnet.Bits()))
	}
	topo.L2 = &topology.L2{Subnet: subnet}
	return topo, nil
}

// writeL2Pool writes the IPAddressPool of the L2 pool into dir.
func writeL2Pool(dir string, pool netip.Prefix) (string, error) {
	p := filepath.Join(dir, "l2-pool.yaml")
	doc := fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: l2-pool
  namespace: metallb-system
spec:
  addresses:
  - %s
`, pool)
	return p, os.WriteFile(p, []byte(doc), 0o644)
}

func describeL2Fault(k backend.FaultKind) string {
	if k == backend.FaultLinkCut {
		return "node down (cut-link: every link of the node)"
	}
	return string(k)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// resolveL2 has the L2 client resolve every IP (one datagram each, again
// every 500 ms to the ones not resolved yet) and returns the node whose MAC
// each resolves to, and when the last one was resolved (the neighbour
// notification's time).
func (l *Lab) resolveL2(ctx context.Context, ips map[string]netip.Addr, timeout time.Duration) (map[string]string, time.Time, error) {
	owners := map[string]string{}
	var last time.Time
	deadline := time.Now().Add(timeout)
	for {
		for svc, ip := range ips {
			if _, ok := owners[svc]; ok {
				continue
			}
			if e, ok := l.l2watch.Latest(ip); ok && !e.Delete && e.Resolved() {
				if node := l.Fabric.L2NodeOfMAC(e.MAC); node != "" {
					owners[svc] = node
					last = later(last, e.At)
					continue
				}
			}
			if err := l.Fabric.ProbeL2(ip); err != nil {
				return nil, last, err
			}
		}
		if len(owners) == len(ips) {
			return owners, last, nil
		}
		if time.Now().After(deadline) {
			return nil, last, fmt.Errorf("the L2 client resolved %d of %d Service IPs within %v (no speaker answered ARP for the others)", len(owners), len(ips), timeout)
		}
		// Woken by every neighbour change, at most 500 ms apart.
		_ = l.l2watch.WaitFor(500*time.Millisecond, func(evs []netns.NeighEvent) bool {
			return len(evs) > 0 && time.Since(evs[len(evs)-1].At) < 50*time.Millisecond
		})
		if ctx.Err() != nil {
			return nil, last, ctx.Err()
		}
		if _, err := l.l2watch.Events(); err != nil {
			return nil, last, err
		}
	}
}

// l2Owner has the L2 client resolve ip afresh (its entry flushed) and
// names the node whose MAC answers.
func (l *Lab) l2Owner(ctx context.Context, ip netip.Addr, timeout time.Duration) (string, error) {
	if err := l.Fabric.FlushL2Neighbor(ip); err != nil {
		return "", err
	}
	since := time.Now()
	deadline := since.Add(timeout)
	for {
		evs, err := l.l2watch.Events()
		if err != nil {
			return "", err
		}
		if node := resolvedSince(evs, ip, since, l.Fabric.L2NodeOfMAC); node != "" {
			return node, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("the L2 client did not resolve %v within %v", ip, timeout)
		}
		if err := l.Fabric.ProbeL2(ip); err != nil {
			return "", err
		}
		_ = l.l2watch.WaitFor(backend.L2Probe, func(evs []netns.NeighEvent) bool {
			return resolvedSince(evs, ip, since, l.Fabric.L2NodeOfMAC) != ""
		})
	}
}

// resolvedSince is the node the last event about ip at or after since
// resolves it to ("" for none).
func resolvedSince(evs []netns.NeighEvent, ip netip.Addr, since time.Time, nodeOf func(net.HardwareAddr) string) string {
	node := ""
	for _, e := range evs {
		if e.IP != ip || e.At.Before(since) {
			continue
		}
		node = ""
		if !e.Delete && e.Resolved() {
			node = nodeOf(e.MAC)
		}
	}
	return node
}

// macChanges counts the changes of the neighbour entry for ip to another
// node's MAC in [from, to] (the entry's first MAC in the window, or the
// one it held before, is the start).
func macChanges(evs []netns.NeighEvent, ip netip.Addr, from, to time.Time, nodeOf func(net.HardwareAddr) string) (int, []string) {
	cur := ""
	var seq []string
	n := 0
	for _, e := range evs {
		if e.IP != ip || e.Delete || !e.Resolved() || e.At.After(to) {
			continue
		}
		node := nodeOf(e.MAC)
		if node == cur {
			continue
		}
		if !e.At.Before(from) && cur != "" {
			n++
			seq = append(seq, node)
		} else if !e.At.Before(from) {
			seq = append(seq, node)
		}
		if e.At.Before(from) {
			seq = []string{node}
		}
		cur = node
	}
	return n, seq
}

// l2Trial is one failover trial on svc's IP.
func (l *Lab) l2Trial(ctx context.Context, b Backend, kind backend.FaultKind, svc string, ip netip.Addr, owners map[string]string, rng *rand.Rand) (t L2Trial) {
	t.Service, t.IP = svc, ip
	fail := func(err error) L2Trial { t.Err = err; return t }
	owner, err := l.l2Owner(ctx, ip, 10*time.Second)
	if err != nil {
		return fail(err)
	}
	t.Owner = owner
	aw, err := l.WatchARP([]netip.Addr{ip}, l2BenchARP)
	if err != nil {
		return fail(err)
	}
	defer aw.Close()
	p, err := l.StartL2Probe(netip.AddrPortFrom(ip, l2BenchPort), l2BenchProbe)
	if err != nil {
		return fail(err)
	}
	defer p.Stop()
	start := time.Now()
	if err := p.WaitFor(ctx, 5*time.Second, func(as []ProbeAnswer) bool { return countFrom(as, owner) >= 5 }); err != nil {
		return fail(fmt.Errorf("before the fault: %w", err))
	}
	// A random phase of the heartbeats (100 ms) and of whatever else runs.
	time.Sleep(time.Duration(rng.Int64N(int64(time.Second)))) // the fault's phase, not a wait for a result
	f := backend.Fault{Kind: kind, Target: owner}
	at, err := b.Inject(ctx, f)
	if err != nil {
		_, _ = b.Repair(context.WithoutCancel(ctx), f)
		return fail(fmt.Errorf("inject %s: %w", f, err))
	}
	werr := p.WaitFor(ctx, 15*time.Second, func(as []ProbeAnswer) bool { _, ok := firstOther(as, owner, at); return ok })
	if werr == nil {
		// The client's traffic stays with the new node while the fault lasts.
		time.Sleep(300 * time.Millisecond) // observe the new owner for a while, not a wait for a result
	}
	repairAt, rerr := b.Repair(context.WithoutCancel(ctx), f)
	if werr != nil {
		return fail(fmt.Errorf("after %s: no probe answered by another node: %w", f, werr))
	}
	if rerr != nil {
		return fail(fmt.Errorf("repair %s: %w", f, rerr))
	}
	as, _ := p.Answers()
	next, _ := firstOther(as, owner, at)
	t.Next, t.Failover = next.Node, next.At.Sub(at)
	t.FaultAt, t.RepairAt = at, repairAt
	// Back: the owner's IPs return to it (the choice is deterministic).
	if err := p.WaitFor(ctx, 30*time.Second, func(as []ProbeAnswer) bool { _, ok := firstFrom(as, owner, repairAt); return ok }); err != nil {
		return fail(fmt.Errorf("after the repair, no probe answered by %s again: %w", owner, err))
	}
	// Watch a little longer for traffic going back and forth.
	time.Sleep(500 * time.Millisecond) // observe the returned owner, not a wait for a result
	end := time.Now()
	p.Stop()
	_ = aw.Close()
	as, _ = p.Answers()
	back, _ := firstFrom(as, owner, repairAt)
	t.Failback = back.At.Sub(repairAt)
	t.Runs = answerRuns(inWindow(as, start, end))
	t.Stable = stableRuns(inWindow(as, start, end), 3)
	answers, aerr := aw.Answers()
	if aerr != nil {
		return fail(aerr)
	}
	t.Doubles = DoubleAnswers(answers, start)
	t.Requests = aw.Requests(ip)
	evs, err := l.l2watch.Events()
	if err != nil {
		return fail(err)
	}
	t.MACChanges, _ = macChanges(evs, ip, start, end, l.Fabric.L2NodeOfMAC)
	// Settled: every IP the owner answered before is its own again.
	if err := l.settledL2(ctx, owner, owners); err != nil {
		return fail(err)
	}
	return t
}

// settledL2 waits until every Service IP that node answered at the start
// resolves to it again, freshly.
func (l *Lab) settledL2(ctx context.Context, node string, owners map[string]string) error {
	svcs := make([]string, 0)
	for s, o := range owners {
		if o == node {
			svcs = append(svcs, s)
		}
	}
	sort.Strings(svcs)
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range svcs {
		ip, err := l.WaitExternalIP(ctx, "default", s, "", 5*time.Second)
		if err != nil {
			return err
		}
		for {
			got, err := l.l2Owner(ctx, ip, 5*time.Second)
			if err == nil && got == node {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after the repair %s (%v) resolves to %q, not back to %s (err %v)", s, ip, got, node, err)
			}
		}
	}
	return nil
}

func countFrom(as []ProbeAnswer, node string) int {
	n := 0
	for _, a := range as {
		if a.Node == node {
			n++
		}
	}
	return n
}

func inWindow(as []ProbeAnswer, from, to time.Time) []ProbeAnswer {
	var out []ProbeAnswer
	for _, a := range as {
		if !a.At.Before(from) && !a.At.After(to) {
			out = append(out, a)
		}
	}
	return out
}

func countByNode(owners map[string]string, nodes []string) map[string]int {
	out := make(map[string]int, len(nodes))
	for _, n := range nodes {
		out[n] = 0
	}
	for _, n := range owners {
		out[n]++
	}
	return out
}

func maxCount(c map[string]int) int {
	m := 0
	for _, v := range c {
		m = max(m, v)
	}
	return m
}

// spreadRatio is the busiest node's count over the mean over every node.
func spreadRatio(c map[string]int) float64 {
	total := 0
	for _, v := range c {
		total += v
	}
	if total == 0 || len(c) == 0 {
		return 0
	}
	return float64(maxCount(c)) / (float64(total) / float64(len(c)))
}

func formatSpread(c map[string]int, nodes []string) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s %d", n, c[n]))
	}
	return strings.Join(parts, ", ")
}

// l2StatusSpread reads the ServiceL2Status objects (waiting up to 30 s for
// one per Service) and says how they spread and whether they name the node
// the L2 client resolved.
func (l *Lab) l2StatusSpread(ctx context.Context, owners map[string]string) string {
	c, err := l.crClient()
	if err != nil {
		return fmt.Sprintf("ServiceL2Status: no client: %v", err)
	}
	var list v1beta1.ServiceL2StatusList
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = c.List(ctx, &list, client.InNamespace(v1beta1.DefaultNamespaceName))
		if meta.IsNoMatchError(err) {
			return "ServiceL2Status: the kind is not installed"
		}
		if err == nil && len(list.Items) >= len(owners) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second) // the objects are written asynchronously; counted again, bounded by deadline
	}
	if err != nil {
		return fmt.Sprintf("ServiceL2Status: %v", err)
	}
	byNode := map[string]int{}
	agree, disagree := 0, []string{}
	seen := map[string]string{}
	for _, s := range list.Items {
		byNode[s.Status.Node]++
		key := s.Status.ServiceName
		if s.Status.ServiceNamespace != "default" {
			key = s.Status.ServiceNamespace + "/" + key
		}
		if prev, dup := seen[key]; dup {
			disagree = append(disagree, fmt.Sprintf("%s: two objects (%s, %s)", key, prev, s.Status.Node))
		}
		seen[key] = s.Status.Node
		if owners[key] == s.Status.Node {
			agree++
		} else if _, ok := owners[key]; ok {
			disagree = append(disagree, fmt.Sprintf("%s: object %s, client %s", key, s.Status.Node, owners[key]))
		}
	}
	nodes := slices.Sorted(func(yield func(string) bool) {
		for n := range byNode {
			if !yield(n) {
				return
			}
		}
	})
	line := fmt.Sprintf("ServiceL2Status objects: %d for %d Services, by node: %s; %d name the node the client resolved",
		len(list.Items), len(owners), formatSpread(byNode, nodes), agree)
	var missing []string
	for svc := range owners {
		if _, ok := seen[svc]; !ok {
			missing = append(missing, svc)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		line += fmt.Sprintf("; %d Services have none (e.g. %s)", len(missing), strings.Join(missing[:min(3, len(missing))], ", "))
	}
	if len(disagree) > 0 {
		line += fmt.Sprintf("; %d differ (e.g. %s)", len(disagree), strings.Join(disagree[:min(3, len(disagree))], "; "))
	}
	return line
}
