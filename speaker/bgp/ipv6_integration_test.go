package bgp

import (
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// The IPv6 side of the lab: the router's and the speaker's addresses.
const (
	routerAddr6  = "fd00::1"
	speakerAddr6 = "fd00::21"
)

// inLab6 runs the calling test inside a dual-stack lab: the speaker has
// 10.0.0.21 and fd00::21, the router 10.0.0.1 and fd00::1.
func inLab6(t *testing.T) string {
	t.Helper()
	return netnstest.InLab(t, []string{"10.0.0.1/24", routerAddr6 + "/64"}, []string{speakerAddr + "/24", speakerAddr6 + "/64"}, nil)
}

// startRouter6 starts a router listening on both of its addresses, with
// neighbors (the speaker's addresses) in AS 65100. The router offers IPv4 and
// IPv6 unicast to each.
func startRouter6(t *testing.T, ns string, neighbors ...string) *testrouter.Router {
	t.Helper()
	cfg := testrouter.Config{ASN: 65000, RouterID: "10.0.0.1", Listen: []string{"10.0.0.1", routerAddr6}, Port: 179}
	for _, n := range neighbors {
		cfg.Neighbors = append(cfg.Neighbors, testrouter.Neighbor{Address: n, ASN: 65100})
	}
	r, err := testrouter.Start(cfg, testrouter.Options{NetNS: ns, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// waitRouteFrom waits until the router holds prefix from neighbor with the
// next-hop nextHop ("": until it holds no such route).
func waitRouteFrom(t *testing.T, r *testrouter.Router, neighbor, prefix, nextHop string) {
	t.Helper()
	err := r.WaitFor(15*time.Second, func(routes map[string]map[string]testrouter.Route, _ map[string]bool) bool {
		got, ok := routes[neighbor][prefix]
		if nextHop == "" {
			return !ok
		}
		return ok && got.NextHop == nextHop
	})
	if err != nil {
		t.Fatalf("route %s from %s want next-hop %q: %v; router has %+v", prefix, neighbor, nextHop, err, r.Routes(neighbor))
	}
}

// session6 is a session to the router's IPv6 address, as announce compiles
// it for the lab's node (next-hops of the other family from the node's
// addresses).
func session6(name string) announce.Session {
	return announce.Session{
		Name: name, MyASN: 65100, PeerASN: 65000, PeerAddress: netip.MustParseAddr(routerAddr6), PeerPort: 179,
		RouterID: netip.MustParseAddr(speakerAddr), HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
		ConnectTime: time.Second, NextHopV4: netip.MustParseAddr(speakerAddr),
	}
}

// waitFamilies waits until the session from neighbor is established with the
// speaker offering exactly the address families want.
func waitFamilies(t *testing.T, tor *testrouter.Router, neighbor string, want ...string) {
	t.Helper()
	if err := tor.WaitFamilies(20*time.Second, neighbor, want...); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6Session: a BGPPeer whose peerAddress is IPv6 gets a BGP session
// over IPv6 that negotiates IPv6 unicast only (MetalLB without
// dualStackAddressFamily), and an IPv6 Service address reaches the router as
// a /128 with the node's IPv6 address as next-hop (what a direct IPv6
// session carries).
func TestIPv6Session(t *testing.T) {
	rns := inLab6(t)
	if rns == "" {
		return
	}
	tor := startRouter6(t, rns, speakerAddr6)
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	t.Cleanup(sp.Close)
	if err := sp.SetSessions([]announce.Session{session6("tor6")}); err != nil {
		t.Fatal(err)
	}
	waitFamilies(t, tor, speakerAddr6, "ipv6-unicast")
	const web = "2001:db8::5/128"
	if err := sp.Apply("default/web", []announce.Route{r("tor6", web, 0)}); err != nil {
		t.Fatal(err)
	}
	waitRouteFrom(t, tor, speakerAddr6, web, speakerAddr6)
	if err := sp.Apply("default/web", nil); err != nil {
		t.Fatal(err)
	}
	waitRouteFrom(t, tor, speakerAddr6, web, "")
}

// TestDualStackSessions: with dualStackAddressFamily an IPv4 and an IPv6
// session each negotiate both families and carry both Service addresses, each
// with the node's address of its own family as next-hop; without it an IPv4
// session negotiates IPv4 unicast only.
func TestDualStackSessions(t *testing.T) {
	rns := inLab6(t)
	if rns == "" {
		return
	}
	tor := startRouter6(t, rns, speakerAddr, speakerAddr6)
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	t.Cleanup(sp.Close)

	v4 := testSession("tor4", "10.0.0.1", 65000)
	v4.NextHopV6 = netip.MustParseAddr(speakerAddr6)
	if err := sp.SetSessions([]announce.Session{v4}); err != nil {
		t.Fatal(err)
	}
	waitFamilies(t, tor, speakerAddr, "ipv4-unicast")

	v4.DualStack = true
	v6 := session6("tor6")
	v6.DualStack = true
	if err := sp.SetSessions([]announce.Session{v4, v6}); err != nil {
		t.Fatal(err)
	}
	// The IPv4 session restarts with both families.
	waitFamilies(t, tor, speakerAddr, "ipv4-unicast", "ipv6-unicast")
	waitFamilies(t, tor, speakerAddr6, "ipv4-unicast", "ipv6-unicast")

	const web4, web6 = "203.0.113.5/32", "2001:db8::5/128"
	if err := sp.Apply("default/web", []announce.Route{r("tor4", web4, 0), r("tor4", web6, 0), r("tor6", web4, 0), r("tor6", web6, 0)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{speakerAddr, speakerAddr6} {
		waitRouteFrom(t, tor, n, web4, speakerAddr)
		waitRouteFrom(t, tor, n, web6, speakerAddr6)
	}
}
