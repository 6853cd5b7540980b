package validation

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

func ptr[T any](v T) *T { return &v }

func span(name string, created int, addrs ...string) PoolSpan {
	rs, err := PoolAddresses(addrs)
	if err != nil {
		panic(err)
	}
	return PoolSpan{Name: name, Created: time.Unix(int64(created), 0), Ranges: rs}
}

func TestResolveOverlaps(t *testing.T) {
	tests := []struct {
		name  string
		pools []PoolSpan
		want  map[string]string // rejected pool -> error substring
	}{
		{
			name:  "disjoint pools are all accepted",
			pools: []PoolSpan{span("a", 1, "10.0.0.0/24"), span("b", 2, "10.0.1.0/24"), span("v6", 0, "2001:db8::/64")},
		},
		{
			// The case: a-new-pool sorts first by name but is newer.
			name:  "older pool wins whatever the names",
			pools: []PoolSpan{span("prod-pool", 10, "203.0.113.0/24"), span("a-new-pool", 20, "203.0.113.0/25")},
			want:  map[string]string{"a-new-pool": `spec.addresses[0]: overlaps IPAddressPool "prod-pool" in 203.0.113.0-203.0.113.127`},
		},
		{
			name:  "same creation time: name decides",
			pools: []PoolSpan{span("b", 5, "10.0.0.0/24"), span("a", 5, "10.0.0.128-10.0.0.130")},
			want:  map[string]string{"b": `overlaps IPAddressPool "a" in 10.0.0.128-10.0.0.130`},
		},
		{
			name: "a rejected pool does not block a younger one",
			pools: []PoolSpan{span("c", 3, "10.0.1.0/24"), span("a", 1, "10.0.0.0/24"),
				span("b", 2, "10.0.0.0/23")},
			want: map[string]string{"b": `IPAddressPool "a"`},
		},
		{
			name:  "second entry overlaps",
			pools: []PoolSpan{span("old", 1, "10.9.0.0/24"), span("new", 2, "10.0.0.0/24", "10.9.0.7/32")},
			want:  map[string]string{"new": `spec.addresses[1]: overlaps IPAddressPool "old" in 10.9.0.7-10.9.0.7`},
		},
		{
			name:  "IPv4 and IPv6 never overlap",
			pools: []PoolSpan{span("a", 1, "0.0.0.0/0"), span("b", 2, "::/0")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolveOverlaps(tt.pools)
			if len(got) != len(tt.want) {
				t.Fatalf("rejected %v, want %v", got, tt.want)
			}
			for name, sub := range tt.want {
				e := got[name]
				if e == nil || !strings.Contains(e.Error(), sub) {
					t.Errorf("pool %s: error %v, want it to contain %q", name, e, sub)
				}
			}
			// The verdict does not depend on the order the pools are given in.
			rev := make([]PoolSpan, len(tt.pools))
			for i, p := range tt.pools {
				rev[len(rev)-1-i] = p
			}
			again := ResolveOverlaps(rev)
			for name := range got {
				if again[name] == nil || again[name].Error() != got[name].Error() {
					t.Errorf("order-dependent verdict for %s: %v vs %v", name, got[name], again[name])
				}
			}
		})
	}
}

