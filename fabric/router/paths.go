package router

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/ecmplb/ecmplb/fabric/rib"
)

// eventPath converts one GoBGP API path (IPv4/IPv6 unicast) into a rib.EventPath.
func eventPath(p *api.Path) (rib.EventPath, error) {
	var nlri api.IPAddressPrefix
	if err := p.GetNlri().UnmarshalTo(&nlri); err != nil {
		return rib.EventPath{}, fmt.Errorf("nlri: %w", err)
	}
	addr, err := netip.ParseAddr(nlri.Prefix)
	if err != nil {
		return rib.EventPath{}, fmt.Errorf("nlri prefix %q: %w", nlri.Prefix, err)
	}
	prefix, err := addr.Prefix(int(nlri.PrefixLen))
	if err != nil {
		return rib.EventPath{}, fmt.Errorf("nlri %s/%d: %w", nlri.Prefix, nlri.PrefixLen, err)
	}
	ep := rib.EventPath{Prefix: prefix, Withdraw: p.GetIsWithdraw()}
	ep.Path.PeerASN = p.GetSourceAsn()
	if a, err := netip.ParseAddr(p.GetNeighborIp()); err == nil && !a.IsUnspecified() {
		ep.Path.Peer = a
	}
	for _, any := range p.GetPattrs() {
		m, err := any.UnmarshalNew()
		if err != nil {
			continue
		}
		switch a := m.(type) {
		case *api.NextHopAttribute:
			ep.Path.NextHop, _ = netip.ParseAddr(a.NextHop)
		case *api.MpReachNLRIAttribute:
			if len(a.NextHops) > 0 && !ep.Path.NextHop.IsValid() {
				ep.Path.NextHop, _ = netip.ParseAddr(a.NextHops[0])
			}
		case *api.AsPathAttribute:
			for _, seg := range a.Segments {
				ep.Path.ASPath = append(ep.Path.ASPath, seg.Numbers...)
			}
		case *api.CommunitiesAttribute:
			for _, c := range a.Communities {
				ep.Path.Communities = append(ep.Path.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		case *api.LargeCommunitiesAttribute:
			for _, c := range a.Communities {
				ep.Path.LargeCommunities = append(ep.Path.LargeCommunities, fmt.Sprintf("%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2))
			}
		case *api.LocalPrefAttribute:
			ep.Path.LocalPref = a.LocalPref
		case *api.MultiExitDiscAttribute:
			ep.Path.MED = a.Med
		}
	}
	if !ep.Path.NextHop.IsValid() && !ep.Withdraw {
		return rib.EventPath{}, fmt.Errorf("path %v from %v has no next-hop", prefix, ep.Path.Peer)
	}
	return ep, nil
}
