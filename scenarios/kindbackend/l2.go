package kindbackend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/kindconfig"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// l2Interface is a kind node's interface on the L2 segment: named as the
// lab's nodes name theirs, so one L2Advertisement's interfaces serve both.
const l2Interface = "l2"

var _ backend.L2 = (*Backend)(nil)

// upL2 builds the topology's L2 segment on kind: a second internal Docker
// network, which every node joins with an interface renamed l2, at its lab
// L2 address with the lab's MAC for it, answering ARP for its own address
// only (as in the lab: a Service IP is answered by the speaker alone). The
// fabric puts its L2 client on the network's bridge, which it returns.
func (b *Backend) upL2(ctx context.Context) (string, error) {
	l := b.topo.L2
	gw, err := l2Gateway(b.topo)
	if err != nil {
		return "", fmt.Errorf("kind: l2: %w", err)
	}
	name := kindconfig.L2NetworkName(b.kind.Name())
	if err := kindconfig.RemoveL2Network(ctx, name); err != nil { // a run that ended left it
		return "", fmt.Errorf("kind: l2: %w", err)
	}
	b.l2net = name
	bridge, err := kindconfig.CreateL2Network(ctx, b.kind.Name(), name, l.Subnet, gw)
	if err != nil {
		return "", fmt.Errorf("kind: l2: %w", err)
	}
	for _, n := range b.topo.Nodes {
		if err := b.joinL2(ctx, n); err != nil {
			return "", err
		}
	}
	return bridge, nil
}

// joinL2 gives node n its interface on the L2 network (after deleting one
// an earlier file left: Docker cannot take back an interface it no longer
// finds by its name).
func (b *Backend) joinL2(ctx context.Context, n topology.Node) error {
	k := b.kindName[n.Name]
	addr := b.topo.L2Addr(n)
	dropL2Link(ctx, k)
	if err := kindconfig.ConnectL2(ctx, b.l2net, k, addr); err != nil {
		return fmt.Errorf("kind: l2: %w", err)
	}
	out, err := nodeNetOutput(ctx, k, "ip", "-o", "-4", "addr", "show", "to", addr.String())
	if err != nil {
		return fmt.Errorf("kind: l2: %s: %w", n.Name, err)
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return fmt.Errorf("kind: l2: %s: no interface has %v after joining %s", n.Name, addr, b.l2net)
	}
	dev := f[1]
	for _, args := range [][]string{
		{"ip", "link", "set", "dev", dev, "down"},
		{"ip", "link", "set", "dev", dev, "name", l2Interface},
		{"ip", "link", "set", "dev", l2Interface, "address", topology.L2MAC(addr).String()},
		{"sysctl", "-q", "-w", "net.ipv4.conf." + l2Interface + ".arp_ignore=1"},
		{"sysctl", "-q", "-w", "net.ipv4.conf." + l2Interface + ".arp_announce=2"},
		{"ip", "link", "set", "dev", l2Interface, "up"},
	} {
		if err := nodeNetExec(ctx, k, args...); err != nil {
			return fmt.Errorf("kind: l2: %s: %w", n.Name, err)
		}
	}
	return nil
}

// downL2 removes the L2 network (taking the nodes off it first).
func (b *Backend) downL2(ctx context.Context) error {
	if b.l2watch != nil {
		b.l2watch.Close()
		b.l2watch = nil
	}
	if b.l2net == "" {
		return nil
	}
	// The renamed interface first: Docker's disconnect looks for the name
	// it gave it, and would leave it (and its route) in the node.
	for _, k := range b.kindName {
		dropL2Link(ctx, k)
	}
	err := kindconfig.RemoveL2Network(ctx, b.l2net)
	b.l2net = ""
	return err
}

// dropL2Link deletes kind node k's l2 interface, if it has one (both ends of
// the veth go).
func dropL2Link(ctx context.Context, k string) {
	if out, err := nodeNetOutput(ctx, k, "ip", "-o", "link", "show", "dev", l2Interface); err == nil && out != "" {
		_ = nodeNetExec(ctx, k, "ip", "link", "del", "dev", l2Interface)
	}
}

// l2Gateway is the address Docker gives the host's end of the L2 network:
// the highest host address of the subnet outside the pool and not the
// client's or a node's.
func l2Gateway(topo topology.Topology) (netip.Addr, error) {
	l := topo.L2
	used := map[netip.Addr]bool{l.ClientAddress: true}
	for _, n := range topo.Nodes {
		used[topo.L2Addr(n)] = true
	}
	s := l.Subnet.Masked()
	last := s.Addr()
	for a := s.Addr(); s.Contains(a); a = a.Next() {
		last = a
	}
	for a := last.Prev(); a.IsValid() && a != s.Addr(); a = a.Prev() {
		if !l.Pool.Contains(a) && !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("no free address in the subnet for the host's bridge")
}

// WaitL2Owner implements backend.L2.
func (b *Backend) WaitL2Owner(ctx context.Context, ip netip.Addr, node string, since time.Time, flush bool) (time.Time, error) {
	at, err := backend.L2Observer{Fabric: b.fabric, Watch: b.l2watch}.WaitL2Owner(ctx, ip, node, since, flush)
	if err != nil {
		return at, fmt.Errorf("kind: %w", err)
	}
	return at, nil
}

// DiagnoseL2 implements backend.L2.
func (b *Backend) DiagnoseL2(ip netip.Addr, since time.Time) string {
	return backend.L2Observer{Fabric: b.fabric, Watch: b.l2watch}.DiagnoseL2(ip, since)
}

// L2Flows implements backend.L2: TCP flows from the L2 client to the echo
// pods (each answer names the pod's node, not the node that took the
// packet off the segment: kube-proxy forwards it to any endpoint).
func (b *Backend) L2Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("kind: %s flows: %w (the echo pods answer TCP only; use proto: tcp)", proto, ErrNotOnKind)
	}
	ns := b.fabric.L2ClientNetNS()
	if ns == "" {
		return nil, errors.New("kind: the topology has no l2 segment")
	}
	return b.flowsFrom(ctx, ns, dst, n)
}

// StartL2Stream implements backend.L2.
func (b *Backend) StartL2Stream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("kind: %s stream: %w (the echo pods answer TCP only; use proto: tcp)", proto, ErrNotOnKind)
	}
	ns := b.fabric.L2ClientNetNS()
	if ns == "" {
		return nil, errors.New("kind: the topology has no l2 segment")
	}
	return b.streamFrom(ctx, ns, dst, cfg)
}

var _ backend.L2AnyOwner = (*Backend)(nil)

// WaitL2OwnerOf implements backend.L2AnyOwner.
func (b *Backend) WaitL2OwnerOf(ctx context.Context, ip netip.Addr, nodes []string, since time.Time, flush bool) (string, time.Time, error) {
	node, at, err := backend.L2Observer{Fabric: b.fabric, Watch: b.l2watch}.WaitL2OwnerOf(ctx, ip, nodes, since, flush)
	if err != nil {
		return node, at, fmt.Errorf("kind: %w", err)
	}
	return node, at, nil
}
