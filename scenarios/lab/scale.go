package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/scheme"
)

// ScaleOptions tune RunScale.
type ScaleOptions struct {
	Nodes, Services     int
	EndpointsPerService int
	// ClusterPolicy gives the Services externalTrafficPolicy Cluster instead
	// of Local: every node announces every Service (and writes its
	// ServiceBGPStatus), so each ECMP set has every node.
	ClusterPolicy bool
	// NoServiceStatus runs the speakers with --service-status=false: no
	// ServiceBGPStatus objects. The output says so.
	NoServiceStatus bool
	Out             io.Writer
	// Timeout bounds the wait for convergence (default 5 minutes).
	Timeout time.Duration
	// StatusTimeout bounds the wait for the ServiceBGPStatus objects after
	// convergence (default 3 minutes).
	StatusTimeout time.Duration
}

// ScaleGoal is the goal of the time from the last write until every ToR
// holds every expected ECMP set.
const ScaleGoal = time.Second

// ScaleResult holds the figures RunScale prints.
type ScaleResult struct {
	FirstWrite time.Time
	// LastWrite is when the apiserver answered the last Service or
	// EndpointSlice write of the bench (the last EndpointSlice create).
	LastWrite time.Time
	// Converged is the routers' timestamp of the RIB change that completed
	// the last expected ECMP set, on LastToR for LastService.
	Converged   time.Time
	Convergence time.Duration
	// FIBConverged is when the kernel's notification arrived that completed
	// the last expected route in a ToR's FIB; FIBConvergence is its time
	// after the last write.
	FIBConverged         time.Time
	FIBConvergence       time.Duration
	LastToR, LastService string
	// ServiceLatency are quantiles (50, 90, 99, 100 %) of, per Service, its
	// EndpointSlice write's answer → its set complete on every ToR.
	ServiceLatency []time.Duration
	// Statuses is the number of ServiceBGPStatus objects after the wait,
	// StatusesWant the number expected (one per Service and announcing node,
	// 0 without status writes), StatusesDone when the count was reached.
	Statuses, StatusesWant int
	StatusesDone           time.Time
	Memory                 map[string]Memory
	// Unread lists the processes whose memory could not be read.
	Unread []string
}

// ScaleTopology has two ToRs and n nodes (at most 200) on 10.0.0.0/24, no BFD.
func ScaleTopology(n int) (topology.Topology, error) {
	if n < 1 || n > maxScaleNodes {
		return topology.Topology{}, fmt.Errorf("nodes: %d is outside 1-%d", n, maxScaleNodes)
	}
	t := topology.Default()
	t.Name = fmt.Sprintf("scale-%d", n)
	t.BFDProfiles = nil
	t.Nodes = nil
	base := netip.MustParseAddr("10.0.0.21")
	base6 := netip.MustParseAddr("fd00:10::21")
	for i := 0; i < n; i++ {
		node := topology.Node{Name: fmt.Sprintf("node%d", i+1), Address: base, ASN: 65100}
		if t.Segment6.IsValid() {
			node.Address6 = base6
		}
		t.Nodes = append(t.Nodes, node)
		base, base6 = base.Next(), base6.Next()
	}
	return t, nil
}

