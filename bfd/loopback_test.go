package bfd_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
)

// freePort finds a UDP port free on both loopback addresses.
func freePort(t *testing.T, addrs ...netip.Addr) int {
	t.Helper()
	for range 50 {
		port := 20000 + rand.IntN(20000)
		ok := true
		for _, a := range addrs {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.AsSlice(), Port: port})
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestUDPLoopback runs two Managers over real sockets on 127.0.0.1 and
// 127.0.0.2 with a private control port, so it needs neither root nor a
// namespace (loopback keeps TTL 255).
func TestUDPLoopback(t *testing.T) {
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	port := freePort(t, a1, a2)
	m1 := bfd.NewManager(bfd.WithControlPort(port))
	m2 := bfd.NewManager(bfd.WithControlPort(port))
	t.Cleanup(func() { m1.Close(); m2.Close() })
	ev, cancel := m1.Subscribe()
	defer cancel()
	k12, k21 := bfd.PeerKey{Local: a1, Peer: a2}, bfd.PeerKey{Local: a2, Peer: a1}
	if err := m1.AddPeer(k12, profile(100, 100, 3)); err != nil {
		t.Fatal(err)
	}
	if err := m2.AddPeer(k21, profile(100, 100, 3)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, k12, bfd.StateUp, 10*time.Second)
	if err := m2.RemovePeer(k21); err != nil {
		t.Fatal(err)
	}
	down := waitEvent(t, ev, k12, bfd.StateDown, 5*time.Second)
	if down.Diag != bfd.DiagNeighborSignaledDown {
		t.Fatalf("diag %s", down.Diag)
	}
	if s := m1.Sessions()[0]; s.RemoteDiag != bfd.DiagAdminDown {
		t.Fatalf("remote diag %s", s.RemoteDiag)
	}
	// A second session on the same local address shares the listener.
	if err := m2.AddPeer(k21, profile(100, 100, 3)); err != nil {
		t.Fatal(err)
	}
	a3 := netip.MustParseAddr("127.0.0.3")
	m3 := bfd.NewManager(bfd.WithControlPort(port))
	t.Cleanup(func() { m3.Close() })
	if err := m1.AddPeer(bfd.PeerKey{Local: a1, Peer: a3}, profile(100, 100, 3)); err != nil {
		t.Fatal(err)
	}
	if err := m3.AddPeer(bfd.PeerKey{Local: a3, Peer: a1}, profile(100, 100, 3)); err != nil {
		t.Skipf("127.0.0.3 unusable here: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m1.Sessions()
		if len(s) == 2 && s[0].State == bfd.StateUp && s[1].State == bfd.StateUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
