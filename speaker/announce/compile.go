package announce

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Plan is a compiled, validated configuration for one node. It is immutable and safe
// for concurrent use.
type Plan struct {
	node       Node
	eligible   bool
	ineligible string
	sessions   []Session
	sessionIdx map[string]int
	pools      []compiledPool
	ads        []compiledAd
}

type compiledPool struct {
	name     string
	ranges   []addrRange
	prefixes []netip.Prefix
}

type compiledAd struct {
	name        string
	aggV4       int
	aggV6       int
	localPref   uint32
	communities []Community
	pools       map[int]bool // indexes into Plan.pools
	services    []labels.Selector
	peers       []int // indexes into Plan.sessions
}

// Compile validates cfg and precomputes everything that does not depend on a single
// Service. Every problem is reported (joined), each naming the object and field; on
// error the Plan is nil and the caller keeps its last good one.
func Compile(cfg Config, node Node) (*Plan, error) {
	var errs []error
	p := &Plan{node: node, sessionIdx: map[string]int{}}
	p.eligible, p.ineligible = nodeEligible(node)

	// Pools, sorted by name so that overlapping pools resolve the same way everywhere.
	pools := slices.Clone(cfg.Pools)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	poolIdx := map[string]int{}
	for _, pl := range pools {
		cp := compiledPool{name: pl.Name}
		for _, a := range pl.Addresses {
			r, pfx, err := parseAddresses(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("IPAddressPool %q: spec.addresses: %w", pl.Name, err))
				continue
			}
			cp.ranges = append(cp.ranges, r)
			cp.prefixes = append(cp.prefixes, pfx...)
		}
		poolIdx[pl.Name] = len(p.pools)
		p.pools = append(p.pools, cp)
	}

	// Sessions: peers whose nodeSelectors select this node.
	peers := slices.Clone(cfg.Peers)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	for _, pr := range peers {
		s, err := compileSession(pr, cfg.BFDProfiles, node)
		if err != nil {
			errs = append(errs, fmt.Errorf("BGPPeer %q: %w", pr.Name, err))
			continue
		}
		ok, err := matchAny(pr.NodeSelectors, node.Labels)
		if err != nil {
			errs = append(errs, fmt.Errorf("BGPPeer %q: spec.nodeSelectors: %w", pr.Name, err))
			continue
		}
		if ok {
			p.sessionIdx[s.Name] = len(p.sessions)
			p.sessions = append(p.sessions, s)
		}
	}

	// Advertisements that select this node.
	ads := slices.Clone(cfg.Advertisements)
	sort.Slice(ads, func(i, j int) bool { return ads[i].Name < ads[j].Name })
	for _, ad := range ads {
		ca, selected, err := p.compileAd(ad, pools, cfg.Communities)
		if err != nil {
			errs = append(errs, fmt.Errorf("BGPAdvertisement %q: %w", ad.Name, err))
			continue
		}
		if selected {
			p.ads = append(p.ads, ca)
		}
	}
	if err := p.checkLocalPrefs(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func nodeEligible(n Node) (bool, string) {
	if _, ok := n.Labels[ExcludeLabel]; ok {
		return false, "node has label " + ExcludeLabel
	}
	if n.NetworkUnavailable {
		return false, "node condition NetworkUnavailable is True"
	}
	return true, ""
}

func compileSession(pr Peer, profiles map[string]BFDProfile, node Node) (Session, error) {
	s := Session{
		Name: pr.Name, MyASN: pr.MyASN, PeerASN: pr.ASN, PeerPort: pr.Port,
		EBGPMultiHop: pr.EBGPMultiHop, Password: pr.Password,
		GracefulRestart: pr.EnableGracefulRestart, VRFName: pr.VRFName,
	}
	if pr.MyASN == 0 {
		return s, errors.New("spec.myASN: must be set")
	}
	if pr.ASN == 0 {
		return s, errors.New("spec.peerASN: must be set")
	}
	a, err := netip.ParseAddr(pr.Address)
	if err != nil {
		return s, fmt.Errorf("spec.peerAddress: %w", err)
	}
	s.PeerAddress = a.Unmap()
	if s.PeerPort == 0 {
		s.PeerPort = DefaultPort
	}
	if pr.SrcAddress != "" {
		a, err := netip.ParseAddr(pr.SrcAddress)
		if err != nil {
			return s, fmt.Errorf("spec.sourceAddress: %w", err)
		}
		s.SourceAddress = a.Unmap()
	}
	if pr.RouterID != "" {
		a, err := netip.ParseAddr(pr.RouterID)
		if err != nil || !a.Is4() {
			return s, fmt.Errorf("spec.routerID: %q is not an IPv4 address", pr.RouterID)
		}
		s.RouterID = a
	} else if s.SourceAddress.Is4() {
		s.RouterID = s.SourceAddress
	} else {
		for _, a := range node.Addresses {
			if a.Is4() {
				s.RouterID = a
				break
			}
		}
		if !s.RouterID.IsValid() {
			return s, fmt.Errorf("spec.routerID: not set and node %q has no IPv4 address", node.Name)
		}
	}
	if s.PeerAddress.Is4() {
		if s.SourceAddress.Is6() {
			s.NextHopV6 = s.SourceAddress
		} else {
			for _, a := range node.Addresses {
				if a.Is6() {
					s.NextHopV6 = a
					break
				}
			}
		}
	}
	s.HoldTime = DefaultHoldTime
	if pr.HoldTime != nil {
		s.HoldTime = *pr.HoldTime
	}
	if s.HoldTime != 0 && s.HoldTime < 3e9 {
		return s, fmt.Errorf("spec.holdTime: %s is below the BGP minimum of 3s", s.HoldTime)
	}
	s.KeepaliveTime = s.HoldTime / 3
	if pr.KeepaliveTime != nil {
		s.KeepaliveTime = *pr.KeepaliveTime
		if s.KeepaliveTime > s.HoldTime {
			return s, fmt.Errorf("spec.keepaliveTime: %s is longer than holdTime %s", s.KeepaliveTime, s.HoldTime)
		}
	}
	s.ConnectTime = DefaultConnectTime
	if pr.ConnectTime != nil {
		s.ConnectTime = *pr.ConnectTime
		if s.ConnectTime < 1e9 || s.ConnectTime > 65535e9 {
			return s, fmt.Errorf("spec.connectTime: %s is outside 1s-65535s", s.ConnectTime)
		}
	}
	if pr.BFDProfile != "" {
		bp, ok := profiles[pr.BFDProfile]
		if !ok {
			return s, fmt.Errorf("spec.bfdProfile: BFDProfile %q does not exist", pr.BFDProfile)
		}
		s.BFD = &bp
	}
	return s, nil
}

func (p *Plan) compileAd(ad Advertisement, pools []Pool, aliases map[string]string) (compiledAd, bool, error) {
	ca := compiledAd{name: ad.Name, aggV4: 32, aggV6: 128, localPref: ad.LocalPref, pools: map[int]bool{}}
	if ad.AggregationLength != nil {
		ca.aggV4 = int(*ad.AggregationLength)
		if ca.aggV4 < 0 || ca.aggV4 > 32 {
			return ca, false, fmt.Errorf("spec.aggregationLength: %d is outside 0-32", ca.aggV4)
		}
	}
	if ad.AggregationLengthV6 != nil {
		ca.aggV6 = int(*ad.AggregationLengthV6)
		if ca.aggV6 < 0 || ca.aggV6 > 128 {
			return ca, false, fmt.Errorf("spec.aggregationLengthV6: %d is outside 0-128", ca.aggV6)
		}
	}
	seen := map[Community]bool{}
	for _, s := range ad.Communities {
		c, err := resolveCommunity(s, aliases)
		if err != nil {
			return ca, false, fmt.Errorf("spec.communities: %w", err)
		}
		if !seen[c] {
			seen[c] = true
			ca.communities = append(ca.communities, c)
		}
	}
	sortCommunities(ca.communities)

	poolSels, err := selectors(ad.IPAddressPoolSelectors)
	if err != nil {
		return ca, false, fmt.Errorf("spec.ipAddressPoolSelectors: %w", err)
	}
	all := len(ad.IPAddressPools) == 0 && len(ad.IPAddressPoolSelectors) == 0
	for i, pl := range pools {
		covered := all || slices.Contains(ad.IPAddressPools, pl.Name)
		for _, sel := range poolSels {
			if sel.Matches(labels.Set(pl.Labels)) {
				covered = true
			}
		}
		if !covered {
			continue
		}
		ca.pools[i] = true
		for _, pfx := range p.pools[i].prefixes {
			agg := ca.aggV4
			field := "aggregationLength"
			if pfx.Addr().Is6() {
				agg, field = ca.aggV6, "aggregationLengthV6"
			}
			if pfx.Bits() > agg {
				return ca, false, fmt.Errorf("spec.%s: %d is shorter than prefix %s of IPAddressPool %q", field, agg, pfx, pl.Name)
			}
		}
	}
	if ca.services, err = selectors(ad.ServiceSelectors); err != nil {
		return ca, false, fmt.Errorf("spec.serviceSelectors: %w", err)
	}
	nodeOK, err := matchAny(ad.NodeSelectors, p.node.Labels)
	if err != nil {
		return ca, false, fmt.Errorf("spec.nodeSelectors: %w", err)
	}
	if len(ad.Peers) == 0 {
		for i := range p.sessions {
			ca.peers = append(ca.peers, i)
		}
	} else {
		for _, name := range ad.Peers {
			if i, ok := p.sessionIdx[name]; ok && !slices.Contains(ca.peers, i) {
				ca.peers = append(ca.peers, i)
			}
		}
		slices.Sort(ca.peers)
	}
	return ca, nodeOK, nil
}

// checkLocalPrefs rejects two advertisements that would give the same pool different
// local-prefs towards the same iBGP peer for every Service (neither narrows by Service
// selector). Conflicts that depend on Service labels are found per Service in Routes.
func (p *Plan) checkLocalPrefs() error {
	var errs []error
	for i := range p.ads {
		for j := i + 1; j < len(p.ads); j++ {
			a, b := &p.ads[i], &p.ads[j]
			if a.localPref == 0 || b.localPref == 0 || a.localPref == b.localPref ||
				len(a.services) > 0 || len(b.services) > 0 {
				continue
			}
			for pool := range a.pools {
				if !b.pools[pool] {
					continue
				}
				for _, s := range a.peers {
					if slices.Contains(b.peers, s) && p.sessions[s].IBGP() {
						errs = append(errs, fmt.Errorf("BGPAdvertisements %q and %q: spec.localPref: %d and %d conflict for IPAddressPool %q towards BGPPeer %q",
							a.name, b.name, a.localPref, b.localPref, p.pools[pool].name, p.sessions[s].Name))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func selectors(in []metav1.LabelSelector) ([]labels.Selector, error) {
	out := make([]labels.Selector, 0, len(in))
	for i := range in {
		s, err := metav1.LabelSelectorAsSelector(&in[i])
		if err != nil {
			return nil, fmt.Errorf("selector %d: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// matchAny: an empty list matches everything, otherwise any selector must match.
func matchAny(in []metav1.LabelSelector, l map[string]string) (bool, error) {
	sels, err := selectors(in)
	if err != nil {
		return false, err
	}
	return matchSelectors(sels, l), nil
}

func matchSelectors(sels []labels.Selector, l map[string]string) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

func sortCommunities(cs []Community) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].less(cs[j]) })
}

// Sessions returns the BGP sessions this node runs, sorted by BGPPeer name.
func (p *Plan) Sessions() []Session { return slices.Clone(p.sessions) }

// Eligible tells whether this node announces at all, and if not, why.
func (p *Plan) Eligible() (bool, string) { return p.eligible, p.ineligible }

// PoolOf returns the name of the IPAddressPool containing ip ("" if none).
func (p *Plan) PoolOf(ip netip.Addr) string {
	if i := p.poolIndex(ip); i >= 0 {
		return p.pools[i].name
	}
	return ""
}

func (p *Plan) poolIndex(ip netip.Addr) int {
	ip = ip.Unmap()
	for i := range p.pools {
		for _, r := range p.pools[i].ranges {
			if r.contains(ip) {
				return i
			}
		}
	}
	return -1
}
