// Command bench measures ecmplb-controller against a real kube-apiserver and
// etcd (internal/testenv): a 1,000-Service backlog, 10,000 Services created
// at full speed, a restart holding every allocation, and the controller's
// peak memory with a breakdown of its heap at the peak (pprof). Each time is
// also read against its floor: what the apiserver itself needs for the
// requests the controller cannot avoid (a List of the Services and the
// status patches, with the pool annotation in them when it is on, made by a
// bare client at the controller's concurrency and QPS). The backlog's write
// floor is measured just before the controller starts, on as many Services
// of a class the controller ignores (then deleted), so the two meet the
// apiserver in the same state. The controller runs as a separate process,
// configured as deployed (webhooks served, on loopback).
//
//	go run ./controller/bench [-backlog 1000] [-burst 10000] [-controller-bin PATH]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	procfs "github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

const (
	benchNS = "bench"
	// floorNS holds the Services of the write floor measured just before
	// the backlog (outside the namespace the bench watches).
	floorNS = "bench-floor"
	poolNS  = "metallb-system"
)

func main() {
	if kc := os.Getenv(listOnceEnv); kc != "" {
		if err := listOnce(kc); err != nil {
			log.Fatal(err)
		}
		return
	}
	backlog := flag.Int("backlog", 1000, "Services waiting before the controller starts")
	burst := flag.Int("burst", 10000, "Services created at full speed while the controller runs")
	workers := flag.Int("load-workers", 32, "parallel creators in the load generator")
	bin := flag.String("controller-bin", "", "ecmplb-controller binary (default: built as the images build it, CGO_ENABLED=0 -trimpath -ldflags=\"-s -w\")")
	ctrlWorkers := flag.Int("controller-workers", 32, "controller --workers")
	ctrlQPS := flag.Int("controller-qps", 5000, "controller --kube-api-qps")
	keep := flag.Bool("keep-logs", false, "keep the working directory with logs")
	hardKill := flag.Bool("kill", false, "restart with SIGKILL instead of SIGTERM (the Lease must then expire first)")
	// The controller annotates by default (as MetalLB), in the status patch:
	// the floors' patches carry the annotation too.
	poolAnnotation := flag.Bool("pool-annotation", true, "controller --pool-annotation (the annotation rides in the status patch; the controller's default)")
	createOnly := flag.Bool("create-only", false, "only time creating the backlog, with no controller (diagnostics)")
	noAdjacentFloor := flag.Bool("no-adjacent-floor", false, "read the backlog against the write floor at the end of the run, not one measured just before the controller starts (which creates as many Services again; diagnostics runs with large backlogs)")
	restartBins := flag.String("restart-bins", "", "comma-separated controller binaries the restarts cycle through (diagnostics: compares builds on the same Services)")
	restarts := flag.Int("restarts", 3, "controller restarts on the same Services (the restart goal is read on their median)")
	restartProfile := flag.String("restart-cpuprofile", "", "write a CPU profile of the restarted controller's first second to this file (diagnostics)")
	backlogProfile := flag.String("backlog-cpuprofile", "", "write a CPU profile of the first controller's first two seconds (the backlog) to this file (diagnostics)")
	flag.Parse()
	log.SetFlags(0)

	ctx := context.Background()
	work, err := os.MkdirTemp("", "ecmplb-bench-controller-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("logs in", work)
	}
	binDesc := "binary " + *bin
	if *bin == "" {
		binDesc = "built as the images build it: CGO_ENABLED=0 -trimpath -ldflags=\"-s -w\""
		*bin = filepath.Join(work, "ecmplb-controller")
		root, err := testenv.RepoRoot()
		if err != nil {
			log.Fatal(err)
		}
		// As the images build it (deploy/images.GoBuild): static and
		// stripped. A default build links libc dynamically (cgo), whose
		// pages count in the resident set the bench reads.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", *bin, "./controller")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			log.Fatalf("building the controller: %v", err)
		}
	}

	env, err := testenv.StartProcess(ctx, testenv.Options{Dir: filepath.Join(work, "env")})
	if err != nil {
		log.Fatalf("control plane: %v", err)
	}
	defer env.Stop()
	b := &bench{env: env, bin: *bin, binDesc: binDesc, work: work, ctrlArgs: []string{
		"--workers=" + strconv.Itoa(*ctrlWorkers),
		"--kube-api-qps=" + strconv.Itoa(*ctrlQPS), "--kube-api-burst=" + strconv.Itoa(2**ctrlQPS),
		"--pool-annotation=" + strconv.FormatBool(*poolAnnotation)},
		createOnly: *createOnly, adjacentFloor: !*noAdjacentFloor, hardKill: *hardKill, restartProfile: *restartProfile, backlogProfile: *backlogProfile, restarts: max(*restarts, 1),
		restartBins: splitNonEmpty(*restartBins),
		workers:     *ctrlWorkers, qps: *ctrlQPS, annotate: *poolAnnotation}
	if err := b.run(ctx, *backlog, *burst, *workers); err != nil {
		log.Printf("FAILED: %v", err)
		env.Stop()
		os.Exit(1)
	}
}

