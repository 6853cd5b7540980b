package netns

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// FIBEvent is one kernel notification about a BGP route (protocol bgp, main
// table: what FRR's zebra installs for bgpd and what the fabric's GoBGP
// router programs), timestamped on receipt.
type FIBEvent struct {
	At       time.Time
	Delete   bool // RTM_DELROUTE; otherwise RTM_NEWROUTE (an add or a replace)
	Prefix   netip.Prefix
	NextHops []netip.Addr
}

func (e FIBEvent) String() string {
	op := "add"
	if e.Delete {
		op = "del"
	}
	return fmt.Sprintf("%s %s %s via %v", e.At.Format("15:04:05.000000"), op, e.Prefix, e.NextHops)
}

// FIBWatch records every change of the BGP kernel routes in one namespace, as
// the kernel reports them: a route removed and added again shows as a delete
// and an add, however close together, which a poller could miss. A broken
// subscription (the socket overran) is recorded as an error, since what was
// missed is unknown. Events, Since, WaitFor and Close are watchLog's.
type FIBWatch struct{ *watchLog[FIBEvent] }

func (e FIBEvent) when() time.Time { return e.At }

// WatchFIB subscribes to the route changes of namespace ns. Changes are
// recorded from the moment it returns; Close ends the subscription.
func WatchFIB(ns string) (*FIBWatch, error) {
	h, err := vnetns.GetFromPath(Path(ns))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer h.Close()
	w := &FIBWatch{newWatchLog[FIBEvent]("FIB")}
	ch := make(chan netlink.RouteUpdate, 4096)
	err = netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
		Namespace:     &h,
		ErrorCallback: func(err error) { w.fail(fmt.Errorf("route subscription in %s: %w", ns, err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: route subscribe: %w", ns, err)
	}
	pump(w.watchLog, ns, ch, func(u netlink.RouteUpdate, at time.Time) (FIBEvent, bool) {
		return fibEvent(u.Route, u.Type == unix.RTM_DELROUTE, at)
	})
	return w, nil
}

// fibEvent describes rt, if it is a BGP route of the main table.
func fibEvent(rt netlink.Route, del bool, at time.Time) (FIBEvent, bool) {
	if rt.Protocol != unix.RTPROT_BGP || (rt.Table != 0 && rt.Table != unix.RT_TABLE_MAIN) || rt.Dst == nil {
		return FIBEvent{}, false
	}
	a, ok := netip.AddrFromSlice(rt.Dst.IP)
	if !ok {
		return FIBEvent{}, false
	}
	ones, _ := rt.Dst.Mask.Size()
	e := FIBEvent{At: at, Delete: del, Prefix: netip.PrefixFrom(a.Unmap(), ones).Masked()}
	add := func(ip []byte) {
		if h, ok := netip.AddrFromSlice(ip); ok && !h.IsUnspecified() {
			e.NextHops = append(e.NextHops, h.Unmap())
		}
	}
	add(rt.Gw)
	for _, nh := range rt.MultiPath {
		add(nh.Gw)
	}
	slices.SortFunc(e.NextHops, netip.Addr.Compare)
	return e, true
}

// FIBRoutes dumps the BGP kernel routes in namespace ns: prefix to sorted
// next-hops.
func FIBRoutes(ns string) (map[netip.Prefix][]netip.Addr, error) {
	out := map[netip.Prefix][]netip.Addr{}
	err := withHandle(ns, func(h *netlink.Handle) error {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: unix.RTPROT_BGP}, netlink.RT_FILTER_PROTOCOL)
			if err != nil {
				return fmt.Errorf("netns %s: list routes: %w", ns, err)
			}
			for _, rt := range routes {
				if e, ok := fibEvent(rt, false, time.Time{}); ok {
					out[e.Prefix] = e.NextHops
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
