package announce

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// NotAnnouncedReason explains why a Service has no routes from this node; "" when it
// has some.
func (p *Plan) NotAnnouncedReason(svc Service) string {
	switch {
	case !p.eligible:
		return p.ineligible
	case len(svc.IPs) == 0:
		return "no allocated IP"
	case svc.Local && !svc.LocalEndpoint:
		return "externalTrafficPolicy Local and no ready endpoint on this node"
	case !svc.Local && !svc.AnyEndpoint:
		return "no ready endpoint"
	}
	return ""
}

// Routes returns the routes this node announces for svc, sorted by peer then prefix.
// An error (conflicting local-prefs for one prefix towards one peer) means the caller
// must keep what it announced before for this Service.
func (p *Plan) Routes(svc Service) ([]Route, error) {
	if p.NotAnnouncedReason(svc) != "" {
		return nil, nil
	}
	type key struct {
		peer   int
		prefix netip.Prefix
	}
	merged := map[key]*Route{}
	var errs []error
	for _, ip := range svc.IPs {
		ip = ip.Unmap()
		pool := p.poolIndex(ip)
		if pool < 0 {
			continue
		}
		for i := range p.ads {
			ad := &p.ads[i]
			if !ad.pools[pool] || !matchSelectors(ad.services, svc.Labels) {
				continue
			}
			bits := ad.aggV4
			if ip.Is6() {
				bits = ad.aggV6
			}
			pfx := netip.PrefixFrom(ip, bits).Masked()
			for _, s := range ad.peers {
				sess := &p.sessions[s]
				if !sess.Carries(ip) {
					continue
				}
				k := key{s, pfx}
				r := merged[k]
				if r == nil {
					r = &Route{Peer: sess.Name, Prefix: pfx}
					merged[k] = r
				}
				r.Communities = unionCommunities(r.Communities, ad.communities)
				if ad.localPref == 0 || !sess.IBGP() {
					continue
				}
				if r.LocalPref != 0 && r.LocalPref != ad.localPref {
					errs = append(errs, fmt.Errorf("service %s: prefix %s towards BGPPeer %q: localPref %d (BGPAdvertisement %q) conflicts with %d",
						svc.Key, pfx, sess.Name, ad.localPref, ad.name, r.LocalPref))
					continue
				}
				r.LocalPref = ad.localPref
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make([]Route, 0, len(merged))
	for _, r := range merged {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Prefix.Addr().Less(out[j].Prefix.Addr()) ||
			(out[i].Prefix.Addr() == out[j].Prefix.Addr() && out[i].Prefix.Bits() < out[j].Prefix.Bits())
	})
	return out, nil
}

func unionCommunities(have, add []Community) []Community {
	if len(add) == 0 {
		return have
	}
	if len(have) == 0 {
		// add is sorted and without duplicates (compileAd): every route of
		// the advertisement shares it (Clip: an append by a holder copies).
		return slices.Clip(add)
	}
	out := append([]Community(nil), have...)
	for _, c := range add {
		found := false
		for _, h := range have {
			if h == c {
				found = true
				break
			}
		}
		if !found {
			out = append(out, c)
		}
	}
	sortCommunities(out)
	return out
}
