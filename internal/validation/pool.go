package validation

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// maxBuggyBlocks bounds how many /24 blocks an IPv4 range may span when
// avoidBuggyIPs splits it around .0 and .255 (a /6 worth).
const maxBuggyBlocks = 1 << 18

// Pool checks one IPAddressPool on its own (overlaps with other pools are
// ResolveOverlaps' job) and returns its parsed addresses.
func Pool(p *v1beta1.IPAddressPool) ([]Range, error) {
	rs, err := PoolAddresses(p.Spec.Addresses)
	if err != nil {
		return nil, err
	}
	if p.Spec.AvoidBuggyIPs {
		for i, r := range rs {
			if !r.First.Is4() {
				continue
			}
			a, b := r.First.As4(), r.Last.As4()
			blocks := (uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])) - (uint32(a[0])<<16 | uint32(a[1])<<8 | uint32(a[2])) + 1
			if blocks > maxBuggyBlocks {
				return nil, fieldErr(fmt.Sprintf("spec.addresses[%d]", i), "%q is too large to use with avoidBuggyIPs", p.Spec.Addresses[i])
			}
		}
	}
	if at := p.Spec.AllocateTo; at != nil {
		if err := Selectors("spec.serviceAllocation.namespaceSelectors", at.NamespaceSelectors); err != nil {
			return nil, err
		}
		if err := Selectors("spec.serviceAllocation.serviceSelectors", at.ServiceSelectors); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// Selectors checks a list of label selectors, naming the first bad one.
func Selectors(field string, in []metav1.LabelSelector) error {
	for i := range in {
		if _, err := metav1.LabelSelectorAsSelector(&in[i]); err != nil {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%s", err.Error())
		}
	}
	return nil
}

// PoolSpan is what overlap resolution needs to know about a valid pool.
type PoolSpan struct {
	Name    string
	Created time.Time // metadata.creationTimestamp
	Ranges  []Range   // parsed spec.addresses, in order
}

// OverlapError rejects a pool whose addresses overlap an older pool's.
type OverlapError struct {
	// Pool is the rejected pool, Winner the pool it overlaps.
	Pool, Winner string
	// Index is the rejected pool's spec.addresses entry that overlaps.
	Index int
	// Shared are the addresses both pools contain (the first overlap found).
	Shared Range
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("spec.addresses[%d]: overlaps IPAddressPool %q in %s; the older pool (creationTimestamp, then name) keeps those addresses and IPAddressPool %q is rejected",
		e.Index, e.Winner, e.Shared, e.Pool)
}

// PoolPrecedes is the order in which overlapping pools win: the oldest
// creationTimestamp first, then the name. It depends on nothing but the pools
// themselves, so every replica and every restart decides the same way.
func PoolPrecedes(a, b PoolSpan) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Name < b.Name
}

// ResolveOverlaps decides which of a set of individually valid pools are
// rejected because they overlap another: taken in PoolPrecedes order, a pool
// is accepted unless it overlaps a pool accepted before it. The result maps
// each rejected pool's name to why; pools not in it are accepted.
func ResolveOverlaps(pools []PoolSpan) map[string]*OverlapError {
	sorted := make([]PoolSpan, len(pools))
	copy(sorted, pools)
	sort.Slice(sorted, func(i, j int) bool { return PoolPrecedes(sorted[i], sorted[j]) })
	rejected := map[string]*OverlapError{}
	var accepted []PoolSpan
	for _, p := range sorted {
		if e := firstOverlap(p, accepted); e != nil {
			rejected[p.Name] = e
			continue
		}
		accepted = append(accepted, p)
	}
	return rejected
}

func firstOverlap(p PoolSpan, accepted []PoolSpan) *OverlapError {
	for _, w := range accepted {
		for i, r := range p.Ranges {
			for _, o := range w.Ranges {
				if shared, ok := r.Intersect(o); ok {
					return &OverlapError{Pool: p.Name, Winner: w.Name, Index: i, Shared: shared}
				}
			}
		}
	}
	return nil
}
