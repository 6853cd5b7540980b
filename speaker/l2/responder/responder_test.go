package responder

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecmplb/ecmplb/bfd/bfdtest"
)

var (
	mac       = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xcc}
	ip4       = netip.MustParseAddr("192.0.2.10")
	ip4b      = netip.MustParseAddr("192.0.2.12")
	ip6       = netip.MustParseAddr("2001:db8::10")
	ip6b      = netip.MustParseAddr("2001:db8::12")
	client4   = netip.MustParseAddr("192.0.2.1")
	client6   = netip.MustParseAddr("fe80::cc")
	eth0      = linkInfo{index: 2, mac: mac, up: true}
	t0        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

type rig struct {
	r     *Responder
	sys   *fakeSys
	clock *bfdtest.Clock
	reg   *prometheus.Registry
}

func newRig(t *testing.T, present bool) *rig {
	t.Helper()
	sys := newFakeSys()
	sys.setLink("eth0", eth0, present)
	clock := bfdtest.NewClock(t0)
	reg := prometheus.NewRegistry()
	r := New(Options{Clock: clock, Registerer: reg, sys: sys, AnnounceInterval: time.Second, Announcements: 3,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Resync: 5 * time.Second})
	t.Cleanup(func() { _ = r.Close() })
	return &rig{r: r, sys: sys, clock: clock, reg: reg}
}

func arpRequest(target netip.Addr) *arp.Packet {
	p, err := arp.NewPacket(arp.OperationRequest, clientMAC, client4, ethernet.Broadcast, target)
	if err != nil {
		panic(err)
	}
	return p
}

func ns(target netip.Addr) *ndp.NeighborSolicitation {
	return &ndp.NeighborSolicitation{TargetAddress: target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: clientMAC}}}
}

// expectGratuitousARP takes one round of gratuitous ARP for ip from c.
func expectGratuitousARP(t *testing.T, c *fakeARP, ip netip.Addr) {
	t.Helper()
	req, rep := recv(t, c.out, "gratuitous ARP request"), recv(t, c.out, "gratuitous ARP reply")
	if req.p.Operation != arp.OperationRequest || req.p.SenderIP != ip || req.p.TargetIP != ip ||
		!slices.Equal(req.p.SenderHardwareAddr, mac) || !slices.Equal(req.dst, ethernet.Broadcast) {
		t.Fatalf("gratuitous request %+v to %v", req.p, req.dst)
	}
	if rep.p.Operation != arp.OperationReply || rep.p.SenderIP != ip || rep.p.TargetIP != ip ||
		!slices.Equal(rep.p.SenderHardwareAddr, mac) || !slices.Equal(rep.p.TargetHardwareAddr, mac) ||
		!slices.Equal(rep.dst, ethernet.Broadcast) {
		t.Fatalf("gratuitous reply %+v to %v", rep.p, rep.dst)
	}
}

func expectUnsolicitedNA(t *testing.T, c *fakeNDP, ip netip.Addr) {
	t.Helper()
	s := recv(t, c.out, "unsolicited NA")
	na, ok := s.m.(*ndp.NeighborAdvertisement)
	if !ok || s.dst != allNodes || !na.Override || na.Solicited || na.TargetAddress != ip || !hasTargetLLA(na, mac) {
		t.Fatalf("unsolicited NA %+v to %v", s.m, s.dst)
	}
}

func hasTargetLLA(na *ndp.NeighborAdvertisement, hw net.HardwareAddr) bool {
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target && slices.Equal(lla.Addr, hw) {
			return true
		}
	}
	return false
}

