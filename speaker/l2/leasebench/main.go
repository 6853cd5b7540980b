// Command leasebench measures what node liveness over coordination.k8s.io/v1
// Leases costs and how fast it detects a dead node (issue 14), against a real
// etcd and kube-apiserver on loopback (internal/testenv).
//
// N simulated speakers each renew their own Lease (ecmplb-speaker-<node> in
// one namespace) every R, each with its own client and TCP connection, and W
// of them (default all) watch every Lease through an informer, as every
// speaker would. Per R it prints the apiserver's writes/s, the CPU of
// kube-apiserver, etcd and the bench itself, the watch events delivered per
// second, the delay from a renewal (its renewTime, set just before the write
// is sent) to its delivery at the watchers, the largest gap between two
// receipts of a live node's renewals (a gap above the threshold would be a
// false failure), and the detection time of a node that stops renewing with
// a threshold of K x R: the bench pauses random speakers at random moments,
// and a watcher considers a node dead K x R after it received its last
// renewal, on its own clock.
//
// Run it under `flock /tmp/ecmplb-heavy.lock`: it loads both cores.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

const leaseNS = "ecmplb-leases"

// Goals (issue 14): failover within 2 s from failure to traffic at the new
// node, of which detection may take about 1.2 s (the rest: gratuitous ARP,
// the client's cache, the switch). The CPU figure is compared with kubelet's
// own node Leases (10 s) and with the 2 cores of this machine.
const goalDetect = 1200 * time.Millisecond

type options struct {
	nodes, watchers, maxTrials int
	periods                    []time.Duration
	ks                         []int
	duration, warmup           time.Duration
}

func main() {
	var o options
	periods := flag.String("periods", "250ms,500ms,1s", "renewal periods R to measure, comma-separated")
	ks := flag.String("k", "2,3,4", "thresholds K (dead after K x R without a renewal), comma-separated")
	flag.IntVar(&o.nodes, "nodes", 100, "simulated speakers, each renewing its own Lease")
	flag.IntVar(&o.watchers, "watchers", -1, "speakers that also watch every Lease (default: all)")
	flag.IntVar(&o.maxTrials, "parallel-stops", 6, "speakers paused at once at most")
	flag.DurationVar(&o.duration, "duration", 40*time.Second, "measured time per R")
	flag.DurationVar(&o.warmup, "warmup", 4*time.Second, "time per R before measuring")
	flag.Parse()
	if o.watchers < 0 || o.watchers > o.nodes {
		o.watchers = o.nodes
	}
	for _, s := range strings.Split(*periods, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("-periods: %v", err)
		}
		o.periods = append(o.periods, d)
	}
	for _, s := range strings.Split(*ks, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			log.Fatalf("-k: bad %q", s)
		}
		o.ks = append(o.ks, k)
	}
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	env, err := testenv.StartProcess(sctx, testenv.Options{Namespaces: []string{leaseNS}})
	cancel()
	if err != nil {
		return err
	}
	defer env.Stop()

	nodes := make([]*node, o.nodes)
	for i := range nodes {
		cs, err := newClient(env.Config)
		if err != nil {
			return err
		}
		nodes[i] = &node{idx: i, name: fmt.Sprintf("node%03d", i), cs: cs}
		l := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: leaseNS, Name: leaseName(nodes[i].name)},
			Spec: coordv1.LeaseSpec{HolderIdentity: &nodes[i].name}}
		if nodes[i].lease, err = cs.CoordinationV1().Leases(leaseNS).Create(ctx, l, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating lease of %s: %w", nodes[i].name, err)
		}
	}
	fmt.Printf("leasebench: %d speakers renewing their own Lease, %d of them watching all Leases (informer each, own TCP connection, protobuf); %d CPUs\n",
		o.nodes, o.watchers, numCPU())
	for _, r := range o.periods {
		res, err := measure(ctx, env, nodes, o, r)
		if err != nil {
			return err
		}
		res.print(o)
	}
	return nil
}

// newClient returns a clientset with its own transport (a Dial function
// keeps client-go from sharing one connection among clients), as each
// speaker has its own.
func newClient(base *rest.Config) (*kubernetes.Clientset, error) {
	cfg := rest.CopyConfig(base)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	cfg.QPS, cfg.Burst = 1000, 1000
	return kubernetes.NewForConfig(cfg)
}

