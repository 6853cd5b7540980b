package bgp_test

// Graceful restart (RFC 4724) of the speaker against FRR's bgpd as the helper,
// seen where it matters: the kernel FIB zebra programs in FRR's namespace. The
// speaker runs in a child process of the test (the test binary again, running
// TestFRRSpeakerProcess), so that it can stop as the real one does on SIGTERM
// (BFD sessions to AdminDown, then the BGP sessions closed without a
// NOTIFICATION) or die on SIGKILL like a crashed process: the kernel closes
// its sockets, nothing of ours runs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/frrlab"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/bfdlink"
	"github.com/ecmplb/ecmplb/speaker/bgp"
)

const (
	grSpeaker = "10.0.0.21"
	grRouter  = "10.0.0.1"
	// speakerReady is what a child speaker prints once it handles SIGTERM.
	speakerReady = "ECMPLB-GR-SPEAKER-READY"
	// speakerProcEnv carries the child speaker's configuration (JSON).
	speakerProcEnv = "ECMPLB_GR_SPEAKER_PROCESS"
	// BFD on both sides: 100 ms x 3, so FRR's detection time is 300 ms.
	bfdIntervalMs = 100
	bfdMult       = 3
)

// procConfig is what a child speaker announces.
type procConfig struct {
	Prefixes []string `json:"prefixes"`
	BFD      bool     `json:"bfd"`
	// Stop is the order of the stop on SIGTERM (with BFD).
	Stop stopOrder `json:"stop"`
}

// stopOrder is how a child speaker with BFD stops.
type stopOrder string

const (
	// stopAsApp: BFD manager closed (AdminDown), then the BGP speaker at
	// once, as speaker/app does. Against FRR 8.4 it races: see
	// TestFRRBFDAdminDownEndsGracefulRestart.
	stopAsApp stopOrder = ""
	// stopBFDFirst: AdminDown, and the BGP sessions closed once the
	// session went down (bgpd hears of the AdminDown while the session is
	// established, and ends it), or after 2 s.
	stopBFDFirst stopOrder = "bfd-first"
	// stopBGPFirst: the BGP sessions closed, and the BFD sessions taken to
	// AdminDown bgpGrace later (bgpd has seen the session end by then).
	stopBGPFirst stopOrder = "bgp-first"
)

// bgpGrace is how long stopBGPFirst waits between the BGP close and the
// AdminDown: bgpd reads the closed connection at once, while a BFD state
// reaches it from bfdd through zebra.
const bgpGrace = 300 * time.Millisecond

func grSession(withBFD bool) announce.Session {
	s := announce.Session{Name: "tor", MyASN: 65100, PeerASN: 65000, PeerAddress: netip.MustParseAddr(grRouter), PeerPort: 179,
		SourceAddress: netip.MustParseAddr(grSpeaker), RouterID: netip.MustParseAddr(grSpeaker),
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second, GracefulRestart: true}
	if withBFD {
		u := func(v uint32) *uint32 { return &v }
		s.BFD = &announce.BFDProfile{Name: "fast", ReceiveInterval: u(bfdIntervalMs), TransmitInterval: u(bfdIntervalMs), DetectMultiplier: u(bfdMult)}
	}
	return s
}

