package bgp

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// relayEnds are the two sides of a relay under test, both on loopback: a
// listener standing in for the peer (127.0.0.2) and one for GoBGP (127.0.0.1).
type relayEnds struct {
	peer, gobgp net.Listener
	stats       relayStats
	refused     atomic.Int32
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newRelayEnds(t *testing.T) *relayEnds {
	return &relayEnds{peer: listen(t, "127.0.0.2"), gobgp: listen(t, "127.0.0.1")}
}

func (e *relayEnds) start(t *testing.T, source string) transport {
	t.Helper()
	cfg := relayConfig{peer: netip.MustParseAddrPort(e.peer.Addr().String()), retryMax: time.Second}
	if source != "" {
		cfg.source = netip.MustParseAddr(source)
	}
	r := startRelay(relayParams{cfg: cfg, gobgp: netip.MustParseAddrPort(e.gobgp.Addr().String()),
		log: slog.New(slog.DiscardHandler), stats: &e.stats, onRefused: func() { e.refused.Add(1) }})
	t.Cleanup(func() {
		r.close(0)
		<-r.(*relay).done
	})
	return r
}

func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func open(t *testing.T, id string) []byte {
	t.Helper()
	m, err := bgp.NewBGPOpenMessage(65000, 90, id, nil).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func expect(t *testing.T, c net.Conn, typ byte) []byte {
	t.Helper()
	m, err := readMessage(c, nil)
	if err != nil {
		t.Fatalf("waiting for message type %d: %v", typ, err)
	}
	if msgType(m) != typ {
		t.Fatalf("got message type %d, want %d", msgType(m), typ)
	}
	return m
}

// The relay connects the peer to GoBGP, hands GoBGP a KEEPALIVE for every
// UPDATE of the peer (counting its prefixes), passes everything else, and
// rewrites the loopback next-hop of GoBGP's UPDATEs to its real source address.
func TestRelayPipesAndFilters(t *testing.T) {
	e := newRelayEnds(t)
	e.start(t, "127.0.0.3")
	peer := accept(t, e.peer)
	if a := peer.RemoteAddr().(*net.TCPAddr).IP.String(); a != "127.0.0.3" {
		t.Errorf("relay dialled from %s, want the configured source 127.0.0.3", a)
	}
	g := accept(t, e.gobgp)
	// GoBGP speaks first (passive neighbor: its OPEN on accept); the peer gets it.
	if _, err := g.Write(open(t, "10.0.0.21")); err != nil {
		t.Fatal(err)
	}
	expect(t, peer, msgOpen)
	if _, err := peer.Write(append(open(t, "10.0.0.1"), keepalive...)); err != nil {
		t.Fatal(err)
	}
	expect(t, g, msgOpen)
	expect(t, g, msgKeepalive)
	// The peer's UPDATE: GoBGP sees a KEEPALIVE.
	u := update(t, nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("10.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "192.0.2.0"), bgp.NewIPAddrPrefix(24, "198.51.100.0")})
	if _, err := peer.Write(u); err != nil {
		t.Fatal(err)
	}
	if m := expect(t, g, msgKeepalive); !bytes.Equal(m, keepalive) {
		t.Errorf("GoBGP got %x in place of the UPDATE", m)
	}
	if n := e.stats.discardedPrefixes.Load(); n != 2 {
		t.Errorf("discarded prefixes %d, want 2", n)
	}
	// GoBGP's UPDATE with the loopback next-hop: the peer sees the real one.
	mine := update(t, nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("127.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(32, "203.0.113.5")})
	if _, err := g.Write(mine); err != nil {
		t.Fatal(err)
	}
	if nh := nextHops(t, expect(t, peer, msgUpdate)); len(nh) != 1 || nh[0] != "127.0.0.3" {
		t.Errorf("peer got next-hops %v, want [127.0.0.3]", nh)
	}
	// GoBGP closing (a Cease, then EOF) closes the peer's connection.
	g.Close()
	if _, err := readMessage(peer, nil); err == nil {
		t.Error("peer connection still open after GoBGP closed its side")
	}
}

// GoBGP turning the relay away (its neighbor in an idle hold: accept, then
// close without an OPEN) is reported once and retried while the peer waits.
func TestRelayRetriesARefusingGoBGP(t *testing.T) {
	e := newRelayEnds(t)
	e.start(t, "")
	peer := accept(t, e.peer)
	for range 3 {
		accept(t, e.gobgp).Close()
	}
	g := accept(t, e.gobgp)
	if _, err := g.Write(open(t, "10.0.0.21")); err != nil {
		t.Fatal(err)
	}
	expect(t, peer, msgOpen)
	if n := e.refused.Load(); n != 1 {
		t.Errorf("refusal reported %d times, want once", n)
	}
}

// A relay waiting to retry dials at once when kicked (BFD came Up).
func TestRelayKickDialsAtOnce(t *testing.T) {
	e := newRelayEnds(t)
	r := e.start(t, "")
	// Fail the first attempts: the peer closes the session on GoBGP's OPEN,
	// so the relay backs off (200 ms, 400 ms, 800 ms, then 1 s).
	for range 4 {
		peer := accept(t, e.peer)
		if _, err := accept(t, e.gobgp).Write(open(t, "10.0.0.21")); err != nil {
			t.Fatal(err)
		}
		expect(t, peer, msgOpen)
		peer.Close()
	}
	// Now in a backoff of up to 1 s; a kick must bring the next dial well before.
	start := time.Now()
	r.kick()
	accept(t, e.peer)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("kicked relay dialled after %v, want at once", d)
	}
}
