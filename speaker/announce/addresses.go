package announce

import (
	"math/big"
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

// rangeToPrefixes splits [first, last] into the fewest CIDRs that cover it exactly.
func rangeToPrefixes(first, last netip.Addr) []netip.Prefix {
	bits := first.BitLen()
	lo := new(big.Int).SetBytes(first.AsSlice())
	hi := new(big.Int).SetBytes(last.AsSlice())
	one := big.NewInt(1)
	var out []netip.Prefix
	for lo.Cmp(hi) <= 0 {
		// Largest block aligned at lo that does not pass hi.
		size := 0
		for size < bits {
			next := size + 1
			if lo.Bit(size) != 0 { // lo not aligned to 2^next
				break
			}
			end := new(big.Int).Add(lo, new(big.Int).Lsh(one, uint(next)))
			end.Sub(end, one)
			if end.Cmp(hi) > 0 {
				break
			}
			size = next
		}
		buf := lo.FillBytes(make([]byte, bits/8))
		a, _ := netip.AddrFromSlice(buf)
		out = append(out, netip.PrefixFrom(a, bits-size))
		lo.Add(lo, new(big.Int).Lsh(one, uint(size)))
	}
	return out
}
