package bfd_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/bfd/bfdtest"
)

var (
	addrA = netip.MustParseAddr("10.99.0.1")
	addrB = netip.MustParseAddr("10.99.0.2")
	keyAB = bfd.PeerKey{Local: addrA, Peer: addrB}
	keyBA = bfd.PeerKey{Local: addrB, Peer: addrA}
	start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

type pair struct {
	clock *bfdtest.Clock
	net   *bfd.MemNet
	a, b  *bfd.Manager
	regA  *prometheus.Registry
	evA   <-chan bfd.StateChange
	evB   <-chan bfd.StateChange
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{clock: bfdtest.NewClock(start), regA: prometheus.NewRegistry()}
	p.net = bfd.NewMemNet(p.clock)
	p.a = bfd.NewManager(bfd.WithClock(p.clock), bfd.WithMemNet(p.net), bfd.WithRegisterer(p.regA))
	p.b = bfd.NewManager(bfd.WithClock(p.clock), bfd.WithMemNet(p.net))
	var cancelA, cancelB func()
	p.evA, cancelA = p.a.Subscribe()
	p.evB, cancelB = p.b.Subscribe()
	t.Cleanup(func() {
		cancelA()
		cancelB()
		p.a.Close()
		p.b.Close()
	})
	return p
}

func profile(tx, rx, mult uint32) bfd.Profile {
	p := bfd.DefaultProfile()
	p.TransmitInterval, p.ReceiveInterval, p.DetectMultiplier = tx, rx, mult
	return p
}

func next(t *testing.T, ch <-chan bfd.StateChange) bfd.StateChange {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no state change delivered")
	}
	return bfd.StateChange{}
}

func expectEvent(t *testing.T, ch <-chan bfd.StateChange, key bfd.PeerKey, old, new bfd.State, diag bfd.Diagnostic) bfd.StateChange {
	t.Helper()
	ev := next(t, ch)
	if ev.Key != key || ev.Old != old || ev.New != new || ev.Diag != diag {
		t.Fatalf("event %+v, want %s %s->%s %q", ev, key, old, new, diag)
	}
	return ev
}

func noEvent(t *testing.T, ch <-chan bfd.StateChange) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected state change %+v", ev)
	case <-time.After(20 * time.Millisecond):
	}
}

func info(t *testing.T, m *bfd.Manager, key bfd.PeerKey) bfd.SessionInfo {
	t.Helper()
	for _, s := range m.Sessions() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no session %s", key)
	return bfd.SessionInfo{}
}

// bringUp adds both ends and runs until the Poll that coming Up starts is over.
func (p *pair) bringUp(t *testing.T, pa, pb bfd.Profile) {
	t.Helper()
	if err := p.a.AddPeer(keyAB, pa); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddPeer(keyBA, pb); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, p.evA, keyAB, bfd.StateDown, bfd.StateInit, bfd.DiagNone)
	expectEvent(t, p.evA, keyAB, bfd.StateInit, bfd.StateUp, bfd.DiagNone)
	expectEvent(t, p.evB, keyBA, bfd.StateDown, bfd.StateUp, bfd.DiagNone)
	p.clock.Advance(2 * time.Second)
}