func leaseName(node string) string { return "ecmplb-speaker-" + node }

func nodeIndex(leaseName string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(leaseName, "ecmplb-speaker-node"))
	if err != nil {
		return -1
	}
	return i
}

// node is one simulated speaker's renewer.
type node struct {
	idx   int
	name  string
	cs    *kubernetes.Clientset
	lease *coordv1.Lease // last written; only the renew loop touches it

	mu        sync.Mutex
	paused    bool
	lastSent  time.Time  // renewTime of the last renewal written
	pauses    [][2]int64 // [start, end) in ns since the phase's origin; end 0 while paused
	writeLats []time.Duration
}

// pausedWithin reports whether the node was paused at any time in (a, b].
func (n *node) pausedWithin(a, b int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.pauses {
		if p[0] <= b && (p[1] == 0 || p[1] > a) {
			return true
		}
	}
	return false
}

// renew writes the node's Lease every r, from a random phase, until ctx ends.
func (n *node) renew(ctx context.Context, r time.Duration, st *phaseStats) {
	next := time.Now().Add(rand.N(r))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(r)
		if now := time.Now(); next.Before(now) { // fell behind: keep the period, drop the missed beats
			next = now.Add(r)
		}
		n.mu.Lock()
		paused := n.paused
		n.mu.Unlock()
		if paused {
			continue
		}
		l := n.lease.DeepCopy()
		sent := time.Now()
		mt := metav1.NewMicroTime(sent)
		l.Spec.RenewTime = &mt
		out, err := n.cs.CoordinationV1().Leases(leaseNS).Update(ctx, l, metav1.UpdateOptions{})
		lat := time.Since(sent)
		if err != nil {
			if ctx.Err() == nil {
				st.writeErrs.Add(1)
				if apierrors.IsConflict(err) {
					if fresh, err := n.cs.CoordinationV1().Leases(leaseNS).Get(ctx, l.Name, metav1.GetOptions{}); err == nil {
						n.lease = fresh
					}
				}
			}
			continue
		}
		n.lease = out
		st.writes.Add(1)
		n.mu.Lock()
		n.lastSent = sent
		n.writeLats = append(n.writeLats, lat)
		n.mu.Unlock()
	}
}

// watcher is one simulated speaker's informer over all Leases.
type watcher struct {
	mu       sync.Mutex
	lastRecv []int64 // per node, ns since the phase's origin, on receipt
}

// phaseStats gathers one R's figures.
type phaseStats struct {
	origin            time.Time
	writes, writeErrs atomic.Int64
	events            atomic.Int64
	rewatches         atomic.Int64 // watches started again while measuring

	mu       sync.Mutex
	delays   []time.Duration // renewTime -> receipt
	maxGap   time.Duration   // largest gap between receipts of a live node's renewals
	gapsOver map[int]int     // K -> gaps above K x R of live nodes

	trials []trial
}

// trial is one paused speaker: per watcher, K -> detection from the pause
// and from the last renewal's send.
type trial struct {
	fromStop, fromLast map[int][]time.Duration
}

func (st *phaseStats) ns(t time.Time) int64 { return t.Sub(st.origin).Nanoseconds() }

type result struct {
	r                                    time.Duration
	elapsed                              time.Duration
	writes, writeErrs, events, rewatches int64
	apiCPU, etcdCPU, selfCPU, machine    time.Duration
	delays, writeLats                    []time.Duration
	maxGap                               time.Duration
	gapsOver                             map[int]int
	fromStop, fromLast, trialMx          map[int][]time.Duration
	trials                               int
}

