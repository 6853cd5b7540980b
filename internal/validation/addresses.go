package validation

import (
	"fmt"
	"net/netip"
	"strings"
)

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() == r.First.Is4() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.Is4() == o.First.Is4() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// Intersect returns the addresses r and o share (ok false when none).
func (r Range) Intersect(o Range) (Range, bool) {
	if !r.Overlaps(o) {
		return Range{}, false
	}
	out := r
	if o.First.Compare(out.First) > 0 {
		out.First = o.First
	}
	if o.Last.Compare(out.Last) < 0 {
		out.Last = o.Last
	}
	return out, true
}

// String formats r as "first-last".
func (r Range) String() string { return r.First.String() + "-" + r.Last.String() }

// ParseRange parses one pool address entry: a CIDR ("203.0.113.0/24",
// "2001:db8::/64") or an inclusive range of two addresses of one family
// ("203.0.113.10-203.0.113.20", spaces around the dash allowed). Host bits
// of a CIDR are ignored, as MetalLB does. IPv4-mapped IPv6 addresses are
// treated as IPv4.
func ParseRange(s string) (Range, error) {
	invalid := fmt.Errorf("%q is not a valid CIDR or range", s)
	str := strings.TrimSpace(s)
	if str == "" {
		return Range{}, invalid
	}
	if !strings.Contains(str, "-") {
		p, err := netip.ParsePrefix(str)
		if err != nil || p.Addr().Zone() != "" {
			return Range{}, invalid
		}
		if p.Addr().Is4In6() {
			bitsLeft := p.Bits() - 96
			if bitsLeft < 0 {
				return Range{}, invalid
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bitsLeft)
		}
		p = p.Masked()
		return Range{First: p.Addr(), Last: lastOf(p)}, nil
	}
	parts := strings.SplitN(str, "-", 2)
	first, err1 := netip.ParseAddr(strings.TrimSpace(parts[0]))
	last, err2 := netip.ParseAddr(strings.TrimSpace(parts[1]))
	if err1 != nil || err2 != nil || first.Zone() != "" || last.Zone() != "" {
		return Range{}, invalid
	}
	first, last = first.Unmap(), last.Unmap()
	if first.Is4() != last.Is4() {
		return Range{}, fmt.Errorf("%q mixes IPv4 and IPv6", s)
	}
	if last.Less(first) {
		return Range{}, fmt.Errorf("%q has its end before its start", s)
	}
	return Range{First: first, Last: last}, nil
}

// lastOf returns the last address of p (p masked).
func lastOf(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 1 << (7 - i%8)
		}
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(b)
}

// PoolAddresses parses a pool's spec.addresses. It rejects an empty list,
// bad entries and entries overlapping each other, naming the field.
func PoolAddresses(entries []string) ([]Range, error) {
	if len(entries) == 0 {
		return nil, fieldErr("spec.addresses", "must list at least one CIDR or range")
	}
	out := make([]Range, 0, len(entries))
	for i, e := range entries {
		r, err := ParseRange(e)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("spec.addresses[%d]", i), "%s", err.Error())
		}
		for j, prev := range out {
			if prev.Overlaps(r) {
				return nil, fieldErr(fmt.Sprintf("spec.addresses[%d]", i), "%q overlaps spec.addresses[%d] %q", e, j, entries[j])
			}
		}
		out = append(out, r)
	}
	return out, nil
}
