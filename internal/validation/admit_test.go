package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

const ns = "metallb-system"

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

func tpool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: meta(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func tadv(name string, mut func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: meta(name)}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func tpeer(name, addr string, mut func(*v1beta2.BGPPeerSpec)) v1beta2.BGPPeer {
	p := v1beta2.BGPPeer{ObjectMeta: meta(name), Spec: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: addr}}
	if mut != nil {
		mut(&p.Spec)
	}
	return p
}

func tcomm(name string, kv ...string) v1beta1.Community {
	c := v1beta1.Community{ObjectMeta: meta(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

func sel(k, v string) []metav1.LabelSelector {
	return []metav1.LabelSelector{{MatchLabels: map[string]string{k: v}}}
}

func u32(v uint32) *uint32 { return &v }

func TestAdmit(t *testing.T) {
	pool24 := tpool("p24", "203.0.113.0/24")
	dual := tpool("dual", "198.51.100.0/24", "2001:db8::/120")
	labelled := tpool("labelled", "192.0.2.0/24")
	labelled.Labels = map[string]string{"tier": "gold"}
	rangePool := tpool("range", "10.0.0.240-10.0.0.250")
	invalid := tpool("invalid", "203.0.113.0/33")
	local100 := tadv("local", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools, s.LocalPref = []string{"p24"}, 100 })
	withBFD := tpeer("tor", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" })
	basicAuth := &corev1.Secret{ObjectMeta: meta("pw"), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("x")}}
	opaque := &corev1.Secret{ObjectMeta: meta("opaque"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}}
	p := func(o v1beta1.IPAddressPool) *v1beta1.IPAddressPool { return &o }
	a := func(o v1beta1.BGPAdvertisement) *v1beta1.BGPAdvertisement { return &o }
	pr := func(o v1beta2.BGPPeer) *v1beta2.BGPPeer { return &o }
	c := func(o v1beta1.Community) *v1beta1.Community { return &o }

	tests := []struct {
		name string
		op   Operation
		obj  client.Object
		s    Snapshot
		err  string // "" = admitted; else a substring of the refusal
	}{
		// Namespace.
		{name: "namespace: outside", obj: &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: pool24.Spec},
			s: Snapshot{Namespace: ns}, err: `metadata.namespace: "default": ecmplb reads its configuration from namespace "metallb-system" only`},
		{name: "namespace: not configured checks nothing", obj: &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: pool24.Spec}},
		{name: "namespace: delete elsewhere is fine", op: Delete, obj: &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}, s: Snapshot{Namespace: ns}},

		// Pools.
		{name: "pool: valid", obj: p(pool24), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{dual}}},
		{name: "pool: overlaps another pool, whatever its age", obj: p(tpool("new", "203.0.113.128/25")), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{pool24}},
			err: `spec.addresses[0]: "203.0.113.128/25" overlaps IPAddressPool "p24" in 203.0.113.128-203.0.113.255`},
		{name: "pool: second entry overlaps an IPv6 pool", obj: p(tpool("new", "10.1.0.0/24", "2001:db8::80-2001:db8::90")), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{dual}},
			err: `spec.addresses[1]: "2001:db8::80-2001:db8::90" overlaps IPAddressPool "dual"`},
		{name: "pool: an update does not overlap its old self", op: Update, obj: p(tpool("p24", "203.0.113.0/25")), s: Snapshot{Namespace: ns}},
		{name: "pool: an invalid stored pool overlaps nothing", obj: p(pool24), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{invalid}}},
		{name: "pool: invalid entry", obj: p(invalid), err: `spec.addresses[0]: "203.0.113.0/33" is not a valid CIDR or range`},
		{name: "pool: narrower than an advertisement's aggregation", obj: p(tpool("p24", "203.0.113.0/25")),
			s:   Snapshot{Namespace: ns, Advertisements: []v1beta1.BGPAdvertisement{tadv("agg", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(24)) })}},
			err: `spec.addresses[0]: BGPAdvertisement "agg": spec.aggregationLength: 24 is shorter than prefix 203.0.113.0/25`},
		{name: "pool: advertisement selecting other pools does not matter", obj: p(tpool("p24", "203.0.113.0/25")),
			s: Snapshot{Namespace: ns, Advertisements: []v1beta1.BGPAdvertisement{tadv("agg", func(s *v1beta1.BGPAdvertisementSpec) {
				s.AggregationLength, s.IPAddressPoolSelectors = ptr(int32(24)), sel("tier", "gold")
			})}}},

		// Advertisements: aggregation.
		{name: "adv: aggregation shorter than pool prefix", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(16)) })),
			s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{pool24}}, err: `spec.aggregationLength: 16 is shorter than prefix 203.0.113.0/24 of IPAddressPool "p24"`},
		{name: "adv: aggregation of a range follows its widest CIDR (MetalLB)", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(29)) })),
			s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{rangePool}}},
		{name: "adv: aggregation wider than a range's widest CIDR", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(28)) })),
			s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{rangePool}}, err: "spec.aggregationLength: 28 is shorter than prefix 10.0.0.240/29"},
		{name: "adv: IPv6 aggregation", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLengthV6 = ptr(int32(64)) })),
			s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{dual}}, err: "spec.aggregationLengthV6: 64 is shorter than prefix 2001:db8::/120"},
		{name: "adv: aggregation only against the pools it selects", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLength, s.IPAddressPoolSelectors = ptr(int32(16)), sel("tier", "silver")
		})), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{labelled}}},
		{name: "adv: aggregation against a pool selected by label", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLength, s.IPAddressPoolSelectors = ptr(int32(16)), sel("tier", "gold")
		})), s: Snapshot{Namespace: ns, Pools: []v1beta1.IPAddressPool{labelled}}, err: `IPAddressPool "labelled"`},
		{name: "adv: aggregation out of range", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(33)) })), err: "spec.aggregationLength: 33 is outside 0-32"},
		{name: "adv: serviceSelectors with aggregation", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLengthV6, s.ServiceSelectors = ptr(int32(64)), sel("app", "x")
		})), err: "spec.aggregationLengthV6: 64 cannot be used with spec.serviceSelectors"},

		// Advertisements: communities.
		{name: "adv: communities of every form", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"65535:65282", "large:4294967295:1:2", "no-export", "vpn-only"}
		})), s: Snapshot{Communities: []v1beta1.Community{tcomm("c", "vpn-only", "1234:1")}}},
		{name: "adv: unknown alias", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"1:1", "gold"} })),
			s: Snapshot{Communities: []v1beta1.Community{tcomm("c", "vpn-only", "1234:1")}}, err: `spec.communities[1]: community "gold": want a:b or large:a:b:c (and no Community alias of that name)`},
		{name: "adv: 16-bit overflow", obj: a(tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"65536:1"} })), err: `spec.communities[0]: community "65536:1": "65536" is not a 16-bit number`},

		// Advertisements: local preference.
		{name: "localPref: same pool, peers and nodes", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools, s.LocalPref = []string{"p24"}, 200 })),
			s:   Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}},
			err: `spec.localPref: 200 conflicts with localPref 100 of BGPAdvertisement "local"`},
		{name: "localPref: unset against 100 conflicts too (MetalLB)", obj: a(tadv("b", nil)),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}}, err: "spec.localPref: 0 conflicts with localPref 100"},
		{name: "localPref: same value", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 100 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}}},
		{name: "localPref: other aggregation is another route", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr(int32(24)) })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}}},
		{name: "localPref: other pools", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools, s.LocalPref = []string{"dual"}, 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24, dual}, Advertisements: []v1beta1.BGPAdvertisement{local100}}},
		{name: "localPref: disjoint peers", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers, s.LocalPref = []string{"tor2"}, 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"tor1"} })}}},
		{name: "localPref: a shared peer", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers, s.LocalPref = []string{"tor2", "tor1"}, 5 })),
			s:   Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"tor1"} })}},
			err: "spec.localPref: 5 conflicts with localPref 0"},
		{name: "localPref: different node selectors", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.NodeSelectors, s.LocalPref = sel("rack", "b"), 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{tadv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.NodeSelectors = sel("rack", "a") })}}},
		{name: "localPref: every node against some nodes", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.NodeSelectors, s.LocalPref = sel("rack", "b"), 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{tadv("a", nil)}}, err: "spec.localPref"},
		{name: "localPref: serviceSelectors are not compared", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.ServiceSelectors, s.LocalPref = sel("app", "x"), 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}}},
		{name: "localPref: dual-stack pool, IPv6 routes still equal", obj: a(tadv("b", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength, s.LocalPref = ptr(int32(24)), 5 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{dual}, Advertisements: []v1beta1.BGPAdvertisement{tadv("a", nil)}}, err: `IPAddressPool "dual"`},
		{name: "localPref: an update is not compared with its old self", op: Update, obj: a(tadv("local", func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = 300 })),
			s: Snapshot{Pools: []v1beta1.IPAddressPool{pool24}, Advertisements: []v1beta1.BGPAdvertisement{local100}}},

		// Communities.
		{name: "community: valid", obj: c(tcomm("c", "a", "1:1", "b", "large:1:2:3"))},
		{name: "community: bad value", obj: c(tcomm("c", "a", "1:1", "b", "1234")), err: `spec.communities[1].value: alias "b": community "1234"`},
		{name: "community: no name", obj: c(tcomm("c", "", "1:1")), err: "spec.communities[0].name: must be set"},
		{name: "community: twice in one object", obj: c(tcomm("c", "a", "1:1", "a", "1:1")), err: `spec.communities[1].name: alias "a" is already defined in spec.communities[0]`},
		{name: "community: defined by another object", obj: c(tcomm("c2", "x", "1:1", "a", "1:1")), s: Snapshot{Communities: []v1beta1.Community{tcomm("c1", "a", "1:1")}},
			err: `spec.communities[1].name: alias "a" is already defined in Community "c1"`},
		{name: "community: update keeps its own aliases", op: Update, obj: c(tcomm("c1", "a", "2:2")), s: Snapshot{Communities: []v1beta1.Community{tcomm("c1", "a", "1:1")}}},
		{name: "community: update drops an alias in use", op: Update, obj: c(tcomm("c1", "b", "2:2")),
			s:   Snapshot{Advertisements: []v1beta1.BGPAdvertisement{tadv("ad", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"a"} })}},
			err: `spec.communities: BGPAdvertisement "ad" uses "a" in spec.communities[0], which this change leaves undefined`},

		// BFD profiles.
		{name: "bfd: valid", obj: &v1beta1.BFDProfile{ObjectMeta: meta("b"), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: u32(10), TransmitInterval: u32(60000), DetectMultiplier: u32(255), EchoInterval: u32(10), MinimumTTL: u32(1)}}},
		{name: "bfd: every field out of range", obj: &v1beta1.BFDProfile{ObjectMeta: meta("b"), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: u32(9), TransmitInterval: u32(60001), DetectMultiplier: u32(1), EchoInterval: u32(0), MinimumTTL: u32(255)}},
			err: "spec.receiveInterval: 9 is outside 10-60000\nspec.transmitInterval: 60001 is outside 10-60000\nspec.echoInterval: 0 is outside 10-60000\nspec.detectMultiplier: 1 is outside 2-255\nspec.minimumTtl: 255 is outside 1-254"},
		{name: "bfd: delete in use", op: Delete, obj: &v1beta1.BFDProfile{ObjectMeta: meta("fast")}, s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}},
			err: `metadata.name: BFDProfile "fast" is used by BGPPeer "tor" (spec.bfdProfile)`},
		{name: "bfd: delete unused", op: Delete, obj: &v1beta1.BFDProfile{ObjectMeta: meta("slow")}, s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},
		{name: "bfd: update of a profile in use", op: Update, obj: &v1beta1.BFDProfile{ObjectMeta: meta("fast")}, s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},

		// Peers.
		{name: "peer: valid", obj: pr(tpeer("a", "10.0.0.2", nil)), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},
		{name: "peer: duplicate", obj: pr(tpeer("a", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) { s.Port = 179 })), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}},
			err: `spec.peerAddress: BGPPeer "tor" already peers with 10.0.0.1 port 179`},
		{name: "peer: duplicate written as IPv4-mapped IPv6", obj: pr(tpeer("a", "::ffff:10.0.0.1", nil)), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}, err: `BGPPeer "tor" already peers`},
		{name: "peer: same address, other port", obj: pr(tpeer("a", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) { s.Port = 180 })), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},
		{name: "peer: same address, other nodes", obj: pr(tpeer("a", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) { s.NodeSelectors = sel("rack", "a") })), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},
		{name: "peer: update is not its own duplicate", op: Update, obj: pr(tpeer("tor", "10.0.0.1", nil)), s: Snapshot{Peers: []v1beta2.BGPPeer{withBFD}}},
		{name: "peer: missing ASNs", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.MyASN, s.ASN = 0, 0 })), err: "spec.myASN: must be set\nspec.peerASN: must be set"},
		{name: "peer: password Secret missing is allowed (applied next)", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret.Name = "pw" })), s: Snapshot{Namespace: ns}},
		{name: "peer: password Secret of the right type", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret.Name = "pw" })),
			s: Snapshot{Namespace: ns, Secrets: map[string]*corev1.Secret{"pw": basicAuth}}},
		{name: "peer: password Secret of the wrong type", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret.Name = "opaque" })),
			s: Snapshot{Namespace: ns, Secrets: map[string]*corev1.Secret{"opaque": opaque}}, err: `spec.passwordSecret: Secret "opaque" has type "Opaque"`},
		{name: "peer: password Secret in another namespace", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) {
			s.PasswordSecret = corev1.SecretReference{Namespace: "default", Name: "pw"}
		})),
			s: Snapshot{Namespace: ns}, err: `spec.passwordSecret.namespace: "default": the Secret must be in namespace "metallb-system"`},
		{name: "peer: password Secret in the configured namespace, named", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Namespace: ns, Name: "opaque"} })),
			s: Snapshot{Namespace: ns, Secrets: map[string]*corev1.Secret{"opaque": opaque}}, err: "spec.passwordSecret: Secret \"opaque\" has type"},
		{name: "peer: password and passwordSecret", obj: pr(tpeer("a", "10.0.0.2", func(s *v1beta2.BGPPeerSpec) { s.Password, s.PasswordSecret.Name = "x", "pw" })),
			err: "spec.passwordSecret: must not be set together with spec.password"},
		{name: "peer: v1beta1 judged the same (duplicate through its node selectors)", obj: &v1beta1.BGPPeer{ObjectMeta: meta("old"), Spec: v1beta1.BGPPeerSpec{
			MyASN: 64500, ASN: 64501, Address: "10.0.0.1",
			NodeSelectors: []v1beta1.NodeSelector{{MatchExpressions: []v1beta1.MatchExpression{{Key: "rack", Operator: "In", Values: []string{"a"}}}}},
		}}, s: Snapshot{Peers: []v1beta2.BGPPeer{tpeer("tor", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}}}}
		})}}, err: `BGPPeer "tor" already peers`},
		{name: "peer: v1beta1 static checks", obj: &v1beta1.BGPPeer{ObjectMeta: meta("old"), Spec: v1beta1.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "nope"}}, err: `spec.peerAddress: "nope"`},

		// L2 and others.
		{name: "l2: bad preferred weight", obj: &v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{PreferredNodeSelectors: []v1beta1.PreferredNodeSelector{{Weight: 0}}}},
			err: "spec.preferredNodeSelectors[0].weight: 0 is outside 1-100"},
		{name: "l2: bad interface name", obj: &v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{Interfaces: []string{"eth0", "eth0:1"}}},
			err: `spec.interfaces[1]: "eth0:1" holds`},
		{name: "l2: preferred nodes admitted (the speaker rejects them)", obj: &v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{
			PreferredNodeSelectors: []v1beta1.PreferredNodeSelector{{Weight: 10}}}}},
		{name: "other kinds are not judged", obj: &corev1.Service{ObjectMeta: meta("svc")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op
			if op == "" {
				op = Create
			}
			err := Admit(op, tt.obj, tt.s)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("admitted; want %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("refusal %q, want it to contain %q", err, tt.err)
			}
		})
	}
}
