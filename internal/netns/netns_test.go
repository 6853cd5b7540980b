package netns_test

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// A lab's namespaces carry its id, talk over their link, and are gone after
// Close.
func TestLabLinkAndClose(t *testing.T) {
	needRoot(t)
	lab := netns.NewLab()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = lab.Close()
		}
	})
	a, b := netnstest.NS(t, lab, "ta"), netnstest.NS(t, lab, "tb")
	if a != "elbta"+lab.ID() || !netns.Exists(a) || !netns.Exists(b) {
		t.Fatalf("namespaces %s, %s (id %s) missing or misnamed", a, b, lab.ID())
	}
	if err := lab.Link(a, "elba"+lab.ID(), []string{"10.255.1.1/30", "fd00:255:1::1/64"},
		b, "elbb"+lab.ID(), []string{"10.255.1.2/30", "fd00:255:1::2/64"}); err != nil {
		t.Fatal(err)
	}
	if up, err := netns.LinkUp(b, "elbb"+lab.ID()); err != nil || !up {
		t.Fatalf("far end up = %v, %v", up, err)
	}
	udpExchange(t, a, b, netip.MustParseAddr("10.255.1.1"), netip.MustParseAddr("10.255.1.2"))
	udpExchange(t, a, b, netip.MustParseAddr("fd00:255:1::1"), netip.MustParseAddr("fd00:255:1::2"))
	if err := lab.Link(a, "x", []string{"not an address"}, b, "y", nil); err == nil {
		t.Error("Link took a malformed address")
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if netns.Exists(a) || netns.Exists(b) {
		t.Fatal("namespaces left after Close")
	}
}

// A Pair's ends reach each other over UDP from sockets opened with Do.
func TestPair(t *testing.T) {
	needRoot(t)
	p, err := netns.NewPair("t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	if len(p.Link.IfA) > 15 || len(p.Link.IfB) > 15 || p.Link.IfA == p.Link.IfB {
		t.Fatalf("interface names %q, %q", p.Link.IfA, p.Link.IfB)
	}
	udpExchange(t, p.A.Name, p.B.Name, p.Link.AddrA.Addr(), p.Link.AddrB.Addr())
	if out, err := p.A.Run("ip", "-br", "addr", "show", p.Link.IfA); err != nil || !strings.Contains(out, p.Link.AddrA.String()) {
		t.Fatalf("Run: %v\n%s", err, out)
	}
}

func TestDeleteMissingIsNoError(t *testing.T) {
	if err := netns.Delete("elbnone" + netns.NewLab().ID()); err != nil {
		t.Fatal(err)
	}
}

// udpExchange sends a datagram from a socket opened in nsA to one listening on
// addrB in nsB, and checks it arrives from addrA.
func udpExchange(t *testing.T, nsA, nsB string, addrA, addrB netip.Addr) {
	t.Helper()
	var srv *net.UDPConn
	if err := netns.Do(nsB, func() (err error) {
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := netns.Do(nsA, func() error {
		c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hi"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hi" || from.AddrPort().Addr().Unmap() != addrA {
		t.Fatalf("%s -> %s: read %q from %v: %v", addrA, addrB, buf[:n], from, err)
	}
}

// LookupNeighbor shows the peer's MAC once traffic resolved it;
// DeleteNeighbor removes the entry (and a missing one is no error).
func TestNeighbor(t *testing.T) {
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	lab := netnstest.Lab(t)
	a, b := netnstest.NS(t, lab, "na"), netnstest.NS(t, lab, "nb")
	if err := lab.Link(a, "na0", []string{"10.255.2.1/24", "fd00:255:2::1/64"}, b, "nb0", []string{"10.255.2.2/24", "fd00:255:2::2/64"}); err != nil {
		t.Fatal(err)
	}
	var bmac net.HardwareAddr
	if err := netns.Do(b, func() error {
		ifi, err := net.InterfaceByName("nb0")
		if err == nil {
			bmac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []netip.Addr{netip.MustParseAddr("10.255.2.2"), netip.MustParseAddr("fd00:255:2::2")} {
		if _, ok, err := netns.LookupNeighbor(a, "na0", peer); err != nil || ok {
			t.Fatalf("entry before any traffic: %v, %v", ok, err)
		}
		if err := netns.Probe(a, peer); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, ok, err := netns.LookupNeighbor(a, "na0", peer)
			if err != nil {
				t.Fatal(err)
			}
			if ok && n.Resolved() {
				if n.MAC.String() != bmac.String() || n.Failed() {
					t.Fatalf("%v resolved to %v (state %#x), want %v", peer, n.MAC, n.State, bmac)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v not resolved: %+v %v", peer, n, ok)
			}
			time.Sleep(time.Millisecond)
		}
		for range 2 {
			if err := netns.DeleteNeighbor(a, "na0", peer); err != nil {
				t.Fatal(err)
			}
		}
		if n, ok, err := netns.LookupNeighbor(a, "na0", peer); err != nil || (ok && n.Resolved()) {
			t.Fatalf("after delete: %+v %v %v", n, ok, err)
		}
	}
}
