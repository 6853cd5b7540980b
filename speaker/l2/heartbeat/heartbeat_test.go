package heartbeat

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTest(t *testing.T, cfg Config) *Heartbeat {
	t.Helper()
	h, err := New(cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSetPeers(t *testing.T) {
	h := newTest(t, Config{Node: "self"})
	h.SetPeers(peers("b", "192.0.2.2", "self", "192.0.2.1", "a", "2001:db8::1", "a", "::ffff:192.0.2.3", "b", "192.0.2.2"))
	h.SetPeers(append(h.peers, Peer{Node: "", Addr: netip.MustParseAddr("192.0.2.9")}, Peer{Node: "x"}, Peer{Node: "y", Addr: netip.IPv4Unspecified()}))
	want := peers("a", "192.0.2.3", "a", "2001:db8::1", "b", "192.0.2.2")
	if !slices.Equal(h.peers, want) {
		t.Errorf("peers %v, want %v (self, invalid and duplicate entries out, mapped IPv4 unmapped, sorted)", h.peers, want)
	}
	if v := testutil.ToFloat64(h.m.peers); v != 3 {
		t.Errorf("peers gauge %v", v)
	}

	bound := newTest(t, Config{Node: "self", Listen: netip.MustParseAddr("192.0.2.1")})
	bound.SetPeers(peers("a", "2001:db8::1", "b", "192.0.2.2"))
	if want := peers("b", "192.0.2.2"); !slices.Equal(bound.peers, want) {
		t.Errorf("bound to IPv4: peers %v, want %v", bound.peers, want)
	}
}

// accept counts what it drops by reason and reports the rest.
func TestAcceptCounts(t *testing.T) {
	h := newTest(t, Config{Node: "self", Key: testKey})
	now := t0
	feed := func(m message, key []byte) (string, bool) {
		now = now.Add(time.Millisecond)
		got, _, ok := h.accept(appendMessage(nil, m, key), now)
		return got.Node, ok
	}
	if node, ok := feed(message{Node: "a", Incarnation: 1, Seq: 1}, testKey); !ok || node != "a" {
		t.Fatalf("valid datagram: %q, %v", node, ok)
	}
	feed(message{Node: "a", Incarnation: 1, Seq: 1}, testKey)     // stale
	feed(message{Node: "self", Incarnation: 1, Seq: 1}, testKey)  // own name
	feed(message{Node: "b", Incarnation: 1, Seq: 1}, nil)         // no MAC
	feed(message{Node: "b", Incarnation: 1, Seq: 1}, []byte("x")) // wrong key
	h.accept([]byte("junk"), now)
	for reason, want := range map[string]float64{reasonStale: 1, reasonOwnName: 1, reasonAuth: 2, reasonMagic: 1, reasonShort: 0} {
		if got := testutil.ToFloat64(h.m.dropped.WithLabelValues(reason)); got != want {
			t.Errorf("dropped{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(h.m.received); got != 1 {
		t.Errorf("received %v, want 1", got)
	}
	// The echo of our round 1, held 2 ms by a, received 5 ms after we sent
	// it: a round trip of 3 ms.
	sent := now
	h.sends.sent(1, sent)
	now = now.Add(5 * time.Millisecond)
	if _, echoed, _ := h.accept(appendMessage(nil, message{Node: "a", Incarnation: 1, Seq: 2, EchoSeq: 1, EchoHold: 2 * time.Millisecond}, testKey), now); !echoed.Equal(sent) {
		t.Errorf("echo of round 1: sent at %v, want %v", echoed, sent)
	}
	// An echo of a round not in the log (never sent, or an earlier
	// incarnation's) proves nothing.
	if _, echoed, ok := h.accept(appendMessage(nil, message{Node: "a", Incarnation: 1, Seq: 3, EchoSeq: 7}, testKey), now); !ok || !echoed.IsZero() {
		t.Errorf("echo of an unknown round: %v, %v; want accepted, no send time", echoed, ok)
	}
	s := &speaker{h: h}
	if n := s.rttCount(); n != 1 {
		t.Errorf("%d round trip times observed, want 1", n)
	}
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Node: "a"}, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Node: "b"}, nil, reg); err == nil {
		t.Error("a second Heartbeat on one registry: no error")
	}
	if _, err := New(Config{Node: "c"}, nil, nil); err != nil {
		t.Errorf("nil registerer: %v", err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n == 0 {
		t.Errorf("gathered %d series, %v", n, err)
	}
}

// freePort returns a UDP port free on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Two speakers on loopback addresses (no root needed): B's port is taken at
// start, so its Run retries (counted) until the port is free, and then both
// hear each other. Run refuses a second concurrent call and a nil heard.
// Every goroutine is gone once both Runs returned.
func TestLoopbackRetriesBusyPort(t *testing.T) {
	baseline := goroutineBaseline(t)
	port := freePort(t)
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	busy, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo2, uint16(port))))
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer busy.Close()

	a := startSpeaker(t, Config{Node: "a", Port: port, Listen: lo1}, nil)
	b := startSpeaker(t, Config{Node: "b", Port: port, Listen: lo2}, nil)
	a.h.SetPeers(peers("b", "127.0.0.2", "a", "127.0.0.1"))
	b.h.SetPeers(peers("a", "127.0.0.1", "b", "127.0.0.2"))
	b.rec.wait(t, 5*time.Second, "b's listen retried", func() bool { return b.counter("socket_errors") >= 2 })
	if n, _ := a.rec.count("b", time.Time{}); n != 0 || b.h.Receiving() {
		t.Fatalf("a heard b %d times while b could not listen (b receiving: %v)", n, b.h.Receiving())
	}
	if err := busy.Close(); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	a.rec.waitHeard(t, "b", 5, freed, "a hears b")
	b.rec.waitHeard(t, "a", 5, freed, "b hears a")
	t.Logf("b listening %v after the port was freed, after %v socket errors",
		a.rec.firstAfter("b", freed).Sub(freed).Round(time.Millisecond), b.counter("socket_errors"))

	if err := a.h.Run(context.Background(), func(string, time.Time) {}); err == nil {
		t.Error("a second Run while one runs: no error")
	}
	if err := newTest(t, Config{Node: "c"}).Run(context.Background(), nil); err == nil {
		t.Error("Run with a nil heard: no error")
	}
	if !a.h.Receiving() || !b.h.Receiving() {
		t.Error("Receiving false while both hear each other")
	}
	a.stop()
	b.stop()
	if a.h.Receiving() {
		t.Error("Receiving true after Run returned")
	}
	baseline()
}
