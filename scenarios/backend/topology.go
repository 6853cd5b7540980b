package backend

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Topology is the fabric a backend runs: ToRs, nodes, clients, the BGP
// timers of the ToRs and which ToR runs BFD with which node at what rate.
// Specs take ToR roles from here (Roles, BFDToRs, PlainToRs, DetectTime,
// HoldTimeOf), never from names or timers written in code.
type Topology struct {
	topology.Topology
}

// ToRNames lists the ToRs in topology order.
func (t Topology) ToRNames() []string {
	out := make([]string, 0, len(t.ToRs))
	for _, r := range t.ToRs {
		out = append(out, r.Name)
	}
	return out
}

// NodeNames lists the nodes in topology order.
func (t Topology) NodeNames() []string {
	out := make([]string, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Addrs returns the segment addresses of the named nodes, sorted (every
// node when none is named). Unknown names are left out.
func (t Topology) Addrs(nodes ...string) []netip.Addr {
	if len(nodes) == 0 {
		nodes = t.NodeNames()
	}
	var out []netip.Addr
	for _, name := range nodes {
		if n, ok := t.Node(name); ok {
			out = append(out, n.Address)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// NextHops returns the addresses the named nodes give as next-hop of a
// route to dst: their IPv6 segment addresses for an IPv6 route, their IPv4
// ones otherwise; sorted, unknown names and nodes without such an address
// left out.
func (t Topology) NextHops(dst netip.Addr, nodes ...string) []netip.Addr {
	if !dst.Is6() {
		return t.Addrs(nodes...)
	}
	var out []netip.Addr
	for _, name := range nodes {
		if n, ok := t.Node(name); ok && n.Address6.IsValid() {
			out = append(out, n.Address6)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// NodeOf names the node (or ToR) that owns a segment address; the address
// itself when none does.
func (t Topology) NodeOf(a netip.Addr) string {
	for _, n := range t.Nodes {
		if n.Address == a || n.Address6 == a {
			return n.Name
		}
	}
	for _, r := range t.ToRs {
		if r.Address == a || r.Address6 == a {
			return r.Name
		}
	}
	return a.String()
}

// RunsBFD reports whether tor runs BFD with node.
func (t Topology) RunsBFD(tor, node string) bool {
	n, ok := t.Node(node)
	return ok && n.BFDWith(tor)
}

// BFDToRs lists the ToRs that run BFD with node.
func (t Topology) BFDToRs(node string) []string {
	var out []string
	for _, r := range t.ToRNames() {
		if t.RunsBFD(r, node) {
			out = append(out, r)
		}
	}
	return out
}

// PlainToRs lists the ToRs that run no BFD with node: only the BGP hold
// timer notices its failure.
func (t Topology) PlainToRs(node string) []string {
	var out []string
	for _, r := range t.ToRNames() {
		if !t.RunsBFD(r, node) {
			out = append(out, r)
		}
	}
	return out
}

// DetectTime is BFD's detection time between tor and node (the larger
// interval times the multiplier), 0 without BFD.
func (t Topology) DetectTime(tor, node string) time.Duration {
	n, ok := t.Node(node)
	if !ok || !n.BFDWith(tor) {
		return 0
	}
	p := t.BFDProfiles[n.BFDProfile]
	iv := max(p.ReceiveInterval, p.TransmitInterval)
	return time.Duration(iv*p.DetectMultiplier) * time.Millisecond
}

// HoldTime is the topology's BGP hold time: what a ToR without its own bgp
// timers offers (a session's hold time is the smaller of both sides' offers).
// A ToR's own: HoldTimeOf.
func (t Topology) HoldTime() time.Duration { return t.BGP.HoldTime.Std() }

// KeepaliveInterval is the topology's keepalive interval (a ToR's own:
// KeepaliveOf).
func (t Topology) KeepaliveInterval() time.Duration { return t.BGP.KeepaliveInterval.Std() }

// HoldTimeOf is the BGP hold time ToR tor offers: its own bgp timers, or the
// topology's.
func (t Topology) HoldTimeOf(tor string) time.Duration { return t.Timers(tor).HoldTime.Std() }

// KeepaliveOf is ToR tor's keepalive interval.
func (t Topology) KeepaliveOf(tor string) time.Duration {
	return t.Timers(tor).KeepaliveInterval.Std()
}

// ToRRole is what one ToR does in the topology, for specs that iterate over
// ToRs instead of naming them.
type ToRRole struct {
	// Name is the ToR's name.
	Name string
	// Flavour is the router implementation: topology.FlavourGoBGP or
	// topology.FlavourFRR.
	Flavour string
	// HoldTime and KeepaliveInterval are the BGP timers the ToR offers.
	HoldTime          time.Duration
	KeepaliveInterval time.Duration
	// BFDNodes are the nodes the ToR runs BFD with (topology order).
	BFDNodes []string
}

// RunsBFD reports whether the ToR runs BFD with node.
func (r ToRRole) RunsBFD(node string) bool { return slices.Contains(r.BFDNodes, node) }

// Role returns ToR tor's role.
func (t Topology) Role(tor string) (ToRRole, bool) {
	if _, ok := t.ToR(tor); !ok {
		return ToRRole{}, false
	}
	tr, _ := t.ToR(tor)
	r := ToRRole{Name: tor, Flavour: tr.RouterFlavour(), HoldTime: t.HoldTimeOf(tor), KeepaliveInterval: t.KeepaliveOf(tor)}
	for _, n := range t.NodeNames() {
		if t.RunsBFD(tor, n) {
			r.BFDNodes = append(r.BFDNodes, n)
		}
	}
	return r, true
}

// FlavourOf is ToR tor's router implementation ("" for an unknown ToR).
func (t Topology) FlavourOf(tor string) string {
	if r, ok := t.ToR(tor); ok {
		return r.RouterFlavour()
	}
	return ""
}

// Roles lists every ToR's role in topology order.
func (t Topology) Roles() []ToRRole {
	out := make([]ToRRole, 0, len(t.ToRs))
	for _, name := range t.ToRNames() {
		r, _ := t.Role(name)
		out = append(out, r)
	}
	return out
}

// ClientNames lists the clients.
func (t Topology) ClientNames() []string {
	out := make([]string, 0, len(t.Clients))
	for _, c := range t.Clients {
		out = append(out, c.Name)
	}
	return out
}
