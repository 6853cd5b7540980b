package announce

import (
	"fmt"
	"math/big"
	"net/netip"
	"strings"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ first, last netip.Addr }

func (r addrRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.first.BitLen() && r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// parseAddresses reads an IPAddressPool entry: a CIDR ("203.0.113.0/24") or a range
// ("203.0.113.10-203.0.113.20"). It returns the range and the CIDRs that cover it
// exactly.
func parseAddresses(s string) (addrRange, []netip.Prefix, error) {
	if a, b, ok := strings.Cut(s, "-"); ok {
		first, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return addrRange{}, nil, fmt.Errorf("range %q: %w", s, err)
		}
		last, err := netip.ParseAddr(strings.TrimSpace(b))
		if err != nil {
			return addrRange{}, nil, fmt.Errorf("range %q: %w", s, err)
		}
		first, last = first.Unmap(), last.Unmap()
		if first.BitLen() != last.BitLen() {
			return addrRange{}, nil, fmt.Errorf("range %q mixes IPv4 and IPv6", s)
		}
		if last.Less(first) {
			return addrRange{}, nil, fmt.Errorf("range %q: start is after end", s)
		}
		return addrRange{first, last}, rangeToPrefixes(first, last), nil
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return addrRange{}, nil, fmt.Errorf("cidr %q: %w", s, err)
	}
	p = p.Masked()
	return addrRange{p.Addr(), lastAddr(p)}, []netip.Prefix{p}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
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
