package allocator

import (
	"math"
	"math/bits"
	"net/netip"
)

// Family is an IP address family.
type Family int

const (
	// IPv4 is the IPv4 family.
	IPv4 Family = iota
	// IPv6 is the IPv6 family.
	IPv6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// u128 is an unsigned 128-bit count, used for sizes of IPv6 ranges.
type u128 struct{ hi, lo uint64 }

func addrU128(a netip.Addr) u128 {
	b := a.As16()
	var v u128
	for i := 0; i < 8; i++ {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[8+i])
	}
	return v
}

// add saturates at 2^128-1 (only the whole IPv6 space reaches it).
func (v u128) add(w u128) u128 {
	lo, carry := bits.Add64(v.lo, w.lo, 0)
	hi, over := bits.Add64(v.hi, w.hi, carry)
	if over != 0 {
		return u128{math.MaxUint64, math.MaxUint64}
	}
	return u128{hi, lo}
}

func (v u128) sub(w u128) u128 {
	lo, borrow := bits.Sub64(v.lo, w.lo, 0)
	hi, _ := bits.Sub64(v.hi, w.hi, borrow)
	return u128{hi, lo}
}

// int64 saturates at math.MaxInt64.
func (v u128) int64() int64 {
	if v.hi != 0 || v.lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v.lo)
}

// rangeSize is the number of addresses in [first, last].
func rangeSize(first, last netip.Addr) u128 {
	return addrU128(last).sub(addrU128(first)).add(u128{0, 1})
}

// isBuggy reports whether a is an IPv4 address ending in .0 or .255.
func isBuggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[3] == 0 || b[3] == 255
}
