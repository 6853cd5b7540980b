package scenarios_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// The fault suite loops the faults of production on the lab backend, with
// BFD (300 ms x 3) on both ToRs for every node. After every fault every ToR
// must hold exactly the expected ECMP next-hop set again within the fault's
// bound, measured from the ToRs' timestamped RIB histories, and every speaker
// must be back to its baseline: go_goroutines and the in-use heap after a GC
// within 5 % plus a small absolute slack.
//
// ECMPLB_FAULT_CYCLES sets the cycles per fault (default 10; `make
// bench-faults` runs 100); the apiserver outage is 30 s a cycle, so it runs
// ECMPLB_APISERVER_DOWN_CYCLES times (default 2). ECMPLB_FAULT_SEED fixes the
// seed of the random phases (default: Ginkgo's seed); it is printed.

// Bounds, and why.
const (
	// BFD declares a silent peer down one detection time (the topology's
	// profile: 300 ms x 3 = 900 ms) after its last packet; the ToR then
	// resets BGP and its RIB drops the next-hop (a few ms). The detection
	// time, plus 350 ms for that and scheduling on a loaded 2-core machine.
	detectMargin = 350 * time.Millisecond
	// A thawed speaker is back on every ToR within 3 s in every trial.
	thawBound = 3 * time.Second
	// After a one-way BFD failure heals, the session comes Up within one
	// slow-rate (1 s) packet; BGP then needs a connect, OPEN and UPDATE, with
	// the ToR's idle hold after reset (1 s) possibly in the way: 2 s, plus
	// 1 s margin.
	flapBound = 3 * time.Second
	// A restarted ToR process (started ~0.3 s after SIGTERM) accepts
	// sessions once it runs; the speaker dials again after its connect-retry
	// (1 s) and BFD comes Up within a slow-rate packet: 2.5 s, plus 1.5 s.
	torRestartBound = 4 * time.Second
	// A re-enabled BFD session comes Up within one slow-rate packet (1 s,
	// jittered) and a reply: 2 s, plus 1 s margin.
	bfdUpBound = 3 * time.Second
	// A restarted speaker lists its objects (~1 s against this apiserver),
	// dials both ToRs and announces: 5 s, plus 3 s margin for the churn
	// going on at the same time.
	speakerRestartBound = 8 * time.Second
	// Good configuration (a pool, an advertisement, a Service) reaches every
	// ToR through the controller (IP) and the speakers (route): 5 s.
	configBound = 5 * time.Second
	// After a 30 s outage client-go's reflectors retry with exponential
	// backoff (800 ms doubling, capped at 30 s, jittered): a watch may wait
	// up to 30 s more before it reconnects; plus 5 s to list and announce.
	apiserverBound = 35 * time.Second
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// faultStats collects one fault's measurements over its cycles.
type faultStats struct {
	name    string
	samples map[string][]float64 // measurement name → ms
	goals   map[string]time.Duration
	notes   []string
}

// addWithin records a sample whose every value must stay within bound.
func (s *faultStats) addWithin(name string, d, bound time.Duration) {
	if s.goals == nil {
		s.goals = map[string]time.Duration{}
	}
	s.goals[name] = bound
	s.add(name, d)
}

func (s *faultStats) add(name string, d time.Duration) {
	if s.samples == nil {
		s.samples = map[string][]float64{}
	}
	s.samples[name] = append(s.samples[name], float64(d.Microseconds())/1000)
}

// distribution renders min / median / p99 (or max, under 100 samples).
func distribution(v []float64) string {
	if len(v) == 0 {
		return "no samples"
	}
	s := reports.Summarize(v)
	if s.N >= 100 {
		return fmt.Sprintf("n=%d min %.0f / median %.0f / p99 %.0f / max %.0f ms", s.N, s.Min, s.Median, s.P99, s.Max)
	}
	return fmt.Sprintf("n=%d min %.0f / median %.0f / max %.0f ms", s.N, s.Min, s.Median, s.Max)
}

var (
	faultSummaryMu sync.Mutex
	faultSummary   []string
)

var _ = Describe("faults of production", Ordered, Serial, ContinueOnFailure, Label("faults"), func() {
	var (
		b             backend.Backend
		topo          backend.Topology
		ctx           context.Context
		web           netip.Prefix
		all           []netip.Addr
		rnd           *rand.Rand
		seed          int64
		baseline      map[string]backend.Runtime
		suiteBaseline map[string]backend.Runtime
		dir           string
		restore       func() error
		saveProfiles  func(label string) string
		profileDir    string
		takeBaseline  func(when string) map[string]backend.Runtime
	)
	cycles := envInt("ECMPLB_FAULT_CYCLES", 10)
	apiCycles := envInt("ECMPLB_APISERVER_DOWN_CYCLES", 2)
	printf := func(format string, args ...any) { GinkgoWriter.Printf(format, args...) }

	wantWeb := func() map[netip.Prefix][]netip.Addr { return map[netip.Prefix][]netip.Addr{web: all} }
	nodeOf := func(i int) string { return topo.NodeNames()[i%len(topo.NodeNames())] }
	randomNode := func() string { return nodeOf(rnd.Intn(len(topo.NodeNames()))) }
	randomToR := func() string { ts := topo.ToRNames(); return ts[rnd.Intn(len(ts))] }
	// randomBFDToR picks one of the ToRs that run BFD with node ("" when none does).
	randomBFDToR := func(node string) string {
		ts := topo.BFDToRs(node)
		if len(ts) == 0 {
			return ""
		}
		return ts[rnd.Intn(len(ts))]
	}
	// withdrawBound is how soon tor must drop a silent node: within the BFD
	// detection time where they run BFD, else at its hold time (+ 1 s).
	withdrawBound := func(tor, node string) time.Duration {
		if topo.RunsBFD(tor, node) {
			return topo.DetectTime(tor, node) + detectMargin
		}
		return topo.HoldTimeOf(tor) + time.Second
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rnd.Int63n(int64(hi-lo)+1)) }

	// recovered returns when every ToR last changed prefix to want at or
	// after from (from itself when none changed).
	recovered := func(prefix netip.Prefix, want []netip.Addr, from time.Time, tors ...string) (time.Time, error) {
		if len(tors) == 0 {
			tors = topo.ToRNames()
		}
		latest := from
		for _, tor := range tors {
			cs, err := backend.ChangesSince(ctx, b, tor, prefix, from)
			if err != nil {
				return latest, err
			}
			at, err := backend.SettledAt(cs, want)
			if err != nil {
				return latest, fmt.Errorf("%s: %w", tor, err)
			}
			if at.After(latest) {
				latest = at
			}
		}
		return latest, nil
	}

	// runtimeOff compares every speaker with its baseline.
	runtimeOff := func() error {
		var errs []error
		for _, n := range topo.NodeNames() {
			rt, err := b.SpeakerRuntime(ctx, n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := backend.RuntimeOff(n, baseline[n], rt); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	// checkRuntime polls the speakers until every one is within its baseline
	// tolerance, at most `within` (a reflector that was backing off, a
	// session being set up, must be given the time they are allowed).
	checkRuntime := func(st *faultStats, within time.Duration) error {
		start := time.Now()
		for {
			err := runtimeOff()
			if err == nil {
				st.add("fault over → every speaker's runtime at baseline", time.Since(start))
				return nil
			}
			if time.Since(start) > within {
				return fmt.Errorf("not back to baseline within %v: %w", within, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// takeBaseline reads every speaker once it has settled (informers synced,
	// sessions up, the status writers' workers started: backend.SettledRuntimes),
	// each node's larger readings, so a reading that caught a GC right after
	// a burst is not taken as the floor.
	takeBaseline = func(when string) map[string]backend.Runtime {
		out, err := backend.SettledRuntimes(ctx, topo.NodeNames(), func(n string) (backend.Runtime, error) {
			return b.SpeakerRuntime(ctx, n)
		}, time.Now, time.Sleep)
		Expect(err).NotTo(HaveOccurred())
		for _, n := range topo.NodeNames() {
			printf("baseline %s (%s): %.0f goroutines, heap in use %.1f MiB (GC forced: %v)\n", n, when, out[n].Goroutines,
				out[n].HeapInuse/(1<<20), out[n].GCForced)
		}
		return out
	}

	// saveProfiles keeps every speaker's heap profile at a fault's start (and
	// at its first runtime violation) in reports/out, so a growth can be
	// traced with go tool pprof -diff_base START NOW.
	saveProfiles = func(label string) string {
		if profileDir == "" {
			profileDir = filepath.Join(b.Root(), "reports", "out", "fault-profiles-"+time.Now().Format("20060102-150405"))
			if err := os.MkdirAll(profileDir, 0o755); err != nil {
				return ""
			}
		}
		spec := strings.Fields(CurrentSpecReport().LeafNodeText)
		name := "spec"
		if len(spec) > 0 {
			name = strings.Join(spec[:min(3, len(spec))], "-")
		}
		var paths []string
		for _, n := range topo.NodeNames() {
			p := filepath.Join(profileDir, fmt.Sprintf("%s-%s-%s.pb.gz", name, n, label))
			if err := b.SaveSpeakerHeapProfile(ctx, n, p); err == nil {
				paths = append(paths, p)
			}
		}
		return strings.Join(paths, " ")
	}

	// restore undoes whatever a failed cycle may have left behind.
	restore = func() error {
		var errs []error
		if _, err := b.Repair(ctx, backend.Fault{Kind: backend.FaultAPIServerDown}); err != nil {
			errs = append(errs, err)
		}
		for _, n := range topo.NodeNames() {
			if !b.Running(n) {
				_, err := b.Inject(ctx, backend.Fault{Kind: backend.FaultSpeakerRestart, Target: n})
				errs = append(errs, err)
			} else {
				_, _ = b.Repair(ctx, backend.Fault{Kind: backend.FaultSpeakerFreeze, Target: n})
			}
			for _, k := range []backend.FaultKind{backend.FaultBFDFlap, backend.FaultBFDAdminDown} {
				_, err := b.Repair(ctx, backend.Fault{Kind: k, Target: n})
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}

	// runFault loops one fault. A cycle returns an error for a violated
	// expectation; the loop then prints the session state history, brings the
	// lab back to its baseline state (or gives up) and goes on, so the
	// figures cover every cycle. The spec fails if any cycle did.
	runFault := func(name, description string, n int, runtimeWithin time.Duration, prefixes func() []netip.Prefix, cycle func(i int, st *faultStats) (nodes []string, err error)) {
		st := &faultStats{name: name}
		ginkgoreport.SetDescription(description)
		var failures []string
		profiled := false
		printf("fault %q: %d cycles, seed %d\n", name, n, seed)
		var firstFrom, firstTo time.Time
		for i := 0; i < n; i++ {
			start := time.Now()
			nodes, err := cycle(i, st)
			if i == 0 {
				firstFrom, firstTo = start, time.Now()
			}
			if err == nil {
				err = checkRuntime(st, runtimeWithin)
				if err != nil && !profiled {
					profiled = true
					err = fmt.Errorf("%w\nheap profiles at the fault's start and now (go tool pprof -top -diff_base START NOW): %s",
						err, saveProfiles(fmt.Sprintf("cycle%d", i+1)))
				}
			}
			if err != nil {
				msg := fmt.Sprintf("cycle %d/%d: %v", i+1, n, err)
				ginkgoreport.AddStep(time.Now(), msg)
				if len(failures) < 2 {
					msg += b.Diagnose(ctx, start.Add(-time.Second), prefixes(), nodes...)
				}
				failures = append(failures, msg)
				printf("%s\n", msg)
				if rerr := restore(); rerr != nil {
					failures = append(failures, fmt.Sprintf("restoring after cycle %d: %v", i+1, rerr))
				}
				if werr := backend.WaitSets(ctx, b, wantWeb(), 60*time.Second); werr != nil {
					failures = append(failures, fmt.Sprintf("giving up after cycle %d: the lab did not return to its baseline state: %v", i+1, werr))
					break
				}
			}
			if (i+1)%10 == 0 && i+1 < n {
				// Progress for long runs (make bench-faults), whatever the verbosity.
				_, _ = fmt.Fprintf(os.Stdout, "fault %s: %d/%d cycles done, %d failed\n", name, i+1, n, len(failures))
			}
		}
		// The first cycle's ECMP sets on every ToR, as a timeline.
		for _, p := range prefixes() {
			tl, err := backend.Timeline(ctx, b, fmt.Sprintf("%s: %s on every ToR, first cycle", name, p), p, firstFrom, firstTo.Add(100*time.Millisecond), nil)
			if err == nil {
				ginkgoreport.AddTimeline(tl)
			}
		}
		if paths := saveProfiles("end"); paths != "" {
			printf("heap profiles at the end of %s: %s\n", name, paths)
		}
		keys := make([]string, 0, len(st.samples))
		for k := range st.samples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := st.samples[k]
			s := reports.Summarize(v)
			head := s.Max
			if s.N >= 100 {
				head = s.P99
			}
			m := reports.Measurement{Name: k, Unit: "ms", Value: head, Samples: v}
			if b, ok := st.goals[k]; ok {
				// Every trial must meet the bound: the goal is checked on the
				// maximum, whatever the headline figure.
				m.Value = s.Max
				m.Goal = &reports.Goal{Op: "<=", Value: float64(b.Milliseconds())}
			}
			ginkgoreport.AddMeasurements(m)
			line := fmt.Sprintf("%-18s %-58s %s", name, k, distribution(v))
			_, _ = fmt.Fprintf(os.Stdout, "%s\n", line)
			faultSummaryMu.Lock()
			faultSummary = append(faultSummary, line)
			faultSummaryMu.Unlock()
			printf("%s\n", line)
		}
		for _, note := range st.notes {
			ginkgoreport.AddStep(time.Now(), note)
		}
		var err error
		if len(failures) > 0 {
			err = fmt.Errorf("%d of %d cycles failed (seed %d):\n%s", len(failures), n, seed, strings.Join(failures, "\n"))
		}
		if err != nil {
			Fail(err.Error())
		}
	}
	webOnly := func() []netip.Prefix { return []netip.Prefix{web} }
	addrOf := func(node string) netip.Addr { n, _ := topo.Node(node); return n.Address }
	firstWithout := func(tor string, prefix netip.Prefix, from time.Time, addr netip.Addr) (backend.Change, bool, error) {
		cs, err := backend.ChangesSince(ctx, b, tor, prefix, from)
		if err != nil {
			return backend.Change{}, false, err
		}
		c, ok := backend.FirstWithout(cs, addr)
		return c, ok, nil
	}
	// bgpEventsSince lists a ToR's BGP state changes for one peer at or after from.
	bgpEventsSince := func(tor string, peer netip.Addr, from time.Time) ([]string, error) {
		evs, err := b.Events(ctx, tor)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range evs {
			if e.Kind == "bgp" && e.Peer == peer && !e.At.Before(from) {
				out = append(out, fmt.Sprintf("%s %s → %s", e.At.Format("15:04:05.000"), e.Old, e.New))
			}
		}
		return out, nil
	}

	BeforeAll(func() {
		ctx = context.Background()
		seed = GinkgoRandomSeed()
		if v, err := strconv.ParseInt(os.Getenv("ECMPLB_FAULT_SEED"), 10, 64); err == nil {
			seed = v
		}
		rnd = rand.New(rand.NewSource(seed))
		printf("fault suite: seed %d (ECMPLB_FAULT_SEED=%d reproduces the phases), %d cycles per fault, %d apiserver outages\n",
			seed, seed, cycles, apiCycles)
		_, _ = fmt.Fprintf(os.Stdout, "fault suite seed: %d\n", seed)

		b = up(backend.BFDEverywhere(90 * time.Second))
		topo = b.Topology()

		dir = filepath.Join(b.Root(), "scenarios", "testdata", "faults")
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		sort.Strings(files)
		Expect(b.Apply(ctx, files...)).To(Succeed())
		Expect(b.SetEndpoints(ctx, "default", "web", topo.NodeNames()...)).To(Succeed())
		ip, err := b.ExternalIP(ctx, "default", "web", "", 30*time.Second)
		Expect(err).NotTo(HaveOccurred())
		web = netip.PrefixFrom(ip, 32)
		all = topo.Addrs()
		Expect(backend.WaitSets(ctx, b, wantWeb(), 60*time.Second)).To(Succeed())
		for _, n := range topo.NodeNames() {
			Expect(backend.WaitBFDUp(ctx, b, n, 20*time.Second)).To(Succeed(), "BFD on both ToRs")
		}
		suiteBaseline = takeBaseline("suite start")
	})

	// Whatever a failed cycle left behind, each spec starts from the
	// baseline state: every speaker running and thawed, the apiserver up, no
	// BFD session muted or shut down, the Service on every ToR.
	// Each fault is held to the speakers' runtime at its own start, so a slow
	// growth shows in the fault that causes it; AfterAll compares the end of
	// the suite with its start as well.
	BeforeEach(func() {
		Expect(restore()).To(Succeed())
		Expect(backend.WaitSets(ctx, b, wantWeb(), 60*time.Second)).To(Succeed())
		baseline = takeBaseline(CurrentSpecReport().LeafNodeText)
		saveProfiles("start")
	})

	AfterAll(func() {
		// The whole suite against its start, for the record: a growth too
		// slow to cross one fault's tolerance adds up here.
		var drift []string
		for _, n := range topo.NodeNames() {
			rt, err := b.SpeakerRuntime(ctx, n)
			if err != nil {
				continue
			}
			b := suiteBaseline[n]
			drift = append(drift, fmt.Sprintf("%s %+.0f goroutines, heap %+.2f MiB", n, rt.Goroutines-b.Goroutines, (rt.HeapInuse-b.HeapInuse)/(1<<20)))
		}
		faultSummaryMu.Lock()
		faultSummary = append(faultSummary, "speakers, suite end vs start (restarted speakers included): "+strings.Join(drift, "; "))
		faultSummaryMu.Unlock()
		faultSummaryMu.Lock()
		defer faultSummaryMu.Unlock()
		if len(faultSummary) > 0 {
			out := "\nfault recovery distribution (seed " + strconv.FormatInt(seed, 10) + "):\n  " + strings.Join(faultSummary, "\n  ") + "\n"
			printf("%s", out)
			_, _ = os.Stdout.WriteString(out)
		}
	})

	It("brings a frozen speaker (SIGSTOP ~1 s at a random phase) back on every ToR within 3 s of the thaw", func() {
		runFault("freeze-thaw", "SIGSTOP of one speaker for 0.8-1.2 s at a random phase, then SIGCONT. With BFD 300 ms x 3 on both ToRs a freeze that outlasts the detection time takes the node off every ToR within 1.25 s of the freeze; after the thaw the node must be back on every ToR within 3 s in every trial.",
			cycles, 5*time.Second, webOnly, func(i int, st *faultStats) ([]string, error) {
				node := randomNode()
				addr := addrOf(node)
				time.Sleep(between(0, time.Second)) // random phase against BFD and keepalive timers
				dur := between(800*time.Millisecond, 1200*time.Millisecond)
				t0, err := b.Inject(ctx, backend.Fault{Kind: backend.FaultSpeakerFreeze, Target: node})
				if err != nil {
					return []string{node}, err
				}
				time.Sleep(dur - time.Since(t0))
				t1, err := b.Repair(ctx, backend.Fault{Kind: backend.FaultSpeakerFreeze, Target: node})
				if err != nil {
					return []string{node}, err
				}
				if err := backend.WaitSets(ctx, b, wantWeb(), 20*time.Second); err != nil {
					return []string{node}, fmt.Errorf("%s frozen %v: not back within 20 s: %w", node, dur.Round(time.Millisecond), err)
				}
				// The route can be back before BFD is (a ToR that was about
				// to drop the node at the thaw): the cycle ends, and the
				// history is read, once BFD is Up on every ToR.
				if err := backend.WaitBFDUp(ctx, b, node, 20*time.Second); err != nil {
					return []string{node}, fmt.Errorf("%s frozen %v: %w", node, dur.Round(time.Millisecond), err)
				}
				at, err := recovered(web, all, t0)
				if err != nil {
					return []string{node}, err
				}
				rec := max(at.Sub(t1), 0)
				st.addWithin("thaw → back on every ToR", rec, thawBound)
				var errs []error
				if rec > thawBound {
					errs = append(errs, fmt.Errorf("%s frozen %v: back on every ToR %v after the thaw (bound %v)", node, dur.Round(time.Millisecond), rec.Round(time.Millisecond), thawBound))
				}
				for _, tor := range topo.ToRNames() {
					c, ok, err := firstWithout(tor, web, t0, addr)
					if err != nil {
						return []string{node}, err
					}
					if ok && c.At.Before(t1) {
						d, bound := c.At.Sub(t0), withdrawBound(tor, node)
						st.addWithin("freeze → withdrawn (BFD detection)", d, bound)
						if d > bound {
							errs = append(errs, fmt.Errorf("%s: %s withdrawn %v after the freeze (bound %v)", tor, node, d.Round(time.Millisecond), bound))
						}
					}
				}
				return []string{node}, errors.Join(errs...)
			})
	})

	It("takes a node off only the ToR whose BFD path fails one way, and back within the bound", func() {
		runFault("bfd-flap", "One ToR stops sending BFD to one node for 1.2-1.6 s (a one-way path failure) and resumes. The node must detect it, leave exactly that ToR within 1.25 s, stay on the other ToR throughout, and be back within 3 s of the path healing.",
			cycles, 5*time.Second, webOnly, func(i int, st *faultStats) ([]string, error) {
				node := randomNode()
				tor := randomBFDToR(node)
				if tor == "" {
					return []string{node}, fmt.Errorf("no ToR runs BFD with %s: the bfd-flap fault needs one", node)
				}
				addr := addrOf(node)
				time.Sleep(between(0, 300*time.Millisecond))
				dur := between(1200*time.Millisecond, 1600*time.Millisecond)
				start := time.Now()
				t0, err := b.Inject(ctx, backend.Fault{Kind: backend.FaultBFDFlap, Target: node, ToR: tor, Duration: dur}) // when the ToR went silent
				if err != nil {
					return []string{node}, err
				}
				t1 := time.Now()
				if err := backend.WaitSets(ctx, b, wantWeb(), 20*time.Second); err != nil {
					return []string{node}, fmt.Errorf("%s↔%s BFD muted %v: not back within 20 s: %w", tor, node, dur.Round(time.Millisecond), err)
				}
				var errs []error
				c, ok, err := firstWithout(tor, web, t0, addr)
				if err != nil {
					return []string{node}, err
				}
				if !ok {
					errs = append(errs, fmt.Errorf("%s: %s never withdrawn although its BFD path was down for %v", tor, node, dur.Round(time.Millisecond)))
				} else {
					d, bound := c.At.Sub(t0), withdrawBound(tor, node)
					st.addWithin("path fails → withdrawn from that ToR", d, bound)
					if d > bound {
						errs = append(errs, fmt.Errorf("%s: %s withdrawn %v after its BFD path failed (bound %v)", tor, node, d.Round(time.Millisecond), bound))
					}
				}
				at, err := recovered(web, all, t0, tor)
				if err != nil {
					return []string{node}, err
				}
				rec := max(at.Sub(t1), 0)
				st.addWithin("path heals → back on that ToR", rec, flapBound)
				if rec > flapBound {
					errs = append(errs, fmt.Errorf("%s: %s back %v after its BFD path healed (bound %v)", tor, node, rec.Round(time.Millisecond), flapBound))
				}
				for _, other := range topo.ToRNames() {
					if other == tor {
						continue
					}
					if cs, _ := backend.ChangesSince(ctx, b, other, web, start); len(cs) > 0 {
						errs = append(errs, fmt.Errorf("%s changed although only %s↔%s failed: %d changes", other, tor, node, len(cs)))
					}
				}
				return []string{node}, errors.Join(errs...)
			})
	})

	It("brings every node back on a restarted ToR and leaves the other ToR untouched", func() {
		runFault("tor-restart", "One ToR's router process restarts (SIGTERM: NOTIFICATION and BFD AdminDown to every node; then started again). Every node must be back on it within 4 s of the SIGTERM, and the other ToR must not change.",
			cycles, 5*time.Second, webOnly, func(i int, st *faultStats) ([]string, error) {
				tor := randomToR()
				time.Sleep(between(0, 500*time.Millisecond))
				t0 := time.Now()
				if _, err := b.Inject(ctx, backend.Fault{Kind: backend.FaultToRRestart, Target: tor}); err != nil {
					return topo.NodeNames(), err
				}
				if err := backend.WaitSets(ctx, b, wantWeb(), 30*time.Second); err != nil {
					return topo.NodeNames(), fmt.Errorf("%s restarted: not back within 30 s: %w", tor, err)
				}
				at, err := recovered(web, all, t0, tor)
				if err != nil {
					return topo.NodeNames(), err
				}
				rec := at.Sub(t0)
				st.addWithin("SIGTERM → every node back on the restarted ToR", rec, torRestartBound)
				var errs []error
				if rec > torRestartBound {
					errs = append(errs, fmt.Errorf("%s: every node back %v after the restart began (bound %v)", tor, rec.Round(time.Millisecond), torRestartBound))
				}
				for _, other := range topo.ToRNames() {
					if other == tor {
						continue
					}
					if cs, _ := backend.ChangesSince(ctx, b, other, web, t0); len(cs) > 0 {
						errs = append(errs, fmt.Errorf("%s changed while only %s restarted: %d changes", other, tor, len(cs)))
					}
				}
				return topo.NodeNames(), errors.Join(errs...)
			})
	})

	It("keeps BGP up when a ToR shuts its BFD session down administratively (RFC 5882 3.2)", func() {
		runFault("peer-admin-down", "One ToR shuts its BFD session to one node down administratively (the node receives AdminDown) for 0.5-1.5 s, then enables it again. AdminDown is no path failure: no BGP session may go down and no ECMP set may change; BFD must be Up again within 3 s of the re-enable.",
			cycles, 5*time.Second, webOnly, func(i int, st *faultStats) ([]string, error) {
				node := randomNode()
				tor := randomBFDToR(node)
				if tor == "" {
					return []string{node}, fmt.Errorf("no ToR runs BFD with %s: the bfd-flap fault needs one", node)
				}
				addr := addrOf(node)
				flt := backend.Fault{Kind: backend.FaultBFDAdminDown, Target: node, ToR: tor}
				t0 := time.Now()
				if _, err := b.Inject(ctx, flt); err != nil {
					return []string{node}, err
				}
				time.Sleep(between(500*time.Millisecond, 1500*time.Millisecond)) // the administrative down time
				t1 := time.Now()
				if _, err := b.Repair(ctx, flt); err != nil {
					return []string{node}, err
				}
				// Wait for the ToR's event, not its session state: the router
				// shows the new state a moment before it logs the change.
				var upAt time.Time
				for deadline := time.Now().Add(20 * time.Second); upAt.IsZero() && time.Now().Before(deadline); {
					evs, err := b.Events(ctx, tor)
					if err != nil {
						return []string{node}, err
					}
					for _, e := range evs {
						if e.Kind == "bfd" && e.Peer == addr && e.New == "Up" && !e.At.Before(t1) {
							upAt = e.At
							break
						}
					}
					if upAt.IsZero() {
						time.Sleep(10 * time.Millisecond)
					}
				}
				var errs []error
				if upAt.IsZero() {
					errs = append(errs, fmt.Errorf("%s: no BFD Up event for %s after the re-enable", tor, node))
				} else {
					d := upAt.Sub(t1)
					st.addWithin("BFD re-enabled → Up", d, bfdUpBound)
					if d > bfdUpBound {
						errs = append(errs, fmt.Errorf("%s: BFD to %s Up %v after the re-enable (bound %v)", tor, node, d.Round(time.Millisecond), bfdUpBound))
					}
				}
				if err := backend.WaitSets(ctx, b, wantWeb(), 20*time.Second); err != nil {
					return []string{node}, err
				}
				flaps, err := bgpEventsSince(tor, addr, t0)
				if err != nil {
					return []string{node}, err
				}
				if len(flaps) > 0 {
					errs = append(errs, fmt.Errorf("%s: BGP session to %s changed state after a BFD AdminDown: %s", tor, node, strings.Join(flaps, "; ")))
				}
				changed := 0
				for _, t := range topo.ToRNames() {
					cs, _ := backend.ChangesSince(ctx, b, t, web, t0)
					changed += len(cs)
				}
				if changed > 0 {
					errs = append(errs, fmt.Errorf("%d ECMP changes after a BFD AdminDown of %s on %s (want none)", changed, node, tor))
					// How long the wrongly withdrawn node stayed away.
					if at, err := recovered(web, all, t0); err == nil {
						st.add("(violation) AdminDown → node back after a wrong BGP flap", at.Sub(t0))
					}
				}
				return []string{node}, errors.Join(errs...)
			})
	})

	It("converges exactly when a speaker restarts while Services are being created and changed", func() {
		var prefixes []netip.Prefix
		runFault("speaker-restart", "Four Services are created and their endpoints rewritten every 100-300 ms for ~3 s while one speaker restarts (SIGTERM, start) at a random moment. Every ToR must then hold exactly the expected set of every Service within 8 s of the restart and of the last write; the Services are then deleted and their routes must leave every ToR.",
			cycles, 5*time.Second, func() []netip.Prefix { return append([]netip.Prefix{web}, prefixes...) }, func(i int, st *faultStats) ([]string, error) {
				node := randomNode()
				names := []string{"churn-a", "churn-b", "churn-c", "churn-d"}
				final := map[string][]string{}
				var wmu sync.Mutex
				defer func() {
					for _, n := range names {
						_ = b.DeleteService(ctx, "default", n)
					}
				}()
				for _, n := range names {
					if err := b.CreateService(ctx, "default", n); err != nil {
						return []string{node}, err
					}
				}
				subset := func() []string {
					var out []string
					for _, n := range topo.NodeNames() {
						if rnd.Intn(2) == 0 {
							out = append(out, n)
						}
					}
					if len(out) == 0 {
						out = []string{randomNode()}
					}
					return out
				}
				// The random choices are made up front, so the seed alone fixes them.
				type write struct {
					svc   string
					nodes []string
					pause time.Duration
				}
				var writes []write
				for _, n := range names {
					writes = append(writes, write{n, subset(), 0})
				}
				for range 14 {
					writes = append(writes, write{names[rnd.Intn(len(names))], subset(), between(100*time.Millisecond, 300*time.Millisecond)})
				}
				restartAfter := between(300*time.Millisecond, 2*time.Second)
				var lastWrite time.Time
				churnErr := make(chan error, 1)
				go func() {
					defer GinkgoRecover()
					for _, w := range writes {
						time.Sleep(w.pause)
						if err := b.SetEndpoints(ctx, "default", w.svc, w.nodes...); err != nil {
							churnErr <- err
							return
						}
						wmu.Lock()
						final[w.svc] = w.nodes
						lastWrite = time.Now()
						wmu.Unlock()
					}
					churnErr <- nil
				}()
				time.Sleep(restartAfter)
				tStop := time.Now()
				tStart, err := b.Inject(ctx, backend.Fault{Kind: backend.FaultSpeakerRestart, Target: node})
				if err != nil {
					return []string{node}, err
				}
				if err := <-churnErr; err != nil {
					return []string{node}, err
				}
				want := wantWeb()
				prefixes = prefixes[:0]
				for _, n := range names {
					ip, err := b.ExternalIP(ctx, "default", n, "", 30*time.Second)
					if err != nil {
						return []string{node}, err
					}
					p := netip.PrefixFrom(ip, 32)
					want[p] = topo.Addrs(final[n]...)
					prefixes = append(prefixes, p)
				}
				if err := backend.WaitSets(ctx, b, want, 30*time.Second); err != nil {
					return []string{node}, fmt.Errorf("speaker on %s restarted mid-churn: %w", node, err)
				}
				from := tStart
				if lastWrite.After(from) {
					from = lastWrite
				}
				latest := from
				for p, w := range want {
					at, err := recovered(p, w, tStop)
					if err != nil {
						return []string{node}, err
					}
					if at.After(latest) {
						latest = at
					}
				}
				rec := latest.Sub(from)
				st.addWithin("restart (or last write) → every Service exact on every ToR", rec, speakerRestartBound)
				var errs []error
				if rec > speakerRestartBound {
					errs = append(errs, fmt.Errorf("speaker on %s: every set exact %v after the restart / last write (bound %v)", node, rec.Round(time.Millisecond), speakerRestartBound))
				}
				for _, n := range names {
					if err := b.DeleteService(ctx, "default", n); err != nil {
						return []string{node}, err
					}
				}
				gone := wantWeb()
				for _, p := range prefixes {
					gone[p] = nil
				}
				if err := backend.WaitSets(ctx, b, gone, 30*time.Second); err != nil {
					errs = append(errs, fmt.Errorf("deleted Services not withdrawn: %w", err))
				}
				return []string{node}, errors.Join(errs...)
			})
	})

	It("keeps announcing through config churn with bad objects mixed in, and applies the good ones", func() {
		bad, _ := filepath.Glob(filepath.Join(dir, "bad", "*.yaml"))
		sort.Strings(bad)
		goodPool := filepath.Join(dir, "churn", "pool.yaml")
		goodSvc := filepath.Join(dir, "churn", "service.yaml")
		rejected := map[string]string{}
		var churnPrefix netip.Prefix
		runFault("config-churn", "Bad objects (a BGPPeer with holdTime 1s for another rack, a pool 10.0.0.0/33, a community 65000:70000) are applied mixed in random order with good ones (a second pool and advertisement, a Service from it). What the apiserver accepts is left in place. The Service of the first pool must never change on any ToR; the good Service must be announced with exactly its endpoints' nodes within 5 s once the bad objects are deleted (and, noted, while they exist); deleting everything must withdraw it.",
			cycles, 5*time.Second, func() []netip.Prefix { return []netip.Prefix{web, churnPrefix} }, func(i int, st *faultStats) ([]string, error) {
				files := append(append([]string{}, bad...), goodPool, goodSvc)
				rnd.Shuffle(len(files), func(a, b int) { files[a], files[b] = files[b], files[a] })
				if slices.Index(files, goodSvc) < slices.Index(files, goodPool) {
					// The Service asks for the pool by name; either order is
					// legal, but keep the figure about the speaker, not the
					// controller's retry.
					a, b := slices.Index(files, goodSvc), slices.Index(files, goodPool)
					files[a], files[b] = files[b], files[a]
				}
				t0 := time.Now()
				defer func() {
					_ = b.DeleteService(ctx, "default", "churn-cfg")
					_ = b.Delete(ctx, append(bad, goodPool)...)
				}()
				var goodAt time.Time
				for _, f := range files {
					out, ok, err := b.TryApply(ctx, f)
					if err != nil {
						return nil, err
					}
					isBad := slices.Contains(bad, f)
					switch {
					case isBad && !ok:
						rejected[filepath.Base(f)] = out
					case isBad && ok:
						delete(rejected, filepath.Base(f))
					case !ok:
						return nil, fmt.Errorf("good object %s rejected: %s", filepath.Base(f), out)
					}
					if f == goodSvc {
						if err := b.SetEndpoints(ctx, "default", "churn-cfg", "node1", "node2"); err != nil {
							return nil, err
						}
						goodAt = time.Now()
					}
				}
				ip, err := b.ExternalIP(ctx, "default", "churn-cfg", "", 30*time.Second)
				if err != nil {
					return nil, err
				}
				churnPrefix = netip.PrefixFrom(ip, 32)
				want := wantWeb()
				want[churnPrefix] = topo.Addrs("node1", "node2")
				var errs []error
				if err := backend.WaitSets(ctx, b, want, configBound); err == nil {
					at, err := recovered(churnPrefix, want[churnPrefix], goodAt)
					if err != nil {
						return nil, err
					}
					st.add("good objects written → announced (bad objects present)", at.Sub(goodAt))
				} else if len(rejected) < len(bad) {
					st.notes = append(st.notes, fmt.Sprintf("cycle %d: good configuration not announced within %v while %d bad object(s) the apiserver accepted existed", i+1, configBound, len(bad)-len(rejected)))
				} else {
					errs = append(errs, fmt.Errorf("good configuration not announced within %v (every bad object was rejected): %w", configBound, err))
				}
				tDel := time.Now()
				if err := b.Delete(ctx, bad...); err != nil {
					return nil, err
				}
				if err := backend.WaitSets(ctx, b, want, 30*time.Second); err != nil {
					return nil, fmt.Errorf("good configuration not announced after the bad objects were deleted: %w", err)
				}
				at, err := recovered(churnPrefix, want[churnPrefix], t0)
				if err != nil {
					return nil, err
				}
				rec := max(at.Sub(tDel), 0)
				st.addWithin("bad objects deleted → good configuration announced", rec, configBound)
				if rec > configBound {
					errs = append(errs, fmt.Errorf("good configuration announced %v after the bad objects were deleted (bound %v)", rec.Round(time.Millisecond), configBound))
				}
				for _, tor := range topo.ToRNames() {
					if cs, _ := backend.ChangesSince(ctx, b, tor, web, t0); len(cs) > 0 {
						errs = append(errs, fmt.Errorf("%s: %s changed %d times during the config churn (want none)", tor, web, len(cs)))
					}
				}
				if err := b.DeleteService(ctx, "default", "churn-cfg"); err != nil {
					return nil, err
				}
				if err := b.Delete(ctx, goodPool); err != nil {
					return nil, err
				}
				gone := wantWeb()
				gone[churnPrefix] = nil
				if err := backend.WaitSets(ctx, b, gone, 30*time.Second); err != nil {
					errs = append(errs, fmt.Errorf("churn Service not withdrawn: %w", err))
				}
				if err := b.CheckAlive(); err != nil {
					errs = append(errs, err)
				}
				return nil, errors.Join(errs...)
			})
		for _, f := range bad {
			if out, ok := rejected[filepath.Base(f)]; ok {
				printf("bad object rejected at apply time: %s: %s\n", filepath.Base(f), out)
			} else {
				printf("bad object accepted by the apiserver (left to the speakers' validation): %s\n", filepath.Base(f))
			}
		}
	})

	It("keeps every route through a 30 s apiserver outage and follows changes after it", Label("skip-kind: kube-apiserver is a static pod the kubelet restarts at once so no outage can be held"), func() {
		runFault("apiserver-down", "kube-apiserver is stopped for 30 s (etcd keeps running) and started again. No ECMP set may change during or after the outage; an endpoint drain written once the apiserver is back must reach every ToR within 35 s (client-go's reflectors back off up to 30 s).",
			apiCycles, apiserverBound, webOnly, func(i int, st *faultStats) ([]string, error) {
				t0 := time.Now()
				outage := backend.Fault{Kind: backend.FaultAPIServerDown}
				if _, err := b.Inject(ctx, outage); err != nil {
					return nil, err
				}
				time.Sleep(30 * time.Second) // the outage itself
				if _, err := b.Repair(ctx, outage); err != nil {
					return nil, fmt.Errorf("restarting kube-apiserver: %w", err)
				}
				var errs []error
				for _, tor := range topo.ToRNames() {
					if cs, _ := backend.ChangesSince(ctx, b, tor, web, t0); len(cs) > 0 {
						errs = append(errs, fmt.Errorf("%s: %s changed %d times during the apiserver outage (want none)", tor, web, len(cs)))
					}
				}
				if err := b.CheckAlive(); err != nil {
					return nil, errors.Join(append(errs, err)...)
				}
				drain := topo.NodeNames()[len(topo.NodeNames())-1]
				rest := topo.NodeNames()[:len(topo.NodeNames())-1]
				t1 := time.Now()
				if err := b.SetEndpoints(ctx, "default", "web", rest...); err != nil {
					return nil, err
				}
				drained := map[netip.Prefix][]netip.Addr{web: topo.Addrs(rest...)}
				if err := backend.WaitSets(ctx, b, drained, 90*time.Second); err != nil {
					errs = append(errs, fmt.Errorf("drain of %s after the outage not reflected within 90 s: %w", drain, err))
				} else {
					at, err := recovered(web, drained[web], t1)
					if err != nil {
						return nil, err
					}
					rec := at.Sub(t1)
					st.addWithin("apiserver back → drain reflected on every ToR", rec, apiserverBound)
					if rec > apiserverBound {
						errs = append(errs, fmt.Errorf("drain reflected %v after the apiserver came back (bound %v)", rec.Round(time.Millisecond), apiserverBound))
					}
				}
				if err := b.SetEndpoints(ctx, "default", "web", topo.NodeNames()...); err != nil {
					return nil, err
				}
				if err := backend.WaitSets(ctx, b, wantWeb(), 30*time.Second); err != nil {
					errs = append(errs, err)
				}
				return topo.NodeNames(), errors.Join(errs...)
			})
	})
})
