package router

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/fabric/control"
)

// watchKernel follows the routes zebra installs in the namespace's kernel FIB
// (protocol bgp, main table). Every notification batch is timestamped when it
// is received and answered by a dump of those routes: the kernel may announce an
// IPv6 multipath route one next-hop at a time, and the dump is the whole truth.
func (r *FRR) watchKernel(ctx context.Context, wg *sync.WaitGroup) error {
	ch, err := r.subscribeRoutes(ctx)
	if err != nil {
		return err
	}
	if err := r.resyncKernel(r.now()); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-ch:
				at := r.now()
				if !ok {
					// The subscription broke (e.g. ENOBUFS): subscribe again
					// and take the whole table, as nothing is known about
					// what was missed.
					for ctx.Err() == nil {
						if ch, err = r.subscribeRoutes(ctx); err == nil {
							break
						}
						r.log.Warn("route subscribe", "err", err)
						time.Sleep(100 * time.Millisecond)
					}
					if ctx.Err() != nil {
						return
					}
					if err := r.resyncKernel(at); err != nil {
						r.log.Warn("kernel routes", "err", err)
					}
					continue
				}
				relevant := ours(u.Route)
			drain:
				for {
					select {
					case u2, ok2 := <-ch:
						if !ok2 {
							break drain
						}
						relevant = relevant || ours(u2.Route)
					default:
						break drain
					}
				}
				if !relevant {
					continue
				}
				if err := r.resyncKernel(at); err != nil {
					r.log.Warn("kernel routes", "err", err)
				}
			}
		}
	}()
	return nil
}

func (r *FRR) subscribeRoutes(ctx context.Context) (chan netlink.RouteUpdate, error) {
	ch := make(chan netlink.RouteUpdate, 4096)
	err := netlink.RouteSubscribeWithOptions(ch, ctx.Done(), netlink.RouteSubscribeOptions{
		ErrorCallback: func(err error) { r.log.Warn("route subscription", "err", err) },
	})
	if err != nil {
		return nil, fmt.Errorf("router %s: route subscribe: %w", r.cfg.Name, err)
	}
	return ch, nil
}

// ours reports whether a route is one zebra installed for bgpd.
func ours(rt netlink.Route) bool {
	return rt.Protocol == unix.RTPROT_BGP && (rt.Table == 0 || rt.Table == unix.RT_TABLE_MAIN) && rt.Dst != nil
}

// kernelRoutes dumps the bgp routes of the main table: prefix to next-hops.
func kernelRoutes() (map[netip.Prefix][]netip.Addr, error) {
	out := map[netip.Prefix][]netip.Addr{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Protocol: unix.RTPROT_BGP}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, rt := range routes {
			if !ours(rt) {
				continue
			}
			p, ok := routePrefix(rt)
			if !ok {
				continue
			}
			out[p] = routeNextHops(rt)
		}
	}
	return out, nil
}

func routePrefix(rt netlink.Route) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(rt.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := rt.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// routeNextHops is a route's sorted distinct gateways.
func routeNextHops(rt netlink.Route) []netip.Addr {
	var hops []netip.Addr
	add := func(ip []byte) {
		if a, ok := netip.AddrFromSlice(ip); ok && !a.IsUnspecified() {
			hops = append(hops, a.Unmap())
		}
	}
	if len(rt.Gw) > 0 {
		add(rt.Gw)
	}
	for _, nh := range rt.MultiPath {
		add(nh.Gw)
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return slices.Compact(hops)
}

// resyncKernel takes the kernel's routes and records every prefix whose
// next-hops changed as changed at at.
func (r *FRR) resyncKernel(at time.Time) error {
	routes, err := kernelRoutes()
	if err != nil {
		return err
	}
	r.kmu.Lock()
	n := 0
	for p, hops := range routes {
		if old, ok := r.kernel[p]; ok && slices.Equal(old.NextHops, hops) {
			continue
		}
		r.kernel[p] = control.FIBRoute{Prefix: p, NextHops: hops, At: at}
		r.kchanges = append(r.kchanges, kernelChange{At: at, Prefix: p, NextHops: hops})
		n++
	}
	for p := range r.kernel {
		if _, ok := routes[p]; !ok {
			delete(r.kernel, p)
			r.kchanges = append(r.kchanges, kernelChange{At: at, Prefix: p})
			n++
		}
	}
	r.kmu.Unlock()
	if n > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// kernelChange is one change of a prefix's kernel routes: its next-hops from
// At on (none: the route went).
type kernelChange struct {
	At       time.Time
	Prefix   netip.Prefix
	NextHops []netip.Addr
}
