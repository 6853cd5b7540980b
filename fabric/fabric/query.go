package fabric

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// Neighbor, BFDSession and Event are the router views returned by the queries.
type (
	Neighbor   = control.Neighbor
	BFDSession = control.BFDSession
	Event      = control.Event
)

// ErrNoRoute is returned when a router has no route for a prefix.
var ErrNoRoute = control.ErrNotFound

// Router returns a control-API client for a ToR. Close it when done.
func (f *Fabric) Router(tor string) (*control.Client, error) {
	p, ok := f.state.Routers[tor]
	if !ok {
		f.refresh()
		if p, ok = f.state.Routers[tor]; !ok {
			return nil, fmt.Errorf("fabric %s: no router %q", f.state.Instance, tor)
		}
	}
	return control.NewClient(p.Socket), nil
}

func (f *Fabric) withRouter(tor string, fn func(c *control.Client) error) error {
	c, err := f.Router(tor)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// Route returns the ECMP set of exactly prefix on a ToR (ErrNoRoute if none).
func (f *Fabric) Route(ctx context.Context, tor string, prefix netip.Prefix) (rib.ECMPSet, error) {
	var s rib.ECMPSet
	err := f.withRouter(tor, func(c *control.Client) (err error) { s, err = c.Route(ctx, prefix); return })
	return s, err
}

// Lookup returns the longest-match ECMP set for an address on a ToR.
func (f *Fabric) Lookup(ctx context.Context, tor string, addr netip.Addr) (rib.ECMPSet, error) {
	var s rib.ECMPSet
	err := f.withRouter(tor, func(c *control.Client) (err error) { s, err = c.Lookup(ctx, addr); return })
	return s, err
}

// RIB returns every ECMP set of a ToR.
func (f *Fabric) RIB(ctx context.Context, tor string) ([]rib.ECMPSet, error) {
	var s []rib.ECMPSet
	err := f.withRouter(tor, func(c *control.Client) (err error) { s, err = c.RIB(ctx); return })
	return s, err
}

// Summary returns the ToR's prefix counts by ECMP width (cheap with many prefixes).
func (f *Fabric) Summary(ctx context.Context, tor string) (rib.Summary, error) {
	var s rib.Summary
	err := f.withRouter(tor, func(c *control.Client) (err error) { s, err = c.Summary(ctx); return })
	return s, err
}

// History returns the ToR's RIB changes with Seq > after (0: all retained).
func (f *Fabric) History(ctx context.Context, tor string, after uint64) ([]rib.Change, error) {
	var h []rib.Change
	err := f.withRouter(tor, func(c *control.Client) (err error) { h, err = c.History(ctx, after); return })
	return h, err
}

// WaitHistory returns the ToR's RIB changes with Seq > after, waiting up to wait
// (at most a minute) for one when there is none yet: a reader follows the RIB
// as it changes without polling.
func (f *Fabric) WaitHistory(ctx context.Context, tor string, after uint64, wait time.Duration) ([]rib.Change, error) {
	var h []rib.Change
	err := f.withRouter(tor, func(c *control.Client) (err error) { h, err = c.WaitHistory(ctx, after, wait); return })
	return h, err
}

// Neighbors returns the ToR's BGP neighbors.
func (f *Fabric) Neighbors(ctx context.Context, tor string) ([]control.Neighbor, error) {
	var n []control.Neighbor
	err := f.withRouter(tor, func(c *control.Client) (err error) { n, err = c.Neighbors(ctx); return })
	return n, err
}

// BFDPeers returns the ToR's BFD sessions.
func (f *Fabric) BFDPeers(ctx context.Context, tor string) ([]control.BFDSession, error) {
	var s []control.BFDSession
	err := f.withRouter(tor, func(c *control.Client) (err error) { s, err = c.BFD(ctx); return })
	return s, err
}

// Events returns the ToR's neighbor events (BGP and BFD state changes) with Seq > after.
func (f *Fabric) Events(ctx context.Context, tor string, after uint64) ([]control.Event, error) {
	var e []control.Event
	err := f.withRouter(tor, func(c *control.Client) (err error) { e, err = c.Events(ctx, after); return })
	return e, err
}

// poll calls check every 10 ms until it returns true, an error, or ctx ends.
func poll(ctx context.Context, check func(context.Context) (bool, error)) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := check(cctx)
		cancel()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// WaitForRoute waits until the ToR's ECMP set for prefix has exactly wantNextHops
// (any order); an empty want waits for the prefix to be gone. It returns the last set
// seen, and on timeout an error that names the last seen next-hops.
func (f *Fabric) WaitForRoute(ctx context.Context, tor string, prefix netip.Prefix, wantNextHops []netip.Addr) (rib.ECMPSet, error) {
	want := sortedAddrs(wantNextHops)
	var last rib.ECMPSet
	var lastErr error
	err := poll(ctx, func(cctx context.Context) (bool, error) {
		last, lastErr = f.Route(cctx, tor, prefix)
		if errors.Is(lastErr, ErrNoRoute) {
			last, lastErr = rib.ECMPSet{Prefix: prefix}, nil
		}
		if lastErr != nil {
			return false, nil // router busy or frozen: keep trying until ctx ends
		}
		return slices.Equal(last.NextHops(), want), nil
	})
	if err != nil {
		return last, fmt.Errorf("tor %s: %v: want next-hops %v, last seen %v (err %v): %w", tor, prefix, want, last.NextHops(), lastErr, err)
	}
	return last, nil
}

// KernelRoute returns the next-hops of the kernel route for prefix in a ToR's
// namespace (what packets follow), sorted; empty when there is none.
func (f *Fabric) KernelRoute(tor string, prefix netip.Prefix) ([]netip.Addr, error) {
	ns := f.NetNS(tor)
	if ns == "" {
		return nil, fmt.Errorf("fabric %s: no router %q", f.state.Instance, tor)
	}
	return netns.RouteNextHops(ns, prefix)
}

// WaitForKernelRoute waits until the kernel route for prefix in the ToR's namespace
// has exactly wantNextHops (empty: no route).
func (f *Fabric) WaitForKernelRoute(ctx context.Context, tor string, prefix netip.Prefix, wantNextHops []netip.Addr) error {
	want := sortedAddrs(wantNextHops)
	var last []netip.Addr
	err := poll(ctx, func(context.Context) (bool, error) {
		var err error
		last, err = f.KernelRoute(tor, prefix)
		return slices.Equal(last, want), err
	})
	if err != nil {
		return fmt.Errorf("tor %s kernel route %v: want %v, last seen %v: %w", tor, prefix, want, last, err)
	}
	return nil
}

// NodeAddrs returns the segment addresses of the named nodes (all nodes when none are
// named), in the order given.
func (f *Fabric) NodeAddrs(nodes ...string) []netip.Addr {
	var out []netip.Addr
	if len(nodes) == 0 {
		for _, n := range f.state.Topology.Nodes {
			out = append(out, n.Address)
		}
		return out
	}
	for _, name := range nodes {
		if n, ok := f.state.Topology.Node(name); ok {
			out = append(out, n.Address)
		}
	}
	return out
}

// FIB returns the routes a ToR's router programmed into its kernel FIB, each with the
// time it was programmed.
func (f *Fabric) FIB(ctx context.Context, tor string) ([]control.FIBRoute, error) {
	var r []control.FIBRoute
	err := f.withRouter(tor, func(c *control.Client) (err error) { r, err = c.FIB(ctx); return })
	return r, err
}

// WaitEstablished waits until the ToR's BGP sessions to the named nodes (all nodes
// when none are named) are established.
func (f *Fabric) WaitEstablished(ctx context.Context, tor string, nodes ...string) error {
	want := f.NodeAddrs(nodes...)
	var last []control.Neighbor
	err := poll(ctx, func(cctx context.Context) (bool, error) {
		ns, err := f.Neighbors(cctx, tor)
		if err != nil {
			return false, nil
		}
		last = ns
		for _, a := range want {
			i := slices.IndexFunc(ns, func(n control.Neighbor) bool { return n.Address == a })
			if i < 0 || ns[i].State != "established" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("tor %s: sessions to %v not established (last %+v): %w", tor, want, last, err)
	}
	return nil
}

// Routes returns the ECMP set of prefix on every ToR, keyed by ToR name; a ToR without
// the prefix maps to an empty set (Prefix set, no paths).
func (f *Fabric) Routes(ctx context.Context, prefix netip.Prefix) (map[string]rib.ECMPSet, error) {
	out := map[string]rib.ECMPSet{}
	for _, r := range f.state.Topology.ToRs {
		s, err := f.Route(ctx, r.Name, prefix)
		if errors.Is(err, ErrNoRoute) {
			s, err = rib.ECMPSet{Prefix: prefix}, nil
		}
		if err != nil {
			return out, fmt.Errorf("tor %s: %w", r.Name, err)
		}
		out[r.Name] = s
	}
	return out, nil
}

// WaitForRouteAll waits until every ToR's ECMP set for prefix is exactly wantNextHops.
func (f *Fabric) WaitForRouteAll(ctx context.Context, prefix netip.Prefix, wantNextHops []netip.Addr) error {
	for _, r := range f.state.Topology.ToRs {
		if _, err := f.WaitForRoute(ctx, r.Name, prefix, wantNextHops); err != nil {
			return err
		}
	}
	return nil
}

// NodeLinkStats returns the counters of a node's segment interface (packets and bytes
// in and out), e.g. to count how much of a flow test reached each node.
func (f *Fabric) NodeLinkStats(node string) (netlink.LinkStatistics, error) {
	ns := f.NetNS(node)
	if ns == "" {
		return netlink.LinkStatistics{}, fmt.Errorf("fabric %s: no node %q", f.state.Instance, node)
	}
	return netns.LinkStats(ns, SegmentInterface)
}

// WaitForBFD waits until the ToR's BFD session towards node is in state ("Up",
// "Down", ...). A BGP session can be up before BFD is: wait for "Up" before injecting a
// failure that BFD is meant to detect.
func (f *Fabric) WaitForBFD(ctx context.Context, tor, node, state string) error {
	want := f.NodeAddrs(node)
	if len(want) != 1 {
		return fmt.Errorf("fabric %s: no node %q", f.state.Instance, node)
	}
	var last string
	err := poll(ctx, func(cctx context.Context) (bool, error) {
		ss, err := f.BFDPeers(cctx, tor)
		if err != nil {
			return false, nil
		}
		for _, s := range ss {
			if s.Peer == want[0] {
				last = s.State
				return s.State == state, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("tor %s: BFD to %s not %s (last %q): %w", tor, node, state, last, err)
	}
	return nil
}
