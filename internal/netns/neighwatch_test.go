package netns_test

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

// A NeighWatch sees an entry resolved by traffic (IPv4 and IPv6) with the
// peer's MAC, a set MAC (SetLinkMAC) included, and its deletion; entries of
// other interfaces are left out.
func TestNeighWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	lab := netnstest.Lab(t)
	a, b := netnstest.NS(t, lab, "wa"), netnstest.NS(t, lab, "wb")
	if err := lab.Link(a, "wa0", []string{"10.255.3.1/24", "fd00:255:3::1/64"}, b, "wb0", []string{"10.255.3.2/24", "fd00:255:3::2/64"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(a, "wa1", []string{"10.255.4.1/24"}, b, "wb1", []string{"10.255.4.2/24"}); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x02, 0x00, 10, 255, 3, 2}
	if err := netns.SetLinkMAC(b, "wb0", mac); err != nil {
		t.Fatal(err)
	}
	if up, err := netns.LinkUp(b, "wb0"); err != nil || !up {
		t.Fatalf("wb0 up after its MAC = %v, %v", up, err)
	}
	w, err := netns.WatchNeighbors(a, "wa0")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	send := func(to netip.Addr) {
		t.Helper()
		if err := netns.Probe(a, to); err != nil {
			t.Fatal(err)
		}
	}
	send(netip.MustParseAddr("10.255.4.2")) // another interface: not recorded
	for _, peer := range []netip.Addr{netip.MustParseAddr("10.255.3.2"), netip.MustParseAddr("fd00:255:3::2")} {
		start := time.Now()
		send(peer)
		resolved := func(evs []netns.NeighEvent) bool {
			return slices.ContainsFunc(evs, func(e netns.NeighEvent) bool {
				return e.IP == peer && !e.Delete && e.Resolved() && e.MAC.String() == mac.String()
			})
		}
		if err := w.WaitFor(5*time.Second, resolved); err != nil {
			t.Fatal(err)
		}
		if e, ok := w.Latest(peer); !ok || e.At.Before(start) {
			t.Fatalf("latest of %v: %v %v", peer, e, ok)
		}
		if err := netns.DeleteNeighbor(a, "wa0", peer); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitFor(5*time.Second, func(evs []netns.NeighEvent) bool {
			e, ok := w.Latest(peer)
			return ok && e.Delete
		}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.IP == netip.MustParseAddr("10.255.4.2") {
			t.Errorf("recorded another interface's entry: %v", e)
		}
	}
	t.Logf("events: %v", evs)
}