type bench struct {
	env      *testenv.Env
	bin      string
	binDesc  string // how the binary was made
	work     string
	ctrlArgs []string
	// createOnly stops after timing the backlog creation (diagnostics).
	createOnly bool
	// adjacentFloor: the backlog's write floor is measured just before the
	// controller starts (adjacentWriteFloor), else at the end of the run.
	adjacentFloor bool
	// hardKill restarts the controller with SIGKILL.
	hardKill bool
	// restarts is how many times the controller is restarted.
	restarts int
	// restartBins, if set, are the binaries the restarts cycle through.
	restartBins []string
	// restartProfile is where the restarted controller's CPU profile goes.
	restartProfile string
	// backlogProfile is where the first controller's CPU profile goes.
	backlogProfile string
	cs             *kubernetes.Clientset
	// csPlain is cs asking for uncompressed responses.
	csPlain *kubernetes.Clientset
	c       client.Client
	// workers and qps are the controller's; the floors use the same.
	workers, qps int
	annotate     bool
	// webhookPort serves the controller's webhooks on loopback.
	webhookPort int

	mu      sync.Mutex
	ips     map[string]string // Service -> IP
	holder  map[string]string // IP -> Service
	changed []string          // Services whose IP changed
	dups    []string          // IPs seen on two Services at once
}

// proc is a running controller process.
type proc struct {
	rss     string // resident set at stop, by kind
	cmd     *exec.Cmd
	started time.Time
	done    chan error
}