func measure(ctx context.Context, env *testenv.Env, nodes []*node, o options, r time.Duration) (*result, error) {
	log.Printf("R = %v: starting %d renewers and %d watchers", r, len(nodes), o.watchers)
	st := &phaseStats{origin: time.Now(), gapsOver: map[int]int{}}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, n := range nodes {
		n.mu.Lock()
		n.paused, n.pauses, n.writeLats = false, nil, nil
		n.mu.Unlock()
	}
	measuring := atomic.Bool{}
	watchers := make([]*watcher, o.watchers)
	var synced []cache.InformerSynced
	for wi := range watchers {
		w := &watcher{lastRecv: make([]int64, len(nodes))}
		watchers[wi] = w
		cs := nodes[wi].cs
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return cs.CoordinationV1().Leases(leaseNS).List(pctx, opts)
			},
			WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
				if measuring.Load() {
					st.rewatches.Add(1)
				}
				return cs.CoordinationV1().Leases(leaseNS).Watch(pctx, opts)
			},
		}
		inf := cache.NewSharedIndexInformer(lw, &coordv1.Lease{}, 0, cache.Indexers{})
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) {
				recv := time.Now()
				l, ok := obj.(*coordv1.Lease)
				if !ok || l.Spec.RenewTime == nil {
					return
				}
				j := nodeIndex(l.Name)
				if j < 0 || j >= len(nodes) {
					return
				}
				now := st.ns(recv)
				w.mu.Lock()
				prev := w.lastRecv[j]
				w.lastRecv[j] = now
				w.mu.Unlock()
				if !measuring.Load() {
					return
				}
				st.events.Add(1)
				delay := recv.Sub(l.Spec.RenewTime.Time)
				gap := time.Duration(now - prev)
				live := prev > 0 && !nodes[j].pausedWithin(prev, now)
				st.mu.Lock()
				st.delays = append(st.delays, delay)
				if live {
					st.maxGap = max(st.maxGap, gap)
					for _, k := range o.ks {
						if gap > time.Duration(k)*r {
							st.gapsOver[k]++
						}
					}
				}
				st.mu.Unlock()
			},
		})
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); inf.Run(pctx.Done()) }()
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(pctx.Done(), synced...) {
		return nil, fmt.Errorf("informers did not sync")
	}
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.renew(pctx, r, st) }()
	}
	time.Sleep(o.warmup) // load reaches its steady state; nothing is asserted on it

	cpu0, err := cpuOf(env)
	if err != nil {
		return nil, err
	}
	sys0, err := proc.ReadSystemCPU()
	if err != nil {
		return nil, err
	}
	st.writes.Store(0)
	st.writeErrs.Store(0)
	start := time.Now()
	measuring.Store(true)

	// Pause random speakers at random moments, at most maxTrials at once,
	// each long enough for the largest K to expire at every watcher.
	maxK := slices.Max(o.ks)
	hold := time.Duration(maxK)*r + time.Second
	var twg sync.WaitGroup
	slots := make(chan struct{}, o.maxTrials)
	deadline := start.Add(o.duration - hold)
	for time.Now().Before(deadline) {
		slots <- struct{}{}
		time.Sleep(rand.N(r) + r/4)
		n := nodes[rand.N(len(nodes))]
		n.mu.Lock()
		if n.paused {
			n.mu.Unlock()
			<-slots
			continue
		}
		t0 := time.Now()
		n.paused = true
		n.pauses = append(n.pauses, [2]int64{st.ns(t0), 0})
		pi := len(n.pauses) - 1
		n.mu.Unlock()
		twg.Add(1)
		go func() {
			defer twg.Done()
			defer func() { <-slots }()
			time.Sleep(hold)
			n.mu.Lock()
			lastSent := n.lastSent
			tr := trial{fromStop: map[int][]time.Duration{}, fromLast: map[int][]time.Duration{}}
			for _, w := range watchers {
				w.mu.Lock()
				recv := w.lastRecv[n.idx]
				w.mu.Unlock()
				for _, k := range o.ks {
					dead := time.Duration(recv) + time.Duration(k)*r // on the watcher's clock, since origin
					tr.fromStop[k] = append(tr.fromStop[k], dead-time.Duration(st.ns(t0)))
					tr.fromLast[k] = append(tr.fromLast[k], dead-time.Duration(st.ns(lastSent)))
				}
			}
			n.paused = false
			n.pauses[pi][1] = st.ns(time.Now())
			n.mu.Unlock()
			st.mu.Lock()
			st.trials = append(st.trials, tr)
			st.mu.Unlock()
		}()
	}
	twg.Wait()
	if d := time.Until(start.Add(o.duration)); d > 0 {
		time.Sleep(d)
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1, err := cpuOf(env)
	if err != nil {
		return nil, err
	}
	sys1, err := proc.ReadSystemCPU()
	if err != nil {
		return nil, err
	}
	res := &result{r: r, elapsed: elapsed, writes: st.writes.Load(), writeErrs: st.writeErrs.Load(), events: st.events.Load(),
		rewatches: st.rewatches.Load(), apiCPU: cpu1[0] - cpu0[0], etcdCPU: cpu1[1] - cpu0[1], selfCPU: cpu1[2] - cpu0[2],
		machine: sys1.Busy - sys0.Busy}
	stop()
	wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	res.delays, res.maxGap, res.gapsOver = st.delays, st.maxGap, st.gapsOver
	for _, n := range nodes {
		res.writeLats = append(res.writeLats, n.writeLats...)
	}
	res.fromStop, res.fromLast, res.trialMx = map[int][]time.Duration{}, map[int][]time.Duration{}, map[int][]time.Duration{}
	for _, tr := range st.trials {
		for _, k := range o.ks {
			res.fromStop[k] = append(res.fromStop[k], tr.fromStop[k]...)
			res.fromLast[k] = append(res.fromLast[k], tr.fromLast[k]...)
			res.trialMx[k] = append(res.trialMx[k], slices.Max(tr.fromStop[k]))
		}
	}
	res.trials = len(st.trials)
	return res, nil
}

