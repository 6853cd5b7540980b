package announce

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
)

// compiledL2 is an accepted L2Advertisement.
type compiledL2 struct {
	name     string
	pools    map[int]bool // indexes into Plan.pools
	nodes    []labels.Selector
	services []labels.Selector
	// mine: its nodeSelectors select this node.
	mine       bool
	interfaces []string // sorted, no duplicates; nil: all
}

// compileL2 checks one L2Advertisement against the accepted pools.
func (p *Plan) compileL2(ad L2Advertisement, pools []Pool) (compiledL2, error) {
	c := compiledL2{name: ad.Name, pools: map[int]bool{}}
	if ad.Err != nil {
		return c, ad.Err
	}
	if ad.PreferredNodeSelectors > 0 {
		return c, errors.New("spec.preferredNodeSelectors: not supported by ecmplb: its choice of the answering node spreads IPs evenly and takes no preferences (remove the field to announce with this advertisement)")
	}
	poolSels, err := selectors(ad.IPAddressPoolSelectors)
	if err != nil {
		return c, fmt.Errorf("spec.ipAddressPoolSelectors: %w", err)
	}
	if c.nodes, err = selectors(ad.NodeSelectors); err != nil {
		return c, fmt.Errorf("spec.nodeSelectors: %w", err)
	}
	if c.services, err = selectors(ad.ServiceSelectors); err != nil {
		return c, fmt.Errorf("spec.serviceSelectors: %w", err)
	}
	all := len(ad.IPAddressPools) == 0 && len(ad.IPAddressPoolSelectors) == 0
	for i, pl := range pools {
		covered := all || slices.Contains(ad.IPAddressPools, pl.Name)
		for _, s := range poolSels {
			covered = covered || s.Matches(labels.Set(pl.Labels))
		}
		if covered {
			c.pools[i] = true
		}
	}
	c.mine = matchSelectors(c.nodes, p.node.Labels)
	if len(ad.Interfaces) > 0 {
		c.interfaces = slices.Compact(slices.Sorted(slices.Values(ad.Interfaces)))
	}
	return c, nil
}

// L2Cluster is a Plan's layer 2 advertisements resolved against the cluster's
// Nodes: which nodes each one selects. The caller builds it again when the plan
// or the Nodes change, and asks it for one Service at a time (Service). It is
// safe for concurrent use.
type L2Cluster struct {
	plan *Plan
	// selected: per advertisement (index into plan.l2), the eligible nodes
	// its nodeSelectors select, sorted.
	selected [][]string
	mu       sync.Mutex
	// shared: the Nodes lists handed out, by the set of advertisements they
	// come from, so that Services of the same pools share one.
	shared map[string][]string
}

// L2Cluster resolves the plan's layer 2 advertisements against every Node of
// the cluster. A node is eligible to answer unless it has the
// exclude-from-external-load-balancers label or the NetworkUnavailable
// condition, which MetalLB's layer 2 mode leaves out too. Unschedulable
// (cordoned) and NotReady nodes stay eligible, as in MetalLB: whether a node's
// speaker is alive is the layer 2 runtime's judgement (MetalLB's memberlist,
// ecmplb's liveness), not the Node's conditions, and a cordoned node still
// forwards traffic.
func (p *Plan) L2Cluster(nodes []Node) *L2Cluster {
	c := &L2Cluster{plan: p, selected: make([][]string, len(p.l2)), shared: map[string][]string{}}
	if len(p.l2) == 0 {
		return c
	}
	eligible := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		if ok, _ := nodeEligible(n); ok {
			eligible = append(eligible, n)
		}
	}
	slices.SortFunc(eligible, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range p.l2 {
		for _, n := range eligible {
			if matchSelectors(p.l2[i].nodes, n.Labels) {
				c.selected[i] = append(c.selected[i], n.Name)
			}
		}
	}
	return c
}

// Service computes a Service's layer 2 announcement; nil when it has none.
// endpointNodes are the nodes with an endpoint of the Service that can take
// traffic (only read for externalTrafficPolicy Local).
//
// An IP is announced when an L2Advertisement covers its pool and selects the
// Service (serviceSelectors). The nodes that may answer for it are those the
// nodeSelectors of these advertisements select (their union), eligible as
// L2Cluster says; with externalTrafficPolicy Local only those with an
// endpoint. One node answers for all of a Service's IPs, so with IPs of pools
// whose advertisements select different nodes, Nodes holds the nodes that may
// answer for every one. As in MetalLB, a Service with no endpoint that can
// take traffic has none; so has one no node may answer for. Nodes may be
// shared with other Services: read only.
func (c *L2Cluster) Service(svc Service, endpointNodes []string) *L2Service {
	p := c.plan
	if len(p.l2) == 0 || len(svc.IPs) == 0 || !svc.AnyEndpoint {
		return nil
	}
	out := &L2Service{Key: svc.Key}
	var nodes []string
	var ifaces []string
	first := true
	for _, ip := range svc.IPs {
		ip = ip.Unmap()
		pool := p.poolIndex(ip)
		if pool < 0 {
			continue
		}
		var ads []int
		for i := range p.l2 {
			if p.l2[i].pools[pool] && matchSelectors(p.l2[i].services, svc.Labels) {
				ads = append(ads, i)
			}
		}
		if len(ads) == 0 {
			continue
		}
		out.IPs = append(out.IPs, ip)
		ipNodes := c.nodesOf(ads)
		if first {
			nodes, first = ipNodes, false
		} else if !slices.Equal(nodes, ipNodes) {
			nodes = intersect(nodes, ipNodes)
		}
		for _, i := range ads {
			ad := &p.l2[i]
			if !ad.mine {
				continue
			}
			if ad.interfaces == nil {
				out.AllInterfaces = true
			}
			ifaces = append(ifaces, ad.interfaces...)
		}
	}
	if len(out.IPs) == 0 {
		return nil
	}
	if svc.Local {
		nodes = filterNodes(nodes, endpointNodes)
	}
	if len(nodes) == 0 {
		return nil
	}
	slices.SortFunc(out.IPs, netip.Addr.Compare)
	out.IPs = slices.Compact(out.IPs)
	out.Nodes = nodes
	if !out.AllInterfaces && len(ifaces) > 0 {
		slices.Sort(ifaces)
		out.Interfaces = slices.Compact(ifaces)
	}
	return out
}

// nodesOf returns the union of the nodes the advertisements select, one list
// per set of advertisements.
func (c *L2Cluster) nodesOf(ads []int) []string {
	if len(ads) == 1 {
		return c.selected[ads[0]]
	}
	var b strings.Builder
	for _, i := range ads {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(',')
	}
	k := b.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.shared[k]; ok {
		return l
	}
	var l []string
	for _, i := range ads {
		l = append(l, c.selected[i]...)
	}
	slices.Sort(l)
	l = slices.Compact(l)
	c.shared[k] = l
	return l
}

// intersect returns the names in both sorted lists (a new list).
func intersect(a, b []string) []string {
	var out []string
	for _, n := range a {
		if _, ok := slices.BinarySearch(b, n); ok {
			out = append(out, n)
		}
	}
	return out
}

// filterNodes returns the names of the sorted list nodes that keep holds (a
// new list).
func filterNodes(nodes, keep []string) []string {
	var out []string
	for _, n := range nodes {
		if slices.Contains(keep, n) {
			out = append(out, n)
		}
	}
	return out
}
