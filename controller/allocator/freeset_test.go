package allocator

import (
	"math"
	"net/netip"
	"testing"
)

func TestFreeSetTakeAndReturn(t *testing.T) {
	s := newFreeSet()
	s.insertRange(Range{First: netip.MustParseAddr("10.0.0.0"), Last: netip.MustParseAddr("10.0.0.9")})
	if got := s.count().int64(); got != 10 {
		t.Fatalf("count = %d, want 10", got)
	}
	a, _ := s.takeFirst()
	b, _ := s.takeFirst()
	if a.String() != "10.0.0.0" || b.String() != "10.0.0.1" {
		t.Fatalf("takeFirst = %v, %v", a, b)
	}
	if !s.take(netip.MustParseAddr("10.0.0.5")) || s.take(netip.MustParseAddr("10.0.0.5")) {
		t.Fatal("take of 10.0.0.5 should succeed once")
	}
	if s.intervals() != 2 || s.count().int64() != 7 {
		t.Fatalf("intervals=%d count=%d, want 2 and 7", s.intervals(), s.count().int64())
	}
	s.add(netip.MustParseAddr("10.0.0.5"))
	s.add(netip.MustParseAddr("10.0.0.0"))
	if s.intervals() != 2 { // 10.0.0.0 and 10.0.0.2-9
		t.Fatalf("intervals = %d, want 2", s.intervals())
	}
	s.add(netip.MustParseAddr("10.0.0.1"))
	if s.intervals() != 1 || s.count().int64() != 10 {
		t.Fatalf("after merging: intervals=%d count=%d", s.intervals(), s.count().int64())
	}
	if s.has(netip.MustParseAddr("10.0.0.10")) || !s.has(netip.MustParseAddr("10.0.0.9")) {
		t.Fatal("has() wrong at the edges")
	}
}

func TestFreeSetHugeIPv6(t *testing.T) {
	s := newFreeSet()
	s.insertRange(Range{First: netip.MustParseAddr("2001:db8::"), Last: netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff")})
	if got := s.count(); got != (u128{1, 0}) {
		t.Fatalf("count of a /64 = %v, want 2^64", got)
	}
	if s.count().int64() != math.MaxInt64 {
		t.Fatal("count should saturate")
	}
	for i := 0; i < 1000; i++ {
		if _, ok := s.takeFirst(); !ok {
			t.Fatal("takeFirst failed")
		}
	}
	if s.intervals() != 1 {
		t.Fatalf("sequential takes fragmented the set: %d intervals", s.intervals())
	}
	s2 := newFreeSet()
	s2.insertRange(Range{First: netip.MustParseAddr("::"), Last: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")})
	last := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	if !s2.take(last) {
		t.Fatal("take of the last address failed")
	}
	s2.add(last)
	if s2.intervals() != 1 {
		t.Fatalf("re-adding the last address left %d intervals", s2.intervals())
	}
}

func TestUsableV4(t *testing.T) {
	tests := []struct {
		r    Range
		want []string
	}{
		{Range{First: netip.MustParseAddr("10.0.0.0"), Last: netip.MustParseAddr("10.0.0.255")}, []string{"10.0.0.1-10.0.0.254"}},
		{Range{First: netip.MustParseAddr("10.0.0.250"), Last: netip.MustParseAddr("10.0.2.3")},
			[]string{"10.0.0.250-10.0.0.254", "10.0.1.1-10.0.1.254", "10.0.2.1-10.0.2.3"}},
		{Range{First: netip.MustParseAddr("10.0.0.255"), Last: netip.MustParseAddr("10.0.1.0")}, nil},
		{Range{First: netip.MustParseAddr("10.0.0.7"), Last: netip.MustParseAddr("10.0.0.7")}, []string{"10.0.0.7-10.0.0.7"}},
		{Range{First: netip.MustParseAddr("255.255.255.0"), Last: netip.MustParseAddr("255.255.255.255")}, []string{"255.255.255.1-255.255.255.254"}},
	}
	for _, tt := range tests {
		got := usableV4(tt.r)
		var s []string
		for _, r := range got {
			s = append(s, r.String())
		}
		if len(s) != len(tt.want) {
			t.Errorf("usableV4(%v) = %v, want %v", tt.r, s, tt.want)
			continue
		}
		for i := range s {
			if s[i] != tt.want[i] {
				t.Errorf("usableV4(%v) = %v, want %v", tt.r, s, tt.want)
			}
		}
	}
}