// Requests for an IP in the set are answered with the interface's MAC; others
// are not; an IP removed is not answered once Remove returned; the MetalLB
// counters count it all.
func TestARPAnswersItsIPsOnly(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip4b}); err != nil {
		t.Fatal(err)
	}
	if got := g.r.Answering("eth0"); !slices.Equal(got, []netip.Addr{ip4, ip4b}) {
		t.Fatalf("answering %v", got)
	}
	c := g.sys.arpConns("eth0")[0]
	for range 2 {
		p := recv(t, c.out, "gratuitous ARP")
		if p.p.SenderIP != p.p.TargetIP || (p.p.SenderIP != ip4 && p.p.SenderIP != ip4b) {
			t.Fatalf("first round: %+v", p.p)
		}
		_ = recv(t, c.out, "gratuitous ARP")
	}
	if len(g.sys.ndpConns("eth0")) != 0 {
		t.Fatal("an NDP socket opened for IPv4 IPs only")
	}

	c.in <- arpRequest(netip.MustParseAddr("192.0.2.99")) // not ours
	own, _ := arp.NewPacket(arp.OperationRequest, mac, netip.MustParseAddr("192.0.2.2"), ethernet.Broadcast, ip4)
	c.in <- own                                                                                 // our own request, seen by the packet socket
	announce, _ := arp.NewPacket(arp.OperationRequest, clientMAC, ip4, ethernet.Broadcast, ip4) // another node's gratuitous ARP
	c.in <- announce
	c.in <- arpRequest(ip4)
	got := recv(t, c.out, "ARP reply")
	if got.p.Operation != arp.OperationReply || got.p.SenderIP != ip4 || !slices.Equal(got.p.SenderHardwareAddr, mac) ||
		got.p.TargetIP != client4 || !slices.Equal(got.p.TargetHardwareAddr, clientMAC) || !slices.Equal(got.dst, clientMAC) {
		t.Fatalf("reply %+v to %v", got.p, got.dst)
	}

	if err := g.r.Remove("eth0", ip4); err != nil {
		t.Fatal(err)
	}
	if got := g.r.Answering("eth0"); !slices.Equal(got, []netip.Addr{ip4b}) {
		t.Fatalf("answering after Remove %v", got)
	}
	c.in <- arpRequest(ip4)
	c.in <- arpRequest(ip4b)
	if got := recv(t, c.out, "ARP reply"); got.p.SenderIP != ip4b {
		t.Fatalf("answered %v after it was removed", got.p.SenderIP)
	}
	if len(g.sys.arpConns("eth0")) != 1 || c.isClosed() {
		t.Fatal("the ARP socket was reopened or closed while an IPv4 IP remained")
	}

	// The removed IP's series are dropped; the remaining one's count.
	if n := testutil.CollectAndCount(g.reg, "metallb_layer2_requests_received"); n != 1 {
		t.Errorf("%d requests_received series, want 1 (the removed IP's dropped)", n)
	}
	for name, want := range map[string]float64{"requests_received": 1, "responses_sent": 1, "gratuitous_sent": 2} {
		if v := testutil.ToFloat64(g.r.m.counter(name).WithLabelValues(ip4b.String())); v != want {
			t.Errorf("metallb_layer2_%s{ip=%s} = %v, want %v", name, ip4b, v, want)
		}
	}

	if err := g.r.Set("eth0", nil); err != nil {
		t.Fatal(err)
	}
	if !c.isClosed() || g.r.Answering("eth0") != nil {
		t.Fatal("Set(nil) left the socket open or IPs answered")
	}
	if g.clock.Pending() != 0 {
		t.Fatalf("%d timers armed for an interface with no IPs", g.clock.Pending())
	}
}

// A closed gate drops answers and announcements; opened, they flow again.
func TestGate(t *testing.T) {
	var open atomic.Bool
	asked := make(chan bool, 16)
	gate := func() bool { o := open.Load(); asked <- o; return o }
	sys := newFakeSys()
	sys.setLink("eth0", eth0, true)
	clock := bfdtest.NewClock(t0)
	r := New(Options{Clock: clock, sys: sys, Gate: gate, AnnounceInterval: time.Second, Announcements: 2})
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Set("eth0", []netip.Addr{ip4}); err != nil {
		t.Fatal(err)
	}
	if o := <-asked; o { // the takeover announcement, dropped
		t.Fatal("gate open")
	}
	c := sys.arpConns("eth0")[0]
	c.in <- arpRequest(ip4)
	<-asked // the request, dropped
	open.Store(true)
	c.in <- arpRequest(ip4)
	if got := recv(t, c.out, "ARP reply"); got.p.Operation != arp.OperationReply || got.p.TargetIP != client4 {
		t.Fatalf("first packet out %+v, want the reply to the second request", got.p)
	}
	clock.Advance(time.Second)
	expectGratuitousARP(t, c, ip4)
}

func (m *metrics) counter(name string) *prometheus.CounterVec {
	switch name {
	case "requests_received":
		return m.requests
	case "responses_sent":
		return m.responses
	case "gratuitous_sent":
		return m.gratuitous
	}
	panic(name)
}