func TestPool(t *testing.T) {
	tests := []struct {
		name string
		spec v1beta1.IPAddressPoolSpec
		err  string
	}{
		{name: "valid", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "2001:db8::1-2001:db8::9"}}},
		{name: "bad prefix length", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.1.0.0/24", "10.0.0.0/33"}},
			err: `spec.addresses[1]: "10.0.0.0/33" is not a valid CIDR or range`},
		{name: "empty", err: "spec.addresses: must list at least one"},
		{name: "entries overlap", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/24", "10.0.0.5-10.0.0.6"}},
			err: `spec.addresses[1]: "10.0.0.5-10.0.0.6" overlaps spec.addresses[0]`},
		{name: "avoidBuggyIPs on a huge range", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"0.0.0.0/5"}, AvoidBuggyIPs: true},
			err: `spec.addresses[0]: "0.0.0.0/5" is too large to use with avoidBuggyIPs`},
		{name: "avoidBuggyIPs on a /6 is fine", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"4.0.0.0/6"}, AvoidBuggyIPs: true}},
		{name: "bad serviceAllocation selector", spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/24"},
			AllocateTo: &v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}}},
			err: "spec.serviceAllocation.serviceSelectors[0]: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pool(&v1beta1.IPAddressPool{Spec: tt.spec})
			if tt.err == "" && err != nil {
				t.Fatal(err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestTimers(t *testing.T) {
	s := time.Second
	tests := []struct {
		name            string
		hold, keepalive *time.Duration
		wantHold, wantK time.Duration
		err             string
	}{
		{name: "defaults", wantHold: 90 * s, wantK: 30 * s},
		{name: "hold only", hold: ptr(9 * s), wantHold: 9 * s, wantK: 3 * s},
		{name: "both", hold: ptr(30 * s), keepalive: ptr(10 * s), wantHold: 30 * s, wantK: 10 * s},
		{name: "keepalive just below hold", hold: ptr(30 * s), keepalive: ptr(29 * s), wantHold: 30 * s, wantK: 29 * s},
		{name: "keepalive equal to hold", hold: ptr(30 * s), keepalive: ptr(30 * s), err: "spec.keepaliveTime: 30s must be lower than holdTime 30s"},
		{name: "keepalive above default hold", keepalive: ptr(100 * s), err: "spec.keepaliveTime: 1m40s must be lower than holdTime 1m30s"},
		{name: "keepalive zero", keepalive: ptr(time.Duration(0)), err: "spec.keepaliveTime: 0s must be positive"},
		{name: "hold zero", hold: ptr(time.Duration(0)), err: "spec.holdTime: 0s (no keepalives) is not supported"},
		{name: "hold 1s", hold: ptr(s), err: "spec.holdTime: 1s is below the BGP minimum of 3s"},
		{name: "hold too long", hold: ptr(65536 * s), err: "spec.holdTime: 18h12m16s is above the BGP maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, k, err := Timers(tt.hold, tt.keepalive)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || h != tt.wantHold || k != tt.wantK {
				t.Fatalf("Timers = %s, %s, %v; want %s, %s", h, k, err, tt.wantHold, tt.wantK)
			}
		})
	}
}

