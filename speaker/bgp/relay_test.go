package bgp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/ecmplb/ecmplb/speaker/announce"
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
	return e.startWith(t, source, relayParams{})
}

func (e *relayEnds) startWith(t *testing.T, source string, p relayParams) transport {
	t.Helper()
	cfg := relayConfig{peer: netip.MustParseAddrPort(e.peer.Addr().String()), retryMax: time.Second}
	if p.cfg.retryMax != 0 {
		cfg.retryMax = p.cfg.retryMax
	}
	if source != "" {
		cfg.source = netip.MustParseAddr(source)
	}
	p.cfg, p.gobgp = cfg, netip.MustParseAddrPort(e.gobgp.Addr().String())
	p.log, p.stats, p.onRefused = slog.New(slog.DiscardHandler), &e.stats, func() { e.refused.Add(1) }
	r := startRelay(p)
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
		peer, g := e.establish(t)
		peer.Close()
		if _, err := readMessage(g, nil); err == nil { // the relay has seen the end
			t.Fatal("GoBGP's side still open")
		}
	}
	// Now in a backoff of up to 1 s; a kick must bring the next dial well before.
	start := time.Now()
	r.kick()
	accept(t, e.peer)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("kicked relay dialled after %v, want at once", d)
	}
}

// establish plays one session through the relay: the peer and GoBGP exchange
// OPENs; it returns the peer's end.
func (e *relayEnds) establish(t *testing.T) (peer, g net.Conn) {
	t.Helper()
	peer = accept(t, e.peer)
	g = accept(t, e.gobgp)
	if _, err := g.Write(open(t, "10.0.0.21")); err != nil {
		t.Fatal(err)
	}
	expect(t, peer, msgOpen)
	return peer, g
}

// After a long session ends, a relay with BFD waits the BFD detection time
// before dialling again (a dial BFD cuts short costs an idle hold on the
// peer), unless BFD comes Up first; without BFD it dials at once.
func TestRelayWaitsForBFDAfterADrop(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hold       time.Duration
		kick       bool
		kickDuring bool
		min, max   time.Duration
	}{
		{"no bfd: at once", 0, false, false, 0, 500 * time.Millisecond},
		{"bfd: waits the detection time", time.Second, false, false, 900 * time.Millisecond, 1500 * time.Millisecond},
		{"bfd up: at once", time.Second, true, false, 0, 500 * time.Millisecond},
		{"bfd: a kick during the session does not count", time.Second, false, true, 900 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRelayEnds(t)
			r := e.startWith(t, "", relayParams{stable: 50 * time.Millisecond, dropHold: func() time.Duration { return tc.hold }})
			peer, g := e.establish(t)
			time.Sleep(60 * time.Millisecond) // the session lasts longer than stable
			if tc.kickDuring {
				r.kick()
			}
			peer.Close()
			ended := time.Now()
			if tc.kick {
				// BFD Up, once the relay has seen the end (it closes GoBGP's side).
				if _, err := readMessage(g, nil); err == nil {
					t.Fatal("GoBGP's side still open")
				}
				r.kick()
			}
			accept(t, e.peer)
			d := time.Since(ended)
			if d < tc.min || d > tc.max {
				t.Errorf("dialled again %v after the drop, want %v-%v", d.Round(time.Millisecond), tc.min, tc.max)
			}
		})
	}
}

