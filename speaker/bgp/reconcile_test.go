package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"google.golang.org/protobuf/proto"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// fakeGoBGP records what a session told it and fails calls on demand.
type fakeGoBGP struct {
	mu      sync.Mutex
	started bool
	peers   map[string]*api.Peer
	paths   map[string]bool // prefixes in the RIB
	fail    map[string]int  // operation → how many more calls fail
	calls   map[string]int
}

func newFake() *fakeGoBGP {
	return &fakeGoBGP{peers: map[string]*api.Peer{}, paths: map[string]bool{}, fail: map[string]int{}, calls: map[string]int{}}
}

var errInjected = errors.New("injected failure")

func (f *fakeGoBGP) op(name string) error {
	f.calls[name]++
	if f.fail[name] > 0 {
		f.fail[name]--
		return errInjected
	}
	return nil
}

func (f *fakeGoBGP) StartBgp(context.Context, *api.StartBgpRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("StartBgp"); err != nil {
		return err
	}
	if f.started {
		return errors.New("already started")
	}
	f.started = true
	return nil
}

func (f *fakeGoBGP) StopBgp(context.Context, *api.StopBgpRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["StopBgp"]++
	f.started = false
	clear(f.peers)
	clear(f.paths)
	return nil
}

func (f *fakeGoBGP) WatchEvent(context.Context, *api.WatchEventRequest, func(*api.WatchEventResponse)) error {
	return nil
}

func (f *fakeGoBGP) AddPeer(_ context.Context, r *api.AddPeerRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("AddPeer"); err != nil {
		return err
	}
	p := proto.Clone(r.Peer).(*api.Peer)
	p.State = &api.PeerState{AdminState: api.PeerState_UP}
	f.peers[r.Peer.Conf.NeighborAddress] = p
	return nil
}

func (f *fakeGoBGP) DeletePeer(_ context.Context, r *api.DeletePeerRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("DeletePeer"); err != nil {
		return err
	}
	delete(f.peers, r.Address)
	return nil
}

func (f *fakeGoBGP) ListPeer(_ context.Context, r *api.ListPeerRequest, fn func(*api.Peer)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.peers[r.Address]; p != nil {
		fn(p)
	}
	return nil
}

func pathPrefix(p *api.Path) string {
	n, _ := apiutil.UnmarshalNLRI(bgp.RF_IPv4_UC, p.Nlri)
	return n.String()
}

func (f *fakeGoBGP) AddPath(_ context.Context, r *api.AddPathRequest) (*api.AddPathResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("AddPath"); err != nil {
		return nil, err
	}
	f.paths[pathPrefix(r.Path)] = true
	return &api.AddPathResponse{}, nil
}

func (f *fakeGoBGP) DeletePath(_ context.Context, r *api.DeletePathRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op("DeletePath"); err != nil {
		return err
	}
	delete(f.paths, pathPrefix(r.Path))
	return nil
}

func (f *fakeGoBGP) ListPath(context.Context, *api.ListPathRequest, func(*api.Destination)) error {
	return nil
}

func (f *fakeGoBGP) snapshot() (peers int, paths map[string]bool, calls map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := map[string]bool{}
	for k := range f.paths {
		ps[k] = true
	}
	cs := map[string]int{}
	for k, v := range f.calls {
		cs[k] = v
	}
	return len(f.peers), ps, cs
}

type fakeServers struct {
	mu      sync.Mutex
	all     []*fakeGoBGP
	started []*fakeRelay
}

// fakeRelay records what a session did with its relay.
type fakeRelay struct {
	params     relayParams
	heldPaths  map[string]bool // the paths GoBGP held when the relay started
	kicks      atomic.Int32
	mu         sync.Mutex
	closedWith *time.Duration
}

func (r *fakeRelay) kick() { r.kicks.Add(1) }
func (r *fakeRelay) close(grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closedWith = &grace
}
func (r *fakeRelay) closeAfterPeer(time.Duration) { r.close(0) }
func (r *fakeRelay) closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closedWith != nil
}
func (r *fakeRelay) grace() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closedWith == nil {
		return -1
	}
	return *r.closedWith
}

