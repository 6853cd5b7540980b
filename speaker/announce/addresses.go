package announce

import (
	"net/netip"

	"github.com/ecmplb/ecmplb/internal/validation"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ first, last netip.Addr }

func (r addrRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.first.BitLen() && r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// parseAddresses reads an IPAddressPool entry (validation.ParseRange: a CIDR
// or a "first-last" range) and returns the range and the CIDRs that cover it
// exactly.
func parseAddresses(s string) (addrRange, []netip.Prefix, error) {
	r, err := validation.ParseRange(s)
	if err != nil {
		return addrRange{}, nil, err
	}
	return addrRange{r.First, r.Last}, rangeToPrefixes(r.First, r.Last), nil
}

// rangeToPrefixes splits [first, last] into the fewest CIDRs that cover it
// exactly (validation.Range.Prefixes).
func rangeToPrefixes(first, last netip.Addr) []netip.Prefix {
	return validation.Range{First: first, Last: last}.Prefixes()
}