func TestManagerSessionComesUpAndNegotiates(t *testing.T) {
	p := newPair(t)
	p.bringUp(t, profile(300, 300, 3), profile(100, 200, 5))
	a, b := info(t, p.a, keyAB), info(t, p.b, keyBA)
	if a.State != bfd.StateUp || b.State != bfd.StateUp || a.RemoteDiscr != b.LocalDiscr || b.RemoteDiscr != a.LocalDiscr {
		t.Fatalf("sessions %+v / %+v", a, b)
	}
	// A sends at max(300, B's rx 200) = 300ms; B at max(100, A's rx 300) = 300ms.
	// A detects with B's mult 5 x max(300, 300); B with A's mult 3 x max(200, 300).
	if a.TxInterval != 300*time.Millisecond || a.DetectionTime != 1500*time.Millisecond {
		t.Fatalf("A tx %v det %v", a.TxInterval, a.DetectionTime)
	}
	if b.TxInterval != 300*time.Millisecond || b.DetectionTime != 900*time.Millisecond {
		t.Fatalf("B tx %v det %v", b.TxInterval, b.DetectionTime)
	}
	// Steady state: about 1 packet per 300ms less jitter, no state changes.
	sentBefore := p.net.Sent[addrA]
	p.clock.Advance(30 * time.Second)
	sent := p.net.Sent[addrA] - sentBefore
	if sent < 100 || sent > 134 { // 30s / 300ms = 100; with up to 25% jitter at most 134
		t.Fatalf("A sent %d packets in 30s at 300ms", sent)
	}
	noEvent(t, p.evA)
	noEvent(t, p.evB)
	if got := metricValue(t, p.regA, "ecmplb_bfd_session_up", "peer", addrB.String()); got != 1 {
		t.Fatalf("session_up metric %v", got)
	}
	if got := metricValue(t, p.regA, "ecmplb_bfd_session_up_transitions_total", "peer", addrB.String()); got != 1 {
		t.Fatalf("up transitions %v", got)
	}
	a = info(t, p.a, keyAB)
	if got := metricValue(t, p.regA, "ecmplb_bfd_control_packets_sent_total", "peer", addrB.String()); got != float64(a.PacketsOut) || got < 100 {
		t.Fatalf("packets sent metric %v, info %d", got, a.PacketsOut)
	}
	if got := metricValue(t, p.regA, "ecmplb_bfd_control_packets_received_total", "peer", addrB.String()); got != float64(a.PacketsIn) || got < 100 {
		t.Fatalf("packets received metric %v, info %d", got, a.PacketsIn)
	}
	if err := p.a.RemovePeer(keyAB); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, p.regA, "ecmplb_bfd_session_up", "peer", addrB.String()); got != 0 {
		t.Fatalf("session_up kept after removal: %v", got)
	}
}

// metricValue sums the samples of a gauge or counter whose labels include the given pair
// (every sample when label is empty).
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == label && l.GetValue() == value)
			}
			if match {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestManagerDetectsSilentPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		prof bfd.Profile
		det  time.Duration
	}{
		{"300ms x 3", profile(300, 300, 3), 900 * time.Millisecond},
		{"50ms x 3", profile(50, 50, 3), 150 * time.Millisecond},
		{"20ms x 5", profile(20, 20, 5), 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			p.bringUp(t, tc.prof, tc.prof)
			p.clock.Advance(1234 * time.Millisecond)
			if err := p.b.Mute(keyBA, true); err != nil {
				t.Fatal(err)
			}
			muted := p.clock.Now()
			last := p.net.LastFrom(addrB)
			p.clock.Advance(5 * tc.det)
			ev := expectEvent(t, p.evA, keyAB, bfd.StateUp, bfd.StateDown, bfd.DiagControlDetectionTimeExpired)
			if !ev.At.Equal(last.Add(tc.det)) {
				t.Fatalf("Down at %v after B's last packet, want the detection time %v", ev.At.Sub(last), tc.det)
			}
			if lat := ev.At.Sub(muted); lat <= 0 || lat > tc.det {
				t.Fatalf("detected %v after silence, want within (0, %v]", lat, tc.det)
			}
			if got := ev.Diag.String(); got != "Control Detection Time Expired" {
				t.Fatalf("diag %q", got)
			}
			// B keeps receiving A's Down and follows.
			expectEvent(t, p.evB, keyBA, bfd.StateUp, bfd.StateDown, bfd.DiagNeighborSignaledDown)
			// Unmuted, the session comes back.
			p.b.Mute(keyBA, false)
			p.clock.Advance(5 * time.Second)
			a := info(t, p.a, keyAB)
			if a.State != bfd.StateUp {
				t.Fatalf("not back Up: %+v", a)
			}
			// Up, Down, Up again: what metallb_bfd_session_{up,down}_events report.
			if a.UpEvents != 2 || a.DownEvents != 1 {
				t.Fatalf("up/down events %d/%d, want 2/1", a.UpEvents, a.DownEvents)
			}
		})
	}
}

