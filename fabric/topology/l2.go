package topology

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// L2 is an optional second shared segment for MetalLB's layer2 mode: one
// node per Service IP answers ARP (NDP) for it there, and clients on the
// segment send that node the Service's traffic. Every node gets a second
// interface on it (L2Interface), with an address and a MAC derived from its
// segment address, and one client namespace sits on it to resolve and reach
// the Service IPs. Nothing is routed between it and the BGP segment.
type L2 struct {
	// Subnet is the segment's IPv4 subnet, e.g. 192.168.50.0/24.
	Subnet netip.Prefix `json:"subnet"`
	// Subnet6 optionally makes it dual stack, e.g. fd00:50::/64.
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
	// Client names the client namespace on the segment (default "l2client").
	Client string `json:"client,omitempty"`
	// ClientAddress is the client's address (default: the subnet's first
	// host); ClientAddress6 the same in Subnet6.
	ClientAddress  netip.Addr `json:"clientAddress,omitzero"`
	ClientAddress6 netip.Addr `json:"clientAddress6,omitzero"`
	// Pool is the part of Subnet for Service IPs, given to no node and no
	// client (default: the subnet's upper half, 192.168.50.128/25 for a
	// /24); Pool6 the same in Subnet6 (default <Subnet6>::1000/116).
	Pool  netip.Prefix `json:"pool,omitzero"`
	Pool6 netip.Prefix `json:"pool6,omitzero"`
}

// DefaultL2Client is the L2 client's name when the topology leaves it out.
const DefaultL2Client = "l2client"

// setDefaults fills the client's name and addresses and the pools.
func (l *L2) setDefaults() {
	if l.Client == "" {
		l.Client = DefaultL2Client
	}
	if l.Subnet.IsValid() && l.Subnet.Addr().Is4() {
		s := l.Subnet.Masked()
		if !l.ClientAddress.IsValid() {
			l.ClientAddress = s.Addr().Next()
		}
		if !l.Pool.IsValid() && s.Bits() < 32 {
			b := s.Addr().As4()
			v := binary.BigEndian.Uint32(b[:]) | 1<<(31-s.Bits())
			binary.BigEndian.PutUint32(b[:], v)
			l.Pool = netip.PrefixFrom(netip.AddrFrom4(b), s.Bits()+1)
		}
	}
	if l.Subnet6.IsValid() && l.Subnet6.Addr().Is6() {
		s := l.Subnet6.Masked()
		if !l.ClientAddress6.IsValid() {
			l.ClientAddress6 = s.Addr().Next()
		}
		if !l.Pool6.IsValid() && s.Bits() <= 116 {
			l.Pool6 = netip.PrefixFrom(add6(s.Addr(), 0x1000), 116)
		}
	}
}

// add6 adds n to the low 64 bits of a.
func add6(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+n)
	return netip.AddrFrom16(b)
}

// hostPart is a's offset in prefix p (IPv4).
func hostPart(p netip.Prefix, a netip.Addr) uint32 {
	x, base := a.As4(), p.Masked().Addr().As4()
	return binary.BigEndian.Uint32(x[:]) - binary.BigEndian.Uint32(base[:])
}

// L2Addr is a node's address on the L2 segment: its segment address's host
// part in the L2 subnet (10.0.0.21 on 10.0.0.0/24: 192.168.50.21 on
// 192.168.50.0/24), or Node.L2Address. Invalid without an L2 segment.
func (t Topology) L2Addr(n Node) netip.Addr {
	if t.L2 != nil && n.L2Address.IsValid() {
		return n.L2Address
	}
	if t.L2 == nil || !t.L2.Subnet.IsValid() || !n.Address.Is4() || !t.Segment.IsValid() {
		return netip.Addr{}
	}
	b := t.L2.Subnet.Masked().Addr().As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+hostPart(t.Segment, n.Address))
	return netip.AddrFrom4(b)
}

// L2Addr6 is a node's IPv6 address on the L2 segment: the host part of its
// segment address written with the same digits (21: <Subnet6>::21), as the
// dual-stack segment does. Invalid without Subnet6.
func (t Topology) L2Addr6(n Node) netip.Addr {
	if t.L2 == nil || !t.L2.Subnet6.IsValid() || !n.Address.Is4() || !t.Segment.IsValid() {
		return netip.Addr{}
	}
	digits, err := strconv.ParseUint(strconv.FormatUint(uint64(hostPart(t.Segment, n.Address)), 10), 16, 64)
	if err != nil {
		return netip.Addr{}
	}
	return add6(t.L2.Subnet6.Masked().Addr(), digits)
}

// L2MAC is the fixed MAC of an interface on the L2 segment with IPv4
// address a: locally administered, 02:00 and the address's four bytes
// (192.168.50.21: 02:00:c0:a8:32:15), so a MAC in a neighbour table names
// its node (L2NodeOfMAC).
func L2MAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x00, b[0], b[1], b[2], b[3]}
}

