package kindconfig

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

func TestParseNetworkPlan(t *testing.T) {
	p, err := ParseNetworkPlan("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--subnet", "10.0.0.0/24", "--gateway", "10.0.0.254", "--ip-range", "10.0.0.128/26"}
	if got := p.dockerArgs(); !slices.Equal(got, want) {
		t.Errorf("default plan: %v, want %v", got, want)
	}
	// The ToRs' addresses of the example manifests are neither the bridge's
	// nor Docker's to hand out.
	for _, tor := range []string{"10.0.0.1", "10.0.0.2"} {
		a := netip.MustParseAddr(tor)
		if a == p.Gateway || p.IPRange.Contains(a) || !p.Subnet.Contains(a) {
			t.Errorf("ToR address %s is not reserved for the ToRs by %+v", a, p)
		}
	}
	for _, tc := range []struct{ subnet, gw, rng, err string }{
		{"10.0.0.0/33", "", "", "subnet"},
		{"fd00::/64", "fd00::1", "fd00::/96", "IPv4 only"},
		{"", "10.0.1.1", "", "gateway 10.0.1.1: outside the subnet"},
		{"", "", "10.0.1.0/26", "IP range 10.0.1.0/26: outside the subnet"},
		{"", "", "10.0.0.0/23", "outside the subnet"},
		{"", "10.0.0.130", "", "inside the node IP range"},
		{"", "x", "", "gateway"},
	} {
		if _, err := ParseNetworkPlan(tc.subnet, tc.gw, tc.rng); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseNetworkPlan(%q, %q, %q) = %v, want an error with %q", tc.subnet, tc.gw, tc.rng, err, tc.err)
		}
	}
	if _, err := (Options{Name: "x", NetworkGateway: "10.0.0.1", NetworkIPRange: "10.0.0.0/26"}).withDefaults(); err == nil {
		t.Error("Options with the gateway inside the node range accepted")
	}
}

func TestOverlappingRoute(t *testing.T) {
	subnet := netip.MustParsePrefix("10.0.0.0/24")
	p := func(ss ...string) (out []netip.Prefix) {
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		routes []string
		want   string // "" none
	}{
		{nil, ""},
		{[]string{"0.0.0.0/0", "192.0.2.0/24", "172.17.0.0/16"}, ""},
		{[]string{"192.0.2.0/24", "10.0.0.0/8"}, "10.0.0.0/8"}, // a VPN's route into it
		{[]string{"10.0.0.128/25"}, "10.0.0.128/25"},           // part of it
		{[]string{"10.0.0.7/32"}, "10.0.0.7/32"},               // an address in it
		{[]string{"10.0.1.0/24", "9.255.255.255/32"}, ""},      // neighbours
	} {
		got, bad := overlappingRoute(subnet, p(tc.routes...))
		if (tc.want == "") == bad || (bad && got.String() != tc.want) {
			t.Errorf("routes %v: overlap %v %v, want %q", tc.routes, got, bad, tc.want)
		}
	}
}

// A host with a route into the subnet gets no network: checkSubnetFree,
// run where that route exists (a namespace standing in for the host),
// refuses it and names the route.
func TestCheckSubnetFreeRefusesAnOverlap(t *testing.T) {
	lab := netnstest.Lab(t)
	ns := netnstest.NS(t, lab, "host")
	if err := netns.AddAddress(ns, "lo", netip.MustParsePrefix("10.0.0.77/8")); err != nil {
		t.Fatal(err)
	}
	var busy, free error
	if err := netns.Do(ns, func() error {
		busy = checkSubnetFree(netip.MustParsePrefix("10.0.0.0/24"))
		free = checkSubnetFree(netip.MustParsePrefix("172.30.0.0/24"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if busy == nil || !strings.Contains(busy.Error(), "10.0.0.0/8") {
		t.Errorf("subnet inside the host's 10.0.0.0/8: err %v, want a refusal naming the route", busy)
	}
	if free != nil {
		t.Errorf("free subnet refused: %v", free)
	}
}
