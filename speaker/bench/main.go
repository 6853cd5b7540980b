// Command bench measures the speaker against a real API server and GoBGP routers in a
// network namespace, with the speaker as a separate process, and prints every figure
// with its goal and PASS or FAIL:
//
//	(a) latency from an EndpointSlice write to the route change on router 1, p50/p99
//	    over at least 500 changes per phase, with 1 Service and with N Services
//	    announced, each while ServiceBGPStatus writes are in flight and after they
//	    settled;
//	(b) the floor in the same run: the watch delivery of the same writes to a bare
//	    client, plus a bare GoBGP AddPath-to-router hop; ecmplb's p50/p99 as a ratio
//	    of the floor's;
//	(c) time for N new announcements to reach the routers after their EndpointSlices
//	    are written, and for their ServiceBGPStatus objects after the routes;
//	(d) the speaker's peak memory (VmHWM) with N Services and 2 peers, where the Go
//	    heap goes (a heap profile), and CPU seconds.
//
// Run as root (network namespaces); needs the binaries internal/testenv uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/speakerlab"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
	"github.com/ecmplb/ecmplb/speaker/status"
	spwatch "github.com/ecmplb/ecmplb/speaker/watch"
)

const benchNS = "bench"

// Goals of issue 12.
const (
	goalP99        = 10 * time.Millisecond
	goalFloorRatio = 1.5
	goalStatusLag  = 10 * time.Second
	goalPeakMiB    = 80
	minSamples     = 500
)

// The bare speaker of the floor measurement.
const (
	bareAddr   = "10.0.0.22"
	bareASN    = 65101
	barePrefix = "198.19.255.1/32"
)

type options struct {
	services, samples, workers int
	speakerBin                 string
	keep                       bool
	speakerExtra               []string
	speakerEnv                 []string
}

func main() {
	testrouter.MaybeRun()
	maybeRunChild()
	var o options
	flag.IntVar(&o.services, "services", 10000, "Services announced for the large measurements")
	flag.IntVar(&o.samples, "samples", minSamples, "EndpointSlice changes per latency phase")
	flag.IntVar(&o.workers, "workers", 32, "concurrent API writers")
	flag.StringVar(&o.speakerBin, "speaker-bin", "", "ecmplb-speaker binary (default: built as the images build it, CGO_ENABLED=0 -trimpath -ldflags=\"-s -w\")")
	flag.BoolVar(&o.keep, "keep-logs", false, "print the speaker log path and keep it")
	memLimit := flag.String("speaker-memory-limit", "", "pass --memory-limit to the speaker (empty: its default)")
	extra := flag.String("speaker-args", "", "more speaker flags, space-separated")
	env := flag.String("speaker-env", "", "environment of the speaker, space-separated NAME=VALUE (e.g. GOGC=50)")
	flag.Parse()
	if *memLimit != "" {
		o.speakerExtra = append(o.speakerExtra, "--memory-limit", *memLimit)
	}
	o.speakerExtra = append(o.speakerExtra, strings.Fields(*extra)...)
	o.speakerEnv = strings.Fields(*env)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	// An interrupt ends the run through its cleanup (namespaces, routers,
	// the speaker, the control plane); a second one exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		log.Print("interrupted: cleaning up (a second signal exits at once)")
		cancel()
		<-sigs
		os.Exit(130)
	}()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

func ipOf(i int) string { return fmt.Sprintf("198.18.%d.%d", i/256, i%256) }

// routerWatch counts the prefixes router i holds, apart from the probes.
type routerWatch struct {
	mu        sync.Mutex
	announced map[string]bool
	target    int
	full      chan time.Time
}

// sample is one route change.
type sample struct {
	ecmplb, watch time.Duration // write -> router event; write -> bare watch event
	inFlight      bool          // status writes were in flight when it was written
}

// phase is the samples of one latency measurement.
type phase struct {
	name    string
	samples []sample
}

