package bgp

import (
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
	rns := inLab(t)
	if rns == "" {
		return
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
