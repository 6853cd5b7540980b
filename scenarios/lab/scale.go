package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
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
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// ScaleOptions tune RunScale.
type ScaleOptions struct {
	Nodes, Services     int
	EndpointsPerService int
	Out                 io.Writer
	// Timeout bounds the wait for convergence (default 5 minutes).
	Timeout time.Duration
}

// ScaleResult holds the figures RunScale prints.
type ScaleResult struct {
	FirstWrite  time.Time
	LastWrite   time.Time
	Converged   time.Time // the last RIB change that completed the expected sets
	Convergence time.Duration
	Memory      map[string]Memory
}

// scalePool is a benchmarking range (RFC 2544), never routed outside the
// fabric's namespaces.
const scalePool = "198.18.0.0/20"

// ScaleTopology has two ToRs and n nodes (at most 200) on 10.0.0.0/24, no BFD.
func ScaleTopology(n int) (topology.Topology, error) {
	if n < 1 || n > 200 {
		return topology.Topology{}, fmt.Errorf("nodes: %d is outside 1-200", n)
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
// every process the lab started.
func RunScale(ctx context.Context, cfg Config, opts ScaleOptions) error {
	_, err := Scale(ctx, cfg, opts)
	return err
}

// Scale is RunScale returning the figures.
func Scale(ctx context.Context, cfg Config, opts ScaleOptions) (res ScaleResult, err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Services < 1 || opts.Services > 4000 {
		return res, fmt.Errorf("services: %d is outside 1-4000 (the pool %s)", opts.Services, scalePool)
	}
	if opts.EndpointsPerService < 1 || opts.EndpointsPerService > opts.Nodes {
		return res, fmt.Errorf("endpoints: %d is outside 1-%d", opts.EndpointsPerService, opts.Nodes)
	}
	topo, err := ScaleTopology(opts.Nodes)
	if err != nil {
		return res, err
	}
	cfg.Topology = &topo
	print := func(format string, args ...any) { fmt.Fprintf(opts.Out, format, args...) }
	print("== starting a lab of %d nodes and 2 ToRs\n", opts.Nodes)
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

	c, err := l.crClient()
	if err != nil {
		return res, err
	}
	if err := createScaleConfig(ctx, c, topo); err != nil {
		return res, err
	}
	nodes := l.NodeNames()
	want := make(map[string][]string, opts.Services) // Service name -> nodes
	for i := 0; i < opts.Services; i++ {
		var on []string
		for k := 0; k < opts.EndpointsPerService; k++ {
			on = append(on, nodes[(i+k)%len(nodes)])
		}
		want[fmt.Sprintf("svc-%04d", i)] = on
	}
	print("== writing %d Services and their EndpointSlices (%d ready endpoints each)\n", opts.Services, opts.EndpointsPerService)
	res.FirstWrite = time.Now()
	if err := l.writeScaleServices(ctx, want); err != nil {
		return res, err
	}
	res.LastWrite = time.Now()
	print("   written in %s\n", res.LastWrite.Sub(res.FirstWrite).Round(time.Millisecond))

	print("== waiting until every ToR holds every expected ECMP set\n")
	if res.Converged, err = l.waitScale(ctx, want, opts.Timeout); err != nil {
		return res, err
	}
	res.Convergence = res.Converged.Sub(res.LastWrite)
	if res.Convergence < 0 {
		res.Convergence = 0
	}
	print("   converged: %d prefixes x %d ToRs, %d next-hops each\n", opts.Services, len(topo.ToRs), opts.EndpointsPerService)
	print("\nlast write → every ToR holds every expected ECMP set: %.2f s (goal ≤ 60 s)\n", res.Convergence.Seconds())
	print("first write → every ToR holds every expected ECMP set: %.2f s\n", res.Converged.Sub(res.FirstWrite).Seconds())

	res.Memory = map[string]Memory{}
	for name, pid := range l.Processes() {
		if m, err := ReadMemory(pid); err == nil {
			res.Memory[name] = m
		}
	}
	printMemory(opts.Out, res.Memory)
	if err := l.CheckAlive(); err != nil {
		return res, err
	}
	return res, nil
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
// writers in parallel.
func (l *Lab) writeScaleServices(ctx context.Context, want map[string][]string) error {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
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
						ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyLocal,
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
	return err
}

// waitScale polls until every ToR's RIB holds, for every Service IP, exactly
// the next-hops of the nodes with its endpoints, and returns the time of the
// last RIB change among those sets (from the routers' own timestamps).
func (l *Lab) waitScale(ctx context.Context, want map[string][]string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var lastMissing string
	for {
		if err := l.CheckAlive(); err != nil {
			return time.Time{}, err
		}
		done, last, missing, err := l.scaleConverged(ctx, want)
		if err != nil {
			return time.Time{}, err
		}
		if done {
			return last, nil
		}
		lastMissing = missing
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not converged after %s: %s", timeout, lastMissing)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (l *Lab) scaleConverged(ctx context.Context, want map[string][]string) (bool, time.Time, string, error) {
	svcs, err := l.Kube.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, time.Time{}, "", err
	}
	expect := map[netip.Prefix]string{}
	pending := 0
	for _, s := range svcs.Items {
		nodes, ok := want[s.Name]
		if !ok {
			continue
		}
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			pending++
			continue
		}
		ip, err := netip.ParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		if err != nil {
			return false, time.Time{}, "", fmt.Errorf("Service %s: bad ingress IP: %w", s.Name, err)
		}
		expect[hostRoute(ip)] = backend.JoinAddrs(backend.Sorted(l.Fabric.NodeAddrs(nodes...)))
	}
	if pending > 0 {
		return false, time.Time{}, fmt.Sprintf("%d Services without an EXTERNAL-IP", pending), nil
	}
	var last time.Time
	for _, tor := range l.Fabric.Topology().ToRs {
		sets, err := l.Fabric.RIB(ctx, tor.Name)
		if err != nil {
			return false, time.Time{}, "", err
		}
		have := map[netip.Prefix]string{}
		for _, s := range sets {
			have[s.Prefix] = backend.JoinAddrs(s.NextHops())
			if _, ok := expect[s.Prefix]; ok && s.Since.After(last) {
				last = s.Since
			}
		}
		wrong := 0
		var example string
		for p, w := range expect {
			if have[p] != w {
				wrong++
				if example == "" {
					example = fmt.Sprintf("%s has {%s}, want {%s}", p, have[p], w)
				}
			}
		}
		if wrong > 0 {
			return false, time.Time{}, fmt.Sprintf("%s: %d of %d sets differ, e.g. %s", tor.Name, wrong, len(expect), example), nil
		}
	}
	return true, last, "", nil
}

func printMemory(w io.Writer, mem map[string]Memory) {
	names := make([]string, 0, len(mem))
	for n := range mem {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-22s %10s %10s %8s\n", "process", "RSS MiB", "peak MiB", "CPU s")
	var total, speakers []float64
	for _, n := range names {
		m := mem[n]
		fmt.Fprintf(w, "%-22s %10.1f %10.1f %8.1f\n", n, mib(m.RSS), mib(m.PeakRSS), m.CPU.Seconds())
		total = append(total, mib(m.RSS))
		if strings.HasPrefix(n, "speaker-") {
			speakers = append(speakers, mib(m.PeakRSS))
		}
	}
	sum := 0.0
	for _, v := range total {
		sum += v
	}
	fmt.Fprintf(w, "%-22s %10.1f\n", "total", sum)
	if len(speakers) > 0 {
		sort.Float64s(speakers)
		fmt.Fprintf(w, "speakers: %d, peak RSS min/median/max %.1f / %.1f / %.1f MiB\n", len(speakers), speakers[0], speakers[len(speakers)/2], speakers[len(speakers)-1])
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
