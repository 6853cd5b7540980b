package bgp

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// TestGracefulStopKeepsRoutes: a speaker that stops (a rolling upgrade) with
// enableGracefulRestart must end its sessions without a NOTIFICATION, so a
// router that is a graceful-restart helper (RFC 4724) keeps its routes,
// stale, through the restart: not one withdrawal from the stop until the
// next speaker is back. The next speaker's End-of-RIB then flushes only what
// it no longer announces. A Cease on the way out made the router drop every
// route at once.
func TestGracefulStopKeepsRoutes(t *testing.T) {
	tor, spec, log := gracefulRouter(t)
	if tor == nil {
		return
	}
	start := func(prefixes ...string) *Speaker {
		sp := New(Options{Logger: log})
		if err := sp.SetSessions([]announce.Session{spec}); err != nil {
			t.Fatal(err)
		}
		for _, p := range prefixes {
			if err := sp.Apply("default/"+p, []announce.Route{r("tor1", p, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		return sp
	}
	const web, old = "203.0.113.5/32", "203.0.113.6/32"
	sp := start(web, old)
	waitRoute(t, tor, web, &testrouter.Route{NextHop: speakerAddr})
	waitRoute(t, tor, old, &testrouter.Route{NextHop: speakerAddr})

	stopped := time.Now()
	sp.Close()
	waitUp(t, tor, false)
	// The next speaker announces web only.
	sp2 := start(web)
	t.Cleanup(sp2.Close)
	waitUp(t, tor, true)
	waitRoute(t, tor, old, nil) // flushed by the new session's End-of-RIB
	var withdrawn []string
	for _, e := range tor.Events() {
		if e.Withdraw && e.Prefix == web && e.T >= stopped.UnixNano() {
			withdrawn = append(withdrawn, time.Unix(0, e.T).Format("15:04:05.000"))
		}
	}
	if len(withdrawn) > 0 {
		t.Fatalf("%s withdrawn at %v during a graceful restart (stop at %s)", web, withdrawn, stopped.Format("15:04:05.000"))
	}
	if got, ok := tor.Routes(speakerAddr)[web]; !ok || got.NextHop != speakerAddr {
		t.Fatalf("%s after the restart: %+v, present %v", web, got, ok)
	}
}

// A restarted speaker with a big table sends End-of-RIB only after all of
// it: GoBGP sends End-of-RIB right after the routes it holds when the
// session comes up, and the router flushes whatever it kept, stale, and has
// not received by then. The speaker gets every route before its session (as
// the watch hands them over); the session adding its neighbor before its
// paths withdrew most of the table at every restart.
func TestGracefulRestartBigTable(t *testing.T) {
	tor, spec, log := gracefulRouter(t)
	if tor == nil {
		return
	}
	const n = 3000
	prefix := func(i int) string { return fmt.Sprintf("10.%d.%d.0/32", 100+i/250, i%250) }
	start := func() *Speaker {
		sp := New(Options{Logger: log})
		for i := range n {
			if err := sp.Apply(fmt.Sprintf("default/s%d", i), []announce.Route{r("tor1", prefix(i), 0)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.SetSessions([]announce.Session{spec}); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	sp := start()
	waitRoute(t, tor, prefix(n-1), &testrouter.Route{NextHop: speakerAddr})
	stopped := time.Now()
	sp.Close()
	waitUp(t, tor, false)
	sp2 := start()
	t.Cleanup(sp2.Close)
	waitUp(t, tor, true)
	waitRoute(t, tor, prefix(n-1), &testrouter.Route{NextHop: speakerAddr})
	withdrawn := 0
	for _, e := range tor.Events() {
		if e.Withdraw && e.T >= stopped.UnixNano() {
			withdrawn++
		}
	}
	if withdrawn > 0 {
		t.Fatalf("%d of %d routes withdrawn during the graceful restart", withdrawn, n)
	}
	if got := len(tor.Routes(speakerAddr)); got != n {
		t.Fatalf("router holds %d routes after the restart, want %d", got, n)
	}
}

// gracefulRouter starts, in the lab (nil outside it, when the test reruns
// itself there), a test router that is a graceful-restart helper for the
// speaker, and returns it with the speaker's session to it and a logger.
func gracefulRouter(t *testing.T) (*testrouter.Router, announce.Session, *slog.Logger) {
	rns := inLab(t)
	if rns == "" {
		return nil, announce.Session{}, nil
	}
	tor, err := testrouter.Start(testrouter.Config{
		ASN: 65000, RouterID: "10.0.0.1", Listen: []string{"10.0.0.1"}, Port: 179,
		Neighbors: []testrouter.Neighbor{{Address: speakerAddr, ASN: 65100, GracefulRestart: true}},
	}, testrouter.Options{NetNS: rns, Stderr: os.Stderr, KeepEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tor.Stop)
	spec := testSession("tor1", "10.0.0.1", 65000)
	spec.GracefulRestart = true
	return tor, spec, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
