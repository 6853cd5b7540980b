package allocator

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/labels"
)

// PoolConfig is the allocator's view of one IPAddressPool.
type PoolConfig struct {
	// Name identifies the pool (the IPAddressPool's name).
	Name string
	// Addresses are the spec.addresses entries, unparsed.
	Addresses []string
	// AutoAssign lets Services that name neither pool nor IP use the pool.
	AutoAssign bool
	// AvoidBuggyIPs keeps IPv4 addresses ending in .0 and .255 unused.
	AvoidBuggyIPs bool
	// AllocateTo scopes the pool; nil means any Service may use it.
	AllocateTo *Selection
}

// Selection restricts a pool to some Services (spec.serviceAllocation).
type Selection struct {
	// Priority orders matching pools; lower is tried first; 0 (unset) comes
	// after every pool with a priority.
	Priority int
	// Namespaces lists namespaces whose Services may use the pool.
	Namespaces []string
	// NamespaceSelectors select namespaces by label.
	NamespaceSelectors []labels.Selector
	// ServiceSelectors select Services by label.
	ServiceSelectors []labels.Selector
}

// matches reports whether a Service in a namespace with the given labels may
// use the pool: its namespace must be listed or selected (when any namespace
// condition is given), and its labels selected (when service selectors are
// given).
func (s *Selection) matches(r *Request) bool {
	if s == nil {
		return true
	}
	if len(s.Namespaces) > 0 || len(s.NamespaceSelectors) > 0 {
		ok := false
		for _, ns := range s.Namespaces {
			if ns == r.Namespace {
				ok = true
				break
			}
		}
		if !ok {
			nsl := labels.Set(r.NamespaceLabels)
			for _, sel := range s.NamespaceSelectors {
				if sel.Matches(nsl) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return false
		}
	}
	if len(s.ServiceSelectors) > 0 {
		sl := labels.Set(r.Labels)
		for _, sel := range s.ServiceSelectors {
			if sel.Matches(sl) {
				return true
			}
		}
		return false
	}
	return true
}

// pool is a configured pool with its free sets.
type pool struct {
	cfg    PoolConfig
	ranges []Range     // as configured
	free   [2]*freeSet // per Family
	total  [2]u128     // usable addresses per Family
	used   [2]int64    // addresses held by Services per Family
}

// maxBuggySplit bounds how many intervals a v4 range may be split into to
// leave out .0/.255 addresses (a /6 worth).
const maxBuggySplit = 1 << 18

// newPool parses cfg and builds a pool whose whole usable space is free.
func newPool(cfg PoolConfig) (*pool, error) {
	rs, err := ParseAddresses(cfg.Addresses)
	if err != nil {
		return nil, err
	}
	p := &pool{cfg: cfg, ranges: rs, free: [2]*freeSet{newFreeSet(), newFreeSet()}}
	for i, r := range rs {
		f := FamilyOf(r.First)
		if cfg.AvoidBuggyIPs && f == IPv4 {
			pieces := usableV4(r)
			if len(pieces) > maxBuggySplit {
				return nil, &FieldError{Field: fmt.Sprintf("spec.addresses[%d]", i),
					Detail: fmt.Sprintf("%q is too large to use with avoidBuggyIPs", cfg.Addresses[i])}
			}
			for _, pc := range pieces {
				p.free[f].insertRange(pc)
			}
			continue
		}
		p.free[f].insertRange(r)
	}
	p.total = [2]u128{p.free[IPv4].count(), p.free[IPv6].count()}
	return p, nil
}

// usableV4 splits r into pieces without .0 and .255 addresses.
func usableV4(r Range) []Range {
	var out []Range
	cur := r.First
	for {
		b := cur.As4()
		if b[3] == 0 {
			b[3] = 1
		}
		if b[3] == 255 { // next /24
			nb, ok := nextBlock(cur)
			if !ok {
				return out
			}
			b = nb.As4()
			b[3] = 1
		}
		start := netip.AddrFrom4(b)
		if r.Last.Less(start) {
			return out
		}
		b[3] = 254
		end := netip.AddrFrom4(b)
		if r.Last.Less(end) {
			end = r.Last
			if isBuggy(end) { // r.Last ends in .255 (.0 is below start)
				end = end.Prev()
			}
		}
		if !end.Less(start) {
			out = append(out, Range{First: start, Last: end})
		}
		nb, ok := nextBlock(start)
		if !ok || r.Last.Less(nb) {
			return out
		}
		cur = nb
	}
}

// nextBlock returns x.y.z+1.0 for an address in x.y.z.0/24.
func nextBlock(a netip.Addr) (netip.Addr, bool) {
	b := a.As4()
	b[3] = 255
	n := netip.AddrFrom4(b).Next()
	return n, n.IsValid()
}

// contains reports whether a is inside the pool's configured ranges.
func (p *pool) contains(a netip.Addr) bool {
	for _, r := range p.ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// usable reports whether a may be handed out by this pool at all.
func (p *pool) usable(a netip.Addr) bool {
	return p.contains(a) && !(p.cfg.AvoidBuggyIPs && isBuggy(a))
}

// hasFamily reports whether the pool has addresses of family f.
func (p *pool) hasFamily(f Family) bool {
	return p.total[f] != (u128{})
}

// overlaps reports the first pair of overlapping ranges of p and o.
func (p *pool) overlaps(o *pool) (Range, Range, bool) {
	for _, a := range p.ranges {
		for _, b := range o.ranges {
			if a.Overlaps(b) {
				return a, b, true
			}
		}
	}
	return Range{}, Range{}, false
}
