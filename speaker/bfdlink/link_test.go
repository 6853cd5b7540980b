package bfdlink

import (
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"testing"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

type fakeMgr struct {
	mu      sync.Mutex
	ops     []string
	ch      chan bfd.StateChange
	profile map[bfd.PeerKey]bfd.Profile
}

func (f *fakeMgr) AddPeer(k bfd.PeerKey, p bfd.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
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
	return nil
}
func (f *fakeMgr) Subscribe() (<-chan bfd.StateChange, func()) { return f.ch, func() {} }

type fakeBGP struct{ ops []string }

func (f *fakeBGP) SetSessionEnabled(peer string, on bool) error {
	s := "disable "
	if on {
		s = "enable "
	}
	f.ops = append(f.ops, s+peer)
	return nil
}

func u32(v uint32) *uint32 { return &v }

func TestLink(t *testing.T) {
	mgr := &fakeMgr{ch: make(chan bfd.StateChange), profile: map[bfd.PeerKey]bfd.Profile{}}
	bg := &fakeBGP{}
	l := New(mgr, bg, slog.Default(), nil)
	l.local = func(p netip.Addr) (netip.Addr, error) { return netip.MustParseAddr("10.0.0.21"), nil }
	fast := &announce.BFDProfile{Name: "fast", ReceiveInterval: u32(50), TransmitInterval: u32(50)}
	tor1 := announce.Session{Name: "tor1", PeerAddress: netip.MustParseAddr("10.0.0.1"), BFD: fast}
	tor2 := announce.Session{Name: "tor2", PeerAddress: netip.MustParseAddr("10.0.0.2"), SourceAddress: netip.MustParseAddr("10.0.0.31"), BFD: fast}
	plain := announce.Session{Name: "plain", PeerAddress: netip.MustParseAddr("10.0.0.3")}
	if err := l.SetSessions([]announce.Session{tor1, tor2, plain}); err != nil {
		t.Fatal(err)
	}
	k1 := bfd.PeerKey{Local: netip.MustParseAddr("10.0.0.21"), Peer: netip.MustParseAddr("10.0.0.1")}
	k2 := bfd.PeerKey{Local: netip.MustParseAddr("10.0.0.31"), Peer: netip.MustParseAddr("10.0.0.2")}
	if p := mgr.profile[k1]; p.ReceiveInterval != 50 || p.DetectMultiplier != 3 {
		t.Errorf("profile %+v", p)
	}
	if len(mgr.ops) != 2 {
		t.Fatalf("ops %v", mgr.ops)
	}

	// Init → Up: nothing to enable. Up → Down: disable. Down → Init: nothing. Up: enable.
	for _, ev := range []bfd.StateChange{
		{Key: k1, Old: bfd.StateDown, New: bfd.StateInit},
		{Key: k1, Old: bfd.StateInit, New: bfd.StateUp},
		{Key: k1, Old: bfd.StateUp, New: bfd.StateDown},
		{Key: k1, Old: bfd.StateDown, New: bfd.StateInit},
		{Key: k1, Old: bfd.StateInit, New: bfd.StateUp},
		{Key: k2, Old: bfd.StateUp, New: bfd.StateAdminDown},
	} {
		l.handle(ev)
	}
	if want := []string{"disable tor1", "enable tor1", "disable tor2"}; !reflect.DeepEqual(bg.ops, want) {
		t.Errorf("bgp ops %v want %v", bg.ops, want)
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
	if bg.ops[len(bg.ops)-1] != "enable tor2" {
		t.Errorf("tor2 not re-enabled: %v", bg.ops)
	}

	bad := announce.Session{Name: "bad", PeerAddress: netip.MustParseAddr("10.0.0.9"), BFD: &announce.BFDProfile{Name: "x", ReceiveInterval: u32(1)}}
	if err := l.SetSessions([]announce.Session{bad}); err == nil {
		t.Error("invalid profile accepted")
	}
}
