package responder

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

// nsSystem is the real system inside a named namespace: the sockets are
// created there and stay there for their life.
type nsSystem struct{ ns string }

func (s nsSystem) link(name string) (li linkInfo, err error) {
	err = netns.Do(s.ns, func() error {
		li, err = hostSystem{}.link(name)
		return err
	})
	return li, err
}

func (s nsSystem) openARP(name string, li linkInfo) (c arpConn, err error) {
	err = netns.Do(s.ns, func() error {
		c, err = hostSystem{}.openARP(name, li)
		return err
	})
	return c, err
}

func (s nsSystem) openNDP(name string, li linkInfo) (c ndpConn, err error) {
	err = netns.Do(s.ns, func() error {
		c, err = hostSystem{}.openNDP(name, li)
		return err
	})
	return c, err
}

func labFor(t *testing.T) *netns.Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	return netnstest.Lab(t)
}

func nsResponder(t *testing.T, ns string, reg prometheus.Registerer) *Responder {
	t.Helper()
	r := New(Options{sys: nsSystem{ns}, Registerer: reg, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		AnnounceInterval: 300 * time.Millisecond, Announcements: 3, Resync: time.Second})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func macOf(t *testing.T, ns, ifName string) net.HardwareAddr {
	t.Helper()
	li, err := nsSystem{ns}.link(ifName)
	if err != nil {
		t.Fatal(err)
	}
	return li.mac
}

// sendUDP sends one datagram from namespace ns to ip, which makes the
// kernel resolve ip.
func sendUDP(t *testing.T, ns string, ip netip.Addr) {
	t.Helper()
	if err := netns.Probe(ns, ip); err != nil {
		t.Fatal(err)
	}
}

// waitNeighbor polls ns's neighbour entry for ip on ifName until done says
// yes, and fails t after timeout. It returns the time it took.
func waitNeighbor(t *testing.T, ns, ifName string, ip netip.Addr, timeout time.Duration, what string, done func(netns.Neighbor, bool) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last netns.Neighbor
	for {
		n, ok, err := netns.LookupNeighbor(ns, ifName, ip)
		if err != nil {
			t.Fatal(err)
		}
		if done(n, ok) {
			return time.Since(start)
		}
		last = n
		if time.Since(start) > timeout {
			t.Fatalf("%s: neighbour %v on %s after %v: %v state %#x", what, ip, ifName, timeout, last.MAC, last.State)
		}
		time.Sleep(time.Millisecond)
	}
}

func resolvedTo(mac net.HardwareAddr) func(netns.Neighbor, bool) bool {
	return func(n netns.Neighbor, ok bool) bool { return ok && n.Resolved() && slices.Equal(n.MAC, mac) }
}

func waitAnswering(t *testing.T, r *Responder, ifName string, want []netip.Addr) time.Duration {
	t.Helper()
	start := time.Now()
	for !slices.Equal(r.Answering(ifName), want) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("answering %v on %s, want %v; pending %v", r.Answering(ifName), ifName, want, r.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// Client and responder on a veth pair. The responder is told to answer on an
// interface that does not exist yet, converges once it appears, answers ARP
// and NDP with its MAC (the client's kernel neighbour table shows it), and
// stops answering for an IP removed while it keeps answering for the others
// (on the same sockets, and for IPv6 in the same solicited-node group).
func TestNamespaceAnswers(t *testing.T) {
	lab := labFor(t)
	cns, rns := netnstest.NS(t, lab, "c"), netnstest.NS(t, lab, "r")
	reg := prometheus.NewRegistry()
	r := nsResponder(t, rns, reg)

	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	keep4, keep6 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8::1:0:10") // same solicited-node group as v6
	if solicitedNode(keep6) != solicitedNode(v6) {
		t.Fatal("test IPs do not share a solicited-node group")
	}
	all := []netip.Addr{v4, keep4, v6, keep6}
	if err := r.Set("rs0", all); err == nil {
		t.Fatal("Set on a missing interface reported no error")
	}
	if r.Answering("rs0") != nil || r.Pending()["rs0"] == nil {
		t.Fatalf("missing interface: answering %v, pending %v", r.Answering("rs0"), r.Pending())
	}

	if err := lab.Link(cns, "cl0", []string{"192.0.2.1/24", "2001:db8::1/64"}, rns, "rs0", []string{"192.0.2.2/24", "2001:db8::2/64"}); err != nil {
		t.Fatal(err)
	}
	conv := waitAnswering(t, r, "rs0", all)
	if len(r.Pending()) != 0 {
		t.Fatalf("pending %v", r.Pending())
	}
	t.Logf("converged %v after the interface appeared (IPv6 waits for the link-local address to leave DAD)", conv.Round(time.Millisecond))

	rmac := macOf(t, rns, "rs0")
	for _, ip := range []netip.Addr{v4, v6} {
		sendUDP(t, cns, ip)
		d := waitNeighbor(t, cns, "cl0", ip, 5*time.Second, "resolve", resolvedTo(rmac))
		t.Logf("client resolved %v to %v in %v", ip, rmac, d.Round(10*time.Microsecond))
		if v := testutil.ToFloat64(r.m.responses.WithLabelValues(ip.String())); v < 1 {
			t.Errorf("responses_sent{ip=%s} = %v after the client resolved it", ip, v)
		}
		if v := testutil.ToFloat64(r.m.requests.WithLabelValues(ip.String())); v < 1 {
			t.Errorf("requests_received{ip=%s} = %v", ip, v)
		}
	}

	for _, ip := range []netip.Addr{v4, v6} {
		if err := r.Remove("rs0", ip); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Answering("rs0"); !slices.Equal(got, []netip.Addr{keep4, keep6}) {
		t.Fatalf("answering %v after Remove", got)
	}
	for _, ip := range all {
		if err := netns.DeleteNeighbor(cns, "cl0", ip); err != nil {
			t.Fatal(err)
		}
		sendUDP(t, cns, ip)
	}
	for _, ip := range []netip.Addr{keep4, keep6} {
		waitNeighbor(t, cns, "cl0", ip, 5*time.Second, "resolve a kept IP", resolvedTo(rmac))
	}
	// The client's kernel gives up after its solicitations (3, 1 s apart)
	// went unanswered; an answer at any point would resolve the entry.
	for _, ip := range []netip.Addr{v4, v6} {
		d := waitNeighbor(t, cns, "cl0", ip, 10*time.Second, "removed IP", func(n netns.Neighbor, ok bool) bool {
			if ok && n.Resolved() {
				t.Fatalf("removed IP %v answered: %v", ip, n.MAC)
			}
			return ok && n.Failed()
		})
		t.Logf("removed IP %v: client's entry FAILED after %v, never resolved", ip, d.Round(time.Millisecond))
	}
	if n := testutil.CollectAndCount(reg, "metallb_layer2_responses_sent"); n != 2 {
		t.Errorf("%d responses_sent series, want 2 (the kept IPs'; the removed ones' dropped)", n)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitNoResponderGoroutines(t) // a timer callback that fired just before Close may still be returning
}

// A client and two responders on a bridge. The IP moves from A to B; the
// client's neighbour entries switch to B's MAC from B's gratuitous ARP and
// unsolicited NA alone (the client sends nothing), and stay there: A's
// remaining announcement rounds were cancelled by the removal.
func TestNamespaceTakeover(t *testing.T) {
	lab := labFor(t)
	hub, cns, ans, bns := netnstest.NS(t, lab, "h"), netnstest.NS(t, lab, "c"), netnstest.NS(t, lab, "a"), netnstest.NS(t, lab, "b")
	if err := netns.AddBridge(hub, "br0"); err != nil {
		t.Fatal(err)
	}
	addrs := map[string][]string{
		cns: {"192.0.2.1/24", "2001:db8::1/64"},
		ans: {"192.0.2.2/24", "2001:db8::2/64"},
		bns: {"192.0.2.3/24", "2001:db8::3/64"},
	}
	for i, ns := range []string{cns, ans, bns} {
		port := fmt.Sprintf("p%d", i)
		if err := netns.AddVeth(hub, port, ns, "eth0"); err != nil {
			t.Fatal(err)
		}
		if err := netns.AttachToBridge(hub, port, "br0"); err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs[ns] {
			if err := netns.AddAddress(ns, "eth0", netip.MustParsePrefix(a)); err != nil {
				t.Fatal(err)
			}
		}
	}
	amac, bmac := macOf(t, ans, "eth0"), macOf(t, bns, "eth0")
	a, b := nsResponder(t, ans, nil), nsResponder(t, bns, prometheus.NewRegistry())
	v4, v6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	ips := []netip.Addr{v4, v6}

	// B is ready on another IP, as a node of the cluster is: its sockets are
	// open and its link-local address out of DAD.
	other := netip.MustParseAddr("2001:db8::99")
	_ = b.Set("eth0", []netip.Addr{other})
	waitAnswering(t, b, "eth0", []netip.Addr{other})

	_ = a.Set("eth0", ips)
	waitAnswering(t, a, "eth0", ips)
	for _, ip := range ips {
		sendUDP(t, cns, ip)
		waitNeighbor(t, cns, "eth0", ip, 5*time.Second, "resolve to A", resolvedTo(amac))
	}

	// Fail over while A's announcement rounds are still pending. A keeps
	// answering another IP of each family, so its sockets stay open: only
	// the cancellation of its rounds keeps it from announcing the moved IPs.
	keptA := []netip.Addr{netip.MustParseAddr("192.0.2.98"), netip.MustParseAddr("2001:db8::98")}
	if err := a.Set("eth0", keptA); err != nil {
		t.Fatal(err)
	}
	if got := a.Answering("eth0"); !slices.Equal(got, keptA) {
		t.Fatalf("A answering %v", got)
	}
	start := time.Now()
	if err := b.Set("eth0", append([]netip.Addr{other}, ips...)); err != nil {
		t.Fatal(err)
	}
	setDone := time.Since(start)
	for _, ip := range ips {
		waitNeighbor(t, cns, "eth0", ip, 3*time.Second, "switch to B", resolvedTo(bmac))
		t.Logf("client's entry for %v on B's MAC %v %v after B.Set began (Set took %v)", ip, bmac,
			time.Since(start).Round(10*time.Microsecond), setDone.Round(10*time.Microsecond))
	}
	// Through A's cancelled rounds (300 and 600 ms after it started) and all
	// of B's: the entries stay on B.
	until := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(until) {
		for _, ip := range ips {
			n, ok, err := netns.LookupNeighbor(cns, "eth0", ip)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || !slices.Equal(n.MAC, bmac) {
				t.Fatalf("client's entry for %v left B: %v (ok %v, state %#x)", ip, n.MAC, ok, n.State)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if v := testutil.ToFloat64(b.m.gratuitous.WithLabelValues(v4.String())); v != 6 {
		t.Errorf("B's gratuitous_sent{ip=%s} = %v, want 6 (3 rounds of request and reply)", v4, v)
	}
	if v := testutil.ToFloat64(b.m.gratuitous.WithLabelValues(v6.String())); v != 3 {
		t.Errorf("B's gratuitous_sent{ip=%s} = %v, want 3", v6, v)
	}

	_ = a.Close()
	_ = b.Close()
	waitNoResponderGoroutines(t) // a timer callback that fired just before Close may still be returning
}

// A client re-validating its entry (STALE, used: DELAY, then PROBE) sends its
// solicitations unicast to the Service IP, which the responder's node does
// not own; they are answered too, so the entry goes back to REACHABLE instead
// of FAILED. The client's timers are shortened so that it probes within
// about a second.
func TestNamespaceUnicastProbe(t *testing.T) {
	lab := labFor(t)
	cns, rns := netnstest.NS(t, lab, "c"), netnstest.NS(t, lab, "r")
	r := nsResponder(t, rns, nil)
	if err := lab.Link(cns, "cl0", []string{"192.0.2.1/24", "2001:db8::1/64"}, rns, "rs0", []string{"192.0.2.2/24", "2001:db8::2/64"}); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		for k, v := range map[string]string{"base_reachable_time_ms": "200", "delay_first_probe_time": "1", "retrans_time_ms": "200"} {
			if err := netns.Sysctl(cns, "net/"+fam+"/neigh/cl0/"+k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	ips := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	_ = r.Set("rs0", ips)
	waitAnswering(t, r, "rs0", ips)
	rmac := macOf(t, rns, "rs0")
	const (
		reachable = 0x02 // netlink.NUD_*
		stale     = 0x04
		delay     = 0x08
		probe     = 0x10
	)
	for _, ip := range ips {
		sendUDP(t, cns, ip)
		waitNeighbor(t, cns, "cl0", ip, 5*time.Second, "resolve", resolvedTo(rmac))
		// Used while STALE (a datagram), the entry goes DELAY, then PROBE.
		revalidating := false
		var began time.Time
		d := waitNeighbor(t, cns, "cl0", ip, 5*time.Second, "re-validated", func(n netns.Neighbor, _ bool) bool {
			switch {
			case n.Failed():
				t.Fatalf("%v: the client's unicast probes went unanswered (entry FAILED)", ip)
			case n.State == stale:
				sendUDP(t, cns, ip)
			case n.State&(delay|probe) != 0 && !revalidating:
				revalidating, began = true, time.Now()
			}
			return revalidating && n.State == reachable && slices.Equal(n.MAC, rmac)
		})
		_ = d
		d = time.Since(began)
		t.Logf("%v: re-validated %v after DELAY began", ip, d.Round(time.Millisecond))
	}
}
