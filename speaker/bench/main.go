// Command bench measures the speaker against a real API server and GoBGP routers in a
// network namespace, with the speaker as a separate process:
//
//	(a) latency from an EndpointSlice write to the route change on the router,
//	    p50/p99, with 1 Service and with N Services announced;
//	(b) time for N new announcements to reach the routers after their
//	    EndpointSlices are written;
//	(c) the speaker's peak memory (VmHWM) and CPU seconds with N Services, 2 peers.
//
// Run as root (network namespaces); needs the binaries internal/testenv uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/speakerlab"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

const benchNS = "bench"

// speakerExtra are extra speaker flags from the command line.
var speakerExtra []string

type routerWatch struct {
	mu        sync.Mutex
	announced map[string]bool
	target    int
	full      chan time.Time
}

func main() {
	testrouter.MaybeRun()
	n := flag.Int("services", 10000, "Services announced for the large measurements")
	changes := flag.Int("changes", 100, "EndpointSlice changes per latency measurement (>= 50)")
	workers := flag.Int("workers", 32, "concurrent API writers")
	speakerBin := flag.String("speaker-bin", "", "ecmplb-speaker binary (default: go build ./speaker)")
	keep := flag.Bool("keep-logs", false, "print the speaker log path and keep it")
	memLimit := flag.String("speaker-memory-limit", "", "pass --memory-limit to the speaker (empty: its default)")
	flag.Parse()
	if *memLimit != "" {
		speakerExtra = append(speakerExtra, "--memory-limit", *memLimit)
	}
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := run(*n, *changes, *workers, *speakerBin, *keep); err != nil {
		log.Fatal(err)
	}
}

func ipOf(i int) string { return fmt.Sprintf("198.18.%d.%d", i/256, i%256) }

