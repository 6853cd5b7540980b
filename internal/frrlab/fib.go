package frrlab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// FIBEvent is one kernel notification about a route zebra installed for bgpd
// (protocol bgp, main table), timestamped on receipt.
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

// FIBWatch records every change of bgpd's kernel routes in one namespace, as
// the kernel reports them: a route removed and added again shows as a delete
// and an add, however close together, which a poller could miss. A broken
// subscription (the socket overran) is recorded as an error, since what was
// missed is unknown.
type FIBWatch struct {
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	events []FIBEvent
	err    error
	kick   chan struct{}
}

// WatchFIB subscribes to the route changes of namespace ns. Changes are
// recorded from the moment it returns; Close ends the subscription.
func WatchFIB(ns string) (*FIBWatch, error) {
	h, err := vnetns.GetFromPath(netns.Path(ns))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer h.Close()
	w := &FIBWatch{done: make(chan struct{}), kick: make(chan struct{}, 1)}
	ch := make(chan netlink.RouteUpdate, 4096)
	err = netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
		Namespace:     &h,
		ErrorCallback: func(err error) { w.fail(fmt.Errorf("route subscription in %s: %w", ns, err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: route subscribe: %w", ns, err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.done:
				return
			case u, ok := <-ch:
				if !ok {
					select {
					case <-w.done:
					default:
						w.fail(fmt.Errorf("route subscription in %s ended", ns))
					}
					return
				}
				w.record(u, time.Now())
			}
		}
	}()
	return w, nil
}

func (w *FIBWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = errors.Join(w.err, err)
}

func (w *FIBWatch) record(u netlink.RouteUpdate, at time.Time) {
	e, ok := fibEvent(u.Route, u.Type == unix.RTM_DELROUTE, at)
	if !ok {
		return
	}
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// fibEvent describes rt, if zebra installed it for bgpd in the main table.
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

// Events returns what was recorded so far, oldest first, and the
// subscription's error (nil while every notification arrived).
func (w *FIBWatch) Events() ([]FIBEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events), w.err
}

// Since returns the events recorded at or after t.
func (w *FIBWatch) Since(t time.Time) []FIBEvent {
	evs, _ := w.Events()
	i := 0
	for i < len(evs) && evs[i].At.Before(t) {
		i++
	}
	return evs[i:]
}

// WaitFor waits until cond holds on the events recorded so far, or fails after
// timeout. cond is checked at once and after each new event.
func (w *FIBWatch) WaitFor(timeout time.Duration, cond func([]FIBEvent) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		evs, err := w.Events()
		if err != nil {
			return err
		}
		if cond(evs) {
			return nil
		}
		select {
		case <-w.kick:
		case <-deadline.C:
			return fmt.Errorf("FIB condition not met within %v; events: %v", timeout, evs)
		}
	}
}

// Close ends the subscription and waits for its goroutine.
func (w *FIBWatch) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

// FIBRoutes dumps bgpd's kernel routes in namespace ns: prefix to sorted
// next-hops.
func FIBRoutes(ns string) (map[netip.Prefix][]netip.Addr, error) {
	out := map[netip.Prefix][]netip.Addr{}
	nh, err := vnetns.GetFromPath(netns.Path(ns))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", ns, err)
	}
	defer h.Close()
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: unix.RTPROT_BGP}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("netns %s: list routes: %w", ns, err)
		}
		for _, rt := range routes {
			if e, ok := fibEvent(rt, false, time.Time{}); ok {
				out[e.Prefix] = e.NextHops
			}
		}
	}
	return out, nil
}
