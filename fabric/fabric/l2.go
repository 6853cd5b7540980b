package fabric

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// L2Interface is a node's interface on the topology's L2 segment (the
// name a speaker's layer2 responder is told); L2ClientInterface the L2
// client's. The segment's bridge, l2br, sits in the switch namespace next
// to the BGP segment's br0, with nothing between the two.
const (
	L2Interface       = "l2"
	L2ClientInterface = "eth0"
	l2Bridge          = "l2br"
)

// buildL2 creates the L2 segment: its bridge, every node's L2 interface and
// the L2 client's namespace.
func (f *Fabric) buildL2(ctx context.Context) error {
	st, topo := f.state, f.state.Topology
	if topo.L2 == nil {
		return nil
	}
	if st.ExternalNodes {
		return f.buildExternalL2(ctx)
	}
	if st.ExternalSegment != "" {
		return fmt.Errorf("l2: the fabric's own nodes need its own segment for the L2 segment (not an external segment)")
	}
	if err := netns.AddBridge(st.Switch, l2Bridge); err != nil {
		return err
	}
	for _, n := range topo.Nodes {
		if err := f.attachL2(n); err != nil {
			return err
		}
	}
	l := topo.L2
	ns := st.NetNS[l.Client]
	if err := netns.Create(ctx, ns); err != nil {
		return err
	}
	return f.l2Link(ns, L2ClientInterface, "lc", l.ClientAddress, l.ClientAddress6)
}

// l2ClientHostLink is the index in HostLinkName of the L2 client's host end
// on an ExternalL2 (the ToRs' are their indexes).
const l2ClientHostLink = 99

// buildExternalL2 links the L2 client to the caller's bridge ExternalL2,
// where the caller's nodes are. The host end is recorded before it exists,
// so Down removes it after a failure half-way.
func (f *Fabric) buildExternalL2(ctx context.Context) error {
	st, l := f.state, f.state.Topology.L2
	if st.ExternalL2 == "" {
		return fmt.Errorf("l2: external nodes need an external L2 segment (Options.ExternalL2)")
	}
	ns := st.NetNS[l.Client]
	if err := netns.Create(ctx, ns); err != nil {
		return err
	}
	hostLink := HostLinkName(st.Instance, l2ClientHostLink)
	if err := f.update(func(s *State) {
		if !slices.Contains(s.HostLinks, hostLink) {
			s.HostLinks = append(s.HostLinks, hostLink)
		}
	}); err != nil {
		return err
	}
	if err := netns.AddHostVeth(ns, L2ClientInterface, hostLink, st.ExternalL2); err != nil {
		return err
	}
	if err := netns.SetLinkMAC(ns, L2ClientInterface, topology.L2MAC(l.ClientAddress)); err != nil {
		return err
	}
	return f.l2Addresses(ns, L2ClientInterface, l.ClientAddress, l.ClientAddress6, l)
}

