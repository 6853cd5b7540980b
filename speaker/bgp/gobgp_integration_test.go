package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

const (
	speakerAddr = "10.0.0.21"
)

// inLab runs the calling test inside a speaker namespace (10.0.0.21) linked to
// a router namespace (10.0.0.1-3); see netnstest.InLab.
func inLab(t *testing.T) string {
	t.Helper()
	return netnstest.InLab(t, []string{"10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24"}, []string{speakerAddr + "/24"}, nil)
}

func startRouter(t *testing.T, ns string, asn uint32, addr string, originate ...string) *testrouter.Router {
	return startRouterPW(t, ns, asn, addr, "", originate...)
}

func startRouterPW(t *testing.T, ns string, asn uint32, addr, password string, originate ...string) *testrouter.Router {
	t.Helper()
	r, err := testrouter.Start(testrouter.Config{
		ASN: asn, RouterID: addr, Listen: []string{addr}, Port: 179,
		Neighbors: []testrouter.Neighbor{{Address: speakerAddr, ASN: 65100, Password: password}},
		Originate: originate,
	}, testrouter.Options{NetNS: ns, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func testSession(name, addr string, peerASN uint32) announce.Session {
	return announce.Session{
		Name: name, MyASN: 65100, PeerASN: peerASN, PeerAddress: netip.MustParseAddr(addr), PeerPort: 179,
		SourceAddress: netip.MustParseAddr(speakerAddr), RouterID: netip.MustParseAddr(speakerAddr),
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second,
	}
}

func waitRoute(t *testing.T, r *testrouter.Router, prefix string, want *testrouter.Route) {
	t.Helper()
	err := r.WaitFor(15*time.Second, func(routes map[string]map[string]testrouter.Route, _ map[string]bool) bool {
		got, ok := routes[speakerAddr][prefix]
		if want == nil {
			return !ok
		}
		return ok && got.NextHop == want.NextHop && got.LocalPref == want.LocalPref && reflect.DeepEqual(got.Communities, want.Communities)
	})
	if err != nil {
		t.Fatalf("route %s want %+v: %v; router has %+v", prefix, want, err, r.Routes(speakerAddr))
	}
}

func waitUp(t *testing.T, r *testrouter.Router, up bool) {
	t.Helper()
	if err := r.WaitFor(20*time.Second, func(_ map[string]map[string]testrouter.Route, u map[string]bool) bool {
		return u[speakerAddr] == up
	}); err != nil {
		t.Fatalf("session up=%v: %v", up, err)
	}
}

// TestGoBGPRouter runs real BGP sessions from the speaker's adapter to two GoBGP
// routers (eBGP and iBGP) in another network namespace.
func TestGoBGPRouter(t *testing.T) {
	rns := inLab(t)
	if rns == "" {
		return
	}
	ebgp := startRouter(t, rns, 65000, "10.0.0.1", "192.0.2.0/24")
	ibgp := startRouter(t, rns, 65100, "10.0.0.3")

	reg := prometheus.NewRegistry()
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})), Registerer: reg})
	t.Cleanup(sp.Close)
	if err := sp.SetSessions([]announce.Session{testSession("tor1", "10.0.0.1", 65000), testSession("ibgp", "10.0.0.3", 65100)}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ebgp, true)
	waitUp(t, ibgp, true)

	web := "203.0.113.5/32"
	if err := sp.Apply("default/web", []announce.Route{
		r("ibgp", web, 150, "65000:100", "large:1:2:3"),
		r("tor1", web, 0, "65000:100", "large:1:2:3"),
	}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, web, &testrouter.Route{NextHop: speakerAddr, Communities: []string{"65000:100", "large:1:2:3"}})
	waitRoute(t, ibgp, web, &testrouter.Route{NextHop: speakerAddr, LocalPref: 150, Communities: []string{"65000:100", "large:1:2:3"}})

	// A second Service; changing it must not touch the first one's route.
	webAt := ebgp.Routes(speakerAddr)[web].At
	db := "203.0.113.6/32"
	if err := sp.Apply("default/db", []announce.Route{r("tor1", db, 0)}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, db, &testrouter.Route{NextHop: speakerAddr})
	if err := sp.Apply("default/db", nil); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, db, nil)
	if got := ebgp.Routes(speakerAddr)[web].At; !got.Equal(webAt) {
		t.Errorf("web route was re-sent (%v -> %v) while only db changed", webAt, got)
	}

	// Attribute change, then a peers restriction (only ibgp keeps it).
	if err := sp.Apply("default/web", []announce.Route{r("ibgp", web, 200), r("tor1", web, 0, "65000:200")}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, web, &testrouter.Route{NextHop: speakerAddr, Communities: []string{"65000:200"}})
	waitRoute(t, ibgp, web, &testrouter.Route{NextHop: speakerAddr, LocalPref: 200})
	if err := sp.Apply("default/web", []announce.Route{r("ibgp", web, 200)}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, web, nil)
	if got := sp.ServicePeers("default/web"); !reflect.DeepEqual(got, []string{"ibgp"}) {
		t.Errorf("ServicePeers = %v", got)
	}

	// Nothing learned from peers is kept: the eBGP router originates 192.0.2.0/24,
	// which the relay counts and drops; neither the adj-RIB-in nor the RIB has it.
	if err := sp.Apply("default/web", []announce.Route{r("ibgp", web, 200), r("tor1", web, 0)}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, ebgp, web, &testrouter.Route{NextHop: speakerAddr})
	sp.mu.Lock()
	sess := sp.sessions["tor1"]
	sp.mu.Unlock()
	list := func(tt api.TableType, name string) []string {
		var out []string
		if err := sess.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: tt, Name: name,
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}}, func(d *api.Destination) {
			out = append(out, d.Prefix)
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(api.TableType_ADJ_IN, sess.peer.Conf.NeighborAddress); len(got) != 0 {
		t.Errorf("adj-rib-in = %v, want nothing", got)
	}
	if v := metricValue(t, reg, "ecmplb_speaker_bgp_discarded_prefixes_total", "tor1"); v != 1 {
		t.Errorf("discarded_prefixes_total{tor1} = %v, want 1 (the router's 192.0.2.0/24)", v)
	}
	if got := list(api.TableType_GLOBAL, ""); !reflect.DeepEqual(got, []string{web}) {
		t.Errorf("RIB = %v, want only %s", got, web)
	}

	// Disable and enable (what BFD does): routes leave and come back.
	if err := sp.SetSessionEnabled("tor1", false); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ebgp, false)
	waitRoute(t, ebgp, web, nil)
	if err := sp.SetSessionEnabled("tor1", true); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ebgp, true)
	waitRoute(t, ebgp, web, &testrouter.Route{NextHop: speakerAddr})

	// The speaker learns of the session from GoBGP's peer events, just
	// after the router sees it up: wait for its gauge, then read the rest.
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, reg, "ecmplb_speaker_bgp_session_up", "tor1") != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := metricValue(t, reg, "ecmplb_speaker_bgp_session_up", "tor1"); v != 1 {
		t.Errorf("session_up{tor1} = %v 10 s after the router saw the session up", v)
	}
	if v := metricValue(t, reg, "ecmplb_speaker_announced_prefixes", "ibgp"); v != 1 {
		t.Errorf("announced_prefixes{ibgp} = %v", v)
	}
	if v := metricValue(t, reg, "ecmplb_speaker_bgp_updates_sent_total", "ibgp"); v < 2 {
		t.Errorf("updates_sent{ibgp} = %v, want >= 2", v)
	}
	// MetalLB's names, peer as address:port, from GoBGP's counters and the relay's.
	// A session that came up a moment ago may not have counted its first
	// KEEPALIVE yet: wait for it on both.
	for _, peer := range []string{"10.0.0.1:179", "10.0.0.3:179"} {
		deadline := time.Now().Add(10 * time.Second)
		for metricValue(t, reg, "metallb_bgp_keepalives_received", peer) < 1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// One scrape, so the counters are read together (keepalives keep coming).
	snap := prometheus.NewRegistry()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	snap.MustRegister(gathered(mfs))
	mlb := func(name, peer string) float64 { return metricValue(t, snap, "metallb_bgp_"+name, peer) }
	if v := mlb("session_up", "10.0.0.1:179"); v != 1 {
		t.Errorf("metallb_bgp_session_up{10.0.0.1:179} = %v", v)
	}
	if v := mlb("announced_prefixes_total", "10.0.0.3:179"); v != 1 {
		t.Errorf("metallb_bgp_announced_prefixes_total{10.0.0.3:179} = %v", v)
	}
	if v := mlb("updates_total", "10.0.0.3:179"); v < 2 {
		t.Errorf("metallb_bgp_updates_total{10.0.0.3:179} = %v, want >= 2", v)
	}
	if v := mlb("updates_total_received", "10.0.0.1:179"); v < 1 {
		t.Errorf("metallb_bgp_updates_total_received{10.0.0.1:179} = %v, want >= 1 (the router's 192.0.2.0/24)", v)
	}
	for _, peer := range []string{"10.0.0.1:179", "10.0.0.3:179"} {
		opens, upd, ka, notif, rr := mlb("opens_sent", peer), mlb("updates_total", peer), mlb("keepalives_sent", peer),
			mlb("notifications_sent", peer), mlb("route_refresh_sent", peer)
		if opens < 1 || mlb("opens_received", peer) < 1 || mlb("keepalives_received", peer) < 1 {
			t.Errorf("%s: opens sent %v, received %v; keepalives received %v", peer, opens, mlb("opens_received", peer), mlb("keepalives_received", peer))
		}
		if total := mlb("total_sent", peer); total != opens+upd+ka+notif+rr {
			t.Errorf("%s: total_sent %v != opens %v + updates %v + keepalives %v + notifications %v + refresh %v", peer, total, opens, upd, ka, notif, rr)
		}
		if mlb("total_received", peer) < mlb("opens_received", peer)+mlb("keepalives_received", peer) {
			t.Errorf("%s: total_received %v below opens+keepalives received", peer, mlb("total_received", peer))
		}
	}

	// Removing a session closes it on the router; settings changes restart it.
	if err := sp.SetSessions([]announce.Session{testSession("tor1", "10.0.0.1", 65000)}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ibgp, false)
	changed := testSession("tor1", "10.0.0.1", 65000)
	changed.HoldTime = 30 * time.Second
	if err := sp.SetSessions([]announce.Session{changed}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ebgp, true)
	waitRoute(t, ebgp, web, &testrouter.Route{NextHop: speakerAddr})
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, peer string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "peer" && l.GetValue() == peer {
					if m.Gauge != nil {
						return m.Gauge.GetValue()
					}
					return m.Counter.GetValue()
				}
			}
		}
	}
	return -1
}