func TestBGPPeer(t *testing.T) {
	valid := func() *v1beta2.BGPPeer {
		return &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor1"},
			Spec: v1beta2.BGPPeerSpec{MyASN: 65100, ASN: 65000, Address: "10.0.0.1"}}
	}
	tests := []struct {
		name string
		mut  func(*v1beta2.BGPPeerSpec)
		err  string
	}{
		{name: "valid", mut: func(*v1beta2.BGPPeerSpec) {}},
		{name: "vrf", mut: func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red" }, err: `spec.vrf: "red": VRFs are not supported`},
		{name: "disableMP", mut: func(s *v1beta2.BGPPeerSpec) { s.DisableMP = true }, err: "spec.disableMP: true is not supported"},
		{name: "holdTime 0", mut: func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{} }, err: "spec.holdTime: 0s"},
		{name: "keepalive equals hold", mut: func(s *v1beta2.BGPPeerSpec) {
			s.HoldTime, s.KeepaliveTime = &metav1.Duration{Duration: 9 * time.Second}, &metav1.Duration{Duration: 9 * time.Second}
		}, err: "spec.keepaliveTime: 9s must be lower than holdTime 9s"},
		{name: "connectTime", mut: func(s *v1beta2.BGPPeerSpec) { s.ConnectTime = &metav1.Duration{Duration: time.Millisecond} }, err: "spec.connectTime"},
		{name: "no myASN", mut: func(s *v1beta2.BGPPeerSpec) { s.MyASN = 0 }, err: "spec.myASN: must be set"},
		{name: "no peerASN", mut: func(s *v1beta2.BGPPeerSpec) { s.ASN = 0 }, err: "spec.peerASN: must be set"},
		{name: "dynamicASN", mut: func(s *v1beta2.BGPPeerSpec) { s.ASN, s.DynamicASN = 0, v1beta2.ExternalASNMode }, err: `spec.dynamicASN: "external": learning the router's AS number is not supported by ecmplb yet`},
		{name: "bad address", mut: func(s *v1beta2.BGPPeerSpec) { s.Address = "nope" }, err: `spec.peerAddress: "nope"`},
		{name: "bad source", mut: func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "x" }, err: "spec.sourceAddress"},
		{name: "IPv6 router ID", mut: func(s *v1beta2.BGPPeerSpec) { s.RouterID = "::1" }, err: "spec.routerID"},
		{name: "password twice", mut: func(s *v1beta2.BGPPeerSpec) {
			s.Password, s.PasswordSecret = "a", corev1.SecretReference{Name: "b"}
		}, err: "spec.passwordSecret: must not be set together with spec.password"},
		{name: "iBGP multi-hop", mut: func(s *v1beta2.BGPPeerSpec) { s.ASN, s.EBGPMultiHop = s.MyASN, true }, err: "spec.ebgpMultiHop: must not be set for an iBGP peer"},
		{name: "eBGP multi-hop", mut: func(s *v1beta2.BGPPeerSpec) { s.EBGPMultiHop = true }},
		{name: "iBGP single-hop", mut: func(s *v1beta2.BGPPeerSpec) { s.ASN = s.MyASN }},
		{name: "interface", mut: func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth0" }, err: `spec.interface: "eth0": unnumbered BGP is not supported by ecmplb yet`},
		{name: "dualStackAddressFamily", mut: func(s *v1beta2.BGPPeerSpec) { s.DualStackAddressFamily = true }},
		{name: "IPv6 peer", mut: func(s *v1beta2.BGPPeerSpec) { s.Address, s.SrcAddress = "fd00::1", "fd00::21" }},
		{name: "source of the other family", mut: func(s *v1beta2.BGPPeerSpec) { s.Address, s.SrcAddress = "fd00::1", "10.0.0.21" },
			err: "spec.sourceAddress: 10.0.0.21 is not of the family of spec.peerAddress fd00::1"},
		{name: "bad node selector", mut: func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}
		}, err: "spec.nodeSelectors[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.mut(&p.Spec)
			err := BGPPeer(p)
			if tt.err == "" && err != nil {
				t.Fatal(err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPasswordFromSecret(t *testing.T) {
	good := &corev1.Secret{Type: PasswordSecretType, Data: map[string][]byte{"password": []byte("pw")}}
	if pw, err := PasswordFromSecret(good, "ns", "s"); err != nil || pw != "pw" {
		t.Fatalf("got %q, %v", pw, err)
	}
	for _, sec := range []*corev1.Secret{nil, {Type: corev1.SecretTypeOpaque, Data: good.Data}} {
		if _, err := PasswordFromSecret(sec, "ns", "s"); err == nil || !strings.Contains(err.Error(), "spec.passwordSecret: Secret ns/s of type kubernetes.io/basic-auth not found") {
			t.Errorf("error %v", err)
		}
	}
	if _, err := PasswordFromSecret(&corev1.Secret{Type: PasswordSecretType}, "ns", "s"); err == nil || !strings.Contains(err.Error(), `no key "password"`) {
		t.Errorf("error %v", err)
	}
}

func TestHandlesService(t *testing.T) {
	other := "other.io/lb"
	mk := func(typ corev1.ServiceType, class *string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: typ, LoadBalancerClass: class}}
	}
	tests := []struct {
		name  string
		svc   *corev1.Service
		class string
		want  bool
	}{
		{"no class, default", mk(corev1.ServiceTypeLoadBalancer, nil), "", true},
		{"no class, class configured", mk(corev1.ServiceTypeLoadBalancer, nil), other, false},
		{"other class, default", mk(corev1.ServiceTypeLoadBalancer, &other), "", false},
		{"matching class", mk(corev1.ServiceTypeLoadBalancer, &other), other, true},
		{"ClusterIP", mk(corev1.ServiceTypeClusterIP, nil), "", false},
	}
	for _, tt := range tests {
		if got := HandlesService(tt.svc, tt.class); got != tt.want {
			t.Errorf("%s: HandlesService = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRangeIntersect(t *testing.T) {
	a := Range{netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.0.10")}
	b := Range{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.20")}
	if got, ok := a.Intersect(b); !ok || got.String() != "10.0.0.5-10.0.0.10" {
		t.Fatalf("Intersect = %v, %v", got, ok)
	}
	if _, ok := a.Intersect(Range{netip.MustParseAddr("10.0.0.11"), netip.MustParseAddr("10.0.0.12")}); ok {
		t.Fatal("disjoint ranges intersect")
	}
}

func TestInterfaceName(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string
	}{
		{"eth0", ""}, {"enp0s31f6", ""}, {"bond0.100", ""}, {"br-lan_1", ""}, {"abcdefghijklmno", ""},
		{"", "must not be empty"},
		{"abcdefghijklmnop", "longer than 15 bytes"},
		{".", "not an interface name"}, {"..", "not an interface name"},
		{"eth0/1", `holds "/"`}, {"eth0:1", `holds "/" or ":"`},
		{"eth 0", "white space"}, {"eth\t0", "white space"},
	} {
		err := InterfaceName(tc.name)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestL2Advertisement(t *testing.T) {
	ad := &v1beta1.L2Advertisement{Spec: v1beta1.L2AdvertisementSpec{
		Interfaces:    []string{"eth0", "much-too-long-name0", "ok"},
		NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}},
	}}
	err := L2Advertisement(ad)
	for _, want := range []string{"spec.interfaces[1]: \"much-too-long-name0\" is longer than 15 bytes", "spec.nodeSelectors"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want it to contain %q", err, want)
		}
	}
	if err := L2Advertisement(&v1beta1.L2Advertisement{Spec: v1beta1.L2AdvertisementSpec{Interfaces: []string{"eth0"}}}); err != nil {
		t.Errorf("good: %v", err)
	}
}
