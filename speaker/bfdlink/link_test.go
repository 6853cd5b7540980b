package bfdlink

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

type fakeMgr struct {
	mu      sync.Mutex
	ops     []string
	ch      chan bfd.StateChange
	profile map[bfd.PeerKey]bfd.Profile
	failAdd int
}

func (f *fakeMgr) AddPeer(k bfd.PeerKey, p bfd.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd > 0 {
		f.failAdd--
		return errors.New("injected: no route to peer")
	}
	f.ops = append(f.ops, "add "+k.String())
	f.profile[k] = p
	return nil
}
func (f *fakeMgr) UpdatePeer(k bfd.PeerKey, p bfd.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "update "+k.String())
	f.profile[k] = p
	return nil
}
func (f *fakeMgr) RemovePeer(k bfd.PeerKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "remove "+k.String())
	delete(f.profile, k)
	return nil
}
func (f *fakeMgr) Subscribe() (<-chan bfd.StateChange, func()) { return f.ch, func() {} }

func (f *fakeMgr) has(k bfd.PeerKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.profile[k]
	return ok
}

// fakeBGP is a Speaker's enable flags: sessions exist and start enabled.
type fakeBGP struct {
	mu       sync.Mutex
	ops      []string
	disabled map[string]bool
	missing  map[string]bool
}

func newFakeBGP() *fakeBGP { return &fakeBGP{disabled: map[string]bool{}, missing: map[string]bool{}} }

func (f *fakeBGP) SetSessionEnabled(peer string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := "disable "
	if on {
		s = "enable "
	}
	f.ops = append(f.ops, s+peer)
	f.disabled[peer] = !on
	return nil
}

func (f *fakeBGP) SessionEnabled(peer string) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.disabled[peer], !f.missing[peer]
}

func (f *fakeBGP) Reconnect(string) {}

func (f *fakeBGP) takeOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func u32(v uint32) *uint32 { return &v }

var (
	k1 = bfd.PeerKey{Local: netip.MustParseAddr("10.0.0.21"), Peer: netip.MustParseAddr("10.0.0.1")}
	k2 = bfd.PeerKey{Local: netip.MustParseAddr("10.0.0.31"), Peer: netip.MustParseAddr("10.0.0.2")}
)

func testLink() (*Link, *fakeMgr, *fakeBGP, []announce.Session) {
	mgr := &fakeMgr{ch: make(chan bfd.StateChange), profile: map[bfd.PeerKey]bfd.Profile{}}
	bg := newFakeBGP()
	l := New(mgr, bg, slog.New(slog.DiscardHandler), nil)
	l.minBackoff, l.maxBackoff = time.Millisecond, 5*time.Millisecond
	l.local = func(p netip.Addr) (netip.Addr, error) { return netip.MustParseAddr("10.0.0.21"), nil }
	fast := &announce.BFDProfile{Name: "fast", ReceiveInterval: u32(50), TransmitInterval: u32(50)}
	tor1 := announce.Session{Name: "tor1", PeerAddress: netip.MustParseAddr("10.0.0.1"), BFD: fast}
	tor2 := announce.Session{Name: "tor2", PeerAddress: netip.MustParseAddr("10.0.0.2"), SourceAddress: netip.MustParseAddr("10.0.0.31"), BFD: fast}
	plain := announce.Session{Name: "plain", PeerAddress: netip.MustParseAddr("10.0.0.3")}
	return l, mgr, bg, []announce.Session{tor1, tor2, plain}
}