func run(ctx context.Context, o options) error {
	tmp, err := os.MkdirTemp("", "ecmplb-bench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(tmp)
	}
	binDesc := "given with --speaker-bin"
	if o.speakerBin == "" {
		binDesc = "built as the images build it: CGO_ENABLED=0 -trimpath -ldflags=\"-s -w\""
		root, err := testenv.RepoRoot()
		if err != nil {
			return err
		}
		o.speakerBin = filepath.Join(tmp, "ecmplb-speaker")
		log.Printf("building %s", o.speakerBin)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", o.speakerBin, "./speaker")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the speaker: %w", err)
		}
	}
	n := o.services
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	env, err := testenv.StartProcess(sctx, testenv.Options{Namespaces: []string{"metallb-system", benchNS}})
	cancel()
	if err != nil {
		return err
	}
	defer env.Stop()

	// Router events: the probes' go to channels; the rest are counted per router.
	latPrefix := ipOf(n+1) + "/32"
	latCh := make(chan testrouter.Event, 1024)
	bareCh := make(chan testrouter.Event, 1024)
	watches := []*routerWatch{{announced: map[string]bool{}, full: make(chan time.Time, 1)}, {announced: map[string]bool{}, full: make(chan time.Time, 1)}}
	onEvent := func(i int, e testrouter.Event) {
		switch {
		case e.Prefix == "":
			return
		case e.Prefix == latPrefix:
			if i == 0 {
				latCh <- e
			}
			return
		case e.Prefix == barePrefix:
			if i == 0 {
				bareCh <- e
			}
			return
		}
		w := watches[i]
		w.mu.Lock()
		if e.Withdraw {
			delete(w.announced, e.Prefix)
		} else {
			w.announced[e.Prefix] = true
		}
		if w.target > 0 && len(w.announced) == w.target {
			w.target = 0
			w.full <- time.Unix(0, e.T)
		}
		w.mu.Unlock()
	}
	lab, err := speakerlab.Start(env, speakerlab.Options{Routers: 2, OnEvent: onEvent,
		ExtraPeers: []testrouter.Neighbor{{Address: bareAddr, ASN: bareASN}}})
	if err != nil {
		return err
	}
	defer lab.Close()
	if err := lab.CreateNode(ctx, nil); err != nil {
		return err
	}
	if err := lab.BasicConfig(ctx); err != nil {
		return err
	}
	logPath := filepath.Join(tmp, "speaker.log")
	const pprofAddr, metricsAddr = "127.0.0.1:6060", "127.0.0.1:7472"
	argv := append([]string{o.speakerBin, "--kubeconfig", env.Kubeconfig, "--node-name", speakerlab.NodeName,
		"--metrics-addr", metricsAddr, "--pprof-addr", pprofAddr, "--log-level", "warn"}, o.speakerExtra...)
	if err := lab.StartSpeaker(argv, o.speakerEnv, logPath); err != nil {
		return err
	}
	if o.keep {
		log.Printf("speaker log: %s", logPath)
	}
	if err := lab.WaitSessions(60 * time.Second); err != nil {
		return err
	}
	pid := lab.SpeakerPID()
	log.Printf("speaker pid %d up with 2 BGP sessions: %s", pid, strings.Join(argv[1:], " "))
	bare, err := startBare(lab.SpeakerNS, bareConfig{Local: bareAddr, ASN: bareASN, Router: speakerlab.RouterAddr(0),
		RouterASN: speakerlab.RouterASN, Prefix: barePrefix})
	if err != nil {
		return err
	}
	defer bare.stop()

	// The bench's own watches: the probe's EndpointSlice (the floor) and the
	// status objects.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	sliceEvents, err := watchProbeSlice(wctx, lab)
	if err != nil {
		return err
	}
	st := newStatusWatch(status.ObjectName(speakerlab.NodeName, benchNS+"/lat"))
	inf := cache.NewSharedIndexInformer(spwatch.NewListWatch(lab.MetalLB, "servicebgpstatuses", speakerlab.Namespace),
		&v1beta1.ServiceBGPStatus{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(st.handler())
	go inf.RunWithContext(wctx)
	if !cache.WaitForCacheSync(wctx.Done(), inf.HasSynced) {
		return fmt.Errorf("status watch did not sync")
	}

	p := prober{lab: lab, router: latCh, slices: sliceEvents, status: st}
	var phases []phase
	// 1 Service.
	if err := lab.CreateService(ctx, benchNS, "lat", ipOf(n+1), true); err != nil {
		return err
	}
	if err := lab.CreateEndpoints(ctx, benchNS, "lat", false); err != nil {
		return err
	}
	if err := p.warmup(ctx); err != nil {
		return err
	}
	log.Printf("latency with 1 Service")
	s, err := p.measure(ctx, o.samples, false, false)
	if err != nil {
		return fmt.Errorf("latency with 1 Service, status writes in flight: %w", err)
	}
	phases = append(phases, phase{"1 Service, status writes in flight", s})
	if s, err = p.measure(ctx, o.samples, true, false); err != nil {
		return fmt.Errorf("latency with 1 Service, status settled: %w", err)
	}
	phases = append(phases, phase{"1 Service, status settled", s})
	hop1, err := hopLatency(bare, bareCh, o.samples)
	if err != nil {
		return err
	}

	// N Services with IPs and no ready endpoint, then their EndpointSlices.
	log.Printf("creating %d Services", n)
	cpu0, _ := cpuSeconds(pid)
	if err := parallel(n, o.workers, func(i int) error {
		// Cluster policy: Local would need a health-check NodePort each (2,768 exist).
		return lab.CreateService(ctx, benchNS, fmt.Sprintf("svc-%d", i), ipOf(i), false)
	}); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // let the speaker see them (nothing to announce yet)
	for _, w := range watches {
		w.mu.Lock()
		w.target = len(w.announced) + n
		w.mu.Unlock()
	}
	st.expect(n)
	log.Printf("writing %d EndpointSlices", n)
	start := time.Now()
	if err := parallel(n, o.workers, func(i int) error {
		return lab.CreateEndpoints(ctx, benchNS, fmt.Sprintf("svc-%d", i), true)
	}); err != nil {
		return err
	}
	writes := time.Since(start)
	var reach [2]time.Time
	for i, w := range watches {
		select {
		case reach[i] = <-w.full:
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("router %d: not all %d prefixes after 5 minutes", i, n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	routesDone := reach[0]
	if reach[1].After(routesDone) {
		routesDone = reach[1]
	}
	cpuB, _ := cpuSeconds(pid)
	log.Printf("latency with %d Services while their status objects are written", n)
	s, err = p.measure(ctx, o.samples, false, true)
	if err != nil {
		return fmt.Errorf("latency with %d Services, status writes in flight: %w", n, err)
	}
	phases = append(phases, phase{fmt.Sprintf("%d Services, status writes in flight", n), s})
	var statusDone time.Time
	select {
	case statusDone = <-st.doneCh:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("the %d ServiceBGPStatus objects were not all written after 10 minutes (%d are)", n, st.count())
	case <-ctx.Done():
		return ctx.Err()
	}
	log.Printf("latency with %d Services, status settled", n)
	if s, err = p.measure(ctx, o.samples, true, false); err != nil {
		return fmt.Errorf("latency with %d Services, status settled: %w", n, err)
	}
	phases = append(phases, phase{fmt.Sprintf("%d Services, status settled", n), s})
	hopN, err := hopLatency(bare, bareCh, o.samples)
	if err != nil {
		return err
	}
	mem, _ := proc.ReadUsage(pid)
	hwm, rss := mib(mem.PeakRSS), mib(mem.RSS)
	cpu1, _ := cpuSeconds(pid)
	// The size of one status object as the apiserver serves it (JSON, with its
	// managed fields), for the cost at scale.
	objBytes := 0
	if raw, err := lab.MetalLB.Get().Namespace(speakerlab.Namespace).Resource("servicebgpstatuses").
		Name(status.ObjectName(speakerlab.NodeName, benchNS+"/svc-0")).DoRaw(ctx); err == nil {
		objBytes = len(raw)
	}
	// The apiserver's floor for the status work: a bare client writes the same
	// number of objects (one create with the status, as the speaker's writer) at the
	// speaker's default status concurrency and QPS, on a quiet apiserver.
	log.Printf("status floor: a bare client writes %d ServiceBGPStatus objects", n)
	floor, err := statusFloor(ctx, lab, "floor-node", n, status.DefaultWorkers, 500, 1000)
	if err != nil {
		return fmt.Errorf("status floor: %w", err)
	}
	// And at the apiserver's own pace (no client rate limit), with the CPU it
	// and etcd spend: what the machine allows at best.
	log.Printf("status floor without a rate limit: a bare client writes %d more", n)
	apiPID, etcdPID := lab.Env.APIServerPID(), lab.Env.EtcdPID()
	api0, _ := cpuSeconds(apiPID)
	etcd0, _ := cpuSeconds(etcdPID)
	floorFull, err := statusFloor(ctx, lab, "floor-node-2", n, status.DefaultWorkers, -1, 0)
	if err != nil {
		return fmt.Errorf("status floor without a rate limit: %w", err)
	}
	api1, _ := cpuSeconds(apiPID)
	etcd1, _ := cpuSeconds(etcdPID)
	apiPer, etcdPer := (api1-api0)/float64(n), (etcd1-etcd0)/float64(n)
	heap, heapErr := heapBreakdown(lab.SpeakerNS, "http://"+pprofAddr+"/debug/pprof/heap")

	// The report.
	var fails []string
	verdict := func(ok bool, what string) string {
		if ok {
			return "PASS"
		}
		fails = append(fails, what)
		return "FAIL"
	}
	fmt.Println()
	fmt.Printf("ecmplb speaker benchmark (real kube-apiserver, 2 GoBGP routers in a netns, speaker pid %d as a separate process)\n", pid)
	fmt.Printf("speaker binary %s (%s)\n", o.speakerBin, binDesc)
	fmt.Printf("speaker flags: %s; environment: %v\n", strings.Join(argv[1:], " "), o.speakerEnv)
	fmt.Printf("(a) EndpointSlice write -> route change on router 1 (goal: p99 <= %v, >= %d samples per phase)\n", goalP99, minSamples)
	fmt.Printf("(b) the floor: the same write's watch delivery to a bare client + a bare GoBGP AddPath -> router hop (goal: ecmplb <= %.1fx the floor)\n", goalFloorRatio)
	fmt.Printf("    bare AddPath hop: with 1 Service p50 %.2f ms p99 %.2f ms; with %d Services p50 %.2f ms p99 %.2f ms (%d samples each)\n",
		ms(pct(hop1, 50)), ms(pct(hop1, 99)), n, ms(pct(hopN, 50)), ms(pct(hopN, 99)), len(hop1))
	for i, ph := range phases {
		hop := hop1
		if i >= 2 {
			hop = hopN
		}
		// An in-flight phase is judged on its samples with status writes in
		// flight, a settled one on all.
		wantInFlight := strings.Contains(ph.name, "in flight")
		var e, wd []time.Duration
		inFlight := 0
		for _, s := range ph.samples {
			if s.inFlight {
				inFlight++
			}
			if s.inFlight || !wantInFlight {
				e, wd = append(e, s.ecmplb), append(wd, s.watch)
			}
		}
		p99 := pct(e, 99)
		fmt.Printf("    %-40s ecmplb p50 %6.2f ms p99 %6.2f ms max %6.2f ms | watch p50 %5.2f p99 %5.2f ms | %d of %d changes with status writes in flight\n",
			ph.name+":", ms(pct(e, 50)), ms(p99), ms(pct(e, 100)), ms(pct(wd, 50)), ms(pct(wd, 99)), inFlight, len(ph.samples))
		fmt.Printf("    %-40s p99 %.2f ms <= %v: %s", "", ms(p99), goalP99, verdict(p99 <= goalP99, ph.name+" p99"))
		if wantInFlight {
			fmt.Printf("; samples with status writes in flight %d >= %d: %s", inFlight, minSamples,
				verdict(inFlight >= minSamples, ph.name+" samples in flight"))
		} else {
			fmt.Printf("; samples %d >= %d: %s", len(e), minSamples, verdict(len(e) >= minSamples, ph.name+" samples"))
		}
		r50 := float64(pct(e, 50)) / float64(pct(wd, 50)+pct(hop, 50))
		r99 := float64(p99) / float64(pct(wd, 99)+pct(hop, 99))
		fmt.Printf("; vs floor p50 %.2fx p99 %.2fx: %s\n", r50, r99, verdict(r50 <= goalFloorRatio && r99 <= goalFloorRatio, ph.name+" floor ratio"))
	}
	lag := statusDone.Sub(routesDone)
	fmt.Printf("(c) %d EndpointSlices written in %.2f s; all %d prefixes on router 1 after %.2f s, router 2 after %.2f s\n",
		n, writes.Seconds(), n, reach[0].Sub(start).Seconds(), reach[1].Sub(start).Seconds())
	fmt.Printf("    all %d ServiceBGPStatus objects written %.2f s after the routes (goal <= %v): %s\n",
		n, lag.Seconds(), goalStatusLag, verdict(lag <= goalStatusLag, "status lag"))
	fmt.Printf("    one object is %d bytes of JSON with its managed fields; %d nodes x %d Services would be %d objects, %.1f GiB\n",
		objBytes, 100, n, 100*n, float64(100*n*objBytes)/(1<<30))
	fmt.Printf("    the apiserver's floor: a bare client writes %d such objects (one create each, %d workers, 500 QPS) in %.2f s on a quiet apiserver;\n",
		n, status.DefaultWorkers, floor.Seconds())
	fmt.Printf("    the speaker's took %.2f s from the first EndpointSlice write, beside those writes and the probes: %.2fx the floor\n",
		statusDone.Sub(start).Seconds(), statusDone.Sub(start).Seconds()/floor.Seconds())
	fmt.Printf("    without a client rate limit the bare client writes %d more in %.2f s; the apiserver spends %.2f ms of CPU per object, etcd %.2f ms:\n",
		n, floorFull.Seconds(), 1000*apiPer, 1000*etcdPer)
	fmt.Printf("    %d objects are at least %.2f s of both processes' CPU on this machine's %d cores, with nothing else running\n",
		n, float64(n)*(apiPer+etcdPer)/float64(runtime.NumCPU()), runtime.NumCPU())
	fmt.Printf("(d) speaker with %d Services, 2 peers: peak RSS (VmHWM) %.1f MiB (goal <= %d MiB): %s; current RSS %.1f MiB (anonymous %.1f, the binary's mapped pages %.1f)\n",
		n+1, hwm, goalPeakMiB, verdict(hwm <= goalPeakMiB, "peak RSS"), rss, mib(mem.RSSAnon), mib(mem.RSSFile))
	fmt.Printf("    CPU seconds: %.2f total, %.2f while announcing %d Services\n", cpu1, cpuB-cpu0, n)
	if heapErr != nil {
		fmt.Printf("    heap profile: %v\n", heapErr)
	} else {
		fmt.Print(heap)
	}
	if len(fails) > 0 {
		fmt.Printf("FAIL: %s\n", strings.Join(fails, "; "))
	} else {
		fmt.Println("PASS: every goal met")
	}
	return nil
}

// prober toggles the probe Service's endpoint readiness and times each change.
type prober struct {
	lab    *speakerlab.Lab
	router chan testrouter.Event
	slices chan sliceEvent
	status *statusWatch
	ready  bool
}

// warmup makes a few changes that are not counted: the first writes after a
// pause warm connections and caches.
func (p *prober) warmup(ctx context.Context) error {
	_, err := p.measure(ctx, 6, true, false)
	return err
}

// measure makes count changes. settled: before each, wait until the status
// object shows the previous one (no status write in flight); otherwise write the
// next change at once, while the previous change's status write is still in
// flight. burst: stop early once the expected burst of status objects is
// complete (the samples after would not have status writes in flight).
func (p *prober) measure(ctx context.Context, count int, settled, burst bool) ([]sample, error) {
	var out []sample
	for len(p.router) > 0 {
		<-p.router
	}
	for len(p.slices) > 0 {
		<-p.slices
	}
	inFlight := 0
	// Settled: count changes. In flight: until count of them had status
	// writes in flight (at most 3 x count changes).
	for i := 0; settled && len(out) < count || !settled && inFlight < count && len(out) < 3*count; i++ {
		if settled {
			if err := p.status.waitProbe(p.ready, 30*time.Second); err != nil {
				return nil, fmt.Errorf("change %d: %w", i, err)
			}
		}
		// Random phase: 0-2 ms after the previous change was seen.
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Millisecond))))
		p.ready = !p.ready
		busy := p.status.probeHas() != !p.ready || p.status.busy()
		t0 := time.Now()
		if err := p.lab.SetReady(ctx, benchNS, "lat", p.ready); err != nil {
			return nil, err
		}
		var s sample
		s.inFlight = busy
		timeout := time.After(30 * time.Second)
		for got := 0; got < 2; {
			select {
			case e := <-p.router:
				if e.Withdraw == p.ready {
					return nil, fmt.Errorf("change %d: router saw withdraw=%v, want %v", i, e.Withdraw, !p.ready)
				}
				s.ecmplb = time.Unix(0, e.T).Sub(t0)
				got++
			case e := <-p.slices:
				if e.ready != p.ready {
					continue // an older write's event
				}
				s.watch = e.at.Sub(t0)
				got++
			case <-timeout:
				return nil, fmt.Errorf("change %d: no route change or watch event within 30s", i)
			}
		}
		out = append(out, s)
		if s.inFlight {
			inFlight++
		}
		if burst && !p.status.busy() {
			break
		}
	}
	return out, nil
}