// RunScale brings up a lab of opts.Nodes nodes, creates opts.Services
// LoadBalancer Services (externalTrafficPolicy Local) with ready endpoints on
// EndpointsPerService nodes each, and prints the time from the last write
// until every ToR holds every expected ECMP set, and the memory and CPU of
// every process the lab started, each figure with its goal and PASS or FAIL.
// It fails when a goal is missed.
func RunScale(ctx context.Context, cfg Config, opts ScaleOptions) error {
	res, err := Scale(ctx, cfg, opts)
	if err != nil {
		return err
	}
	var failed []string
	if res.Convergence > ScaleGoal {
		failed = append(failed, "convergence")
	}
	if res.FIBConvergence > ScaleGoal {
		failed = append(failed, "kernel FIB convergence")
	}
	if len(res.Unread) > 0 {
		failed = append(failed, "memory")
	}
	if len(failed) > 0 {
		return fmt.Errorf("goals missed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// Scale is RunScale returning the figures; a missed goal is not an error.
func Scale(ctx context.Context, cfg Config, opts ScaleOptions) (res ScaleResult, err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.StatusTimeout == 0 {
		opts.StatusTimeout = 3 * time.Minute
	}
	if err := checkScaleSize(opts.Nodes, opts.Services, opts.EndpointsPerService); err != nil {
		return res, err
	}
	topo, err := ScaleTopology(opts.Nodes)
	if err != nil {
		return res, err
	}
	cfg.Topology = &topo
	cfg.APIServerArgs = append(slices.Clone(cfg.APIServerArgs), "--service-node-port-range="+scaleNodePorts)
	if opts.NoServiceStatus {
		cfg.SpeakerArgs = append(slices.Clone(cfg.SpeakerArgs), "--service-status=false")
	}
	print := func(format string, args ...any) { fmt.Fprintf(opts.Out, format, args...) }
	print("== starting a lab of %d nodes (one speaker each) and %d ToRs\n", opts.Nodes, len(topo.ToRs))
	t := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if derr := l.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	print("   up in %s\n", time.Since(t).Round(time.Millisecond))
	if opts.NoServiceStatus {
		print("   speakers run with --service-status=false: they write NO ServiceBGPStatus objects (production writes them)\n")
	} else {
		print("   speakers run as in production: each writes a ServiceBGPStatus per Service it announces\n")
	}

	c, err := l.crClient()
	if err != nil {
		return res, err
	}
	if err := createScaleConfig(ctx, c, topo); err != nil {
		return res, err
	}
	print("== waiting for every BGP session (%d nodes x %d ToRs)\n", opts.Nodes, len(topo.ToRs))
	for _, tor := range topo.ToRs {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := l.Fabric.WaitEstablished(wctx, tor.Name)
		cancel()
		if err != nil {
			return res, err
		}
	}
	pool := netip.MustParsePrefix(scalePool)
	w, err := l.startScaleWatch(ctx, pool)
	if err != nil {
		return res, err
	}
	defer w.Close()
	fibs, err := l.watchFIBs()
	if err != nil {
		return res, err
	}
	defer fibs.Close()
	want := scaleEndpoints(opts.Services, opts.EndpointsPerService, l.NodeNames())
	announce, policy := want, corev1.ServiceExternalTrafficPolicyLocal
	if opts.ClusterPolicy {
		policy = corev1.ServiceExternalTrafficPolicyCluster
		announce = make(map[string][]string, len(want))
		for name := range want {
			announce[name] = l.NodeNames()
		}
	}
	reqBefore, err := l.apiRequests(ctx)
	if err != nil {
		return res, err
	}
	usageBefore := l.usage()

	print("== writing %d Services (externalTrafficPolicy %s) and their EndpointSlices (%d ready endpoints each, 16 writers)\n", opts.Services, policy, opts.EndpointsPerService)
	res.FirstWrite = time.Now()
	written, err := l.writeScaleServices(ctx, want, policy)
	if err != nil {
		return res, err
	}
	for _, at := range written {
		if at.After(res.LastWrite) {
			res.LastWrite = at
		}
	}
	print("   written in %s (the last write: the apiserver's answer to the last EndpointSlice create)\n", res.LastWrite.Sub(res.FirstWrite).Round(time.Millisecond))

	print("== waiting until every ToR holds every expected ECMP set (following the routers' RIB changes)\n")
	ips, v, err := w.wait(ctx, announce, opts.Timeout)
	if err != nil {
		return res, err
	}
	usageConverged := l.usage()
	convergedSeen := time.Now()
	byPrefix := make(map[netip.Prefix]string, len(ips))
	for name, ip := range ips {
		byPrefix[hostRoute(ip)] = name
	}
	res.Converged, res.LastToR, res.LastService = v.Last, v.LastToR, byPrefix[v.LastPrefix]
	res.Convergence = max(res.Converged.Sub(res.LastWrite), 0)
	lat := make([]time.Duration, 0, len(ips))
	done := make([]time.Duration, 0, len(ips))
	for p, at := range v.Complete {
		lat = append(lat, at.Sub(written[byPrefix[p]]))
		done = append(done, at.Sub(res.FirstWrite))
	}
	res.ServiceLatency = quantiles(lat, 0.5, 0.9, 0.99, 1)
	doneQ := quantiles(done, 0.5, 0.9, 0.99, 1)
	writes := make([]time.Duration, 0, len(written))
	for _, at := range written {
		writes = append(writes, at.Sub(res.FirstWrite))
	}
	writeQ := quantiles(writes, 0.5, 0.9, 0.99, 1)
	print("   converged: %d prefixes x %d ToRs, %d next-hops each (seen by the check %s after the routers' timestamp)\n",
		opts.Services, len(topo.ToRs), len(announce[scaleServiceName(0)]), convergedSeen.Sub(res.Converged).Round(time.Millisecond))
	print("   timeline from the first write (50 / 90 / 99 / 100 %%):\n")
	print("     Services written:          %s\n", joinDurations(writeQ))
	print("     sets complete on all ToRs: %s\n", joinDurations(doneQ))
	print("   per Service, its EndpointSlice written → its set complete on every ToR: %s\n", joinDurations(res.ServiceLatency))
	print("   the last set completed: %s on %s (Service %s, %s after the last write)\n",
		v.LastPrefix, res.LastToR, res.LastService, res.Convergence.Round(time.Millisecond))

	print("== waiting until every ToR's kernel FIB holds the same sets (the kernel's route notifications in each ToR's namespace)\n")
	fv, err := fibs.wait(w.ribSets(), pool, time.Minute)
	if err != nil {
		return res, err
	}
	res.FIBConverged = fv.Last
	res.FIBConvergence = max(fv.Last.Sub(res.LastWrite), 0)
	print("   the last kernel route completed: %s on %s, %s after the last write (%.1f ms after the RIBs completed)\n",
		fv.LastPrefix, fv.LastToR, res.FIBConvergence.Round(time.Millisecond), msSince(res.Converged, fv.Last))

	announcing := len(announce[scaleServiceName(0)])
	res.StatusesWant = opts.Services * announcing
	if opts.NoServiceStatus {
		res.StatusesWant = 0
	}
	print("== ServiceBGPStatus objects: waiting for %d (%d Services x %d announcing nodes, externalTrafficPolicy %s)\n",
		res.StatusesWant, opts.Services, announcing, policy)
	res.StatusesDone, res.Statuses, err = waitStatuses(ctx, c, res.StatusesWant, opts.StatusTimeout)
	if err != nil {
		return res, err
	}
	usageEnd := l.usage()
	reqAfter, err := l.apiRequests(ctx)
	if err != nil {
		return res, err
	}
	if res.StatusesDone.IsZero() {
		print("   only %d of %d after %s\n", res.Statuses, res.StatusesWant, opts.StatusTimeout)
	} else {
		print("   %d present %.0f s after the last write (counted every second)\n", res.Statuses, res.StatusesDone.Sub(res.LastWrite).Seconds())
	}
	print("   apiserver requests from the first write until then, by verb and resource:\n")
	for _, r := range requestDelta(reqBefore, reqAfter) {
		print("     %8.0f %-7s %s\n", r.N, r.Verb, r.Resource)
	}

	res.Memory = map[string]Memory{}
	for name, u := range usageEnd {
		if u.err != nil {
			res.Unread = append(res.Unread, name)
			continue
		}
		res.Memory[name] = u.Usage
	}
	sort.Strings(res.Unread)
	printUsage(opts.Out, usageBefore, usageConverged, usageEnd, res.Converged.Sub(res.FirstWrite))

	print("\ngoals:\n")
	print("  %s last write → every ToR holds every expected ECMP set: %.3f s (goal ≤ %.0f s; %d nodes, %d Services, externalTrafficPolicy %s, ServiceBGPStatus writes %s)\n",
		passFail(res.Convergence <= ScaleGoal), res.Convergence.Seconds(), ScaleGoal.Seconds(), opts.Nodes, opts.Services, policy, onOff(!opts.NoServiceStatus))
	print("  %s last write → every ToR's kernel FIB holds every expected route: %.3f s (goal ≤ %.0f s)\n",
		passFail(res.FIBConvergence <= ScaleGoal), res.FIBConvergence.Seconds(), ScaleGoal.Seconds())
	print("  %s peak RSS and CPU of every process printed: %d of %d (goal: all)",
		passFail(len(res.Unread) == 0), len(res.Memory), len(usageEnd))
	if len(res.Unread) > 0 {
		print("; unread: %s", strings.Join(res.Unread, ", "))
	}
	print("\n")
	if err := l.CheckAlive(); err != nil {
		return res, err
	}
	return res, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off (--service-status=false)"
}

func joinDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.3f s", d.Seconds())
	}
	return strings.Join(s, " / ")
}

func (l *Lab) crClient() (client.Client, error) {
	return client.New(l.Env.Config, client.Options{Scheme: scheme.Scheme})
}

// createScaleConfig creates the scale pool and advertisement and one BGPPeer per
// ToR of topo (the nodes share one AS).
func createScaleConfig(ctx context.Context, c client.Client, topo topology.Topology) error {
	ns := v1beta1.DefaultNamespaceName
	objs := []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "scale", Namespace: ns},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{scalePool}}},
		&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "scale", Namespace: ns},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"scale"}, Communities: []string{"65000:100"}}},
	}
	for _, r := range topo.ToRs {
		objs = append(objs, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: ns},
			Spec: v1beta2.BGPPeerSpec{MyASN: topo.Nodes[0].ASN, ASN: r.ASN, Address: r.Address.String()}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// writeScaleServices creates the Services and their EndpointSlices with 16
// writers in parallel, and returns when the apiserver answered each Service's
// EndpointSlice create (its last write).
func (l *Lab) writeScaleServices(ctx context.Context, want map[string][]string, policy corev1.ServiceExternalTrafficPolicy) (map[string]time.Time, error) {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	var mu sync.Mutex
	written := make(map[string]time.Time, len(want))
	work := make(chan string)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
					Spec: corev1.ServiceSpec{
						Type:                          corev1.ServiceTypeLoadBalancer,
						ExternalTrafficPolicy:         policy,
						AllocateLoadBalancerNodePorts: ptr.To(false),
						Selector:                      map[string]string{"app": name},
						Ports:                         []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
					},
				}
				if _, err := l.Kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("Service %s: %w", name, err)
					return
				}
				if err := l.SetEndpoints(ctx, "default", name, want[name]...); err != nil {
					errs <- err
					return
				}
				at := time.Now()
				mu.Lock()
				written[name] = at
				mu.Unlock()
			}
		}()
	}
	var err error