// TestFRRSpeakerProcess is not a test: it is the speaker process the FRR
// graceful-restart tests start and stop (SIGTERM) or kill (SIGKILL). It
// announces the prefixes it is given over one graceful-restart session to
// FRR, with BFD when asked, and stops on SIGTERM the way the speaker's main
// does (speaker/app: the BFD manager is closed before the BGP speaker).
func TestFRRSpeakerProcess(t *testing.T) {
	env := os.Getenv(speakerProcEnv)
	if env == "" {
		t.Skip("the speaker process of the FRR graceful-restart tests; runs only when one of them starts it")
	}
	var cfg procConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	spec := grSession(cfg.BFD)
	down := make(chan struct{}, 1)
	sp := bgp.New(bgp.Options{Logger: log.With("component", "bgp"), OnSessionChange: func(_ string, up bool) {
		if !up {
			select {
			case down <- struct{}{}:
			default:
			}
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	var mgr *bfd.Manager
	linkDone := make(chan struct{})
	if cfg.BFD {
		mgr = bfd.NewManager(bfd.WithLogger(log.With("component", "bfd")))
		link := bfdlink.New(mgr, sp, log.With("component", "bfdlink"), nil)
		go func() { defer close(linkDone); link.Run(ctx) }()
		if err := link.SetSessions([]announce.Session{spec}); err != nil {
			t.Fatal(err)
		}
	} else {
		close(linkDone)
	}
	if err := sp.SetSessions([]announce.Session{spec}); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Prefixes {
		if err := sp.Apply("default/"+p, []announce.Route{{Peer: spec.Name, Prefix: netip.MustParsePrefix(p)}}); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println(speakerReady)
	select {
	case <-term:
	case <-time.After(3 * time.Minute):
		t.Fatal("not stopped within 3 minutes")
	}
	// speaker/app's order on SIGTERM: the context ends (the BFD link stops),
	// then its deferred calls close the BFD manager (every session to
	// AdminDown), then the speaker.
	cancel()
	<-linkDone
	switch cfg.Stop {
	case stopBGPFirst:
		sp.Close()
		time.Sleep(bgpGrace)
	case stopBFDFirst:
		select {
		case <-down:
		default:
		}
		if mgr != nil {
			_ = mgr.Close()
		}
		select {
		case <-down:
		case <-time.After(2 * time.Second):
		}
	}
	if mgr != nil {
		if err := mgr.Close(); err != nil {
			t.Error(err)
		}
	}
	sp.Close()
	log.Info("speaker stopped")
}

// speakerProc is a running child speaker.
type speakerProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSpeaker starts a child speaker (in this process's namespace) that
// announces prefixes. It is killed when the test ends, and its output is
// logged if the test failed.
func startSpeaker(t *testing.T, cfg procConfig) *speakerProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(cfg)
	p := &speakerProc{out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(self, "-test.run", "^TestFRRSpeakerProcess$", "-test.v", "-test.count=1", "-test.timeout=4m")
	p.cmd.Env = append(os.Environ(), speakerProcEnv+"="+string(env))
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Dies with the test process, should that crash.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("speaker process %d output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	poll(t, 30*time.Second, "the speaker process ready", func() (bool, string) {
		select {
		case <-p.exited:
			t.Fatalf("speaker process exited: %v:\n%s", p.err, p.out.String())
		default:
		}
		return strings.Contains(p.out.String(), speakerReady), ""
	})
	return p
}

// stop sends SIGTERM and waits for the process to finish its clean stop.
func (p *speakerProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("speaker process %d did not stop within 15 s of SIGTERM", p.cmd.Process.Pid)
	}
	if p.err != nil {
		t.Fatalf("speaker process %d: %v:\n%s", p.cmd.Process.Pid, p.err, p.out.String())
	}
}

// kill sends SIGKILL: the process dies with nothing of ours run on the way.
func (p *speakerProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// grLab is FRR (zebra, bgpd as a graceful-restart helper, bfdd when asked)
// in the router namespace, with its kernel FIB watched from before the first
// route.
type grLab struct {
	t   *testing.T
	ns  string
	frr *frrlab.FRR
	vty *frrlab.VTY
	fib *netns.FIBWatch
}

// frrGRLab re-runs the calling test inside the speaker namespace of a fresh
// lab; in that child it starts FRR and returns the lab, in the parent nil
// once the child passed.
func frrGRLab(t *testing.T, withBFD bool, stalePathSecs int) *grLab {
	t.Helper()
	if testing.Short() {
		t.Skip("starts FRR and speaker processes in network namespaces")
	}
	if !netnstest.IsChild() {
		frrlab.Require(t)
	}
	rns := netnstest.InLab(t, []string{grRouter + "/24"}, []string{grSpeaker + "/24"}, func(rns string) {
		t.Cleanup(func() { frrlab.KillLeftovers(rns) })
	})
	if rns == "" {
		return nil
	}
	fib, err := netns.WatchFIB(rns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fib.Close)
	var bfdLine string
	daemons := []frrlab.Daemon{{Name: "zebra", Config: "hostname tor\nlog timestamp precision 6\n"}}
	if withBFD {
		bfdLine = " neighbor " + grSpeaker + " bfd profile fast\n"
		daemons = append(daemons, frrlab.Daemon{Name: "bfdd", Config: fmt.Sprintf(`hostname tor
log timestamp precision 6
debug bfd peer
bfd
 profile fast
  receive-interval %d
  transmit-interval %d
  detect-multiplier %d
 !
!
`, bfdIntervalMs, bfdIntervalMs, bfdMult)})
	}
	daemons = append(daemons, frrlab.Daemon{Name: "bgpd", Config: fmt.Sprintf(`frr defaults datacenter
hostname tor
log timestamp precision 6
debug bgp neighbor-events
debug bgp graceful-restart
debug bgp bfd
!
router bgp 65000
 bgp router-id %[1]s
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp graceful-restart
 bgp graceful-restart stalepath-time %[3]d
 neighbor %[2]s remote-as 65100
 neighbor %[2]s passive
 neighbor %[2]s timers 3 9
%[4]s address-family ipv4 unicast
  neighbor %[2]s activate
 exit-address-family
!
`, grRouter, grSpeaker, stalePathSecs, bfdLine)})
	f, err := frrlab.StartFRR(&netns.NS{Name: rns}, daemons...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bgpd log:\n%s", f.Log("bgpd"))
			if withBFD {
				t.Logf("bfdd log:\n%s", f.Log("bfdd"))
			}
		}
		_ = f.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vty, err := frrlab.DialVTY(ctx, rns, "bgpd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vty.Close() })
	return &grLab{t: t, ns: rns, frr: f, vty: vty, fib: fib}
}

// poll calls cond every 10 ms until it returns true, failing the test after
// timeout with what cond last said.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, timeout, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *grLab) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// paths returns, per prefix, whether bgpd holds a valid path from the
// speaker, and whether it is stale.
func (l *grLab) paths(prefixes []string) (held, stale map[string]bool, err error) {
	ctx, cancel := l.ctx()
	defer cancel()
	held, stale = map[string]bool{}, map[string]bool{}
	for _, p := range prefixes {
		paths, err := l.vty.BGPPaths(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		for _, path := range paths {
			if path.Valid && len(path.Nexthops) > 0 && path.Nexthops[0].IP == grSpeaker {
				held[p] = true
				stale[p] = path.Stale
			}
		}
	}
	return held, stale, nil
}

// waitRIB waits until bgpd holds every prefix of held from the speaker with
// the stale flag as given, and none of gone.
func (l *grLab) waitRIB(timeout time.Duration, held []string, stale bool, gone []string) time.Time {
	l.t.Helper()
	return poll(l.t, timeout, fmt.Sprintf("bgpd RIB: %v held (stale %v), %v gone", held, stale, gone), func() (bool, string) {
		h, s, err := l.paths(append(slices.Clone(held), gone...))
		if err != nil {
			return false, err.Error()
		}
		state := fmt.Sprintf("held %v stale %v", h, s)
		for _, p := range held {
			if !h[p] || s[p] != stale {
				return false, state
			}
		}
		for _, p := range gone {
			if h[p] {
				return false, state
			}
		}
		return true, state
	})
}

// waitFIB waits until the kernel FIB of FRR's namespace routes every prefix of
// present via the speaker and none of gone.
func (l *grLab) waitFIB(timeout time.Duration, present, gone []string) time.Time {
	l.t.Helper()
	return poll(l.t, timeout, fmt.Sprintf("FRR's FIB: %v via %s, %v gone", present, grSpeaker, gone), func() (bool, string) {
		routes, err := netns.FIBRoutes(l.ns)
		if err != nil {
			return false, err.Error()
		}
		state := fmt.Sprint(routes)
		for _, p := range present {
			hops := routes[netip.MustParsePrefix(p)]
			if !slices.Equal(hops, []netip.Addr{netip.MustParseAddr(grSpeaker)}) {
				return false, state
			}
		}
		for _, p := range gone {
			if _, ok := routes[netip.MustParsePrefix(p)]; ok {
				return false, state
			}
		}
		return true, state
	})
}

// neighbor returns bgpd's view of the speaker.
func (l *grLab) neighbor() (frrlab.BGPNeighbor, error) {
	ctx, cancel := l.ctx()
	defer cancel()
	return l.vty.BGPNeighbor(ctx, grSpeaker)
}

func (l *grLab) waitEstablished(timeout time.Duration, want bool) time.Time {
	l.t.Helper()
	return poll(l.t, timeout, fmt.Sprintf("bgpd session with the speaker established=%v", want), func() (bool, string) {
		n, err := l.neighbor()
		if err != nil {
			return false, err.Error()
		}
		return (n.State == "Established") == want, n.State
	})
}

// removals returns the FIB deletions of prefixes in events.
func removals(events []netns.FIBEvent, prefixes []string) []netns.FIBEvent {
	var out []netns.FIBEvent
	for _, e := range events {
		if e.Delete && slices.Contains(prefixes, e.Prefix.String()) {
			out = append(out, e)
		}
	}
	return out
}

// waitRemoved waits until the FIB watch has seen prefix removed at or after
// since (the kernel's notification may trail a dump that no longer has it).
func (l *grLab) waitRemoved(since time.Time, prefix string) {
	l.t.Helper()
	if err := l.fib.WaitFor(10*time.Second, func([]netns.FIBEvent) bool {
		return len(removals(l.fib.Since(since), []string{prefix})) > 0
	}); err != nil {
		l.t.Fatal(err)
	}
}

// fibErr fails the test when the FIB subscription lost notifications: then
// "no removal" would prove nothing.
func (l *grLab) fibErr() {
	l.t.Helper()
	if _, err := l.fib.Events(); err != nil {
		l.t.Fatal(err)
	}
}

func prefixes(base, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("203.0.113.%d/32", base+i)
	}
	return out
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

func randDuration(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// goroutinesBack waits until the test process is back to n goroutines (or
// fewer): what the lab started for a test has ended.
func goroutinesBack(t *testing.T, n int) {
	t.Helper()
	poll(t, 5*time.Second, "goroutines back to the baseline", func() (bool, string) {
		g := runtime.NumGoroutine()
		return g <= n, fmt.Sprintf("%d goroutines, baseline %d", g, n)
	})
}

// TestFRRGracefulRestart: a speaker with enableGracefulRestart restarts
// (SIGTERM, a rolling upgrade) five times, each time at a random phase of its
// keepalive cycle and after a random down time, against FRR's bgpd as a
// graceful-restart helper. Through every restart the kernel FIB of FRR's
// namespace, watched over netlink, must not lose one route: bgpd keeps the
// paths, stale, while the speaker is away; the next speaker's End-of-RIB
// clears the flag and flushes only the prefix it no longer announces (one
// per restart), which must still be routed until that speaker is back. A
// Cease on the way out (what GoBGP sends) made bgpd withdraw every route.
func TestFRRGracefulRestart(t *testing.T) {
	l := frrGRLab(t, false, 360)
	if l == nil {
		return
	}
	testPlannedRestarts(t, l, false, stopAsApp, 5)
}

// TestFRRGracefulRestartWithBFD is TestFRRGracefulRestart with BFD between
// the speaker and FRR's bfdd (100 ms x 3), the speaker closing its BGP
// session first and taking its BFD session to AdminDown 300 ms later: the
// AdminDown reaches a bgpd whose session already ended as a graceful
// restart, and FRR keeps every route, as without BFD. BFD is Up again with
// each new speaker. speaker/app stops in the other order, and FRR 8.4 can
// then withdraw everything (TestFRRBFDAdminDownEndsGracefulRestart).
func TestFRRGracefulRestartWithBFD(t *testing.T) {
	l := frrGRLab(t, true, 360)
	if l == nil {
		return
	}
	testPlannedRestarts(t, l, true, stopBGPFirst, 3)
}

// TestFRRBFDAdminDownEndsGracefulRestart pins what FRR 8.4 does with a BFD
// AdminDown from a graceful-restart speaker whose BGP session is still
// established: bfdd takes the AdminDown as the session going down
// ("neighbor-down") and tells bgpd, which ends the session with a Cease (BFD
// Down) and withdraws every route at once: no graceful restart. RFC 5882
// section 3.2 says AdminDown is not a path failure; FRR 8.4.4 does not follow
// it. The speaker here closes BGP a second after the AdminDown; speaker/app
// closes it right after, so which of the closed connection and bfdd's Down
// reaches bgpd first decides whether the routes stay or go. Each time the
// next speaker brings them back.
func TestFRRBFDAdminDownEndsGracefulRestart(t *testing.T) {
	l := frrGRLab(t, true, 360)
	if l == nil {
		return
	}
	baseline := runtime.NumGoroutine()
	rng := newRand(t)
	routes := prefixes(1, 4)
	sp := startSpeaker(t, procConfig{Prefixes: routes, BFD: true, Stop: stopBFDFirst})
	var took []time.Duration
	for i := 0; i < 3; i++ {
		l.waitFIB(60*time.Second, routes, nil)
		l.waitRIB(10*time.Second, routes, false, nil)
		l.waitBFD(10*time.Second, "up")
		before, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(randDuration(rng, 0, 3*time.Second))
		stopped := time.Now()
		sp.stop(t)
		if err := l.fib.WaitFor(10*time.Second, func([]netns.FIBEvent) bool {
			return len(removals(l.fib.Since(stopped), routes)) == len(routes)
		}); err != nil {
			t.Fatal(err)
		}
		gone := removals(l.fib.Since(stopped), routes)
		last := gone[len(gone)-1].At.Sub(stopped)
		took = append(took, last)
		after, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		if after.Messages.NotificationsSent != before.Messages.NotificationsSent+1 || after.Messages.NotificationsRecv != before.Messages.NotificationsRecv {
			t.Fatalf("restart %d: bgpd sent %d and received %d NOTIFICATIONs (reset %q), want its own Cease (BFD Down) only",
				i+1, after.Messages.NotificationsSent-before.Messages.NotificationsSent, after.Messages.NotificationsRecv-before.Messages.NotificationsRecv, after.LastResetDueTo)
		}
		t.Logf("restart %d: every route out of FRR's FIB %v after SIGTERM (bgpd: reset %q, Cease sent)", i+1, last.Round(time.Millisecond), after.LastResetDueTo)
		sp = startSpeaker(t, procConfig{Prefixes: routes, BFD: true, Stop: stopBFDFirst})
	}
	l.waitFIB(60*time.Second, routes, nil)
	l.fibErr()
	t.Logf("FRR %s withdrew on the speaker's BFD AdminDown %d times of %d, %v after SIGTERM", frrVersion(t), len(took), len(took), took)
	sp.stop(t)
	l.fib.Close()
	goroutinesBack(t, baseline)
}

// frrVersion is the version of FRR's bgpd, for logs.
func frrVersion(t *testing.T) string {
	out, err := exec.Command(frrlab.FRRDir+"/bgpd", "--version").Output()
	if err != nil {
		t.Logf("bgpd --version: %v", err)
		return "?"
	}
	first, _, _ := bytes.Cut(out, []byte("\n"))
	return string(bytes.TrimSpace(first))
}

func testPlannedRestarts(t *testing.T, l *grLab, withBFD bool, stop stopOrder, restarts int) {
	baseline := runtime.NumGoroutine()
	rng := newRand(t)
	keep := prefixes(1, 4)
	extra := prefixes(100, restarts+1) // speaker i also announces extra[i]
	announced := func(i int) []string { return append(slices.Clone(keep), extra[i]) }
	sp := startSpeaker(t, procConfig{Prefixes: announced(0), BFD: withBFD, Stop: stop})
	l.waitFIB(60*time.Second, announced(0), nil)
	l.waitRIB(10*time.Second, announced(0), false, nil)
	var holds []time.Duration
	for i := 0; i < restarts; i++ {
		if withBFD {
			l.waitBFD(10*time.Second, "up")
		}
		// A random phase of the 3 s keepalive cycle (and of BFD's).
		time.Sleep(randDuration(rng, 0, 3*time.Second))
		before, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		sp.stop(t)
		// bgpd keeps every path, stale; the FIB keeps every route.
		l.waitRIB(10*time.Second, announced(i), true, nil)
		after, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		if after.Messages != before.Messages || after.GracefulInfo.RestartMsecs == 0 {
			t.Fatalf("restart %d: bgpd did not take the end of the session as a graceful restart: NOTIFICATIONs received %d, sent %d (reset %q), restart timer %d ms",
				i+1, after.Messages.NotificationsRecv-before.Messages.NotificationsRecv, after.Messages.NotificationsSent-before.Messages.NotificationsSent,
				after.LastResetDueTo, after.GracefulInfo.RestartMsecs)
		}
		if withBFD {
			l.waitBFD(5*time.Second, "down")
		}
		down := randDuration(rng, 100*time.Millisecond, 2*time.Second)
		time.Sleep(down)
		restarted := time.Now()
		if got := l.fib.Since(stopped); len(got) > 0 {
			t.Fatalf("restart %d: FIB changed while the speaker was away (%v after its stop): %v", i+1, time.Since(stopped), got)
		}
		sp = startSpeaker(t, procConfig{Prefixes: announced(i + 1), BFD: withBFD, Stop: stop})
		l.waitEstablished(30*time.Second, true)
		// End-of-RIB: the stale flags go, the old extra prefix goes.
		cleared := l.waitRIB(30*time.Second, announced(i+1), false, []string{extra[i]})
		l.waitFIB(10*time.Second, announced(i+1), []string{extra[i]})
		l.waitRemoved(stopped, extra[i])
		l.fibErr()
		hold := cleared.Sub(stopped)
		holds = append(holds, hold)
		events := l.fib.Since(stopped)
		if r := removals(events, keep); len(r) > 0 {
			t.Fatalf("restart %d: routes removed from FRR's FIB during a graceful restart: %v", i+1, r)
		}
		flushed := removals(events, extra[i:i+1])
		if len(flushed) != 1 || flushed[0].At.Before(restarted) {
			t.Fatalf("restart %d: %s should leave the FIB once, after the new speaker started (%s): %v", i+1, extra[i], restarted.Format("15:04:05.000"), flushed)
		}
		t.Logf("restart %d: stop at a random phase, %v away; routes stale in bgpd for %v, 0 of %d removed from the FIB; %s flushed %v after the new speaker started",
			i+1, down.Round(time.Millisecond), hold.Round(time.Millisecond), len(keep), extra[i], flushed[0].At.Sub(restarted).Round(time.Millisecond))
	}
	all, err := l.fib.Events()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d graceful restarts: %d removals of the %d kept routes from FRR's FIB (%d FIB events in all); stale hold %v (min / max %v / %v)",
		restarts, len(removals(all, keep)), len(keep), len(all), holds, slices.Min(holds).Round(time.Millisecond), slices.Max(holds).Round(time.Millisecond))
	sp.stop(t)
	l.fib.Close()
	goroutinesBack(t, baseline)
}

// waitBFD waits until FRR's bfdd has one session with the speaker in state
// ("up", "down", ...).
func (l *grLab) waitBFD(timeout time.Duration, state string) time.Time {
	l.t.Helper()
	return poll(l.t, timeout, "FRR's BFD session with the speaker "+state, func() (bool, string) {
		peers, err := l.frr.BFDPeers()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range peers {
			if p.Peer == grSpeaker {
				return p.Status == state, fmt.Sprintf("%+v", p)
			}
		}
		return false, fmt.Sprintf("no session: %+v", peers)
	})
}

// TestFRRGracefulRestartCrash: the speaker process dies (SIGKILL: nothing of
// ours runs, the kernel closes the TCP connection) with no BFD configured.
// bgpd, a graceful-restart helper, keeps its paths stale and the FIB keeps
// every route until the next speaker is back (three crashes at random phases,
// random down times); then they are fresh again with not one removal. A
// speaker that does not come back is flushed when bgpd's stale-path timer
// (stalepath-time, set short here) runs out, and not before: GR alone holds
// the routes of a dead speaker that long.
func TestFRRGracefulRestartCrash(t *testing.T) {
	const stalePath = 15 * time.Second
	l := frrGRLab(t, false, int(stalePath/time.Second))
	if l == nil {
		return
	}
	baseline := runtime.NumGoroutine()
	rng := newRand(t)
	keep := prefixes(1, 4)
	extra := prefixes(100, 4)
	announced := func(i int) []string { return append(slices.Clone(keep), extra[i]) }
	sp := startSpeaker(t, procConfig{Prefixes: announced(0)})
	l.waitFIB(60*time.Second, announced(0), nil)
	l.waitRIB(10*time.Second, announced(0), false, nil)
	const crashes = 3
	for i := 0; i < crashes; i++ {
		time.Sleep(randDuration(rng, 0, 3*time.Second))
		killed := time.Now()
		sp.kill(t)
		l.waitRIB(10*time.Second, announced(i), true, nil)
		n, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("crash %d: bgpd after the kill: state %s, reset %q, restart timer %d ms, stale-path timer %d ms left (received restart time %d s)",
			i+1, n.State, n.LastResetDueTo, n.GracefulInfo.RestartMsecs, n.GracefulInfo.StalePathMsecs, n.GracefulInfo.Timers.ReceivedRestart)
		if n.GracefulInfo.Timers.ReceivedRestart != 120 || n.GracefulInfo.StalePathMsecs == 0 {
			t.Fatalf("crash %d: bgpd is not holding the speaker's routes as a graceful-restart helper: %+v", i+1, n.GracefulInfo)
		}
		down := randDuration(rng, 500*time.Millisecond, 4*time.Second)
		time.Sleep(down)
		restarted := time.Now()
		if got := l.fib.Since(killed); len(got) > 0 {
			t.Fatalf("crash %d: FIB changed while the speaker was dead (%v after the kill): %v", i+1, time.Since(killed), got)
		}
		sp = startSpeaker(t, procConfig{Prefixes: announced(i + 1)})
		l.waitEstablished(30*time.Second, true)
		cleared := l.waitRIB(30*time.Second, announced(i+1), false, []string{extra[i]})
		l.waitFIB(10*time.Second, announced(i+1), []string{extra[i]})
		l.waitRemoved(killed, extra[i])
		l.fibErr()
		events := l.fib.Since(killed)
		if r := removals(events, keep); len(r) > 0 {
			t.Fatalf("crash %d: routes removed from FRR's FIB: %v", i+1, r)
		}
		if flushed := removals(events, extra[i:i+1]); len(flushed) != 1 || flushed[0].At.Before(restarted) {
			t.Fatalf("crash %d: %s should leave the FIB once, after the new speaker started: %v", i+1, extra[i], flushed)
		}
		t.Logf("crash %d: %v dead; routes stale in bgpd for %v, 0 of %d removed from the FIB", i+1, down.Round(time.Millisecond), cleared.Sub(killed).Round(time.Millisecond), len(keep))
	}
	// The last speaker dies for good.
	killed := time.Now()
	sp.kill(t)
	l.waitRIB(10*time.Second, announced(crashes), true, nil)
	if err := l.fib.WaitFor(stalePath+10*time.Second, func(evs []netns.FIBEvent) bool {
		return len(removals(evs, announced(crashes))) == len(announced(crashes))
	}); err != nil {
		t.Fatal(err)
	}
	gone := removals(l.fib.Since(killed), announced(crashes))
	first, last := gone[0].At.Sub(killed), gone[len(gone)-1].At.Sub(killed)
	t.Logf("dead speaker: its %d routes held for %v (last gone at %v) after the kill; stalepath-time %v", len(gone), first.Round(time.Millisecond), last.Round(time.Millisecond), stalePath)
	if first < stalePath-time.Second || last > stalePath+5*time.Second {
		t.Fatalf("dead speaker's routes left the FIB %v to %v after the kill, want at bgpd's stale-path timer (%v)", first, last, stalePath)
	}
	l.fib.Close()
	goroutinesBack(t, baseline)
}

// TestFRRDeadSpeakerWithBFD: the speaker goes silent without a word (its
// process frozen with SIGSTOP: a hung or powered-off node sends no FIN, and
// its BFD, which runs in the speaker process with the C bit clear, stops).
// Graceful restart must not keep the routes of a dead node: FRR's bfdd
// detects the silence (100 ms x 3: 300 ms), bgpd ends the session (Cease,
// BFD down; no RFC 8538 N bit was negotiated, so no graceful restart
// follows) and the routes leave the FIB within the detection time plus a
// margin for bfdd, bgpd and zebra. Three times, at random phases of the BFD
// and keepalive cycles; each time the next speaker brings them back.
func TestFRRDeadSpeakerWithBFD(t *testing.T) {
	l := frrGRLab(t, true, 360)
	if l == nil {
		return
	}
	baseline := runtime.NumGoroutine()
	rng := newRand(t)
	routes := prefixes(1, 4)
	detect := time.Duration(bfdIntervalMs*bfdMult) * time.Millisecond
	bound := detect + 700*time.Millisecond
	sp := startSpeaker(t, procConfig{Prefixes: routes, BFD: true})
	var took []time.Duration
	for i := 0; i < 3; i++ {
		l.waitFIB(60*time.Second, routes, nil)
		l.waitRIB(10*time.Second, routes, false, nil)
		l.waitBFD(10*time.Second, "up")
		time.Sleep(randDuration(rng, 0, 3*time.Second))
		frozen := time.Now()
		if err := sp.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if err := l.fib.WaitFor(10*time.Second, func([]netns.FIBEvent) bool {
			return len(removals(l.fib.Since(frozen), routes)) == len(routes)
		}); err != nil {
			t.Fatal(err)
		}
		gone := removals(l.fib.Since(frozen), routes)
		last := gone[len(gone)-1].At.Sub(frozen)
		took = append(took, last)
		n, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dead speaker %d: every route out of FRR's FIB %v after the freeze (BFD detection time %v); bgpd: %s, reset %q",
			i+1, last.Round(time.Millisecond), detect, n.State, n.LastResetDueTo)
		if last > bound {
			t.Fatalf("dead speaker %d: routes withdrawn %v after the freeze, want within %v (BFD detection %v + 700 ms)", i+1, last, bound, detect)
		}
		sp.kill(t)
		sp = startSpeaker(t, procConfig{Prefixes: routes, BFD: true})
	}
	l.waitFIB(60*time.Second, routes, nil)
	l.fibErr()
	t.Logf("withdraw of a dead speaker with BFD %v x %d: %v (max %v, bound %v)", bfdIntervalMs*time.Millisecond, bfdMult, took, slices.Max(took).Round(time.Millisecond), bound)
	sp.stop(t)
	l.fib.Close()
	goroutinesBack(t, baseline)
}

// TestFRRCrashWithBFD: the speaker process dies (SIGKILL) with BFD running in
// it, on a node that lives on (its kernel closes the TCP connection, and goes
// on forwarding to the node's pods). What FRR 8.4 does, and what this test
// holds it to: bgpd sees the session end first ("NSF peer closed the
// session") and keeps the routes stale as a graceful-restart helper; the BFD
// Down that follows 300 ms later is ignored (the session is no longer
// established), as RFC 5882 section 4.3.2 allows for a BFD session that
// shares fate with the control plane (C bit clear): the routes stay in the
// FIB, with not one removal, until the next speaker is back. A dead node
// (TestFRRDeadSpeakerWithBFD) is withdrawn at BFD speed.
func TestFRRCrashWithBFD(t *testing.T) {
	l := frrGRLab(t, true, 360)
	if l == nil {
		return
	}
	baseline := runtime.NumGoroutine()
	rng := newRand(t)
	routes := prefixes(1, 4)
	sp := startSpeaker(t, procConfig{Prefixes: routes, BFD: true})
	l.waitFIB(60*time.Second, routes, nil)
	for i := 0; i < 3; i++ {
		l.waitRIB(30*time.Second, routes, false, nil)
		l.waitBFD(10*time.Second, "up")
		time.Sleep(randDuration(rng, 0, 3*time.Second))
		killed := time.Now()
		sp.kill(t)
		l.waitRIB(10*time.Second, routes, true, nil)
		bfdDown := l.waitBFD(5*time.Second, "down")
		// bgpd hears of the BFD Down from bfdd; give it ten detection times
		// to act on it, watching the FIB all along.
		poll(t, 5*time.Second, "an observation window after BFD Down", func() (bool, string) {
			return time.Since(bfdDown) > 10*time.Duration(bfdIntervalMs*bfdMult)*time.Millisecond, ""
		})
		if got := l.fib.Since(killed); len(got) > 0 {
			n, _ := l.neighbor()
			t.Fatalf("crash %d: FIB changed after the kill (bgpd: %s, reset %q): %v", i+1, n.State, n.LastResetDueTo, got)
		}
		n, err := l.neighbor()
		if err != nil {
			t.Fatal(err)
		}
		// The BFD Down only overwrites the reset reason ("BFD down
		// received"); the helper's timers run on.
		if n.GracefulInfo.StalePathMsecs == 0 || n.GracefulInfo.RestartMsecs == 0 {
			t.Fatalf("crash %d: bgpd is not holding the routes as a graceful-restart helper: reset %q, %+v", i+1, n.LastResetDueTo, n.GracefulInfo)
		}
		restarted := time.Now()
		sp = startSpeaker(t, procConfig{Prefixes: routes, BFD: true})
		cleared := l.waitRIB(30*time.Second, routes, false, nil)
		l.waitBFD(10*time.Second, "up")
		l.fibErr()
		if r := removals(l.fib.Since(killed), routes); len(r) > 0 {
			t.Fatalf("crash %d: routes removed from FRR's FIB: %v", i+1, r)
		}
		t.Logf("crash %d: bgpd reset %q, restart timer %d ms left", i+1, n.LastResetDueTo, n.GracefulInfo.RestartMsecs)
		t.Logf("crash %d: BFD down at FRR %v after the kill; routes stale for %v (the new speaker started after %v), 0 of %d removed from the FIB",
			i+1, bfdDown.Sub(killed).Round(time.Millisecond), cleared.Sub(killed).Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond), len(routes))
	}
	sp.stop(t)
	l.fib.Close()
	goroutinesBack(t, baseline)
}
