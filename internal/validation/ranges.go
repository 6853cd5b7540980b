package validation

import (
	"math/big"
	"net/netip"
)

// Prefixes splits r into the fewest CIDRs that cover it exactly, in order.
func (r Range) Prefixes() []netip.Prefix {
	bits := r.First.BitLen()
	lo := new(big.Int).SetBytes(r.First.AsSlice())
	hi := new(big.Int).SetBytes(r.Last.AsSlice())
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

// widest returns the least specific of r's covering CIDRs.
func (r Range) widest() netip.Prefix {
	ps := r.Prefixes()
	w := ps[0]
	for _, p := range ps[1:] {
		if p.Bits() < w.Bits() {
			w = p
		}
	}
	return w
}
