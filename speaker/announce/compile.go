package announce

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ecmplb/ecmplb/internal/validation"
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
	l2         []compiledL2 // every accepted L2Advertisement, by name
}

type compiledPool struct {
	name     string
	ranges   []addrRange
	prefixes []netip.Prefix
	parsed   []validation.Range // spec.addresses, for validation.AggregationFits
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
// Service. Bad objects are rejected one by one: each is left out of the Plan and
// reported as a Problem naming the object and field, and the rest applies. An object
// that depends on another (an advertisement naming an invalid community alias, a
// BGPPeer naming a missing BFDProfile) rejects only itself. A BGPPeer whose
// nodeSelectors do not select this node is never checked, so it is never a problem
// here. Problems are sorted by kind and name.
func Compile(cfg Config, node Node) (*Plan, []Problem) {
	var problems []Problem
	reject := func(kind, name string, err error) {
		problems = append(problems, Problem{Kind: kind, Name: name, Err: err})
	}
	p := &Plan{node: node, sessionIdx: map[string]int{}}
	p.eligible, p.ineligible = nodeEligible(node)

	// Pools: each checked alone, then overlaps resolved by age (the same rule
	// the controller applies), so an IP belongs to at most one pool.
	pools := slices.Clone(cfg.Pools)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	var valid []Pool
	var spans []validation.PoolSpan
	compiled := map[string]compiledPool{}
	for _, pl := range pools {
		if pl.Err != nil {
			reject(KindPool, pl.Name, pl.Err)
			continue
		}
		rs, err := validation.PoolAddresses(pl.Addresses)
		if err != nil {
			reject(KindPool, pl.Name, err)
			continue
		}
		cp := compiledPool{name: pl.Name, parsed: rs}
		for _, r := range rs {
			cp.ranges = append(cp.ranges, addrRange{r.First, r.Last})
			cp.prefixes = append(cp.prefixes, rangeToPrefixes(r.First, r.Last)...)
		}
		compiled[pl.Name] = cp
		valid = append(valid, pl)
		spans = append(spans, validation.PoolSpan{Name: pl.Name, Created: pl.Created, Ranges: rs})
	}
	losers := validation.ResolveOverlaps(spans)
	var accepted []Pool
	for _, pl := range valid {
		if e := losers[pl.Name]; e != nil {
			reject(KindPool, pl.Name, e)
			continue
		}
		accepted = append(accepted, pl)
		p.pools = append(p.pools, compiled[pl.Name])
	}

	// Sessions: peers whose nodeSelectors select this node, and only those are
	// checked.
	peers := slices.Clone(cfg.Peers)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	for _, pr := range peers {
		ok, err := matchAny(pr.NodeSelectors, node.Labels)
		if err != nil {
			reject(KindPeer, pr.Name, fmt.Errorf("spec.nodeSelectors: %w", err))
			continue
		}
		if !ok {
			continue
		}
		s, err := compileSession(pr, cfg.BFDProfiles, node)
		if err != nil {
			reject(KindPeer, pr.Name, err)
			continue
		}
		p.sessionIdx[s.Name] = len(p.sessions)
		p.sessions = append(p.sessions, s)
	}

	// Advertisements that select this node.
	ads := slices.Clone(cfg.Advertisements)
	sort.Slice(ads, func(i, j int) bool { return ads[i].Name < ads[j].Name })
	for _, ad := range ads {
		ca, selected, err := p.compileAd(ad, accepted, cfg.Communities)
		if err != nil {
			reject(KindAdvertisement, ad.Name, err)
			continue
		}
		if selected {
			p.ads = append(p.ads, ca)
		}
	}
	problems = append(problems, p.checkLocalPrefs()...)

	// L2Advertisements: all of them, whichever nodes they select, since every
	// speaker computes the answering node of every Service (L2Cluster).
	l2s := slices.Clone(cfg.L2Advertisements)
	sort.Slice(l2s, func(i, j int) bool { return l2s[i].Name < l2s[j].Name })
	for _, ad := range l2s {
		c, err := p.compileL2(ad, accepted)
		if err != nil {
			reject(KindL2, ad.Name, err)
			continue
		}
		p.l2 = append(p.l2, c)
	}
	sort.SliceStable(problems, func(i, j int) bool {
		if problems[i].Kind != problems[j].Kind {
			return problems[i].Kind < problems[j].Kind
		}
		return problems[i].Name < problems[j].Name
	})
	return p, problems
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
		GracefulRestart: pr.EnableGracefulRestart, DualStack: pr.DualStackAddressFamily,
	}
	if pr.Err != nil {
		return s, pr.Err
	}
	if err := validation.UnsupportedPeerFields(pr.VRFName, pr.DisableMP); err != nil {
		return s, err
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
	// The next-hop of the other family's routes (dualStackAddressFamily):
	// the node's address of that family.
	if s.PeerAddress.Is4() {
		s.NextHopV6 = nodeAddress(node, netip.Addr.Is6)
	} else {
		s.NextHopV4 = nodeAddress(node, netip.Addr.Is4)
	}
	if s.HoldTime, s.KeepaliveTime, err = validation.Timers(pr.HoldTime, pr.KeepaliveTime); err != nil {
		return s, err
	}
	if s.ConnectTime, err = validation.ConnectTime(pr.ConnectTime); err != nil {
		return s, err
	}
	if pr.BFDProfile != "" {
		bp, ok := profiles[pr.BFDProfile]
		if !ok {
			return s, fmt.Errorf("spec.bfdProfile: BFDProfile %q does not exist", pr.BFDProfile)
		}
		if s.EBGPMultiHop && bp.EchoMode != nil && *bp.EchoMode {
			return s, fmt.Errorf("spec.bfdProfile: BFDProfile %q has echoMode: true, which the multi-hop BFD session of a peer with spec.ebgpMultiHop cannot run (RFC 5883 has no echo)", pr.BFDProfile)
		}
		if s.PeerAddress.Is6() && bp.EchoMode != nil && *bp.EchoMode {
			// The bfd package sends echo packets over IPv4 only; the session
			// would run without echo, silently.
			return s, fmt.Errorf("spec.bfdProfile: BFDProfile %q has echoMode: true; BFD echo over IPv6 is not supported by ecmplb yet", pr.BFDProfile)
		}
		s.BFD = &bp
	}
	return s, nil
}

// nodeAddress returns the node's first address of the family is tells
// (invalid: none).
func nodeAddress(node Node, is func(netip.Addr) bool) netip.Addr {
	for _, a := range node.Addresses {
		if is(a) {
			return a
		}
	}
	return netip.Addr{}
}

func (p *Plan) compileAd(ad Advertisement, pools []Pool, aliases map[string]string) (compiledAd, bool, error) {
	ca := compiledAd{name: ad.Name, localPref: ad.LocalPref, pools: map[int]bool{}}
	var err error
	if ca.aggV4, ca.aggV6, err = validation.AggregationLengths(ad.AggregationLength, ad.AggregationLengthV6); err != nil {
		return ca, false, err
	}
	seen := map[Community]bool{}
	for _, s := range ad.Communities {
		c, err := validation.ResolveCommunity(s, aliases)
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
		if err := validation.AggregationFits(pl.Name, p.pools[i].parsed, ca.aggV4, ca.aggV6); err != nil {
			return ca, false, err
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

// checkLocalPrefs rejects an advertisement that would give a pool a different
// local-pref towards an iBGP peer than an advertisement sorting before it, for every
// Service (neither narrows by Service selector): the later one (by name) is left
// out. Conflicts that depend on Service labels are found per Service in Routes.
func (p *Plan) checkLocalPrefs() []Problem {
	var problems []Problem
	rejected := map[int]bool{}
	for j := range p.ads {
	pairs:
		for i := 0; i < j; i++ {
			if rejected[i] {
				continue
			}
			a, b := &p.ads[i], &p.ads[j]
			if a.localPref == 0 || b.localPref == 0 || a.localPref == b.localPref ||
				len(a.services) > 0 || len(b.services) > 0 {
				continue
			}
			for _, pool := range slices.Sorted(maps.Keys(b.pools)) {
				if !a.pools[pool] {
					continue
				}
				for _, s := range b.peers {
					if slices.Contains(a.peers, s) && p.sessions[s].IBGP() {
						rejected[j] = true
						problems = append(problems, Problem{Kind: KindAdvertisement, Name: b.name, Err: fmt.Errorf(
							"spec.localPref: %d conflicts with %d of BGPAdvertisement %q for IPAddressPool %q towards BGPPeer %q",
							b.localPref, a.localPref, a.name, p.pools[pool].name, p.sessions[s].Name)})
						break pairs
					}
				}
			}
		}
	}
	if len(rejected) > 0 {
		kept := p.ads[:0]
		for i, ad := range p.ads {
			if !rejected[i] {
				kept = append(kept, ad)
			}
		}
		p.ads = kept
	}
	return problems
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
	sort.Slice(cs, func(i, j int) bool { return cs[i].Less(cs[j]) })
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
