package kindconfig

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// The cluster network's default addressing: the fabric's subnet, so the ToRs
// keep the addresses the example manifests peer with (10.0.0.1, 10.0.0.2).
// Docker gives the host's bridge the gateway address and hands nodes
// addresses from the IP range only, so neither can take a ToR's address.
const (
	DefaultNetworkSubnet  = "10.0.0.0/24"
	DefaultNetworkGateway = "10.0.0.254"
	DefaultNetworkIPRange = "10.0.0.128/26"
)

// NetworkPlan is the addressing of the cluster's Docker network.
type NetworkPlan struct {
	Subnet  netip.Prefix
	Gateway netip.Addr   // the host's bridge
	IPRange netip.Prefix // where Docker picks node addresses
}

// ParseNetworkPlan checks a plan: the gateway and the IP range inside the
// subnet, the gateway outside the range. Empty strings take the defaults.
func ParseNetworkPlan(subnet, gateway, ipRange string) (NetworkPlan, error) {
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	var p NetworkPlan
	var err error
	if p.Subnet, err = netip.ParsePrefix(def(subnet, DefaultNetworkSubnet)); err != nil {
		return p, fmt.Errorf("network subnet: %w", err)
	}
	if p.Gateway, err = netip.ParseAddr(def(gateway, DefaultNetworkGateway)); err != nil {
		return p, fmt.Errorf("network gateway: %w", err)
	}
	if p.IPRange, err = netip.ParsePrefix(def(ipRange, DefaultNetworkIPRange)); err != nil {
		return p, fmt.Errorf("network IP range: %w", err)
	}
	p.Subnet, p.IPRange = p.Subnet.Masked(), p.IPRange.Masked()
	switch {
	case !p.Subnet.Addr().Is4():
		return p, fmt.Errorf("network subnet %s: IPv4 only", p.Subnet)
	case !p.Subnet.Contains(p.Gateway):
		return p, fmt.Errorf("network gateway %s: outside the subnet %s", p.Gateway, p.Subnet)
	case p.IPRange.Bits() < p.Subnet.Bits() || !p.Subnet.Contains(p.IPRange.Addr()):
		return p, fmt.Errorf("network IP range %s: outside the subnet %s", p.IPRange, p.Subnet)
	case p.IPRange.Contains(p.Gateway):
		return p, fmt.Errorf("network gateway %s: inside the node IP range %s", p.Gateway, p.IPRange)
	}
	return p, nil
}

// dockerArgs are the `docker network create` flags for the plan.
func (p NetworkPlan) dockerArgs() []string {
	return []string{"--subnet", p.Subnet.String(), "--gateway", p.Gateway.String(), "--ip-range", p.IPRange.String()}
}

// overlappingRoute returns the first route of routes (other than a default
// route) that overlaps subnet: a network there would shadow, or be shadowed
// by, something the host already reaches, and traffic meant for the cluster
// could leave the machine.
func overlappingRoute(subnet netip.Prefix, routes []netip.Prefix) (netip.Prefix, bool) {
	for _, r := range routes {
		if r.Bits() == 0 {
			continue
		}
		if r.Overlaps(subnet) {
			return r, true
		}
	}
	return netip.Prefix{}, false
}

// checkSubnetFree refuses a subnet that overlaps any IPv4 route of the
// current network namespace (every table).
func checkSubnetFree(subnet netip.Prefix) error {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list host routes: %w", err)
	}
	routes := make([]netip.Prefix, 0, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue // default route
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		routes = append(routes, netip.PrefixFrom(a.Unmap(), ones))
	}
	if r, bad := overlappingRoute(subnet, routes); bad {
		return fmt.Errorf("network subnet %s overlaps the host's route to %s: choose another subnet (Options.NetworkSubnet)", subnet, r)
	}
	return nil
}