type sliceEvent struct {
	at    time.Time
	ready bool
}

// watchProbeSlice watches the probe's EndpointSlice as a bare client would.
func watchProbeSlice(ctx context.Context, lab *speakerlab.Lab) (chan sliceEvent, error) {
	w, err := lab.Client.DiscoveryV1().EndpointSlices(benchNS).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "lat-eps").String()})
	if err != nil {
		return nil, err
	}
	ch := make(chan sliceEvent, 1024)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			at := time.Now()
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok || len(s.Endpoints) == 0 || s.Endpoints[0].Conditions.Ready == nil {
				continue
			}
			select {
			case ch <- sliceEvent{at: at, ready: *s.Endpoints[0].Conditions.Ready}:
			default:
			}
		}
	}()
	return ch, nil
}

// statusWatch follows the ServiceBGPStatus objects: how many hold a written
// status (the probe's apart), when the expected number is reached, and the
// probe's own.
type statusWatch struct {
	probe string

	mu       sync.Mutex
	changed  *sync.Cond
	complete map[string]bool
	want     int
	probeOK  bool
	doneCh   chan time.Time
	lastSeen time.Time
}

func newStatusWatch(probe string) *statusWatch {
	s := &statusWatch{probe: probe, complete: map[string]bool{}, doneCh: make(chan time.Time, 1)}
	s.changed = sync.NewCond(&s.mu)
	return s
}