loop:
	for _, n := range names {
		select {
		case work <- n:
		case err = <-errs:
			break loop
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return written, err
}

// procUsage is one process's memory, CPU and open files, or why they could
// not be read.
type procUsage struct {
	proc.Usage
	FDs int
	err error
}

// labProcess names the process running the lab (the fabric's client, the
// Services' writer and the speakers' API relays) in usage reports.
const labProcess = "lab (this process)"

// usage reads every process of the lab, this one included.
func (l *Lab) usage() map[string]procUsage {
	pids := l.Processes()
	pids[labProcess] = os.Getpid()
	out := make(map[string]procUsage, len(pids))
	for name, pid := range pids {
		var u procUsage
		u.Usage, u.err = proc.ReadUsage(pid)
		if u.err == nil {
			u.FDs, u.err = proc.OpenFDs(pid)
		}
		out[name] = u
	}
	return out
}

// printUsage prints every process's memory, its CPU in total and from the
// first write until convergence (before → converged, over window), and its
// open files.
func printUsage(w io.Writer, before, converged, end map[string]procUsage, window time.Duration) {
	names := make([]string, 0, len(end))
	for n := range end {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-24s %9s %9s %8s %10s %5s\n", "process", "RSS MiB", "peak MiB", "CPU s", "bench CPU", "fds")
	var rss, benchCPU, allCPU float64
	var fds int
	var speakers, speakerCPU []float64
	for _, n := range names {
		u := end[n]
		if u.err != nil {
			fmt.Fprintf(w, "%-24s unread: %v\n", n, u.err)
			continue
		}
		bench := converged[n].CPU - before[n].CPU
		fmt.Fprintf(w, "%-24s %9.1f %9.1f %8.1f %10.1f %5d\n", n, mib(u.RSS), mib(u.PeakRSS), u.CPU.Seconds(), bench.Seconds(), u.FDs)
		rss += mib(u.RSS)
		benchCPU += bench.Seconds()
		allCPU += u.CPU.Seconds()
		fds += u.FDs
		if strings.HasPrefix(n, "speaker-") {
			speakers = append(speakers, mib(u.PeakRSS))
			speakerCPU = append(speakerCPU, u.CPU.Seconds())
		}
	}
	fmt.Fprintf(w, "%-24s %9.1f %9s %8.1f %10.1f %5d\n", "total", rss, "", allCPU, benchCPU, fds)
	fmt.Fprintf(w, "(bench CPU: from the first write until convergence, %.1f s of wall time: %.2f of the machine's %d cores busy)\n",
		window.Seconds(), benchCPU/window.Seconds(), runtime.NumCPU())
	if len(speakers) > 0 {
		sort.Float64s(speakers)
		sort.Float64s(speakerCPU)
		fmt.Fprintf(w, "speakers: %d, peak RSS min / median / max %.1f / %.1f / %.1f MiB, CPU s %.1f / %.1f / %.1f\n", len(speakers),
			speakers[0], speakers[len(speakers)/2], speakers[len(speakers)-1],
			speakerCPU[0], speakerCPU[len(speakerCPU)/2], speakerCPU[len(speakerCPU)-1])
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