// IPv6: the solicited-node groups follow the set; a solicitation is answered
// to its sender (solicited, override) or, from ::, to all nodes; our own is
// not answered.
func TestNDPAnswersItsIPsOnly(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip6}); err != nil {
		t.Fatal(err)
	}
	c := g.sys.ndpConns("eth0")[0]
	expectUnsolicitedNA(t, c, ip6)
	if !c.joined(solicitedNode(ip6)) {
		t.Fatal("solicited-node group not joined")
	}
	if len(g.sys.arpConns("eth0")) != 0 {
		t.Fatal("an ARP socket opened for IPv6 IPs only")
	}

	c.in <- fakeNS{ns(netip.MustParseAddr("2001:db8::99")), client6}
	c.in <- fakeNS{&ndp.NeighborSolicitation{TargetAddress: ip6, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}, client6}
	c.in <- fakeNS{ns(ip6), client6}
	s := recv(t, c.out, "NA")
	na := s.m.(*ndp.NeighborAdvertisement)
	if s.dst != client6 || !na.Solicited || !na.Override || na.TargetAddress != ip6 || !hasTargetLLA(na, mac) {
		t.Fatalf("NA %+v to %v", na, s.dst)
	}
	c.in <- fakeNS{&ndp.NeighborSolicitation{TargetAddress: ip6}, netip.IPv6Unspecified()}
	s = recv(t, c.out, "NA")
	if na := s.m.(*ndp.NeighborAdvertisement); s.dst != allNodes || na.Solicited || !na.Override {
		t.Fatalf("NA to a DAD probe %+v to %v", na, s.dst)
	}

	if err := g.r.Set("eth0", []netip.Addr{ip6b}); err != nil {
		t.Fatal(err)
	}
	expectUnsolicitedNA(t, c, ip6b)
	if c.joined(solicitedNode(ip6)) || !c.joined(solicitedNode(ip6b)) {
		t.Fatal("groups do not follow the set")
	}
	c.in <- fakeNS{ns(ip6), client6}
	c.in <- fakeNS{ns(ip6b), client6}
	if s := recv(t, c.out, "NA"); s.m.(*ndp.NeighborAdvertisement).TargetAddress != ip6b {
		t.Fatalf("answered %v after it was removed", s.m.(*ndp.NeighborAdvertisement).TargetAddress)
	}
}

// Announcements: one round at once, Announcements-1 more AnnounceInterval
// apart, then none; removing the IP cancels the rest.
func TestAnnouncementsRepeatThenStop(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip6}); err != nil {
		t.Fatal(err)
	}
	a, n := g.sys.arpConns("eth0")[0], g.sys.ndpConns("eth0")[0]
	for round := range 3 {
		if round > 0 {
			g.clock.Advance(999 * time.Millisecond)
			none(t, a.out, "ARP before the interval")
			none(t, n.out, "NA before the interval")
			g.clock.Advance(time.Millisecond)
		}
		expectGratuitousARP(t, a, ip4)
		expectUnsolicitedNA(t, n, ip6)
	}
	g.clock.Advance(time.Minute)
	none(t, a.out, "ARP after the last round")
	none(t, n.out, "NA after the last round")

	// Taken over again after a removal: the rounds start again; a removal
	// cancels the rest (another IPv4 IP keeps the socket open).
	if err := g.r.Remove("eth0", ip4); err != nil {
		t.Fatal(err)
	}
	if err := g.r.Add("eth0", ip4); err != nil {
		t.Fatal(err)
	}
	if !a.isClosed() {
		t.Fatal("ARP socket kept open with no IPv4 IP")
	}
	a = g.sys.arpConns("eth0")[1]
	expectGratuitousARP(t, a, ip4)
	if err := g.r.Add("eth0", ip4b); err != nil {
		t.Fatal(err)
	}
	expectGratuitousARP(t, a, ip4b)
	g.clock.Advance(time.Second)
	expectGratuitousARP(t, a, ip4)
	if err := g.r.Remove("eth0", ip4); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(time.Second)
	expectGratuitousARP(t, a, ip4b) // its second round; none for ip4
	g.clock.Advance(time.Minute)
	expectGratuitousARP(t, a, ip4b) // its third
	none(t, a.out, "ARP after the IP was removed")
	if a.isClosed() {
		t.Fatal("socket closed")
	}
	if v := testutil.ToFloat64(g.r.m.gratuitous.WithLabelValues(ip6.String())); v != 3 {
		t.Errorf("gratuitous_sent{ip=%s} = %v, want 3", ip6, v)
	}
}