func (s *statusWatch) handler() cache.ResourceEventHandlerFuncs {
	set := func(obj any, present bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		o, ok := obj.(*v1beta1.ServiceBGPStatus)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lastSeen = time.Now()
		done := present && o.Status.Node != ""
		if o.Name == s.probe {
			s.probeOK = done
			s.changed.Broadcast()
			return
		}
		if done {
			s.complete[o.Name] = true
		} else {
			delete(s.complete, o.Name)
		}
		if s.want > 0 && len(s.complete) >= s.want {
			s.want = 0
			s.doneCh <- s.lastSeen
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { set(o, true) },
		UpdateFunc: func(_, o any) { set(o, true) },
		DeleteFunc: func(o any) { set(o, false) },
	}
}

// expect arms doneCh for n objects.
func (s *statusWatch) expect(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want = n
}

func (s *statusWatch) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.complete)
}

// busy: a burst of status objects is expected and not yet complete.
func (s *statusWatch) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want > 0
}

func (s *statusWatch) probeHas() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probeOK
}

// waitProbe waits until the probe's status object exists (with its status) iff
// announced.
func (s *statusWatch) waitProbe(announced bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { s.mu.Lock(); s.changed.Broadcast(); s.mu.Unlock() })
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.probeOK != announced {
		if time.Now().After(deadline) {
			return fmt.Errorf("the probe's ServiceBGPStatus did not follow (announced=%v) within %v", announced, timeout)
		}
		s.changed.Wait()
	}
	return nil
}