func run(n, changes, workers int, speakerBin string, keep bool) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "ecmplb-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	if speakerBin == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return err
		}
		speakerBin = filepath.Join(tmp, "ecmplb-speaker")
		log.Printf("building %s", speakerBin)
		cmd := exec.Command("go", "build", "-o", speakerBin, "./speaker")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the speaker: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	env, err := testenv.StartProcess(sctx, testenv.Options{Namespaces: []string{"metallb-system", benchNS}})
	cancel()
	if err != nil {
		return err
	}
	defer env.Stop()

	// Router events: latency probes go to latCh; the rest are counted per router.
	latPrefix := ipOf(n+1) + "/32"
	latCh := make(chan testrouter.Event, 1024)
	watches := []*routerWatch{{announced: map[string]bool{}, full: make(chan time.Time, 1)}, {announced: map[string]bool{}, full: make(chan time.Time, 1)}}
	onEvent := func(i int, e testrouter.Event) {
		if e.Prefix == "" {
			return
		}
		if e.Prefix == latPrefix {
			if i == 0 {
				latCh <- e
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
	lab, err := speakerlab.Start(env, speakerlab.Options{Routers: 2, OnEvent: onEvent})
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
	if err := lab.StartSpeaker(append([]string{speakerBin, "--kubeconfig", env.Kubeconfig, "--node-name", speakerlab.NodeName,
		"--metrics-addr", "127.0.0.1:7472", "--log-level", "warn", "--kube-qps", "1000", "--kube-burst", "1000"}, speakerExtra...), nil, logPath); err != nil {
		return err
	}
	if keep {
		log.Printf("speaker log: %s", logPath)
	}
	if err := lab.WaitSessions(60 * time.Second); err != nil {
		return err
	}
	pid := lab.SpeakerPID()
	log.Printf("speaker pid %d up with 2 BGP sessions", pid)

	// (a) with 1 Service.
	if err := lab.CreateService(ctx, benchNS, "lat", ipOf(n+1), true); err != nil {
		return err
	}
	if err := lab.CreateEndpoints(ctx, benchNS, "lat", false); err != nil {
		return err
	}
	time.Sleep(time.Second)
	lat1, err := latency(ctx, lab, latCh, changes)
	if err != nil {
		return fmt.Errorf("latency with 1 service: %w", err)
	}

	// (b): N Services with IPs and no ready endpoint, then their EndpointSlices.
	log.Printf("creating %d Services", n)
	cpu0, _ := cpuSeconds(pid)
	if err := parallel(n, workers, func(i int) error {
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
	log.Printf("writing %d EndpointSlices", n)
	start := time.Now()
	if err := parallel(n, workers, func(i int) error {
		return lab.CreateEndpoints(ctx, benchNS, fmt.Sprintf("svc-%d", i), true)
	}); err != nil {
		return err
	}
	writes := time.Since(start)
	var reach [2]time.Duration
	for i, w := range watches {
		select {
		case t := <-w.full:
			reach[i] = t.Sub(start)
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("router %d: not all %d prefixes after 5 minutes", i, n)
		}
	}
	cpuB, _ := cpuSeconds(pid)

	// Let status writes and Events settle before measuring latency at size N.
	log.Printf("waiting for %d ServiceBGPStatus objects", n)
	settle := time.Now()
	for {
		var l v1beta1.ServiceBGPStatusList
		err := lab.MetalLB.Get().Namespace(speakerlab.Namespace).Resource("servicebgpstatuses").
			Param("limit", "1").Do(ctx).Into(&l)
		if err == nil && l.RemainingItemCount != nil && *l.RemainingItemCount+1 >= int64(n) {
			break
		}
		if time.Since(settle) > 10*time.Minute {
			return fmt.Errorf("status objects did not settle")
		}
		time.Sleep(2 * time.Second)
	}
	statusTime := time.Since(settle)
	time.Sleep(2 * time.Second)
	latN, err := latency(ctx, lab, latCh, changes)
	if err != nil {
		return fmt.Errorf("latency with %d services: %w", n, err)
	}
	hwm, rss := memory(pid)
	cpu1, _ := cpuSeconds(pid)

	fmt.Println()
	fmt.Printf("ecmplb speaker benchmark (real kube-apiserver, 2 GoBGP routers in a netns, speaker pid %d as a separate process)\n", pid)
	fmt.Printf("(a) EndpointSlice write -> route change on router, %d changes each:\n", changes)
	fmt.Printf("    1 Service:       p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", pct(lat1, 50), pct(lat1, 99), pct(lat1, 100))
	fmt.Printf("    %d Services: p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", n, pct(latN, 50), pct(latN, 99), pct(latN, 100))
	fmt.Printf("(b) %d EndpointSlices written in %.2f s; all %d prefixes on router 1 after %.2f s, router 2 after %.2f s\n",
		n, writes.Seconds(), n, reach[0].Seconds(), reach[1].Seconds())
	fmt.Printf("    (ServiceBGPStatus objects all written %.1f s later)\n", statusTime.Seconds())
	fmt.Printf("(c) speaker with %d Services, 2 peers: peak RSS (VmHWM) %.1f MiB, current RSS %.1f MiB\n", n+1, hwm, rss)
	fmt.Printf("    CPU seconds: %.2f total, %.2f while announcing %d Services (phase b)\n", cpu1, cpuB-cpu0, n)
	return nil
}

// probeReady is the probe Service's endpoint readiness as last written.
var probeReady bool

// latency toggles the probe Service's endpoint readiness and times each change from
// just before the write to the router's receipt.
func latency(ctx context.Context, lab *speakerlab.Lab, ch chan testrouter.Event, changes int) ([]time.Duration, error) {
	var out []time.Duration
	ready := probeReady
	defer func() { probeReady = ready }()
	for len(ch) > 0 {
		<-ch
	}
	const warmup = 5 // not counted: the first writes after a pause warm connections and caches
	for i := 0; i < changes+warmup; i++ {
		ready = !ready
		t0 := time.Now()
		if err := lab.SetReady(ctx, benchNS, "lat", ready); err != nil {
			return nil, err
		}
		select {
		case e := <-ch:
			if e.Withdraw == ready {
				return nil, fmt.Errorf("change %d: router saw withdraw=%v, want %v", i, e.Withdraw, !ready)
			}
			if i >= warmup {
				out = append(out, time.Unix(0, e.T).Sub(t0))
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("change %d: no route change within 30s", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, nil
}

func pct(d []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := (len(s)*p + 99) / 100
	if idx < 1 {
		idx = 1
	}
	if idx > len(s) {
		idx = len(s)
	}
	return float64(s[idx-1].Microseconds()) / 1000
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

// memory returns VmHWM and VmRSS of pid in MiB.
func memory(pid int) (hwm, rss float64) {
	u, _ := proc.ReadUsage(pid)
	return float64(u.PeakRSS) / (1 << 20), float64(u.RSS) / (1 << 20)
}