// A missing interface is retried with doubling backoff (capped) until it
// appears; only then is the IP answered and announced, and Pending empty.
func TestMissingInterfaceRetriedWithBackoff(t *testing.T) {
	g := newRig(t, false)
	err := g.r.Set("eth0", []netip.Addr{ip4})
	if err == nil || !strings.Contains(err.Error(), "no such network interface") {
		t.Fatalf("Set on a missing interface: %v", err)
	}
	if g.r.Answering("eth0") != nil || g.r.Pending()["eth0"] == nil {
		t.Fatalf("answering %v, pending %v", g.r.Answering("eth0"), g.r.Pending())
	}
	// Attempts at 100, 300, 700, 1500, 2500, 3500 ms (doubling from 100 ms, capped at 1 s).
	var at []time.Duration
	for range 6 {
		before := g.sys.lookups()
		for g.sys.lookups() == before {
			g.clock.Advance(10 * time.Millisecond)
		}
		at = append(at, g.clock.Now().Sub(t0))
	}
	want := []time.Duration{100, 300, 700, 1500, 2500, 3500}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(at, want) {
		t.Fatalf("retries at %v, want %v", at, want)
	}
	if len(g.sys.arpConns("eth0")) != 0 {
		t.Fatal("socket opened on a missing interface")
	}

	g.sys.setLink("eth0", eth0, true)
	g.clock.Advance(time.Second)
	if got := g.r.Answering("eth0"); !slices.Equal(got, []netip.Addr{ip4}) || len(g.r.Pending()) != 0 {
		t.Fatalf("after the interface appeared: answering %v, pending %v", got, g.r.Pending())
	}
	expectGratuitousARP(t, g.sys.arpConns("eth0")[0], ip4)
}

// An interface that goes down is noticed at the resync: its sockets close and
// nothing is answered; when it is up again it is reopened and the IPs are
// announced again. A change of hardware address reopens too.
func TestInterfaceDownAndBack(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip6}); err != nil {
		t.Fatal(err)
	}
	a1, n1 := g.sys.arpConns("eth0")[0], g.sys.ndpConns("eth0")[0]
	g.sys.setLink("eth0", linkInfo{index: 2, mac: mac, up: false}, true)
	g.clock.Advance(5 * time.Second)
	if !a1.isClosed() || g.r.Answering("eth0") != nil || g.r.Pending()["eth0"] == nil {
		t.Fatalf("down: closed %v, answering %v, pending %v", a1.isClosed(), g.r.Answering("eth0"), g.r.Pending())
	}
	g.sys.setLink("eth0", eth0, true)
	g.clock.Advance(100 * time.Millisecond)
	if got := g.r.Answering("eth0"); len(got) != 2 || len(g.r.Pending()) != 0 {
		t.Fatalf("back up: answering %v, pending %v", got, g.r.Pending())
	}
	a2, n2 := g.sys.arpConns("eth0")[1], g.sys.ndpConns("eth0")[1]
	expectGratuitousARP(t, a2, ip4)
	expectUnsolicitedNA(t, n2, ip6)
	_ = n1

	mac2 := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xbb}
	g.sys.setLink("eth0", linkInfo{index: 2, mac: mac2, up: true}, true)
	g.clock.Advance(5 * time.Second)
	conns := g.sys.arpConns("eth0")
	if len(conns) != 3 || !a2.isClosed() {
		t.Fatalf("MAC change: %d ARP conns, old closed %v", len(conns), a2.isClosed())
	}
	// The drained rounds of a2 aside, the new socket announces the new MAC.
	if p := recv(t, conns[2].out, "gratuitous ARP"); !slices.Equal(p.p.SenderHardwareAddr, mac2) {
		t.Fatalf("announced %v after the MAC changed to %v", p.p.SenderHardwareAddr, mac2)
	}
}