// hopLatency adds and deletes the bare speaker's prefix count times, timing
// each from just before the call to router 1's event.
func hopLatency(b *bareSpeaker, ch chan testrouter.Event, count int) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < count+6; i++ {
		add := i%2 == 0
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Millisecond))))
		t0, err := b.change(add)
		if err != nil {
			return nil, err
		}
		select {
		case e := <-ch:
			if e.Withdraw == add {
				return nil, fmt.Errorf("bare hop %d: router saw withdraw=%v", i, e.Withdraw)
			}
			if i >= 6 {
				out = append(out, time.Unix(0, e.T).Sub(t0))
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("bare hop %d: no route change within 30s", i)
		}
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the nearest-rank percentile.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (len(s)*p + 99) / 100
	idx = max(1, min(idx, len(s)))
	return s[idx-1]
}

func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

// cpuSeconds reads utime+stime of pid.
func cpuSeconds(pid int) (float64, error) {
	st, err := proc.ReadStat(pid)
	return st.CPU.Seconds(), err
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// statusFloor writes n ServiceBGPStatus objects of a node that does not exist
// as the speaker's writer does (one create that carries the status: the CRD
// has no status subresource), with workers at once through a client limited
// to qps/burst (no limit: qps < 0), and returns the time.
func statusFloor(ctx context.Context, lab *speakerlab.Lab, node string, n, workers int, qps float32, burst int) (time.Duration, error) {
	cfg := rest.CopyConfig(lab.Env.Config)
	cfg.QPS, cfg.Burst = qps, burst
	c, err := spwatch.NewMetalLBClient(cfg)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(n, workers, func(i int) error {
		key := fmt.Sprintf("%s/floor-%d", benchNS, i)
		obj := &v1beta1.ServiceBGPStatus{
			TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceBGPStatus"},
			ObjectMeta: metav1.ObjectMeta{Name: status.ObjectName(node, key), Namespace: speakerlab.Namespace, Labels: map[string]string{
				v1beta1.LabelNode: node, v1beta1.LabelServiceName: fmt.Sprintf("floor-%d", i), v1beta1.LabelServiceNamespace: benchNS}},
			Status: v1beta1.ServiceBGPStatusStatus{Node: node, ServiceName: fmt.Sprintf("floor-%d", i), ServiceNamespace: benchNS,
				Peers: []string{"peer1", "peer2"}, Prefixes: []string{ipOf(i) + "/32"}, EstablishedPeers: []string{"peer1", "peer2"}},
		}
		var got v1beta1.ServiceBGPStatus
		if err := c.Post().Namespace(speakerlab.Namespace).Resource("servicebgpstatuses").Body(obj).Do(ctx).Into(&got); err != nil {
			return err
		}
		if got.Status.Node != node {
			return fmt.Errorf("the apiserver dropped the status of a created ServiceBGPStatus (a status subresource?)")
		}
		return nil
	})
	return time.Since(start), err
}
