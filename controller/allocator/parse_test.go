package allocator

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in          string
		first, last string
		err         string
	}{
		{in: "203.0.113.0/24", first: "203.0.113.0", last: "203.0.113.255"},
		{in: "203.0.113.7/24", first: "203.0.113.0", last: "203.0.113.255"},
		{in: "203.0.113.5/32", first: "203.0.113.5", last: "203.0.113.5"},
		{in: " 10.0.0.0/8 ", first: "10.0.0.0", last: "10.255.255.255"},
		{in: "2001:db8::/64", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff"},
		{in: "2001:db8::/128", first: "2001:db8::", last: "2001:db8::"},
		{in: "::ffff:10.1.0.0/112", first: "10.1.0.0", last: "10.1.255.255"},
		{in: "10.0.0.10-10.0.0.20", first: "10.0.0.10", last: "10.0.0.20"},
		{in: "10.0.0.10 - 10.0.0.10", first: "10.0.0.10", last: "10.0.0.10"},
		{in: "2001:db8::1-2001:db8::ff", first: "2001:db8::1", last: "2001:db8::ff"},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33" is not a valid CIDR or range`},
		{in: "10.0.0.0", err: "is not a valid CIDR or range"},
		{in: "", err: "is not a valid CIDR or range"},
		{in: "banana", err: "is not a valid CIDR or range"},
		{in: "10.0.0.300/24", err: "is not a valid CIDR or range"},
		{in: "10.0.0.5-", err: "is not a valid CIDR or range"},
		{in: "10.0.0.5-2001:db8::1", err: "mixes IPv4 and IPv6"},
		{in: "10.0.0.20-10.0.0.10", err: "end before its start"},
		{in: "fe80::1%eth0/64", err: "is not a valid CIDR or range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseRange(%q) = %v, %v; want error containing %q", tt.in, r, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tt.in, err)
			}
			want := Range{First: netip.MustParseAddr(tt.first), Last: netip.MustParseAddr(tt.last)}
			if r != want {
				t.Fatalf("ParseRange(%q) = %v, want %v", tt.in, r, want)
			}
		})
	}
}

func TestParseAddressesNamesField(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "spec.addresses: must list at least one CIDR or range"},
		{[]string{"10.0.1.0/24", "10.0.0.0/33"}, `spec.addresses[1]: "10.0.0.0/33" is not a valid CIDR or range`},
		{[]string{"10.0.0.0/24", "10.0.0.128-10.0.1.5"}, `spec.addresses[1]: "10.0.0.128-10.0.1.5" overlaps spec.addresses[0] "10.0.0.0/24"`},
	}
	for _, tt := range tests {
		_, err := ParseAddresses(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseAddresses(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
	rs, err := ParseAddresses([]string{"10.0.0.0/24", "2001:db8::/120"})
	if err != nil || len(rs) != 2 || FamilyOf(rs[1].First) != IPv6 {
		t.Fatalf("ParseAddresses valid = %v, %v", rs, err)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.0.0.0/24", "2001:db8::/64", "10.0.0.1-10.0.0.9", "::ffff:1.2.3.4/120",
		"1.2.3.4 - 1.2.3.4", "0.0.0.0/0", "::/0", "10.0.0.0/33", "a-b", "-", "1.1.1.1-::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if r != (Range{}) {
				t.Fatalf("error with non-zero range %v", r)
			}
			return
		}
		if !r.First.IsValid() || !r.Last.IsValid() {
			t.Fatalf("%q: invalid addresses in %v", s, r)
		}
		if r.First.Is4() != r.Last.Is4() || r.First.Is4In6() || r.Last.Is4In6() {
			t.Fatalf("%q: mixed or mapped families in %v", s, r)
		}
		if r.Last.Less(r.First) {
			t.Fatalf("%q: end before start in %v", s, r)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Fatalf("%q: range does not contain its ends", s)
		}
		// The canonical "first-last" form parses back to the same range.
		again, err := ParseRange(r.String())
		if err != nil || again != r {
			t.Fatalf("%q: reparse of %q = %v, %v", s, r.String(), again, err)
		}
		// A range never enumerates: its size is computed arithmetically.
		if sz := rangeSize(r.First, r.Last); sz == (u128{}) {
			t.Fatalf("%q: zero size", s)
		}
	})
}