func (b *bench) startController(name, bin, pprofAddr string) (*proc, error) {
	logf, err := os.Create(filepath.Join(b.work, name+".log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + b.env.Kubeconfig, "--namespace=" + poolNS,
		"--metrics-addr=0", "--health-addr=0", "--leader-elect=true",
		"--webhook-addr=127.0.0.1:" + strconv.Itoa(b.webhookPort), "--webhook-extra-dns-names=localhost",
		"--webhook-cert-dir=" + filepath.Join(b.work, name+"-certs"), "--pprof-addr=" + pprofAddr}, b.ctrlArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	return p, nil
}

// cpuSplit is the CPU time, in seconds, of the apiserver, etcd and this
// process (the load generator and the watch that times the controller).
type cpuSplit [3]float64

func (b *bench) cpuSplit() cpuSplit {
	return cpuSplit{cpuSeconds(b.env.APIServerPID()), cpuSeconds(b.env.EtcdPID()), cpuSeconds(os.Getpid())}
}

// since says how much CPU each used after c0.
func (c cpuSplit) since(c0 cpuSplit) string {
	return fmt.Sprintf("kube-apiserver %.2fs, etcd %.2fs, bench %.2fs", c[0]-c0[0], c[1]-c0[1], c[2]-c0[2])
}

// restartBin is the binary of restart i (1 is the first): the controller's,
// or, for diagnostics, the -restart-bins in turn.
func (b *bench) restartBin(i int) string {
	if len(b.restartBins) == 0 {
		return b.bin
	}
	return b.restartBins[(i-1)%len(b.restartBins)]
}

// restartOnce starts controller i on the Services as they are, creates one
// more Service and returns how long after the process started it had its
// IP; then it stops the controller (SIGTERM, the Lease released).
func (b *bench) restartOnce(ctx context.Context, i int) (time.Duration, int, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return 0, 0, err
	}
	p, err := b.startController(fmt.Sprintf("controller-%d", i+1), b.restartBin(i), addr)
	if err != nil {
		return 0, 0, err
	}
	name := fmt.Sprintf("after-restart-%d", i)
	if _, err := b.cs.CoreV1().Services(benchNS).Create(ctx, benchService(name), metav1.CreateOptions{}); err != nil {
		_, _ = p.stop(syscall.SIGKILL)
		return 0, 0, err
	}
	deadline := time.Now().Add(120 * time.Second)
	for b.allocated(name) == 0 {
		if time.Now().After(deadline) {
			_, _ = p.stop(syscall.SIGKILL)
			return 0, 0, fmt.Errorf("restart %d: the new Service got no IP within 120s", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(p.started)
	fmt.Printf("diagnostics: restart %d (%s): %.3fs, controller CPU %.2fs by then\n", i, filepath.Base(p.cmd.Path), d.Seconds(), cpuSeconds(p.cmd.Process.Pid))
	fmt.Printf("  after the process started: %s\n", restartPhases(filepath.Join(b.work, fmt.Sprintf("controller-%d.log", i+1)), p.started, name))
	time.Sleep(2 * time.Second) // its writes settle before the next stop
	hwm, err := p.stop(syscall.SIGTERM)
	if err != nil {
		return 0, 0, err
	}
	fmt.Printf("  peak RSS (VmHWM) %.1f MiB\n", float64(hwm)/1024)
	return d, hwm, nil
}

// listSample times one List of every Service by the bare client (gzipped,
// as the controller lists them), then lets the apiserver settle a moment
// before the restart it goes with.
func (b *bench) listSample(ctx context.Context) (time.Duration, error) {
	t := time.Now()
	if _, err := b.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
		return 0, fmt.Errorf("list sample: %w", err)
	}
	d := time.Since(t)
	time.Sleep(500 * time.Millisecond)
	return d, nil
}

// median is the middle value of ds (the upper one of an even count); ds
// is sorted in place.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func secondsList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.3fs", d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// vmHWM reads the peak resident set size of a running process, in KiB.
func vmHWM(pid int) (int, error) {
	u, err := procfs.ReadUsage(pid)
	if err != nil {
		return 0, err
	}
	if u.PeakRSS == 0 {
		return 0, fmt.Errorf("pid %d: no peak RSS (VmHWM)", pid)
	}
	return int(u.PeakRSS / 1024), nil
}

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	st, _ := procfs.ReadStat(pid)
	return st.CPU.Seconds()
}

// stop reads the peak memory, then ends the controller with sig (on
// SIGTERM it releases its Lease on the way out).
func (p *proc) stop(sig syscall.Signal) (int, error) {
	hwm, err := vmHWM(p.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	if st, err := procfs.ReadStatus(p.cmd.Process.Pid); err == nil {
		// What is resident now: the heap and stacks (anonymous) and the
		// executable's pages (file-backed), which count in VmHWM too.
		p.rss = fmt.Sprintf("RSS now %s: anonymous %s, file-backed (binary) %s", st["VmRSS"], st["RssAnon"], st["RssFile"])
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return hwm, fmt.Errorf("controller did not stop within 30s")
	}
	return hwm, nil
}

func (b *bench) watch(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(b.cs, 0, informers.WithNamespace(benchNS))
	inf := f.Core().V1().Services().Informer()
	update := func(obj any) {
		s, ok := obj.(*corev1.Service)
		if !ok || len(s.Status.LoadBalancer.Ingress) == 0 {
			return
		}
		ip := s.Status.LoadBalancer.Ingress[0].IP
		b.mu.Lock()
		defer b.mu.Unlock()
		if old, ok := b.ips[s.Name]; ok && old != ip {
			b.changed = append(b.changed, fmt.Sprintf("%s: %s -> %s", s.Name, old, ip))
			delete(b.holder, old)
		}
		if other, ok := b.holder[ip]; ok && other != s.Name {
			b.dups = append(b.dups, fmt.Sprintf("%s on %s and %s", ip, other, s.Name))
		}
		b.ips[s.Name], b.holder[ip] = ip, s.Name
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, n any) { update(n) },
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return nil
}

func (b *bench) allocated(names ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if names == nil {
		return len(b.ips)
	}
	n := 0
	for _, name := range names {
		if _, ok := b.ips[name]; ok {
			n++
		}
	}
	return n
}

// waitAllocated waits until n Services have an IP, returning when it happened.
func (b *bench) waitAllocated(n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b.allocated() >= n {
			return time.Now(), nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("only %d of %d Services have an IP after %s", b.allocated(), n, timeout)
}

func benchService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: new(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// create makes Services prefix-0..n-1 with the given number of workers;
// it returns when the last create returned.
func (b *bench) create(ctx context.Context, prefix string, n, workers int) (time.Time, error) {
	err := forEach(n, workers, func(i int) error {
		_, err := b.cs.CoreV1().Services(benchNS).Create(ctx, benchService(fmt.Sprintf("%s-%05d", prefix, i)), metav1.CreateOptions{})
		return err
	})
	return time.Now(), err
}

// forEach calls f(0..n-1) from the given number of workers and returns the
// first error.
func forEach(n, workers int, f func(i int) error) error {
	idx := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return firstErr
}

// ignoredClass is a loadBalancerClass the controller does not handle.
const ignoredClass = "bench.ecmplb.io/ignored"

// adjacentWriteFloor times the backlog's writes on n Services of a class
// the controller ignores, in floorNS, right before the controller starts:
// the same status patches, workers and QPS as the floor at the end of the
// run, on an apiserver in the state the backlog meets (the floor at the end,
// after 11,000 more Services, moved between 1.4 and 2.1 s from run to run).
// The Services are deleted again before it returns, so the controller
// starts on what it started on before.
func (b *bench) adjacentWriteFloor(ctx context.Context, n int, body func(i int) []byte) (time.Duration, error) {
	class := ignoredClass
	names := serviceNames("floor", n)
	err := forEach(n, b.workers, func(i int) error {
		svc := benchService(names[i])
		svc.Namespace, svc.Spec.LoadBalancerClass = floorNS, &class
		_, err := b.cs.CoreV1().Services(floorNS).Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write floor: %w", err)
	}
	c0 := b.cpuSplit()
	d, err := patchFloor(ctx, b.cs, floorNS, names, b.workers, "status", body)
	if err != nil {
		return 0, err
	}
	fmt.Printf("  cpu during the floor's patches: %s\n", b.cpuSplit().since(c0))
	err = forEach(n, b.workers, func(i int) error {
		return b.cs.CoreV1().Services(floorNS).Delete(ctx, names[i], metav1.DeleteOptions{})
	})
	if err != nil {
		return 0, fmt.Errorf("write floor: %w", err)
	}
	return d, nil
}

func (b *bench) run(ctx context.Context, backlog, burst, workers int) error {
	cfg := rest.CopyConfig(b.env.Config)
	cfg.QPS, cfg.Burst = float32(b.qps), 2*b.qps
	var err error
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	if b.cs, err = kubernetes.NewForConfig(pcfg); err != nil {
		return err
	}
	// The same client asking for uncompressed responses: kube-apiserver
	// gzips a List over 128 KiB when the client accepts it.
	plain := rest.CopyConfig(pcfg)
	plain.DisableCompression = true
	if b.csPlain, err = kubernetes.NewForConfig(plain); err != nil {
		return err
	}
	if b.c, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return err
	}
	b.ips, b.holder = map[string]string{}, map[string]string{}
	for _, ns := range []string{benchNS, floorNS} {
		if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	// A /16: 65,536 addresses, far more than the Services created.
	pool := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "bench-pool"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.200.0.0/16"}}}
	if err := b.c.Create(ctx, pool); err != nil {
		return err
	}
	// The webhooks as deployed (after the pool: they admit metallb.io
	// objects and fail closed until the controller serves them).
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	if b.webhookPort, err = testenv.FreeLoopbackPort(); err != nil {
		return err
	}
	if _, err := testenv.InstallWebhooksFromFile(ctx, b.env.Config, filepath.Join(root, "deploy", "ecmplb.yaml"),
		fmt.Sprintf("https://localhost:%d", b.webhookPort)); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := b.watch(watchCtx); err != nil {
		return err
	}
	fmt.Printf("apiserver: kube-apiserver v1.34.4 + etcd v3.6.4 on loopback, --enable-priority-and-fairness=false, "+
		"--max-requests-inflight=2000, --max-mutating-requests-inflight=1000; load generator QPS 5000, %d workers\n", workers)
	fmt.Printf("controller: separate process (%s), webhooks on loopback, %s\n", b.binDesc, strings.Join(b.ctrlArgs, " "))
	var peak []int

	// 1. Backlog: Services waiting before the controller starts.
	t0 := time.Now()
	apiCPU := cpuSeconds(b.env.APIServerPID())
	t1, err := b.create(ctx, "backlog", backlog, workers)
	if err != nil {
		return fmt.Errorf("creating backlog: %w", err)
	}
	fmt.Printf("load: %d Services created in %.3fs with no controller running (%.0f/s; kube-apiserver CPU %.1fs)\n",
		backlog, t1.Sub(t0).Seconds(), float64(backlog)/t1.Sub(t0).Seconds(), cpuSeconds(b.env.APIServerPID())-apiCPU)
	if b.createOnly {
		return nil
	}
	lb, err := listFloor(ctx, b.cs, b.csPlain, b.env.APIServerPID())
	if err != nil {
		return err
	}
	fmt.Println(lb)
	listBacklog := lb.best()
	// With the pool annotation on, the controller writes it in the status
	// patch (one request per allocation): so does the floor.
	body, what := statusBody, "status patches"
	if b.annotate {
		body, what = func(ip string) []byte { return shapeBody(ip, "floor-pool") }, "status patches with the pool annotation"
	}
	var writeFloor time.Duration
	if b.adjacentFloor {
		if writeFloor, err = b.adjacentWriteFloor(ctx, backlog, func(i int) []byte { return body(floorIP(i)) }); err != nil {
			return err
		}
		fmt.Printf("floor: %d %s %.3fs (%d workers, QPS %d), on Services of a class the controller ignores, just before it started\n",
			backlog, what, writeFloor.Seconds(), b.workers, b.qps)
	}
	count0, err := apiCounts(ctx, b.cs)
	if err != nil {
		return err
	}
	addr1, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	c0 := b.cpuSplit()
	p1, err := b.startController("controller-1", b.bin, addr1)
	if err != nil {
		return err
	}
	backlogProfiled := make(chan error, 1)
	if b.backlogProfile != "" {
		go func() { backlogProfiled <- cpuProfile(ctx, addr1, 2*time.Second, b.backlogProfile) }()
	} else {
		backlogProfiled <- nil
	}
	done, err := b.waitAllocated(backlog, 120*time.Second)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	backlogCPU := b.cpuSplit().since(c0)
	atLastIP, err := apiCounts(ctx, b.cs)
	if err != nil {
		return err
	}
	if err := <-backlogProfiled; err != nil {
		fmt.Printf("diagnostics: backlog CPU profile: %v\n", err)
	} else if b.backlogProfile != "" {
		fmt.Printf("diagnostics: backlog CPU profile (two seconds from the pprof listener's start) in %s; profiling costs the controller CPU, so this run's backlog figures are not comparable\n", b.backlogProfile)
	}
	// Heap profiles from here on (not while a timed start is running: each
	// costs the controller some CPU). A profile shows the heap as of the
	// last GC, and the live heap only grows with the Services cached.
	heap1 := &heapSampler{addr: addr1}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { heap1.run(sampleCtx, 5*time.Second); close(sampled) }()
	ctrlCPU := cpuSeconds(p1.cmd.Process.Pid)
	backlogTime := done.Sub(p1.started)
	fmt.Printf("backlog: %d Services had an IP %.3fs after the controller process started\n", backlog, backlogTime.Seconds())
	fmt.Printf("  after the process started: %s, last IP +%dms; controller CPU %.2fs by then\n",
		restartPhases(filepath.Join(b.work, "controller-1.log"), p1.started, "backlog-*"), backlogTime.Milliseconds(), ctrlCPU)
	fmt.Printf("  cpu from the start to the last IP: %s\n", backlogCPU)
	// The Events trail the status (the controller holds them while it
	// writes): one IPAllocated per Service.
	count1, sent, all, err := waitEvents(ctx, b.cs, count0, backlog, 30*time.Second)
	if err != nil {
		stopSampling()
		return err
	}
	fmt.Printf("  Events: %.0f of the %d IPAllocated sent by the last IP, %.0f %.3fs after it%s\n",
		atLastIP[eventsCreated]-count0[eventsCreated], backlog, count1[eventsCreated]-count0[eventsCreated], sent.Sub(done).Seconds(), missing(all))
	perSvc, fewer := perService(count0, count1, backlog)
	fmt.Printf("requests per backlog Service (apiserver_request_total, controller start included): %s\n", perSvc)
	fmt.Printf("  fewer: %s\n", fewer)

	// 2. Burst: Services created at full speed with the controller running.
	cpu0 := [3]float64{cpuSeconds(p1.cmd.Process.Pid), cpuSeconds(b.env.APIServerPID()), cpuSeconds(b.env.EtcdPID())}
	first := time.Now()
	last, err := b.create(ctx, "burst", burst, workers)
	if err != nil {
		stopSampling()
		return fmt.Errorf("creating burst: %w", err)
	}
	done, err = b.waitAllocated(backlog+burst, 180*time.Second)
	if err != nil {
		stopSampling()
		return fmt.Errorf("burst: %w", err)
	}
	burstAfterLast := done.Sub(last)
	fmt.Printf("cpu during burst: controller %.1fs, kube-apiserver %.1fs, etcd %.1fs\n",
		cpuSeconds(p1.cmd.Process.Pid)-cpu0[0], cpuSeconds(b.env.APIServerPID())-cpu0[1], cpuSeconds(b.env.EtcdPID())-cpu0[2])
	fmt.Printf("burst: %d Services created in %.3fs (%.0f/s); all had an IP %.3fs after the last create (%.3fs after the first)\n",
		burst, last.Sub(first).Seconds(), float64(burst)/last.Sub(first).Seconds(), burstAfterLast.Seconds(), done.Sub(first).Seconds())

	counted, sent, all, err := waitEvents(ctx, b.cs, count0, backlog+burst, 60*time.Second)
	if err != nil {
		stopSampling()
		return err
	}
	fmt.Printf("  Events: %.0f of the %d IPAllocated sent %.3fs after the last IP%s\n",
		counted[eventsCreated]-count1[eventsCreated], burst, sent.Sub(done).Seconds(), missing(all))

	// 3. Restart holding every allocation.
	time.Sleep(time.Second) // let pool status settle
	count2, err := apiCounts(ctx, b.cs)
	if err != nil {
		stopSampling()
		return err
	}
	perSvc, _ = perService(count1, count2, burst)
	fmt.Printf("requests per burst Service besides its create: %s\n", perSvc)
	stopSampling()
	<-sampled
	_ = heap1.sample(ctx) // the last word before it stops
	b.mu.Lock()
	before := make(map[string]string, len(b.ips))
	for k, v := range b.ips {
		before[k] = v
	}
	b.mu.Unlock()
	sig := syscall.SIGTERM
	if b.hardKill {
		sig = syscall.SIGKILL
	}
	hwm, err := p1.stop(sig)
	if err != nil {
		return err
	}
	peak = append(peak, hwm)
	la, err := listFloor(ctx, b.cs, b.csPlain, b.env.APIServerPID())
	if err != nil {
		return err
	}
	fmt.Println(la)
	listAll, listedAll := la.best(), la.n
	procFloor, procErr := processFloor(b.env.Kubeconfig)
	if procErr != nil {
		fmt.Printf("diagnostics: list process: %v\n", procErr)
	} else {
		fmt.Printf("diagnostics: a new bare client process listing the same Services once, exec to exit: %.3fs (fastest of 3)\n", procFloor.Seconds())
	}
	for _, limit := range []int64{1000, 5000} {
		if d, n, err := pagedListTime(ctx, b.cs, limit); err == nil {
			fmt.Printf("diagnostics: the same %d Services in consistent pages of %d (bare client, fastest of 3): %.3fs\n", n, limit, d.Seconds())
		} else {
			fmt.Printf("diagnostics: paged list: %v\n", err)
		}
	}
	if d, n, err := watchListTime(ctx, b.cs); err == nil {
		fmt.Printf("diagnostics: the same %d Services as a watch stream up to the initial-events bookmark (how an informer with WatchListClient syncs): %.3fs\n", n, d.Seconds())
	} else {
		fmt.Printf("diagnostics: watch-list: %v\n", err)
	}
	// The restart's floor is read on the same statistic as the restart: a
	// List (gzipped, as the controller asks) just before each restart, and
	// their median against the restarts' median.
	l, err := b.listSample(ctx)
	if err != nil {
		return err
	}
	restartLists := []time.Duration{l}
	addr2, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	p2, err := b.startController("controller-2", b.restartBin(1), addr2)
	if err != nil {
		return err
	}
	profiled := make(chan error, 1)
	if b.restartProfile != "" {
		go func() { profiled <- cpuProfile(ctx, addr2, time.Second, b.restartProfile) }()
	} else {
		profiled <- nil
	}
	if _, err := b.cs.CoreV1().Services(benchNS).Create(ctx, benchService("after-restart"), metav1.CreateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(120 * time.Second)
	for b.allocated("after-restart") == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("restart: the new Service got no IP within 120s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	restartTime := time.Since(p2.started)
	restartCPU := cpuSeconds(p2.cmd.Process.Pid)
	if err := <-profiled; err != nil {
		fmt.Printf("diagnostics: restart CPU profile: %v\n", err)
	} else if b.restartProfile != "" {
		fmt.Printf("diagnostics: restart CPU profile (the first second from the pprof listener's start) in %s\n", b.restartProfile)
	}
	heap2 := &heapSampler{addr: addr2}
	sampleCtx, stopSampling = context.WithCancel(ctx)
	sampled = make(chan struct{})
	go func() { heap2.run(sampleCtx, 500*time.Millisecond); close(sampled) }()
	time.Sleep(3 * time.Second) // any re-allocation would show up by now
	b.mu.Lock()
	changedIPs := 0
	for k, v := range before {
		if b.ips[k] != v {
			changedIPs++
		}
	}
	if b.holder[b.ips["after-restart"]] != "after-restart" {
		changedIPs++
	}
	changes, dups := len(b.changed), append([]string(nil), b.dups...)
	b.mu.Unlock()
	fmt.Printf("restart (%s): controller restarted holding %d allocations; the new Service had its IP %.3fs after the process started (controller CPU %.2fs by then); IPs changed: %d (IP changes seen by watch: %d)\n",
		sig, len(before), restartTime.Seconds(), restartCPU, changedIPs, changes)
	fmt.Printf("  after the process started: %s\n", restartPhases(filepath.Join(b.work, "controller-2.log"), p2.started, "after-restart"))
	stopSampling()
	<-sampled
	_ = heap2.sample(ctx)
	hwm, err = p2.stop(syscall.SIGTERM)
	if err != nil {
		return err
	}
	peak = append(peak, hwm)
	// More restarts on the same Services: one start is one sample of a
	// figure that moves with the machine's other work; the goal is read
	// on their median.
	restartTimes := []time.Duration{restartTime}
	for i := 2; i <= b.restarts; i++ {
		l, err := b.listSample(ctx)
		if err != nil {
			return err
		}
		restartLists = append(restartLists, l)
		d, hwm, err := b.restartOnce(ctx, i)
		if err != nil {
			return err
		}
		restartTimes = append(restartTimes, d)
		peak[1] = max(peak[1], hwm)
	}
	if len(restartTimes) > 1 {
		b.mu.Lock()
		changesAfter := len(b.changed)
		b.mu.Unlock()
		restartTime = median(restartTimes)
		fmt.Printf("restarts: %d, the new Service's IP after %s; median %.3fs; IP changes seen by watch since the first restart: %d\n",
			len(restartTimes), secondsList(restartTimes), restartTime.Seconds(), changesAfter-changes)
	}
	maxHWM := max(peak[0], peak[1])
	fmt.Printf("memory: controller peak RSS (VmHWM) %.1f MiB (first run with %d Services), %.1f MiB (the largest of %d restarts, with %d to %d)\n",
		float64(peak[0])/1024, backlog+burst, float64(peak[1])/1024, b.restarts, backlog+burst+1, backlog+burst+b.restarts)
	fmt.Printf("first run at stop: %s\n", p1.rss)
	fmt.Print("first run: ")
	heap1.report(os.Stdout, 12)
	fmt.Printf("restart at stop: %s\n", p2.rss)
	fmt.Print("restart: ")
	heap2.report(os.Stdout, 8)
	if len(dups) > 0 {
		fmt.Printf("DUPLICATES: %v\n", dups)
	}

	// 4. Floors for the writes, with no controller running: the backlog
	// Services' status (and annotation) patched as the controller patches
	// them, to values they do not hold yet.
	stopWatch()
	names := serviceNames("backlog", backlog)
	statusFloor, err := patchFloor(ctx, b.cs, benchNS, names, b.workers, "status", func(i int) []byte { return body(floorIP(i)) })
	if err != nil {
		return err
	}
	single, err := patchFloor(ctx, b.cs, benchNS, []string{"after-restart"}, 1, "status", func(int) []byte { return body(floorIP(backlog)) })
	if err != nil {
		return err
	}
	role := "diagnostics; "
	if !b.adjacentFloor {
		writeFloor, role = statusFloor, ""
	}
	listSamples := secondsList(restartLists)
	listRestart := median(restartLists)
	fmt.Printf("floor: List of the %d Services (bare client, protobuf, gzipped) just before each restart: %s; median %.3fs (the fastest List above %.3fs)\n",
		listedAll, listSamples, listRestart.Seconds(), listAll.Seconds())
	backlogFloor, restartFloor := listBacklog+writeFloor, listRestart+single
	if ev, err := eventFloor(ctx, b.env.Config, b.env.APIServerPID(), 500, 2); err != nil {
		fmt.Printf("diagnostics: event floor: %v\n", err)
	} else {
		fmt.Printf("diagnostics: kube-apiserver CPU for 500 Events created one at a time by a bare client (as the controller's event sink writes them), rounds alternating: %s\n", ev)
	}
	fmt.Printf("floor: %d %s %.3fs on the backlog Services at the end of the run (%s%d workers, QPS %d); one %.3fs\n",
		backlog, what, statusFloor.Seconds(), role, b.workers, b.qps, single.Seconds())
	backlogRatio := backlogTime.Seconds() / backlogFloor.Seconds()
	restartRatio := restartTime.Seconds() / restartFloor.Seconds()
	if procErr == nil {
		fmt.Printf("diagnostics: restart %.3fs / (a new process's List %.3fs + one Service's patches %.3fs) = %.2fx\n",
			restartTime.Seconds(), procFloor.Seconds(), single.Seconds(), restartTime.Seconds()/(procFloor+single).Seconds())
	}
	fmt.Printf("at the apiserver's limit: backlog %.3fs / floor %.3fs (List + patches) = %.2fx; restart %.3fs / floor %.3fs (List of %d + one Service's patches) = %.2fx\n",
		backlogTime.Seconds(), backlogFloor.Seconds(), backlogRatio, restartTime.Seconds(), restartFloor.Seconds(), listedAll, restartRatio)

	fmt.Println("goals:")
	pass := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	fmt.Printf("  %s backlog of %d in <= 3s: %.3fs\n", pass(backlogTime <= 3*time.Second), backlog, backlogTime.Seconds())
	fmt.Printf("  %s %d within 30s of the last create: %.3fs\n", pass(burstAfterLast <= 30*time.Second), burst, burstAfterLast.Seconds())
	fmt.Printf("  %s new IP within 5s of a restart: %.3fs\n", pass(restartTime <= 5*time.Second), restartTime.Seconds())
	fmt.Printf("  %s zero IPs changed: %d\n", pass(changedIPs == 0 && changes == 0), changedIPs)
	fmt.Printf("  %s peak memory <= 64 MiB at %d Services: %.1f MiB\n", pass(maxHWM <= 64*1024), backlog+burst+1, float64(maxHWM)/1024)
	fmt.Printf("  %s no IP on two Services: %d seen\n", pass(len(dups) == 0), len(dups))
	fmt.Printf("  %s backlog <= 1.2x its apiserver floor: %.2fx\n", pass(backlogRatio <= 1.2), backlogRatio)
	fmt.Printf("  %s restart <= 1.2x its apiserver floor: %.2fx\n", pass(restartRatio <= 1.2), restartRatio)
	return nil
}