// A listener whose read fails (interface deleted under it) is closed and
// reopened after backoff; the other family is untouched.
func TestReadFailureReopens(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip6}); err != nil {
		t.Fatal(err)
	}
	a1, n1 := g.sys.arpConns("eth0")[0], g.sys.ndpConns("eth0")[0]
	expectGratuitousARP(t, a1, ip4)
	expectUnsolicitedNA(t, n1, ip6)
	a1.fail <- errors.New("network is down")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(g.r.Answering("eth0"), []netip.Addr{ip6}) {
		if time.Now().After(deadline) {
			t.Fatalf("answering %v after the ARP read failed", g.r.Answering("eth0"))
		}
		time.Sleep(time.Millisecond)
	}
	if !a1.isClosed() || g.r.Pending()["eth0"] == nil {
		t.Fatal("failed listener not closed or not pending")
	}
	g.clock.Advance(100 * time.Millisecond)
	if len(g.r.Answering("eth0")) != 2 || len(g.sys.arpConns("eth0")) != 2 || len(g.sys.ndpConns("eth0")) != 1 {
		t.Fatalf("after backoff: answering %v, %d ARP, %d NDP conns", g.r.Answering("eth0"),
			len(g.sys.arpConns("eth0")), len(g.sys.ndpConns("eth0")))
	}
	expectGratuitousARP(t, g.sys.arpConns("eth0")[1], ip4)
	none(t, n1.out, "NA for the untouched IPv6 IP")
}

// A socket or group that cannot be had keeps its IP out of Answering (the
// other family is served meanwhile) until a retry succeeds.
func TestPartialFailureRetried(t *testing.T) {
	g := newRig(t, true)
	g.sys.mu.Lock()
	g.sys.joinErr = errors.New("no buffer space")
	g.sys.arpErr = errors.New("operation not permitted")
	g.sys.mu.Unlock()
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip6}); err == nil {
		t.Fatal("no error")
	}
	if got := g.r.Answering("eth0"); got != nil {
		t.Fatalf("answering %v", got)
	}
	g.sys.mu.Lock()
	g.sys.arpErr = nil
	g.sys.mu.Unlock()
	g.clock.Advance(100 * time.Millisecond)
	if got := g.r.Answering("eth0"); !slices.Equal(got, []netip.Addr{ip4}) || g.r.Pending()["eth0"] == nil {
		t.Fatalf("answering %v, pending %v", got, g.r.Pending())
	}
	g.sys.mu.Lock()
	g.sys.joinErr = nil
	g.sys.mu.Unlock()
	g.clock.Advance(200 * time.Millisecond)
	if got := g.r.Answering("eth0"); len(got) != 2 || len(g.r.Pending()) != 0 {
		t.Fatalf("answering %v, pending %v", got, g.r.Pending())
	}
	expectUnsolicitedNA(t, g.sys.ndpConns("eth0")[0], ip6)
	if v := testutil.ToFloat64(g.r.m.failures.WithLabelValues("eth0")); v != 2 {
		t.Errorf("failures = %v, want 2", v)
	}
}

// Close ends every goroutine, closes every socket, disarms every timer; the
// setters then refuse.
func TestClose(t *testing.T) {
	g := newRig(t, true)
	g.sys.setLink("eth1", linkInfo{index: 3, mac: mac, up: true}, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4, ip6}); err != nil {
		t.Fatal(err)
	}
	if err := g.r.Set("eth1", []netip.Addr{ip4b}); err != nil {
		t.Fatal(err)
	}
	if n := responderGoroutines(); n != 3 {
		t.Fatalf("%d reader goroutines, want 3", n)
	}
	if err := g.r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := responderGoroutines(); n != 0 {
		t.Fatalf("%d goroutines left after Close", n)
	}
	for _, c := range append(g.sys.arpConns("eth0"), g.sys.arpConns("eth1")...) {
		if !c.isClosed() {
			t.Fatal("ARP socket left open")
		}
	}
	if g.clock.Pending() != 0 {
		t.Fatalf("%d timers armed after Close", g.clock.Pending())
	}
	if err := g.r.Add("eth0", ip4); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := g.r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMetricNames(t *testing.T) {
	g := newRig(t, true)
	if err := g.r.Set("eth0", []netip.Addr{ip4}); err != nil {
		t.Fatal(err)
	}
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		for _, m := range mf.GetMetric() {
			if strings.HasPrefix(mf.GetName(), "metallb_layer2_") && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "ip") {
				t.Errorf("%s labels %v, want ip only", mf.GetName(), m.GetLabel())
			}
		}
	}
	if !slices.Contains(names, "metallb_layer2_gratuitous_sent") {
		t.Fatalf("metrics %v", names)
	}
	// MetalLB's counters lack the _total suffix; their names are kept as they are.
	if problems, err := testutil.GatherAndLint(g.reg); err != nil || len(problems) > 3 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
