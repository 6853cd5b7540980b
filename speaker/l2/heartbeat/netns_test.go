package heartbeat

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

// segment creates hosts on one Ethernet segment (netns.Segment), removed
// with every interface when t ends, failed or not. Without root it skips,
// or fails when ECMPLB_REQUIRE_ROOTLAB is set (CI).
func segment(t *testing.T, hosts ...string) *netns.Segment {
	t.Helper()
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	lab := netnstest.RootLab(t)
	addrs := make([][]string, len(hosts))
	for i := range hosts {
		addrs[i] = []string{fmt.Sprintf("192.0.2.%d/24", i+1), fmt.Sprintf("2001:db8::%d/64", i+1)}
	}
	seg, err := lab.Segment("hub", hosts, addrs)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

func v4(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }
func v6(i int) string { return fmt.Sprintf("2001:db8::%d", i+1) }

// inNS opens the speaker's sockets in namespace ns, where they stay.
func inNS(ns string) func(func() error) error {
	return func(f func() error) error { return netns.Do(ns, f) }
}

// nsSpeaker runs a Heartbeat of node name in ns.
func nsSpeaker(t *testing.T, ns, name string, key []byte) *speaker {
	t.Helper()
	return startSpeaker(t, Config{Node: name, Key: key}, inNS(ns))
}

// maxGap is the longest time between consecutive receipts.
func maxGap(ts []time.Time) time.Duration {
	var g time.Duration
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i].Sub(ts[i-1]))
	}
	return g
}

// Two speakers, over IPv4 and over IPv6 (one dual-stack socket each), hear
// each other every interval, get round trip times from the echoes, drop
// nothing, and leave no goroutine behind.
func TestNamespaceTwoSpeakers(t *testing.T) {
	for _, family := range []struct {
		name string
		addr func(int) string
	}{{"IPv4", v4}, {"IPv6", v6}} {
		t.Run(family.name, func(t *testing.T) {
			seg := segment(t, "a", "b")
			baseline := goroutineBaseline(t)
			a := nsSpeaker(t, seg.Hosts[0], "node-a", nil)
			b := nsSpeaker(t, seg.Hosts[1], "node-b", nil)
			a.h.SetPeers(peers("node-b", family.addr(1), "node-a", family.addr(0))) // itself: ignored
			b.h.SetPeers(peers("node-a", family.addr(0)))
			start := time.Now()
			a.rec.waitHeard(t, "node-b", 20, start, "a hears b")
			b.rec.waitHeard(t, "node-a", 20, start, "b hears a")
			a.rec.wait(t, 5*time.Second, "a's round trip times", func() bool { return a.rttCount() > 0 })

			a.stop()
			b.stop()
			for _, s := range []*speaker{a, b} {
				other := map[*speaker]string{a: "node-b", b: "node-a"}[s]
				got := s.rec.receipts(other)
				if n := s.counter("received"); int(n) != len(got) {
					t.Errorf("%s: received_total %v, %d receipts reported", s.name, n, len(got))
				}
				for _, r := range dropReasons {
					if n := s.counter("dropped", r); n != 0 {
						t.Errorf("%s: dropped_total{reason=%s} = %v", s.name, r, n)
					}
				}
				// Every datagram between the first and the last arrived, in
				// order. How long apart is the scheduler's business: on a
				// loaded machine the whole process (both senders) can stall
				// for a second, which is no loss.
				if n := s.rec.skipped(other); n != 0 {
					t.Errorf("%s: %d datagrams from %s missing between the first and the last heard", s.name, n, other)
				}
				t.Logf("%s: %d receipts, largest gap %v, sent %v, %d round trip times", s.name, len(got),
					maxGap(got[1:]).Round(time.Millisecond), s.counter("sent"), s.rttCount())
			}
			baseline()
		})
	}
}