// attachL2 gives a node its interface on the L2 segment. The node answers
// ARP on it for its own L2 address only (arp_ignore=1) and sends ARP from
// that address (arp_announce=2): a Service IP the lab puts on the node's lo
// for its data plane must be answered by the speaker's responder alone, on
// the one node that owns it, and never leak into the client's neighbour
// table as the source of an ARP request.
func (f *Fabric) attachL2(n topology.Node) error {
	topo := f.state.Topology
	ns := f.state.NetNS[n.Name]
	port := portName("l", topo.L2.Subnet, topo.L2Addr(n))
	if err := f.l2Link(ns, L2Interface, port, topo.L2Addr(n), topo.L2Addr6(n)); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"net/ipv4/conf/" + L2Interface + "/arp_ignore", "1"},
		{"net/ipv4/conf/" + L2Interface + "/arp_announce", "2"},
	} {
		if err := netns.Sysctl(ns, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// l2Link links namespace ns to the L2 bridge as ifName (bridge port port)
// with the fixed MAC of addr, and gives it addr and addr6 (when valid).
func (f *Fabric) l2Link(ns, ifName, port string, addr, addr6 netip.Addr) error {
	l := f.state.Topology.L2
	if err := netns.AddVeth(ns, ifName, f.state.Switch, port); err != nil {
		return err
	}
	if err := netns.AttachToBridge(f.state.Switch, port, l2Bridge); err != nil {
		return err
	}
	if err := netns.SetLinkMAC(ns, ifName, topology.L2MAC(addr)); err != nil {
		return err
	}
	return f.l2Addresses(ns, ifName, addr, addr6, l)
}

func (f *Fabric) l2Addresses(ns, ifName string, addr, addr6 netip.Addr, l *topology.L2) error {
	if err := netns.AddAddress(ns, ifName, netip.PrefixFrom(addr, l.Subnet.Bits())); err != nil {
		return err
	}
	if addr6.IsValid() {
		return netns.AddAddress(ns, ifName, netip.PrefixFrom(addr6, l.Subnet6.Bits()))
	}
	return nil
}

// restoreL2Link gives a node's L2 interface back what the kernel took when
// it went down: its IPv6 address (the IPv4 one and the subnet's routes come
// back with the link).
func (f *Fabric) restoreL2Link(node, ns string) error {
	topo := f.state.Topology
	n, ok := topo.Node(node)
	if !ok || topo.L2 == nil {
		return nil
	}
	return f.l2Addresses(ns, L2Interface, topo.L2Addr(n), topo.L2Addr6(n), topo.L2)
}

// L2Client is the name of the client on the L2 segment ("" without one).
func (f *Fabric) L2Client() string {
	if l := f.state.Topology.L2; l != nil {
		return l.Client
	}
	return ""
}

// L2ClientNetNS is the L2 client's namespace ("" without an L2 segment).
func (f *Fabric) L2ClientNetNS() string { return f.NetNS(f.L2Client()) }

// L2Neighbor reads the L2 client's neighbour entry for ip: the entry
// (netns.Neighbor: MAC and NUD state), the node whose L2 MAC it holds (""
// for none or another), and ok false when there is no entry.
func (f *Fabric) L2Neighbor(ip netip.Addr) (n netns.Neighbor, node string, ok bool, err error) {
	ns, err := f.l2ClientNS()
	if err != nil {
		return netns.Neighbor{}, "", false, err
	}
	n, ok, err = netns.LookupNeighbor(ns, L2ClientInterface, ip)
	if ok && n.Resolved() {
		node, _ = f.state.Topology.L2NodeOfMAC(n.MAC)
	}
	return n, node, ok, err
}

// L2NodeOfMAC names the node whose L2 interface has mac ("" for none).
func (f *Fabric) L2NodeOfMAC(mac net.HardwareAddr) string {
	name, _ := f.state.Topology.L2NodeOfMAC(mac)
	return name
}

// FlushL2Neighbor removes the L2 client's neighbour entry for ip, so its
// next packet to ip resolves it afresh (a missing entry is no error).
func (f *Fabric) FlushL2Neighbor(ip netip.Addr) error {
	ns, err := f.l2ClientNS()
	if err != nil {
		return err
	}
	return netns.DeleteNeighbor(ns, L2ClientInterface, ip)
}

// WatchL2Neighbors subscribes to the L2 client's neighbour entries (see
// netns.NeighWatch; L2NodeOfMAC names an event's node). Close it.
func (f *Fabric) WatchL2Neighbors() (*netns.NeighWatch, error) {
	ns, err := f.l2ClientNS()
	if err != nil {
		return nil, err
	}
	return netns.WatchNeighbors(ns, L2ClientInterface)
}

// ProbeL2 sends one UDP datagram (port 9, discard) from the L2 client to
// ip, as a client with traffic for ip would: the kernel resolves ip, or
// re-validates a stale entry.
func (f *Fabric) ProbeL2(ip netip.Addr) error {
	ns, err := f.l2ClientNS()
	if err != nil {
		return err
	}
	return netns.Probe(ns, ip)
}

func (f *Fabric) l2ClientNS() (string, error) {
	if ns := f.L2ClientNetNS(); ns != "" {
		return ns, nil
	}
	return "", fmt.Errorf("fabric %s: the topology has no l2 segment", f.state.Instance)
}