func TestManagerUpdatePeerNoFlap(t *testing.T) {
	p := newPair(t)
	p.bringUp(t, profile(300, 300, 3), profile(300, 300, 3))
	steps := []struct {
		prof      bfd.Profile
		aTx, bDet time.Duration
	}{
		{profile(1000, 300, 3), time.Second, 3 * time.Second},
		{profile(50, 50, 3), 300 * time.Millisecond, 900 * time.Millisecond}, // B still sends/receives at 300
		{profile(300, 300, 5), 300 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, st := range steps {
		if err := p.a.UpdatePeer(keyAB, st.prof); err != nil {
			t.Fatal(err)
		}
		p.clock.Advance(10 * time.Second)
		a, b := info(t, p.a, keyAB), info(t, p.b, keyBA)
		if a.TxInterval != st.aTx || b.DetectionTime != st.bDet || a.Profile != st.prof {
			t.Fatalf("after %+v: A tx %v, B det %v", st.prof, a.TxInterval, b.DetectionTime)
		}
	}
	// B speeds up too: A now sends at 50ms? No: A's profile is 300/300 now.
	if err := p.b.UpdatePeer(keyBA, profile(50, 50, 3)); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(10 * time.Second)
	if a := info(t, p.a, keyAB); a.DetectionTime != 900*time.Millisecond || a.TxInterval != 300*time.Millisecond {
		t.Fatalf("A after B's change: %+v", a)
	}
	noEvent(t, p.evA)
	noEvent(t, p.evB)
	if err := p.a.UpdatePeer(keyAB, profile(5, 300, 3)); err == nil || !strings.Contains(err.Error(), "transmitInterval") {
		t.Fatalf("invalid update accepted: %v", err)
	}
}

func TestManagerRemovePeerSignalsAdminDown(t *testing.T) {
	p := newPair(t)
	p.bringUp(t, profile(300, 300, 3), profile(300, 300, 3))
	if err := p.a.RemovePeer(keyAB); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, p.evA, keyAB, bfd.StateUp, bfd.StateAdminDown, bfd.DiagAdminDown)
	expectEvent(t, p.evB, keyBA, bfd.StateUp, bfd.StateDown, bfd.DiagNeighborSignaledDown)
	if b := info(t, p.b, keyBA); b.RemoteDiag != bfd.DiagAdminDown || b.RemoteState != bfd.StateAdminDown {
		t.Fatalf("B saw %+v", b)
	}
	if err := p.a.RemovePeer(keyAB); !errors.Is(err, bfd.ErrUnknownPeer) {
		t.Fatalf("second remove: %v", err)
	}
	if len(p.a.Sessions()) != 0 {
		t.Fatal("session still listed")
	}
	// Re-adding works: the listener was released and is opened again.
	if err := p.a.AddPeer(keyAB, profile(300, 300, 3)); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateUp {
		t.Fatalf("re-added session %+v", a)
	}
}

func TestManagerPassive(t *testing.T) {
	p := newPair(t)
	passive := profile(300, 300, 3)
	passive.PassiveMode = true
	p.a.AddPeer(keyAB, passive)
	p.b.AddPeer(keyBA, passive)
	p.clock.Advance(10 * time.Second)
	if p.net.Sent[addrA] != 0 || p.net.Sent[addrB] != 0 {
		t.Fatalf("passive ends sent %d/%d packets", p.net.Sent[addrA], p.net.Sent[addrB])
	}
	// One active end is enough.
	if err := p.b.UpdatePeer(keyBA, profile(300, 300, 3)); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateUp {
		t.Fatalf("passive end %+v", a)
	}
}

func TestManagerDropsBadPackets(t *testing.T) {
	p := newPair(t)
	p.net.TTL = 254 // a packet that crossed a router
	p.a.AddPeer(keyAB, profile(300, 300, 3))
	p.b.AddPeer(keyBA, profile(300, 300, 3))
	p.clock.Advance(10 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateDown || a.PacketsIn != 0 {
		t.Fatalf("accepted TTL 254: %+v", a)
	}
	if got := metricValue(t, p.regA, "ecmplb_bfd_control_packets_dropped_total", "reason", "ttl"); got == 0 {
		t.Fatal("TTL drops not counted")
	}
	p.net.TTL = 255
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateUp {
		t.Fatalf("not Up with TTL 255: %+v", a)
	}
}

func TestManagerSeveralSessionsOneAddress(t *testing.T) {
	clock := bfdtest.NewClock(start)
	n := bfd.NewMemNet(clock)
	hub := bfd.NewManager(bfd.WithClock(clock), bfd.WithMemNet(n))
	defer hub.Close()
	var spokes []*bfd.Manager
	for i := range 5 {
		addr := netip.AddrFrom4([4]byte{10, 99, 1, byte(10 + i)})
		m := bfd.NewManager(bfd.WithClock(clock), bfd.WithMemNet(n))
		defer m.Close()
		spokes = append(spokes, m)
		if err := hub.AddPeer(bfd.PeerKey{Local: addrA, Peer: addr}, profile(50, 50, 3)); err != nil {
			t.Fatal(err)
		}
		if err := m.AddPeer(bfd.PeerKey{Local: addr, Peer: addrA}, profile(50, 50, 3)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(5 * time.Second)
	for _, s := range hub.Sessions() {
		if s.State != bfd.StateUp {
			t.Fatalf("hub session %+v", s)
		}
	}
	ev, cancel := hub.Subscribe()
	defer cancel()
	spokes[2].Mute(spokes[2].Sessions()[0].Key, true)
	clock.Advance(time.Second)
	got := next(t, ev)
	if got.Key.Peer != netip.AddrFrom4([4]byte{10, 99, 1, 12}) || got.New != bfd.StateDown {
		t.Fatalf("event %+v", got)
	}
	noEvent(t, ev)
}

func TestManagerAPIErrors(t *testing.T) {
	m := bfd.NewManager(bfd.WithClock(bfdtest.NewClock(start)), bfd.WithMemNet(bfd.NewMemNet(nil)))
	cases := []struct {
		key  bfd.PeerKey
		prof bfd.Profile
		want string
	}{
		{bfd.PeerKey{Local: addrA}, bfd.DefaultProfile(), "required"},
		{bfd.PeerKey{Local: addrA, Peer: addrA}, bfd.DefaultProfile(), "same"},
		{bfd.PeerKey{Local: addrA, Peer: netip.MustParseAddr("fd00::1")}, bfd.DefaultProfile(), "families"},
		{keyAB, profile(300, 300, 1), "detectMultiplier: 1 is outside 2-255"},
	}
	for _, c := range cases {
		if err := m.AddPeer(c.key, c.prof); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddPeer(%s, %+v) = %v, want %q", c.key, c.prof, err, c.want)
		}
	}
	if err := m.AddPeer(keyAB, bfd.DefaultProfile()); err != nil {
		t.Fatal(err)
	}
	if err := m.AddPeer(keyAB, bfd.DefaultProfile()); err == nil {
		t.Error("duplicate accepted")
	}
	if err := m.UpdatePeer(keyBA, bfd.DefaultProfile()); !errors.Is(err, bfd.ErrUnknownPeer) {
		t.Errorf("update unknown: %v", err)
	}
	ch, _ := m.Subscribe()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch { // AdminDown event, then the channel is closed
	}
	if err := m.AddPeer(keyAB, bfd.DefaultProfile()); !errors.Is(err, bfd.ErrClosed) {
		t.Errorf("add after close: %v", err)
	}
	late, cancel := m.Subscribe()
	defer cancel()
	if _, open := <-late; open {
		t.Error("subscription after Close is open")
	}
}

func waitEchoActive(t *testing.T, m *bfd.Manager, key bfd.PeerKey, clock *bfdtest.Clock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !info(t, m, key).EchoActive {
		if time.Now().After(deadline) {
			t.Fatalf("echo not active: %+v", info(t, m, key))
		}
		clock.Advance(time.Millisecond)
		time.Sleep(time.Millisecond)
	}
}

func TestManagerEcho(t *testing.T) {
	p := newPair(t)
	echo := profile(300, 300, 3)
	echo.EchoMode, echo.EchoInterval = true, 50
	p.bringUp(t, echo, echo)
	waitEchoActive(t, p.a, keyAB, p.clock)
	before, inBefore, outBefore := p.net.EchoCount(addrA), info(t, p.a, keyAB).EchoPacketsIn, info(t, p.a, keyAB).EchoPacketsOut
	p.clock.Advance(time.Second)
	sent := p.net.EchoCount(addrA) - before
	if got := info(t, p.a, keyAB).EchoPacketsOut - outBefore; got != uint64(sent) {
		t.Fatalf("EchoPacketsOut grew by %d, %d echo packets sent", got, sent)
	}
	if sent < 20 || sent > 27 { // 1s / 50ms, less up to 25% jitter
		t.Fatalf("sent %d echo packets in 1s at 50ms", sent)
	}
	if got := info(t, p.a, keyAB).EchoPacketsIn - inBefore; got != uint64(sent) {
		t.Fatalf("%d echo packets came back, %d sent", got, sent)
	}
	// B's forwarding plane fails while its BFD keeps talking: the echo
	// function detects it within 3 x 50ms, long before the 900ms control timer.
	p.net.SetEchoBlocked(addrB, true)
	blocked := p.clock.Now()
	p.clock.Advance(time.Second)
	ev := expectEvent(t, p.evA, keyAB, bfd.StateUp, bfd.StateDown, bfd.DiagEchoFailed)
	if lat := ev.At.Sub(blocked); lat <= 100*time.Millisecond || lat > 150*time.Millisecond {
		t.Fatalf("echo failure detected after %v, want within (100ms, 150ms]", lat)
	}
	expectEvent(t, p.evB, keyBA, bfd.StateUp, bfd.StateDown, bfd.DiagNeighborSignaledDown)
	// Restored, the session comes back with echo.
	p.net.SetEchoBlocked(addrB, false)
	p.clock.Advance(5 * time.Second)
	waitEchoActive(t, p.a, keyAB, p.clock)
	if a := info(t, p.a, keyAB); a.State != bfd.StateUp {
		t.Fatalf("not back Up: %+v", a)
	}
}

func TestManagerEchoNeedsPeerConsent(t *testing.T) {
	p := newPair(t)
	echo := profile(300, 300, 3)
	echo.EchoMode = true
	p.bringUp(t, echo, profile(300, 300, 3)) // B advertises Required Min Echo RX 0
	p.clock.Advance(5 * time.Second)
	time.Sleep(20 * time.Millisecond)
	p.clock.Advance(time.Second)
	if n := p.net.EchoCount(addrA); n != 0 || info(t, p.a, keyAB).EchoActive {
		t.Fatalf("sent %d echo packets to a peer that does not accept them", n)
	}
	// B turns echo on: A starts.
	if err := p.b.UpdatePeer(keyBA, echo); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
	waitEchoActive(t, p.a, keyAB, p.clock)
	// A turns it off: it stops.
	if err := p.a.UpdatePeer(keyAB, profile(300, 300, 3)); err != nil {
		t.Fatal(err)
	}
	n := p.net.EchoCount(addrA)
	p.clock.Advance(time.Second)
	if got := p.net.EchoCount(addrA); got != n || info(t, p.a, keyAB).EchoActive {
		t.Fatalf("echo continued after echo mode was turned off: %d -> %d", n, got)
	}
	noEvent(t, p.evA)
}