// L2NodeMAC is the MAC of a node's L2 interface (nil without an L2 segment).
func (t Topology) L2NodeMAC(n Node) net.HardwareAddr {
	a := t.L2Addr(n)
	if !a.IsValid() {
		return nil
	}
	return L2MAC(a)
}

// L2NodeOfMAC names the node whose L2 interface has mac.
func (t Topology) L2NodeOfMAC(mac net.HardwareAddr) (string, bool) {
	for _, n := range t.Nodes {
		if m := t.L2NodeMAC(n); m != nil && m.String() == mac.String() {
			return n.Name, true
		}
	}
	return "", false
}

// validate checks the L2 segment against the rest of the topology; names
// holds the names of its ToRs, nodes and clients.
func (l L2) validate(t Topology, names map[string]bool) []error {
	var errs []error
	errf := func(format string, args ...any) { errs = append(errs, fmt.Errorf("l2."+format, args...)) }
	if !l.Subnet.IsValid() || !l.Subnet.Addr().Is4() || l.Subnet.Bits() > 29 {
		return []error{fmt.Errorf("l2.subnet: %q must be an IPv4 prefix of /29 or shorter", l.Subnet)}
	}
	if l.Subnet.Overlaps(t.Segment) {
		errf("subnet: %v overlaps segment %v", l.Subnet, t.Segment)
	}
	for _, c := range t.Clients {
		if l.Subnet.Overlaps(c.Link) {
			errf("subnet: %v overlaps client %q's link %v", l.Subnet, c.Name, c.Link)
		}
	}
	if names[l.Client] {
		errf("client: %q is used twice (names are unique among ToRs, nodes and clients)", l.Client)
	} else if len(l.Client) > 12 || strings.Trim(l.Client, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		errf("client: %q must be 1-12 of a-z, 0-9 and -", l.Client)
	}
	subnet := l.Subnet.Masked()
	last := lastAddr(subnet)
	host := func(a netip.Addr) bool { return subnet.Contains(a) && a != subnet.Addr() && a != last }
	if !l.Pool.IsValid() || !l.Pool.Addr().Is4() || !subnet.Contains(l.Pool.Addr()) || l.Pool.Bits() < subnet.Bits() {
		errf("pool: %q must be an IPv4 prefix inside subnet %v", l.Pool, subnet)
	}
	if !host(l.ClientAddress) {
		errf("clientAddress: %v is not a host address of subnet %v", l.ClientAddress, subnet)
	} else if l.Pool.Contains(l.ClientAddress) {
		errf("clientAddress: %v is inside pool %v (the pool is for Service IPs)", l.ClientAddress, l.Pool)
	}
	used := map[netip.Addr]string{l.ClientAddress: l.Client}
	for _, n := range t.Nodes {
		a := t.L2Addr(n)
		switch {
		case !host(a):
			errf("subnet: node %q's L2 address %v (its segment address's host part) is not a host address of %v", n.Name, a, subnet)
		case l.Pool.Contains(a):
			errf("pool: %v holds node %q's L2 address %v (its segment address's host part)", l.Pool, n.Name, a)
		case used[a] != "":
			errf("subnet: node %q's L2 address %v is already used by %q", n.Name, a, used[a])
		}
		used[a] = n.Name
	}
	if !l.Subnet6.IsValid() {
		if l.ClientAddress6.IsValid() || l.Pool6.IsValid() {
			errf("subnet6: missing (clientAddress6 or pool6 is set)")
		}
		return errs
	}
	if !l.Subnet6.Addr().Is6() || l.Subnet6.Addr().Is4In6() || l.Subnet6.Bits() > 116 {
		return append(errs, fmt.Errorf("l2.subnet6: %q must be an IPv6 prefix of /116 or shorter", l.Subnet6))
	}
	if t.Segment6.IsValid() && l.Subnet6.Overlaps(t.Segment6) {
		errf("subnet6: %v overlaps segment6 %v", l.Subnet6, t.Segment6)
	}
	s6 := l.Subnet6.Masked()
	if !l.Pool6.IsValid() || !s6.Contains(l.Pool6.Addr()) || l.Pool6.Bits() < s6.Bits() {
		errf("pool6: %q must be an IPv6 prefix inside subnet6 %v", l.Pool6, s6)
	}
	if !s6.Contains(l.ClientAddress6) || l.ClientAddress6 == s6.Addr() {
		errf("clientAddress6: %v is not a host address of subnet6 %v", l.ClientAddress6, s6)
	} else if l.Pool6.Contains(l.ClientAddress6) {
		errf("clientAddress6: %v is inside pool6 %v", l.ClientAddress6, l.Pool6)
	}
	for _, n := range t.Nodes {
		if a := t.L2Addr6(n); !a.IsValid() || l.Pool6.Contains(a) || a == l.ClientAddress6 {
			errf("subnet6: node %q's L2 address6 %v is invalid, in pool6 %v or the client's", n.Name, a, l.Pool6)
		}
	}
	return errs
}

// lastAddr is the last address of an IPv4 prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
