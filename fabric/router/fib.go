package router

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FIB programs routes into a forwarding table.
type FIB interface {
	// Replace installs prefix with these next-hops (one or more), replacing any
	// route the FIB programmed for it before.
	Replace(prefix netip.Prefix, nextHops []netip.Addr) error
	// Delete removes the route of prefix; absent routes are no error.
	Delete(prefix netip.Prefix) error
	// Flush removes every route this FIB owns (left over from an earlier run).
	Flush() error
}

// KernelFIB programs the kernel FIB of the calling process's network namespace with
// routes of protocol "bgp" (RTPROT_BGP), multipath when there are several next-hops.
type KernelFIB struct{}

func ipnet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(p netip.Prefix) int {
	if p.Addr().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// Replace implements FIB.
func (KernelFIB) Replace(prefix netip.Prefix, nextHops []netip.Addr) error {
	if len(nextHops) == 0 {
		return KernelFIB{}.Delete(prefix)
	}
	r := &netlink.Route{Dst: ipnet(prefix), Protocol: unix.RTPROT_BGP, Family: family(prefix)}
	if len(nextHops) == 1 {
		r.Gw = nextHops[0].AsSlice()
	} else {
		for _, h := range nextHops {
			r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: h.AsSlice()})
		}
	}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("fib: replace %v via %v: %w", prefix, nextHops, err)
	}
	return nil
}

// Delete implements FIB.
func (KernelFIB) Delete(prefix netip.Prefix) error {
	r := &netlink.Route{Dst: ipnet(prefix), Protocol: unix.RTPROT_BGP, Family: family(prefix)}
	if err := netlink.RouteDel(r); err != nil && err != unix.ESRCH {
		return fmt.Errorf("fib: delete %v: %w", prefix, err)
	}
	return nil
}

// Flush implements FIB.
func (KernelFIB) Flush() error {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Protocol: unix.RTPROT_BGP}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return fmt.Errorf("fib: list: %w", err)
		}
		for i := range routes {
			if err := netlink.RouteDel(&routes[i]); err != nil && err != unix.ESRCH {
				return fmt.Errorf("fib: flush %v: %w", routes[i].Dst, err)
			}
		}
	}
	return nil
}
