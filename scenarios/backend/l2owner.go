package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// L2AnyOwner is implemented by backends whose L2 client can wait for any of
// several nodes to answer for an address (expect l2: any, or a list).
type L2AnyOwner interface {
	// WaitL2OwnerOf is L2.WaitL2Owner for any of nodes: it returns the node
	// whose MAC the L2 client's entry for ip holds, and since when.
	WaitL2OwnerOf(ctx context.Context, ip netip.Addr, nodes []string, since time.Time, flush bool) (string, time.Time, error)
}

// L2Exclusive is implemented by backends that can tell whether two nodes
// answered for an address at once (the lab asks who has it, on the L2
// segment, many times a second).
type L2Exclusive interface {
	// L2Exclusive lists what shows two owners of ip since since, one line
	// each: requests answered by two nodes, and the L2 client's entry
	// changing MAC more than once. It fails when ip was not watched over
	// the whole time.
	L2Exclusive(ctx context.Context, ip netip.Addr, since time.Time) ([]string, error)
}

// WaitL2OwnerOf implements L2AnyOwner.WaitL2OwnerOf with the L2 client's
// neighbour watch.
func (o L2Observer) WaitL2OwnerOf(ctx context.Context, ip netip.Addr, nodes []string, since time.Time, flush bool) (string, time.Time, error) {
	w := o.Watch
	if w == nil {
		return "", time.Time{}, fmt.Errorf("the topology has no l2 segment")
	}
	topo := o.Fabric.Topology()
	macs := map[string]string{}
	for _, name := range nodes {
		n, ok := topo.Node(name)
		if !ok {
			return "", time.Time{}, fmt.Errorf("no node %q", name)
		}
		macs[topo.L2NodeMAC(n).String()] = name
	}
	if flush {
		since = time.Now()
		if err := o.Fabric.FlushL2Neighbor(ip); err != nil {
			return "", time.Time{}, err
		}
	}
	for {
		evs, err := w.Events()
		if err != nil {
			return "", time.Time{}, err
		}
		if node, at, ok := L2OwnedBy(evs, ip, macs, since, flush); ok {
			return node, at, nil
		}
		if err := o.Fabric.ProbeL2(ip); err != nil {
			return "", time.Time{}, err
		}
		err = w.WaitFor(L2Probe, func(evs []netns.NeighEvent) bool {
			_, _, ok := L2OwnedBy(evs, ip, macs, since, flush)
			return ok
		})
		if _, werr := w.Events(); werr != nil {
			return "", time.Time{}, werr
		}
		if err != nil && ctx.Err() != nil {
			cur := "no entry"
			if e, ok := w.Latest(ip); ok {
				cur = o.describe(e)
			}
			return "", time.Time{}, fmt.Errorf("the L2 client's entry for %v is not the MAC of any of %s (now: %s): %w", ip, strings.Join(nodes, ", "), cur, ctx.Err())
		}
	}
}

// L2OwnedBy is L2Owned for a set of MACs (MAC → node): the node whose MAC
// the events leave ip resolved to, and since when.
func L2OwnedBy(evs []netns.NeighEvent, ip netip.Addr, macs map[string]string, since time.Time, fresh bool) (string, time.Time, bool) {
	var cur string
	var from time.Time
	for _, e := range evs {
		if e.IP != ip {
			continue
		}
		switch {
		case e.Delete || !e.Resolved():
			cur = ""
		case e.MAC.String() != cur:
			cur, from = e.MAC.String(), e.At
		}
	}
	node, ok := macs[cur]
	if cur == "" || !ok {
		return "", time.Time{}, false
	}
	switch {
	case from.Before(since) && fresh:
		return "", time.Time{}, false
	case from.Before(since):
		return node, since, true
	}
	return node, from, true
}

// L2Flaps lists the changes of the L2 client's entry for ip to another MAC
// at or after since beyond the first: an entry that goes from one node to
// another and on (or back) was told by two nodes. Each line names the
// change and its node.
func (o L2Observer) L2Flaps(ip netip.Addr, since time.Time) ([]string, error) {
	if o.Watch == nil {
		return nil, fmt.Errorf("the topology has no l2 segment")
	}
	evs, err := o.Watch.Events()
	if err != nil {
		return nil, err
	}
	return macFlaps(evs, ip, since, o.Fabric.L2NodeOfMAC), nil
}

// macFlaps is L2Flaps over recorded events.
func macFlaps(evs []netns.NeighEvent, ip netip.Addr, since time.Time, nodeOf func(net.HardwareAddr) string) []string {
	cur := ""
	var changes []string
	for _, e := range evs {
		if e.IP != ip || e.Delete || !e.Resolved() {
			continue
		}
		mac := e.MAC.String()
		if mac == cur {
			continue
		}
		if cur != "" && !e.At.Before(since) {
			name := nodeOf(e.MAC)
			if name == "" {
				name = "no node"
			}
			changes = append(changes, fmt.Sprintf("%s the L2 client's entry for %v changed to %s (%s)", e.At.Format("15:04:05.000000"), ip, mac, name))
		}
		cur = mac
	}
	if len(changes) <= 1 {
		return nil
	}
	return slices.Clip(changes)
}