// TestGoBGPRouterMD5 checks TCP MD5 authentication: the right password establishes
// the session, a wrong one never does.
func TestGoBGPRouterMD5(t *testing.T) {
	if err := probeTCPMD5(); err != nil {
		t.Skipf("kernel has no TCP MD5 signature support (CONFIG_TCP_MD5SIG): %v", err)
	}
	rns := inLab(t)
	if rns == "" {
		return
	}
	good := startRouterPW(t, rns, 65000, "10.0.0.1", "s3cret")
	bad := startRouterPW(t, rns, 65000, "10.0.0.2", "other")
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(sp.Close)
	s1 := testSession("good", "10.0.0.1", 65000)
	s1.Password = "s3cret"
	s2 := testSession("bad", "10.0.0.2", 65000)
	s2.Password = "s3cret"
	if err := sp.SetSessions([]announce.Session{s1, s2}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, good, true)
	time.Sleep(5 * time.Second) // several connect attempts at 1 s
	if bad.Up(speakerAddr) || sp.SessionUp("bad") {
		t.Error("session with a wrong MD5 password came up")
	}
}

// probeTCPMD5 sets TCP_MD5SIG on a listening socket (what the router side needs),
// which fails with ENOPROTOOPT on kernels without support for it there.
func probeTCPMD5() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	sc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	sig := unix.TCPMD5Sig{Keylen: 4}
	sig.Addr.Family = unix.AF_INET
	copy(sig.Addr.Data[2:], []byte{127, 0, 0, 2})
	copy(sig.Key[:], "test")
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
	}); err != nil {
		return err
	}
	return serr
}
