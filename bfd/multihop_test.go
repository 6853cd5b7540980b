package bfd_test

import (
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
)

var (
	mhKeyAB = bfd.PeerKey{Local: addrA, Peer: addrB, MultiHop: true}
	mhKeyBA = bfd.PeerKey{Local: addrB, Peer: addrA, MultiHop: true}
)

// TestManagerMultiHopMinimumTTL: a multi-hop session accepts packets whose
// TTL is at least its profile's minimumTtl (RFC 5883 section 5), not only
// 255, and drops the others; a single-hop session between the same
// addresses is a session of its own, still held to TTL 255.
func TestManagerMultiHopMinimumTTL(t *testing.T) {
	p := newPair(t)
	p.net.MultiHopTTL = 252        // three routers on the way
	strict := profile(300, 300, 3) // minimumTtl 254 by default
	if err := p.a.AddPeer(mhKeyAB, strict); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddPeer(mhKeyBA, strict); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(10 * time.Second)
	if a := info(t, p.a, mhKeyAB); a.State != bfd.StateDown || a.PacketsIn != 0 {
		t.Fatalf("minimumTtl 254 accepted TTL 252: %+v", a)
	}
	if got := metricValue(t, p.regA, "ecmplb_bfd_control_packets_dropped_total", "reason", "ttl"); got == 0 {
		t.Fatal("TTL drops not counted")
	}
	loose := strict
	loose.MinimumTTL = 252
	if err := p.a.UpdatePeer(mhKeyAB, loose); err != nil {
		t.Fatal(err)
	}
	if err := p.b.UpdatePeer(mhKeyBA, loose); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, mhKeyAB); a.State != bfd.StateUp {
		t.Fatalf("minimumTtl 252 with TTL 252: not Up: %+v", a)
	}
	ev := waitEvent(t, p.evA, mhKeyAB, bfd.StateUp, 5*time.Second)
	if !ev.Key.MultiHop {
		t.Fatalf("event key %s lost the multi-hop flag", ev.Key)
	}

	// A single-hop session between the same addresses: its own session,
	// its own listener; with TTL 254 on the wire it stays Down while the
	// multi-hop one stays Up.
	p.net.TTL = 254
	if err := p.a.AddPeer(keyAB, strict); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddPeer(keyBA, strict); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateDown {
		t.Fatalf("single-hop accepted TTL 254: %+v", a)
	}
	if a := info(t, p.a, mhKeyAB); a.State != bfd.StateUp {
		t.Fatalf("multi-hop session disturbed by the single-hop one: %+v", a)
	}
	p.net.TTL = 255
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, keyAB); a.State != bfd.StateUp {
		t.Fatalf("single-hop not Up with TTL 255: %+v", a)
	}
	if err := p.a.RemovePeer(keyAB); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(5 * time.Second)
	if a := info(t, p.a, mhKeyAB); a.State != bfd.StateUp {
		t.Fatalf("multi-hop session went with the single-hop one: %+v", a)
	}
}

// TestManagerMultiHopNoEcho: echo is a single-hop function (RFC 5883
// section 3): a multi-hop session with EchoMode never sends echo packets.
func TestManagerMultiHopNoEcho(t *testing.T) {
	p := newPair(t)
	pr := profile(300, 300, 3)
	pr.EchoMode = true
	if err := p.a.AddPeer(mhKeyAB, pr); err != nil {
		t.Fatal(err)
	}
	if err := p.b.AddPeer(mhKeyBA, pr); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(10 * time.Second)
	a := info(t, p.a, mhKeyAB)
	if a.State != bfd.StateUp || a.EchoActive || a.EchoPacketsOut != 0 || p.net.EchoCount(addrA) != 0 {
		t.Fatalf("multi-hop session with EchoMode: %+v, %d echo packets", a, p.net.EchoCount(addrA))
	}
}