// Three speakers, A and B on IPv4, C on IPv6, hear each other. C's cable is
// pulled (its port on the switch down): A and B, still hearing each other
// every round, no longer hear C, nor C them. Plugged back, they do.
func TestNamespaceLinkCut(t *testing.T) {
	seg := segment(t, "a", "b", "c")
	baseline := goroutineBaseline(t)
	a := nsSpeaker(t, seg.Hosts[0], "node-a", nil)
	b := nsSpeaker(t, seg.Hosts[1], "node-b", nil)
	c := nsSpeaker(t, seg.Hosts[2], "node-c", nil)
	a.h.SetPeers(peers("node-b", v4(1), "node-c", v6(2)))
	b.h.SetPeers(peers("node-a", v4(0), "node-c", v6(2)))
	c.h.SetPeers(peers("node-a", v6(0), "node-b", v6(1)))
	all := []*speaker{a, b, c}
	start := time.Now()
	for _, s := range all {
		for _, o := range all {
			if o != s {
				s.rec.waitHeard(t, o.name, 5, start, s.name+" hears "+o.name)
			}
		}
	}

	if err := netns.SetLinkUp(seg.Hub, seg.Ports[2], false); err != nil {
		t.Fatal(err)
	}
	// Datagrams already past the port may still arrive, and be read late
	// (a stalled process): only the rounds begun after the cut count.
	cut := time.Now()
	cutRound := map[*speaker]uint64{a: a.lastRound(), b: b.lastRound(), c: c.lastRound()}
	a.rec.waitHeard(t, "node-b", 10, cut, "a hears b with c cut off")
	b.rec.waitHeard(t, "node-a", 10, cut, "b hears a with c cut off")
	for _, s := range []*speaker{a, b} {
		if n := s.rec.heardAfter("node-c", cutRound[c]); n != 0 {
			t.Errorf("%s heard c %d times with c's cable pulled", s.name, n)
		}
	}
	for _, o := range []*speaker{a, b} {
		if n := c.rec.heardAfter(o.name, cutRound[o]); n != 0 {
			t.Errorf("c heard %s %d times with its cable pulled", o.name, n)
		}
	}

	if err := netns.SetLinkUp(seg.Hub, seg.Ports[2], true); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	a.rec.waitHeard(t, "node-c", 3, back, "a hears c again")
	b.rec.waitHeard(t, "node-c", 3, back, "b hears c again")
	c.rec.waitHeard(t, "node-a", 3, back, "c hears a again")
	c.rec.waitHeard(t, "node-b", 3, back, "c hears b again")
	// How soon is the kernel's business: c's carrier coming back goes
	// through its link watch, which handles such events at most once a
	// second, so c transmits again about 1 s after its carrier went (0.5 s
	// here, over IPv4 and IPv6 alike); the others' datagrams reach c at
	// their next round.
	for _, p := range []struct {
		s    *speaker
		from string
	}{{a, "node-c"}, {b, "node-c"}, {c, "node-a"}, {c, "node-b"}} {
		t.Logf("%s heard %s again %v after the link came up", p.s.name, p.from, p.s.rec.firstAfter(p.from, back).Sub(back).Round(time.Millisecond))
	}
	for _, s := range all {
		s.stop()
	}
	baseline()
}

// A and C share a key, B has another, D none. A and C hear each other and
// drop B's and D's datagrams as "auth"; B drops everyone's. D, keyless,
// accepts everyone's (it ignores the MACs): a key is rolled out receiver by
// receiver.
func TestNamespaceKeyMismatch(t *testing.T) {
	seg := segment(t, "a", "b", "c", "d")
	k1, k2 := []byte("key one"), []byte("key two")
	a := nsSpeaker(t, seg.Hosts[0], "node-a", k1)
	b := nsSpeaker(t, seg.Hosts[1], "node-b", k2)
	c := nsSpeaker(t, seg.Hosts[2], "node-c", k1)
	d := nsSpeaker(t, seg.Hosts[3], "node-d", nil)
	all := []*speaker{a, b, c, d}
	for i, s := range all {
		var ps []Peer
		for j, o := range all {
			if j != i {
				ps = append(ps, peers(o.name, v4(j))...)
			}
		}
		s.h.SetPeers(ps)
	}
	start := time.Now()
	a.rec.waitHeard(t, "node-c", 10, start, "a hears c")
	c.rec.waitHeard(t, "node-a", 10, start, "c hears a")
	for _, o := range []string{"node-a", "node-b", "node-c"} {
		d.rec.waitHeard(t, o, 10, start, "d hears "+o)
	}
	for _, s := range []*speaker{a, c} {
		s.rec.wait(t, 5*time.Second, s.name+" counts the datagrams of b and d as auth", func() bool {
			return s.counter("dropped", reasonAuth) >= 20
		})
	}
	b.rec.wait(t, 5*time.Second, "b counts everyone's datagrams as auth", func() bool {
		return b.counter("dropped", reasonAuth) >= 30
	})
	for _, s := range []*speaker{a, b, c} {
		for _, o := range all {
			if n, _ := s.rec.count(o.name, time.Time{}); n != 0 && (s == b || o == b || o == d) {
				t.Errorf("%s heard %s %d times across a key mismatch", s.name, o.name, n)
			}
		}
	}
}

