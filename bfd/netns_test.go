package bfd_test

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/netns"
)

var (
	nsAddrA = netip.MustParseAddr("10.255.0.1")
	nsAddrB = netip.MustParseAddr("10.255.0.2")
	nsKeyAB = bfd.PeerKey{Local: nsAddrA, Peer: nsAddrB}
	nsKeyBA = bfd.PeerKey{Local: nsAddrB, Peer: nsAddrA}
)

func newNetnsPair(t *testing.T, tag string) *netns.Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p, err := netns.NewPair(tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

// waitEvent waits (in real time, bounded) for a matching state change.
func waitEvent(t *testing.T, ch <-chan bfd.StateChange, key bfd.PeerKey, to bfd.State, within time.Duration) bfd.StateChange {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-ch:
			if ev.Key == key && ev.New == to {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s did not reach %s within %v", key, to, within)
		}
	}
}

// forgedAdminDown sends, from B to A's port, an AdminDown that would match
// session s but carries the default TTL (64) from an ephemeral port, and
// waits until A counts it dropped for its TTL.
func forgedAdminDown(t *testing.T, p *netns.Pair, s bfd.SessionInfo, port int, reg *prometheus.Registry) {
	t.Helper()
	forged := bfd.ControlPacket{Version: 1, State: bfd.StateAdminDown, DetectMult: 3,
		MyDiscriminator: s.RemoteDiscr, YourDiscriminator: s.LocalDiscr, RequiredMinRxInterval: 1}
	before := metricValue(t, reg, "ecmplb_bfd_control_packets_dropped_total", "reason", "ttl")
	err := netns.Do(p.B.Name, func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: nsAddrA.AsSlice(), Port: port})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(forged.Marshal())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, reg, "ecmplb_bfd_control_packets_dropped_total", "reason", "ttl") < before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("TTL 64 packet to port %d not counted as dropped", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUDPSessionsInNamespaces runs two Managers of this process over real
// sockets in two namespaces joined by a veth.
func TestUDPSessionsInNamespaces(t *testing.T) {
	p := newNetnsPair(t, "u")
	reg := prometheus.NewRegistry()
	a := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()), bfd.WithRegisterer(reg))
	b := bfd.NewManager(bfd.WithNetNSPath(p.B.Path()))
	t.Cleanup(func() { a.Close(); b.Close() })
	evA, cancel := a.Subscribe()
	defer cancel()
	prof := profile(50, 50, 3)
	if err := a.AddPeer(nsKeyAB, prof); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(nsKeyBA, prof); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, evA, nsKeyAB, bfd.StateUp, 10*time.Second)

	// Sockets: the shared listener on local:3784 and one source port in
	// 49152-65535 for the session, both bound to the local address.
	out, err := p.A.Run("ss", "-uanH")
	if err != nil {
		t.Fatal(err)
	}
	var listener, source bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		host, port, _ := net.SplitHostPort(f[3])
		if host != nsAddrA.String() {
			t.Errorf("socket not bound to the local address: %s", line)
			continue
		}
		n, _ := strconv.Atoi(port)
		switch {
		case n == bfd.ControlPort:
			listener = true
		case n >= bfd.SourcePortMin && n <= bfd.SourcePortMax:
			source = true
		default:
			t.Errorf("unexpected socket %s", line)
		}
	}
	if !listener || !source {
		t.Fatalf("listener %v source port %v in:\n%s", listener, source, out)
	}

	// A packet that does not arrive with TTL 255 is dropped.
	forgedAdminDown(t, p, a.Sessions()[0], bfd.ControlPort, reg)
	if s := a.Sessions()[0]; s.State != bfd.StateUp {
		t.Fatalf("forged AdminDown with TTL 64 took the session down: %+v", s)
	}

	// Silence B: A goes Down on detection time.
	if err := b.Mute(nsKeyBA, true); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, evA, nsKeyAB, bfd.StateDown, 5*time.Second)
	if ev.Diag != bfd.DiagControlDetectionTimeExpired {
		t.Fatalf("diag %s", ev.Diag)
	}
	b.Mute(nsKeyBA, false)
	waitEvent(t, evA, nsKeyAB, bfd.StateUp, 10*time.Second)

	// Removing and re-adding while B keeps sending every 10ms: the shared
	// listener is closed and reopened under traffic without deadlock.
	if err := b.UpdatePeer(nsKeyBA, profile(10, 10, 3)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		done := make(chan error, 1)
		go func() {
			err := a.RemovePeer(nsKeyAB)
			if err == nil {
				err = a.AddPeer(nsKeyAB, prof)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("RemovePeer/AddPeer hung under traffic")
		}
		waitEvent(t, evA, nsKeyAB, bfd.StateUp, 10*time.Second)
	}
}

// TestUDPIPv6InNamespaces checks the IPv6 transport (hop limit 255 both ways).
func TestUDPIPv6InNamespaces(t *testing.T) {
	p := newNetnsPair(t, "6")
	a6, b6 := netip.MustParseAddr("fd00:255::1"), netip.MustParseAddr("fd00:255::2")
	for _, side := range []struct {
		ns   *netns.NS
		ifn  string
		addr netip.Addr
	}{{p.A, p.Link.IfA, a6}, {p.B, p.Link.IfB, b6}} {
		if _, err := side.ns.Run("ip", "-6", "addr", "add", side.addr.String()+"/64", "dev", side.ifn, "nodad"); err != nil {
			t.Fatal(err)
		}
	}
	a := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()))
	b := bfd.NewManager(bfd.WithNetNSPath(p.B.Path()))
	t.Cleanup(func() { a.Close(); b.Close() })
	ev, cancel := a.Subscribe()
	defer cancel()
	kAB, kBA := bfd.PeerKey{Local: a6, Peer: b6}, bfd.PeerKey{Local: b6, Peer: a6}
	if err := a.AddPeer(kAB, profile(50, 50, 3)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(kBA, profile(50, 50, 3)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, kAB, bfd.StateUp, 10*time.Second)
	if err := b.Mute(kBA, true); err != nil {
		t.Fatal(err)
	}
	if down := waitEvent(t, ev, kAB, bfd.StateDown, 5*time.Second); down.Diag != bfd.DiagControlDetectionTimeExpired {
		t.Fatalf("diag %s", down.Diag)
	}
}