func TestBFDDetectTime(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		p    *announce.BFDProfile
		want time.Duration
	}{
		{nil, 0},
		{&announce.BFDProfile{}, 1000 * time.Millisecond},
		{&announce.BFDProfile{ReceiveInterval: u(50), TransmitInterval: u(50), DetectMultiplier: u(3)}, 300 * time.Millisecond},
		{&announce.BFDProfile{ReceiveInterval: u(1000), TransmitInterval: u(500), DetectMultiplier: u(5)}, 5100 * time.Millisecond},
		{&announce.BFDProfile{ReceiveInterval: u(60000), DetectMultiplier: u(3)}, 10 * time.Second},
	} {
		if got := bfdDetectTime(tc.p); got != tc.want {
			t.Errorf("bfdDetectTime(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// After BFD reports the peer reachable (a kick), attempts the peer turns
// away are retried at least every second, not after a backoff grown to
// seconds: the peer is leaving an idle hold (on kind a thaw came back 6.4 s
// late, the relay waiting 3.2 s after a ToR's 5 s hold had ended).
func TestRelayRetriesEagerlyAfterBFDUp(t *testing.T) {
	e := newRelayEnds(t)
	r := e.startWith(t, "", relayParams{cfg: relayConfig{retryMax: 8 * time.Second}})
	r.kick()
	var last time.Time
	for i := range 6 {
		peer, g := e.establish(t)
		if i == 5 {
			if gap := time.Since(last); gap > time.Second+300*time.Millisecond {
				t.Errorf("attempt %d came %v after the one before, want at most %v after BFD Up", i+1, gap.Round(time.Millisecond), time.Second)
			}
			return
		}
		// The peer hangs up on GoBGP's OPEN (its neighbor in an idle hold).
		peer.Close()
		if _, err := readMessage(g, nil); err == nil {
			t.Fatal("GoBGP's side still open")
		}
		last = time.Now()
	}
}

// A graceful-restart stop ends the connection with a FIN and no NOTIFICATION,
// and returns only once the peer has closed its side: the peer has then
// taken the session down and keeps our routes, stale. Only then may BFD go
// AdminDown; a router that takes a received AdminDown for a path failure
// (FRR 8.4) flushes every route while the session is still up. A KEEPALIVE
// of GoBGP's after the FIN does not end the wait; a peer that never closes
// does, after the bound.
func TestRelayGracefulCloseWaitsForThePeer(t *testing.T) {
	t.Run("peer closes", func(t *testing.T) {
		e := newRelayEnds(t)
		r := e.start(t, "").(*relay)
		peer, g := e.establish(t)
		done := make(chan struct{})
		go func() {
			r.closeAfterPeer(5 * time.Second)
			close(done)
		}()
		m, err := readMessage(peer, nil)
		if err == nil {
			t.Fatalf("the peer got message type %d, want the end of the connection", msgType(m))
		}
		if _, err := g.Write(keepalive); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatal("the close returned before the peer closed its side")
		case <-time.After(100 * time.Millisecond):
		}
		peer.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the close did not return after the peer closed its side")
		}
	})
	t.Run("peer never closes", func(t *testing.T) {
		e := newRelayEnds(t)
		r := e.start(t, "").(*relay)
		e.establish(t)
		done := make(chan struct{})
		go func() {
			r.closeAfterPeer(200 * time.Millisecond)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the close did not return after its bound")
		}
	})
	t.Run("not connected", func(t *testing.T) {
		e := newRelayEnds(t)
		r := e.start(t, "").(*relay)
		done := make(chan struct{})
		go func() {
			r.closeAfterPeer(5 * time.Second)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("the close of an unconnected relay waited")
		}
	})
}

// The half close of a graceful stop comes after the message being written
// to the peer, never inside it: with the pipe full (the peer not reading and
// the relay blocked in a write), the peer still reads whole messages up to
// the end of the connection. A FIN inside a message would leave the peer
// a truncated one.
func TestRelayHalfCloseAfterTheMessageInFlight(t *testing.T) {
	for round := range 5 {
		e := newRelayEnds(t)
		r := e.start(t, "").(*relay)
		peer, g := e.establish(t)
		// An UPDATE of 3,998 withdrawn /32s (5 bytes each, 4,009 bytes in all).
		const n = 3990 / 5
		withdrawn := make([]byte, 0, 5*n)
		for i := range n {
			withdrawn = append(withdrawn, 32, 10, byte(i>>8), byte(i), 1)
		}
		upd := make([]byte, 19, 19+2+len(withdrawn)+2)
		for i := range 16 {
			upd[i] = 0xff
		}
		upd[18] = msgUpdate
		upd = binary.BigEndian.AppendUint16(upd, uint16(len(withdrawn)))
		upd = append(upd, withdrawn...)
		upd = binary.BigEndian.AppendUint16(upd, 0)
		binary.BigEndian.PutUint16(upd[16:], uint16(len(upd)))
		// Fill the pipe until GoBGP's side cannot write any more: the relay
		// is then blocked writing to the peer.
		for {
			_ = g.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := g.Write(upd); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal(err)
				}
				break
			}
		}
		done := make(chan struct{})
		go func() {
			r.closeAfterPeer(5 * time.Second)
			close(done)
		}()
		// Until the relay took the close, the peer does not read.
		deadline := time.Now().Add(5 * time.Second)
		for !r.closing.Load() {
			if time.Now().After(deadline) {
				t.Fatal("the close did not start")
			}
			runtime.Gosched()
		}
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		msgs := 0
		for {
			m, err := readMessage(peer, nil)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("round %d: after %d whole messages: %v", round, msgs, err)
				}
				break
			}
			if !bytes.Equal(m, upd) {
				t.Fatalf("round %d: message %d differs from the UPDATE sent", round, msgs)
			}
			msgs++
		}
		peer.Close()
		<-done
	}
}