// SetPeers takes effect from the next round: a speaker sending to no one is
// heard by no one (while it hears the others), then by the peer added, then
// only by the one it was changed to.
func TestNamespaceSetPeers(t *testing.T) {
	seg := segment(t, "a", "b", "c")
	a := nsSpeaker(t, seg.Hosts[0], "node-a", nil)
	b := nsSpeaker(t, seg.Hosts[1], "node-b", nil)
	c := nsSpeaker(t, seg.Hosts[2], "node-c", nil)
	b.h.SetPeers(peers("node-a", v4(0)))
	c.h.SetPeers(peers("node-a", v6(0)))
	start := time.Now()
	a.rec.waitHeard(t, "node-b", 5, start, "a hears b")
	a.rec.waitHeard(t, "node-c", 5, start, "a hears c")
	if n, _ := b.rec.count("node-a", start); n != 0 {
		t.Fatalf("b heard a %d times, a has no peers", n)
	}
	if v := a.counter("sent"); v != 0 {
		t.Fatalf("a sent %v datagrams with no peers", v)
	}

	a.h.SetPeers(peers("node-b", v4(1)))
	set := time.Now()
	b.rec.waitHeard(t, "node-a", 5, set, "b hears a once a sends to it")
	t.Logf("b heard a %v after SetPeers", b.rec.firstAfter("node-a", set).Sub(set).Round(time.Millisecond))
	if n, _ := c.rec.count("node-a", time.Time{}); n != 0 {
		t.Errorf("c heard a %d times, not a's peer", n)
	}

	a.h.SetPeers(peers("node-c", v6(2)))
	// A round that began before the change may still go to b.
	changed, changedRound := time.Now(), a.lastRound()
	c.rec.waitHeard(t, "node-a", 10, changed, "c hears a once a sends to it")
	if n := b.rec.heardAfter("node-a", changedRound); n != 0 {
		t.Errorf("b heard a %d times after a dropped it from its peers", n)
	}
}

// A sends to B among many peers that never answer: 40 absent addresses (the
// kernel queues datagrams to them while it tries to resolve their MACs,
// charging them to the sending socket) and one frozen speaker, whose socket
// is never read and full. B still hears A every round.
func TestNamespaceAbsentAndFrozenPeers(t *testing.T) {
	seg := segment(t, "a", "b", "f")
	baseline := goroutineBaseline(t)
	var frozen *net.UDPConn
	err := netns.Do(seg.Hosts[2], func() (err error) {
		frozen, err = net.ListenUDP("udp", &net.UDPAddr{Port: DefaultPort})
		if err == nil {
			err = frozen.SetReadBuffer(1) // the kernel's minimum: full at once
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Close() })

	a := nsSpeaker(t, seg.Hosts[0], "node-a", nil)
	b := nsSpeaker(t, seg.Hosts[1], "node-b", nil)
	ps := peers("node-b", v4(1), "node-f", v4(2), "node-f", v6(2))
	for i := range 20 {
		ps = append(ps, Peer{fmt.Sprintf("absent-%d", i), netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 100+i))},
			Peer{fmt.Sprintf("absent-%d", i), netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 100+i))})
	}
	a.h.SetPeers(ps)
	b.h.SetPeers(peers("node-a", v4(0)))
	start := time.Now()
	// 4 s: past the kernel's 3 s of address resolution, so the absent
	// peers' queues are at their fullest and start over.
	rounds := int(4 * time.Second / testInterval)
	b.rec.waitHeard(t, "node-a", rounds, start, "b hears a")
	got := b.rec.receipts("node-a")
	// Every round of a's reached b: none of b's datagrams failed or was
	// dropped for the absent peers' queues (a round's sequence counts every
	// round, sent or not).
	if n := b.rec.skipped("node-a"); n != 0 {
		t.Errorf("%d of a's rounds missing at b between the first and the last heard", n)
	}
	a.stop()
	b.stop()
	t.Logf("b heard a %d times, largest gap %v; a sent %v datagrams, %v send errors", len(got),
		maxGap(got[1:]).Round(time.Millisecond), a.counter("sent"), a.counter("send_errors"))
	baseline()
}
