package netns_test

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

// TestWatchFIB: a bgp route added, replaced, deleted and added again within
// microseconds shows as four events in order (a poller would see one route
// throughout); a static route is not a BGP route and is left out; FIBRoutes dumps
// what is there.
func TestWatchFIB(t *testing.T) {
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	lab := netnstest.Lab(t)
	a, b := netnstest.NS(t, lab, "a"), netnstest.NS(t, lab, "b")
	if err := lab.Link(a, "elbfa"+lab.ID(), []string{"10.0.0.1/24"}, b, "elbfb"+lab.ID(), []string{"10.0.0.2/24", "10.0.0.3/24"}); err != nil {
		t.Fatal(err)
	}
	w, err := netns.WatchFIB(a)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	nh, err := vnetns.GetFromPath(netns.Path(a))
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dst := &net.IPNet{IP: net.ParseIP("203.0.113.5").To4(), Mask: net.CIDRMask(32, 32)}
	route := func(gw string, proto netlink.RouteProtocol) *netlink.Route {
		return &netlink.Route{Dst: dst, Gw: net.ParseIP(gw), Protocol: proto}
	}
	start := time.Now()
	steps := []func() error{
		func() error { return h.RouteAdd(route("10.0.0.2", unix.RTPROT_BGP)) },
		func() error { return h.RouteReplace(route("10.0.0.3", unix.RTPROT_BGP)) },
		func() error { return h.RouteDel(route("10.0.0.3", unix.RTPROT_BGP)) },
		func() error { return h.RouteAdd(route("10.0.0.2", unix.RTPROT_BGP)) },
		func() error {
			return h.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("203.0.113.6").To4(), Mask: net.CIDRMask(32, 32)},
				Gw: net.ParseIP("10.0.0.2"), Protocol: unix.RTPROT_STATIC})
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WaitFor(5*time.Second, func(evs []netns.FIBEvent) bool { return len(evs) >= 4 }); err != nil {
		t.Fatal(err)
	}
	evs, err := w.Events()
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("203.0.113.5/32")
	hop := func(s string) []netip.Addr { return []netip.Addr{netip.MustParseAddr(s)} }
	want := []netns.FIBEvent{
		{Prefix: p, NextHops: hop("10.0.0.2")},
		{Prefix: p, NextHops: hop("10.0.0.3")},
		{Prefix: p, NextHops: hop("10.0.0.3"), Delete: true},
		{Prefix: p, NextHops: hop("10.0.0.2")},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %v, want %d", evs, len(want))
	}
	for i, e := range evs {
		if e.Prefix != want[i].Prefix || e.Delete != want[i].Delete || !slices.Equal(e.NextHops, want[i].NextHops) || e.At.Before(start) {
			t.Errorf("event %d: %v, want %v (after %v)", i, e, want[i], start.Format("15:04:05.000000"))
		}
	}
	if got := w.Since(evs[2].At); len(got) != 2 || !got[0].Delete {
		t.Errorf("Since(the delete) = %v", got)
	}
	routes, err := netns.FIBRoutes(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || !slices.Equal(routes[p], hop("10.0.0.2")) {
		t.Errorf("FIBRoutes = %v, want %s via 10.0.0.2 only", routes, p)
	}
}