// cpuOf returns the CPU used so far by kube-apiserver, etcd and this process.
func cpuOf(env *testenv.Env) ([3]time.Duration, error) {
	var out [3]time.Duration
	for i, pid := range []int{env.APIServerPID(), env.EtcdPID(), os.Getpid()} {
		s, err := proc.ReadStat(pid)
		if err != nil {
			return out, err
		}
		out[i] = s.CPU
	}
	return out, nil
}

func (res *result) print(o options) {
	sec := res.elapsed.Seconds()
	cores := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/sec) }
	fmt.Printf("\nR = %v, %d speakers, %d watchers, %.1f s measured\n", res.r, o.nodes, o.watchers, sec)
	fmt.Printf("| figure | value | goal |\n|---|---|---|\n")
	fmt.Printf("| Lease writes/s (failed) | %.0f (%d) | (kubelet's node Leases at %d nodes: %.0f/s) |\n", float64(res.writes)/sec, res.writeErrs, o.nodes, float64(o.nodes)/10)
	fmt.Printf("| write round trip p50 / p99 / max ms | %s |  |\n", pcts(res.writeLats))
	fmt.Printf("| kube-apiserver CPU, cores | %s | of %d |\n", cores(res.apiCPU), numCPU())
	fmt.Printf("| etcd CPU, cores | %s |  |\n", cores(res.etcdCPU))
	fmt.Printf("| bench CPU (%d renewers + %d informers), cores | %s |  |\n", o.nodes, o.watchers, cores(res.selfCPU))
	fmt.Printf("| whole machine busy, cores (others: busy - the three above) | %s (%s) |  |\n", cores(res.machine), cores(res.machine-res.apiCPU-res.etcdCPU-res.selfCPU))
	fmt.Printf("| watch events delivered/s, all watchers | %.0f |  |\n", float64(res.events)/sec)
	fmt.Printf("| watches the apiserver ended (informers watching again) | %d | 0 |\n", res.rewatches)
	fmt.Printf("| renewal send -> delivery p50 / p99 / max ms | %s |  |\n", pcts(res.delays))
	fmt.Printf("| largest gap between receipts of a live node | %.0f ms |  |\n", ms(res.maxGap))
	for _, k := range o.ks {
		th := time.Duration(k) * res.r
		worst := time.Duration(0)
		if len(res.trialMx[k]) > 0 {
			worst = slices.Max(res.trialMx[k])
		}
		verdict := "PASS"
		if worst > goalDetect || res.gapsOver[k] > 0 {
			verdict = "FAIL"
		}
		fmt.Printf("| K=%d (threshold %v): live nodes falsely dead (gaps > threshold) | %d | 0 |\n", k, th, res.gapsOver[k])
		fmt.Printf("| K=%d: detection from last renewal sent, p50 / p99 / max ms | %s | |\n", k, pcts(res.fromLast[k]))
		fmt.Printf("| K=%d: detection from the stop, %d stops x %d watchers, p50 / p99 / max ms | %s | max <= %.0f %s |\n",
			k, res.trials, o.watchers, pcts(res.fromStop[k]), ms(goalDetect), verdict)
	}
}

func pcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return fmt.Sprintf("%.1f / %.1f / %.1f", ms(p(0.5)), ms(p(0.99)), ms(s[len(s)-1]))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func numCPU() int { return goruntime.NumCPU() }