func (fs *fakeServers) newRelay(p relayParams) transport {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r := &fakeRelay{params: p}
	if n := len(fs.all); n > 0 {
		_, r.heldPaths, _ = fs.all[n-1].snapshot()
	}
	fs.started = append(fs.started, r)
	return r
}

func (fs *fakeServers) relays() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.started)
}

func (fs *fakeServers) relay(i int) *fakeRelay {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.started[i]
}

func (fs *fakeServers) new(*slog.Logger) gobgp {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := newFake()
	fs.all = append(fs.all, f)
	return f
}

func (fs *fakeServers) last() *fakeGoBGP {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.all[len(fs.all)-1]
}

func fakeSpeaker(t *testing.T) (*Speaker, *fakeServers) {
	fs := &fakeServers{}
	sp := New(Options{Logger: slog.New(slog.DiscardHandler), newServer: fs.new, newRelay: fs.newRelay,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	t.Cleanup(sp.Close)
	return sp, fs
}

func spec(name string) announce.Session {
	return announce.Session{Name: name, MyASN: 65100, PeerASN: 65000, PeerAddress: netip.MustParseAddr("10.0.0.1"),
		PeerPort: 179, RouterID: netip.MustParseAddr("10.0.0.21"), HoldTime: 90 * time.Second,
		KeepaliveTime: 30 * time.Second, ConnectTime: 5 * time.Second}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A failed AddPath is retried until GoBGP holds the route; a withdrawal that
// failed is retried too. The table never claims a route GoBGP refused.
func TestFailedPathOperationsAreRetried(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	f.mu.Lock()
	f.fail["AddPath"] = 3
	f.mu.Unlock()
	if err := sp.Apply("ns/web", []announce.Route{r("tor1", "203.0.113.5/32", 0)}); err == nil {
		t.Error("Apply hid the failed AddPath")
	}
	eventually(t, "route in GoBGP after 3 failures", func() bool { _, p, _ := f.snapshot(); return p["203.0.113.5/32"] })
	f.mu.Lock()
	f.fail["DeletePath"] = 2
	f.mu.Unlock()
	_ = sp.Apply("ns/web", nil)
	eventually(t, "route withdrawn after 2 failures", func() bool { _, p, _ := f.snapshot(); return !p["203.0.113.5/32"] })
	eventually(t, "no failures left", func() bool {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return sp.sessions["tor1"].failures == 0 && len(sp.sessions["tor1"].dirty) == 0
	})
}

// A session whose start failed (GoBGP refused StartBgp, or the neighbor) is
// retried, and gets the routes wanted meanwhile.
func TestFailedSessionStartIsRetried(t *testing.T) {
	fs := &fakeServers{}
	first := newFake()
	first.fail["StartBgp"] = 2
	first.fail["AddPeer"] = 2
	fs.all = append(fs.all, first)
	sp := New(Options{Logger: slog.New(slog.DiscardHandler), MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		newServer: func(*slog.Logger) gobgp { return first }})
	t.Cleanup(sp.Close)
	if err := sp.Apply("ns/web", []announce.Route{r("tor1", "203.0.113.5/32", 0)}); err != nil {
		t.Fatal(err)
	}
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err == nil {
		t.Error("SetSessions hid the failed start")
	}
	eventually(t, "session started with its neighbor and route", func() bool {
		n, p, _ := first.snapshot()
		return n == 1 && p["203.0.113.5/32"]
	})
}

// Disable and enable back to back, many times: the neighbor ends present, and each
// enable adds it afresh (no admin-state request that GoBGP could drop).
func TestDisableEnableIsLevelTriggered(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	for range 50 {
		if err := sp.SetSessionEnabled("tor1", false); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := f.snapshot(); n != 0 {
			t.Fatal("neighbor still present after disable")
		}
		if err := sp.SetSessionEnabled("tor1", true); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := f.snapshot(); n != 1 {
			t.Fatal("neighbor missing after enable")
		}
	}
	// A failed removal is retried: the neighbor must not stay while disabled.
	f.mu.Lock()
	f.fail["DeletePeer"] = 3
	f.mu.Unlock()
	_ = sp.SetSessionEnabled("tor1", false)
	eventually(t, "neighbor removed after failures", func() bool { n, _, _ := f.snapshot(); return n == 0 })
	// The neighbor vanishing behind our back (read back) is repaired.
	_ = sp.SetSessionEnabled("tor1", true)
	f.mu.Lock()
	clear(f.peers)
	f.mu.Unlock()
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := f.snapshot(); n != 1 {
		t.Fatal("vanished neighbor not re-added")
	}
}

// Only BGP settings restart a session: a BFD profile edit leaves the neighbor
// alone, a hold-time edit replaces it, a router-ID edit restarts the instance on
// the same server.
func TestOnlyBGPSettingsRestartSessions(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	s := spec("tor1")
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	_, _, c0 := f.snapshot()
	s.BFD = &announce.BFDProfile{Name: "fast"}
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	if _, _, c := f.snapshot(); c["AddPeer"] != c0["AddPeer"] || c["DeletePeer"] != 0 {
		t.Errorf("BFD profile edit touched the neighbor: %v", c)
	}
	s.HoldTime = 30 * time.Second
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	if _, _, c := f.snapshot(); c["DeletePeer"] != 1 || c["AddPeer"] != c0["AddPeer"]+1 || c["StopBgp"] != 0 {
		t.Errorf("hold-time edit: %v, want one neighbor replaced", c)
	}
	if err := sp.Apply("ns/web", []announce.Route{r("tor1", "203.0.113.5/32", 0)}); err != nil {
		t.Fatal(err)
	}
	s.RouterID = netip.MustParseAddr("10.0.0.99")
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	n, p, c := f.snapshot()
	if c["StopBgp"] != 1 || n != 1 || !p["203.0.113.5/32"] {
		t.Errorf("router-ID edit: calls %v, neighbors %d, paths %v", c, n, p)
	}
	if len(fs.all) != 1 {
		t.Errorf("%d GoBGP servers created, want 1", len(fs.all))
	}
}

// Servers are reused: sessions that come and go never create more servers than
// ran at once.
func TestServersAreReused(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	for i := range 100 {
		a, b := spec("tor1"), spec("tor2")
		b.PeerAddress = netip.MustParseAddr("10.0.0.2")
		want := []announce.Session{a, b}
		if i%2 == 1 {
			want = want[:1]
		}
		if err := sp.SetSessions(want); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fs.all); n != 2 {
		t.Errorf("%d servers created for at most 2 sessions at once", n)
	}
	if n := sp.Servers(); n != 2 {
		t.Errorf("Servers() = %d", n)
	}
}

// bfd is imported so that this file fails to build if PathFailure goes away: the
// link relies on it to decide what disables a session.
var _ = bfd.StateChange.PathFailure

// BFD coming Up kicks the relay of a session that is not established (it
// dials at once instead of after its backoff) and leaves GoBGP's neighbor
// alone; an established session is not touched.
func TestReconnectKicksTheRelay(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	r := fs.relay(0)
	sp.Reconnect("tor1")
	if r.kicks.Load() != 1 {
		t.Errorf("kicks = %d, want 1", r.kicks.Load())
	}
	if _, _, c := f.snapshot(); c["DeletePeer"] != 0 || c["AddPeer"] != 1 {
		t.Errorf("neighbor touched by a kick: %v", c)
	}
	sp.mu.Lock()
	sp.sessions["tor1"].up.Store(true)
	sp.mu.Unlock()
	sp.Reconnect("tor1")
	if r.kicks.Load() != 1 {
		t.Errorf("established session kicked")
	}
}

// The relay runs exactly while the neighbor is there; a change of connection
// settings (password, source, port) restarts the relay only, a BGP setting the
// neighbor.
func TestRelayFollowsTheNeighbor(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	s := spec("tor1")
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	if n := fs.relays(); n != 1 {
		t.Fatalf("%d relays after the start", n)
	}
	if err := sp.SetSessionEnabled("tor1", false); err != nil {
		t.Fatal(err)
	}
	if g := fs.relay(0).grace(); g != relayCloseGrace {
		t.Errorf("disabled: relay closed with grace %v, want %v (GoBGP's Cease must reach the peer)", g, relayCloseGrace)
	}
	if err := sp.SetSessionEnabled("tor1", true); err != nil {
		t.Fatal(err)
	}
	if n := fs.relays(); n != 2 || fs.relay(1).closed() {
		t.Fatalf("enabled again: %d relays, last closed %v", n, fs.relay(1).closed())
	}
	s.Password = "new"
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	if n := fs.relays(); n != 3 || !fs.relay(1).closed() || fs.relay(1).grace() != 0 {
		t.Errorf("password changed: %d relays, previous closed %v", n, fs.relay(1).closed())
	}
	if _, _, c := f.snapshot(); c["AddPeer"] != 2 {
		t.Errorf("password change touched GoBGP's neighbor: %v", c)
	}
	if got := fs.relay(2).params.cfg.password; got != "new" {
		t.Errorf("relay password %q", got)
	}
	s.HoldTime = 30 * time.Second
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	if _, _, c := f.snapshot(); c["AddPeer"] != 3 || fs.relays() != 3 {
		t.Errorf("hold time changed: calls %v, relays %d (the relay stays)", c, fs.relays())
	}
}

// GoBGP refusing the relay's connection (its neighbor in an idle hold) gets
// the neighbor replaced, unless the neighbor was added a moment ago (it is
// leaving its first, zero-length hold; a replacement would be as young).
func TestRefusedConnectionReplacesTheNeighbor(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	f := fs.last()
	fs.relay(0).params.onRefused()
	sp.Reconnect("tor1") // runs a reconcile of the session, as the loop would
	if _, _, c := f.snapshot(); c["DeletePeer"] != 0 {
		t.Errorf("a neighbor added just now was replaced: %v", c)
	}
	sp.mu.Lock()
	sp.sessions["tor1"].addedAt = time.Now().Add(-time.Second)
	sp.mu.Unlock()
	fs.relay(0).params.onRefused()
	eventually(t, "neighbor replaced", func() bool {
		_, _, c := f.snapshot()
		return c["DeletePeer"] == 1 && c["AddPeer"] == 2
	})
	if fs.relays() != 1 {
		t.Errorf("relay restarted: the loopback hop did not change")
	}
}

// TestPeerConfigFamilies: GoBGP's neighbor offers the peer address's family
// only, both with dualStackAddressFamily (what MetalLB activates in FRR).
func TestPeerConfigFamilies(t *testing.T) {
	for _, tc := range []struct {
		peer string
		dual bool
		want []api.Family_Afi
	}{
		{"10.0.0.1", false, []api.Family_Afi{api.Family_AFI_IP}},
		{"fd00::1", false, []api.Family_Afi{api.Family_AFI_IP6}},
		{"10.0.0.1", true, []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6}},
		{"fd00::1", true, []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6}},
	} {
		spec := testSession("p", tc.peer, 65000)
		spec.DualStack = tc.dual
		spec.GracefulRestart = true
		var got []api.Family_Afi
		for _, af := range peerConfig(spec, "").AfiSafis {
			got = append(got, af.Config.Family.Afi)
			if af.Config.Family.Safi != api.Family_SAFI_UNICAST || !af.Config.Enabled || !af.MpGracefulRestart.Config.Enabled {
				t.Errorf("%s dual=%v: %v", tc.peer, tc.dual, af)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s dual=%v: families %v, want %v", tc.peer, tc.dual, got, tc.want)
		}
	}
}

// The connection to a peer starts once GoBGP holds every route wanted for
// it: with graceful restart GoBGP sends End-of-RIB right after the routes it
// holds when the session comes up, and the router flushes whatever of ours
// it kept, stale, and has not received by then.
func TestRoutesBeforeConnection(t *testing.T) {
	sp, fs := fakeSpeaker(t)
	want := map[string]bool{}
	for i := range 20 {
		p := fmt.Sprintf("203.0.113.%d/32", i)
		if err := sp.Apply(fmt.Sprintf("default/s%d", i), []announce.Route{r("tor1", p, 0)}); err != nil {
			t.Fatal(err)
		}
		want[p] = true
	}
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	if fs.relays() != 1 {
		t.Fatalf("%d relays started, want 1", fs.relays())
	}
	if got := fs.relay(0).heldPaths; !maps.Equal(got, want) {
		t.Errorf("the connection started with GoBGP holding %d of the %d routes: %v", len(got), len(want), got)
	}
}
