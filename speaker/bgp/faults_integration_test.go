package bgp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// TestDisableEnableBackToBack is what a BFD flap does: shut the session and let it
// up again a moment later. GoBGP v3 drops an admin-state request while another is
// pending, so a speaker that fires Disable and Enable at it can leave the session
// shut for good. The session must come back every time.
func TestDisableEnableBackToBack(t *testing.T) {
	rns := inLab(t)
	if rns == "" {
		return
	}
	tor, sp := oneSession(t, rns)
	web := "203.0.113.5/32"
	if err := sp.Apply("default/web", []announce.Route{r("tor1", web, 0)}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, tor, true)
	waitRoute(t, tor, web, &testrouter.Route{NextHop: speakerAddr})
	for i := range 5 {
		// A burst of flaps, as a BFD session that bounces produces.
		for range 20 {
			if err := sp.SetSessionEnabled("tor1", false); err != nil {
				t.Fatal(err)
			}
			if err := sp.SetSessionEnabled("tor1", true); err != nil {
				t.Fatal(err)
			}
		}
		// The session may or may not have dropped in between; either way it must be
		// established again with the route, within the reconnect delay.
		start := time.Now()
		if err := tor.WaitFor(10*time.Second, func(routes map[string]map[string]testrouter.Route, up map[string]bool) bool {
			_, ok := routes[speakerAddr][web]
			return up[speakerAddr] && ok && sp.SessionUp("tor1")
		}); err != nil {
			t.Fatalf("flap %d: session not back with its route after 10 s: %v", i, err)
		}
		t.Logf("flap %d: back after %v", i, time.Since(start).Round(time.Millisecond))
	}
}

// TestEnableAfterDisableIsFast measures how long an enabled session takes to be
// established again after a disable (BFD Up after a failure), and checks it stays
// within 1 s: the relay dials the moment the session is enabled, with no
// connect delay or idle hold of ours. The router's own penalty is excluded: a GoBGP router refuses connections
// for 5 s after a session ends with a received Cease, so the test enables only
// after that.
func TestEnableAfterDisableIsFast(t *testing.T) {
	rns := inLab(t)
	if rns == "" {
		return
	}
	tor, sp := oneSession(t, rns)
	waitUp(t, tor, true)
	var worst time.Duration
	for i := range 2 {
		if err := sp.SetSessionEnabled("tor1", false); err != nil {
			t.Fatal(err)
		}
		waitUp(t, tor, false)
		time.Sleep(routerIdleHold)
		start := time.Now()
		// What the BFD link does when BFD comes Up: enable, then reconnect
		// (cutting short a dial that lost its SYN, never one just started).
		if err := sp.SetSessionEnabled("tor1", true); err != nil {
			t.Fatal(err)
		}
		sp.Reconnect("tor1")
		if err := tor.WaitFor(10*time.Second, func(_ map[string]map[string]testrouter.Route, up map[string]bool) bool {
			return up[speakerAddr]
		}); err != nil {
			t.Fatalf("enable %d: %v", i, err)
		}
		d := time.Since(start)
		worst = max(worst, d)
		t.Logf("enable %d: established after %v", i, d.Round(time.Millisecond))
	}
	if worst > time.Second {
		t.Errorf("enable → established took up to %v; want ≤ 1 s (the relay dials the moment the session is enabled)", worst)
	}
}

// routerIdleHold is how long the test router (GoBGP) refuses connections after a
// session ends with a Cease it received: its fixed 5 s idle hold, plus a margin.
const routerIdleHold = 5500 * time.Millisecond

// TestSessionRestartsDoNotLeak restarts one session 100 times (a BGP setting
// changes each time) while 2,000 routes are announced; goroutines and the in-use
// heap must come back to within 5 % of the baseline.
func TestSessionRestartsDoNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("100 session restarts")
	}
	// A peer nobody listens on: the sessions only try to connect.
	port, err := testenv.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	spec := announce.Session{Name: "tor1", MyASN: 65100, PeerASN: 65000, PeerAddress: netip.MustParseAddr("127.0.0.1"),
		PeerPort: uint16(port), RouterID: netip.MustParseAddr("10.0.0.21"),
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 30 * time.Second}
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	defer sp.Close()
	if err := sp.SetSessions([]announce.Session{spec}); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		p := fmt.Sprintf("198.18.%d.%d/32", i/256, i%256)
		if err := sp.Apply(fmt.Sprintf("ns/svc%d", i), []announce.Route{r("tor1", p, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	// One restart first, so that anything created once (pools, caches) is in the
	// baseline.
	restart := func(i int) {
		s := spec
		s.HoldTime = time.Duration(9+i%2) * time.Second
		if err := sp.SetSessions([]announce.Session{s}); err != nil {
			t.Fatal(err)
		}
	}
	restart(1)
	g0, h0 := settle()
	for i := range 100 {
		restart(i)
	}
	g1, h1 := settle()
	t.Logf("goroutines %d -> %d, heap in use %.1f -> %.1f MiB", g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if float64(g1) > float64(g0)*1.05 {
		t.Errorf("goroutines grew from %d to %d over 100 session restarts", g0, g1)
	}
	if float64(h1) > float64(h0)*1.05 {
		t.Errorf("heap in use grew from %d to %d bytes over 100 session restarts", h0, h1)
	}
}

// oneSession starts a router on 10.0.0.1 in namespace rns and a Speaker with one
// session ("tor1") to it.
func oneSession(t *testing.T, rns string) (*testrouter.Router, *Speaker) {
	t.Helper()
	tor := startRouter(t, rns, 65000, "10.0.0.1")
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(sp.Close)
	if err := sp.SetSessions([]announce.Session{testSession("tor1", "10.0.0.1", 65000)}); err != nil {
		t.Fatal(err)
	}
	return tor, sp
}

// settle waits for goroutines that are winding down, then returns the goroutine
// count and the in-use heap after a GC.
func settle() (int, uint64) {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

// TestDisableEnableDisableStaysDown: disable, enable, disable back to back (a BFD
// session that comes Up for a moment and fails again). GoBGP v3 takes the first
// request at once, queues the second while the session tears down and drops the
// third, so a speaker that fires admin-state requests ends with the session
// enabled: it reconnects and announces towards a peer BFD calls failed. The
// session must stay down.
func TestDisableEnableDisableStaysDown(t *testing.T) {
	rns := inLab(t)
	if rns == "" {
		return
	}
	tor, sp := oneSession(t, rns)
	waitUp(t, tor, true)
	for _, on := range []bool{false, true, false} {
		if err := sp.SetSessionEnabled("tor1", on); err != nil {
			t.Fatal(err)
		}
	}
	waitUp(t, tor, false)
	// GoBGP would reconnect an enabled neighbor after its 5 s idle hold and a 1-2 s
	// connect delay: the session must not come up within that window.
	if err := tor.WaitFor(8*time.Second, func(_ map[string]map[string]testrouter.Route, up map[string]bool) bool {
		return up[speakerAddr]
	}); err == nil {
		t.Fatal("session came back up although the last request disabled it")
	}
}