func TestLink(t *testing.T) {
	l, mgr, bg, sessions := testLink()
	tor1, tor2 := sessions[0], sessions[1]
	if err := l.SetSessions(sessions); err != nil {
		t.Fatal(err)
	}
	if p := mgr.profile[k1]; p.ReceiveInterval != 50 || p.DetectMultiplier != 3 {
		t.Errorf("profile %+v", p)
	}
	if len(mgr.ops) != 2 {
		t.Fatalf("ops %v", mgr.ops)
	}
	if ops := bg.takeOps(); len(ops) != 0 {
		t.Errorf("start-up touched BGP before BFD was ever Up: %v", ops)
	}

	up := func(k bfd.PeerKey) bfd.StateChange {
		return bfd.StateChange{Key: k, Old: bfd.StateInit, New: bfd.StateUp}
	}
	for _, tc := range []struct {
		name string
		ev   bfd.StateChange
		want []string
	}{
		{"init", bfd.StateChange{Key: k1, Old: bfd.StateDown, New: bfd.StateInit}, nil},
		{"up", up(k1), nil},
		{"detection time expired", bfd.StateChange{Key: k1, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagControlDetectionTimeExpired}, []string{"disable tor1"}},
		{"init again: still shut", bfd.StateChange{Key: k1, Old: bfd.StateDown, New: bfd.StateInit}, nil},
		{"up again", up(k1), []string{"enable tor1"}},
		{"peer AdminDown is no failure", bfd.StateChange{Key: k1, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagNeighborSignaledDown,
			RemoteState: bfd.StateAdminDown, RemoteDiag: bfd.DiagAdminDown}, nil},
		{"up after AdminDown", up(k1), nil},
		{"peer restarting its session is no failure", bfd.StateChange{Key: k1, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagNeighborSignaledDown,
			RemoteState: bfd.StateDown, RemoteDiag: bfd.DiagNone}, nil},
		{"up after restart", up(k1), nil},
		{"peer lost our packets", bfd.StateChange{Key: k1, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagNeighborSignaledDown,
			RemoteState: bfd.StateDown, RemoteDiag: bfd.DiagControlDetectionTimeExpired}, []string{"disable tor1"}},
		{"flap: down again while down", bfd.StateChange{Key: k1, Old: bfd.StateInit, New: bfd.StateDown, Diag: bfd.DiagControlDetectionTimeExpired}, nil},
		{"flap: up", up(k1), []string{"enable tor1"}},
		{"local admin down", bfd.StateChange{Key: k2, Old: bfd.StateUp, New: bfd.StateAdminDown}, nil},
	} {
		l.handle(tc.ev)
		if got := bg.takeOps(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: bgp ops %v, want %v", tc.name, got, tc.want)
		}
	}

	// A BGP session that was re-created (enabled again) while BFD is down is shut
	// again: the link reads the BGP side back.
	l.handle(bfd.StateChange{Key: k2, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagControlDetectionTimeExpired})
	bg.takeOps()
	bg.mu.Lock()
	delete(bg.disabled, "tor2")
	bg.mu.Unlock()
	if err := l.SetSessions(sessions); err != nil {
		t.Fatal(err)
	}
	if got := bg.takeOps(); !reflect.DeepEqual(got, []string{"disable tor2"}) {
		t.Errorf("re-created session: bgp ops %v", got)
	}

	// Profile change updates in place; dropping tor2's BFD removes it and re-enables BGP.
	slow := &announce.BFDProfile{Name: "slow"}
	tor1.BFD = slow
	tor2.BFD = nil
	mgr.ops = nil
	if err := l.SetSessions([]announce.Session{tor1, tor2}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"remove 10.0.0.31->10.0.0.2", "update 10.0.0.21->10.0.0.1"}; !reflect.DeepEqual(mgr.ops, want) {
		t.Errorf("bfd ops %v want %v", mgr.ops, want)
	}
	if got := bg.takeOps(); !reflect.DeepEqual(got, []string{"enable tor2"}) {
		t.Errorf("tor2 not re-enabled: %v", got)
	}

	bad := announce.Session{Name: "bad", PeerAddress: netip.MustParseAddr("10.0.0.9"), BFD: &announce.BFDProfile{Name: "x", ReceiveInterval: u32(1)}}
	if err := l.SetSessions([]announce.Session{bad}); err == nil {
		t.Error("invalid profile accepted")
	}
}

// A BFD session that could not be created (no route to the peer at boot) is
// retried with backoff until it exists.
func TestFailedBFDSetupIsRetried(t *testing.T) {
	l, mgr, _, sessions := testLink()
	mgr.failAdd = 3
	var noRoute atomic.Int32
	noRoute.Store(2)
	l.local = func(p netip.Addr) (netip.Addr, error) {
		if noRoute.Add(-1) >= 0 {
			return netip.Addr{}, errors.New("injected: network is unreachable")
		}
		return netip.MustParseAddr("10.0.0.21"), nil
	}
	if err := l.SetSessions(sessions[:1]); err == nil {
		t.Error("failure not reported")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !mgr.has(k1) {
		if time.Now().After(deadline) {
			t.Fatal("BFD session never created")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMultiHopPeerGetsMultiHopBFD: a BGPPeer with ebgpMultiHop and a
// bfdProfile gets a multi-hop BFD session (it used to get a single-hop one,
// which a router more than one hop away never answers); turning
// ebgpMultiHop off or on replaces the session by one of the other kind, and
// a path failure of the multi-hop session shuts that BGP session.
func TestMultiHopPeerGetsMultiHopBFD(t *testing.T) {
	l, mgr, bg, sessions := testLink()
	far := sessions[0]
	far.Name = "far"
	far.PeerAddress = netip.MustParseAddr("192.0.2.1")
	far.EBGPMultiHop = true
	if err := l.SetSessions([]announce.Session{far}); err != nil {
		t.Fatal(err)
	}
	mh := bfd.PeerKey{Local: netip.MustParseAddr("10.0.0.21"), Peer: far.PeerAddress, MultiHop: true}
	if !mgr.has(mh) || len(mgr.profile) != 1 {
		t.Fatalf("want one multi-hop session %s, have %v", mh, mgr.ops)
	}
	l.handle(bfd.StateChange{Key: mh, Old: bfd.StateInit, New: bfd.StateUp})
	l.handle(bfd.StateChange{Key: mh, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagControlDetectionTimeExpired})
	if got := bg.takeOps(); !reflect.DeepEqual(got, []string{"disable far"}) {
		t.Errorf("multi-hop path failure: bgp ops %v, want [disable far]", got)
	}
	far.EBGPMultiHop = false
	mgr.ops = nil
	if err := l.SetSessions([]announce.Session{far}); err != nil {
		t.Fatal(err)
	}
	sh := mh
	sh.MultiHop = false
	if want := []string{"remove " + mh.String(), "add " + sh.String()}; !reflect.DeepEqual(mgr.ops, want) {
		t.Errorf("ebgpMultiHop turned off: bfd ops %v, want %v", mgr.ops, want)
	}
}
