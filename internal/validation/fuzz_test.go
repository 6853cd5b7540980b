package validation

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// FuzzParseCommunity: whatever parses renders back to a string that parses
// to the same community, and the 16/32-bit limits hold.
func FuzzParseCommunity(f *testing.F) {
	for _, s := range []string{"65535:65282", "0:0", "large:4294967295:1:2", "no-export", "65536:1", "large:1:2", "1:-1", "large:1:2:3:4", ":", "0x10:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommunity(s)
		if err != nil {
			return
		}
		again, err := ParseCommunity(c.String())
		if err != nil || again != c {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, c, c.String(), again, err)
		}
		if !c.Large && (c.Global|c.Local1|c.Local2) != 0 {
			t.Fatalf("%q: standard community with large parts %+v", s, c)
		}
		if c.Less(c) {
			t.Fatalf("%v < itself", c)
		}
	})
}

// FuzzParseRange: a parsed entry is one family, ordered, and its CIDRs
// cover exactly [First, Last], contiguously; the widest is one of them.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"203.0.113.0/24", "198.51.100.10/24", "10.0.0.240-10.0.0.250", "2001:db8::1-2001:db8::9", "::ffff:10.0.0.0/120", "10.0.0.2-10.0.0.1", "0.0.0.0/0", "::/0", "1.2.3.4 - 1.2.3.4", "fe80::1%eth0/64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) || r.First.Zone() != "" {
			t.Fatalf("%q: bad range %v", s, r)
		}
		ps := r.Prefixes()
		if len(ps) == 0 || len(ps) > 2*r.First.BitLen() {
			t.Fatalf("%q: %d prefixes", s, len(ps))
		}
		next := r.First
		for i, p := range ps {
			if p.Addr() != next || p.Masked() != p {
				t.Fatalf("%q: prefix %d %v does not start at %v", s, i, p, next)
			}
			last := lastOf(p)
			if i == len(ps)-1 {
				if last != r.Last {
					t.Fatalf("%q: prefixes end at %v, not %v", s, last, r.Last)
				}
			} else {
				next = last.Next()
			}
		}
		w := r.widest()
		found := false
		for _, p := range ps {
			found = found || p == w
			if p.Bits() < w.Bits() {
				t.Fatalf("%q: %v wider than widest %v", s, p, w)
			}
		}
		if !found {
			t.Fatalf("%q: widest %v is not one of %v", s, w, ps)
		}
	})
}

// FuzzAdmit: Admit never panics on pools and advertisements built from
// arbitrary strings, admits only pools whose every entry parses, and its
// refusals always name a field.
func FuzzAdmit(f *testing.F) {
	f.Add("203.0.113.0/24", "203.0.113.128/25", "65535:65282", int32(24), uint32(100), "tier")
	f.Add("10.0.0.240-10.0.0.250", "2001:db8::/120", "large:1:2:3", int32(29), uint32(0), "")
	f.Add("", "x", "vpn-only", int32(-1), uint32(7), "bad key!")
	f.Fuzz(func(t *testing.T, a1, a2, comm string, agg int32, pref uint32, label string) {
		other := v1beta1.IPAddressPool{ObjectMeta: meta("other"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{a2}}}
		other.Labels = map[string]string{"tier": "gold"}
		adv := v1beta1.BGPAdvertisement{ObjectMeta: meta("adv"), Spec: v1beta1.BGPAdvertisementSpec{
			AggregationLength: &agg, LocalPref: pref, Communities: []string{comm},
			IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "gold"}}},
		}}
		s := Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{other},
			Advertisements: []v1beta1.BGPAdvertisement{tadv("local", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100 })},
			Communities:    []v1beta1.Community{tcomm("c", "vpn-only", "1234:1")}}
		pool := &v1beta1.IPAddressPool{ObjectMeta: meta("new"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{a1, a2}}}
		for _, obj := range []interface {
			GetName() string
		}{pool, &adv} {
			var err error
			switch o := obj.(type) {
			case *v1beta1.IPAddressPool:
				err = Admit(Create, o, s)
				if err == nil {
					for _, e := range o.Spec.Addresses {
						if _, perr := ParseRange(e); perr != nil {
							t.Fatalf("admitted pool with entry %q: %v", e, perr)
						}
					}
				}
			case *v1beta1.BGPAdvertisement:
				err = Admit(Create, o, s)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "spec.") && !strings.HasPrefix(err.Error(), "metadata.") {
				t.Fatalf("refusal names no field: %v", err)
			}
		}
	})
}
