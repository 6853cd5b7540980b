package announce

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func sel(kv ...string) metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return metav1.LabelSelector{MatchLabels: m}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func com(s string) Community {
	c, err := ParseCommunity(s)
	if err != nil {
		panic(err)
	}
	return c
}

var (
	node = Node{Name: "n1", Labels: map[string]string{"zone": "a", "kubernetes.io/hostname": "n1"},
		Addresses: []netip.Addr{ip("10.0.0.21")}}
	tor1     = Peer{Name: "tor1", MyASN: 65100, ASN: 65000, Address: "10.0.0.1"}
	tor2     = Peer{Name: "tor2", MyASN: 65100, ASN: 65000, Address: "10.0.0.2"}
	ibgp     = Peer{Name: "ibgp", MyASN: 65100, ASN: 65100, Address: "10.0.0.3"}
	tor6     = Peer{Name: "tor6", MyASN: 65100, ASN: 65000, Address: "fd00::1"}
	dual4    = Peer{Name: "dual4", MyASN: 65100, ASN: 65000, Address: "10.0.0.4", DualStackAddressFamily: true}
	dual6    = Peer{Name: "dual6", MyASN: 65100, ASN: 65000, Address: "fd00::4", DualStackAddressFamily: true}
	node6    = Node{Name: "n1", Addresses: []netip.Addr{ip("10.0.0.21"), ip("fd00::21")}}
	prodPool = Pool{Name: "prod", Addresses: []string{"203.0.113.0/24"}, Labels: map[string]string{"tier": "prod"}}
	devPool  = Pool{Name: "dev", Addresses: []string{"198.51.100.10-198.51.100.20", "2001:db8::/64"}}
	webSvc   = Service{Key: "default/web", Labels: map[string]string{"app": "web"},
		IPs: []netip.Addr{ip("203.0.113.5")}, AnyEndpoint: true}
)

func TestRoutes(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		node    *Node
		svc     Service
		want    []Route
		wantErr string
	}{
		{
			name: "advertisement with no pools covers all pools; all peers",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1, tor2}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}, {Peer: "tor2", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "pool named: covered",
			cfg:  Config{Pools: []Pool{prodPool, devPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", IPAddressPools: []string{"prod"}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "pool named: other pool not covered",
			cfg:  Config{Pools: []Pool{prodPool, devPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", IPAddressPools: []string{"dev"}}}},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "pool selector matches pool labels",
			cfg: Config{Pools: []Pool{prodPool, devPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "prod")}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "pool selector not matching",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "dev")}}}},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "IP in no pool is not announced",
			cfg:  Config{Pools: []Pool{devPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  webSvc,
			want: []Route{},
		},
		{
			// MetalLB: a session carries its peer address's family only.
			name: "IP in a range pool; IPv6 gets /128, each over the session of its family",
			cfg:  Config{Pools: []Pool{devPool}, Peers: []Peer{tor1, tor6}, Advertisements: []Advertisement{{Name: "a"}}},
			node: &node6,
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("198.51.100.20"), ip("2001:db8::7")}, AnyEndpoint: true},
			want: []Route{{Peer: "tor1", Prefix: pfx("198.51.100.20/32")}, {Peer: "tor6", Prefix: pfx("2001:db8::7/128")}},
		},
		{
			name: "dualStackAddressFamily: both families over either session",
			cfg:  Config{Pools: []Pool{devPool}, Peers: []Peer{dual4, dual6}, Advertisements: []Advertisement{{Name: "a"}}},
			node: &node6,
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("198.51.100.20"), ip("2001:db8::7")}, AnyEndpoint: true},
			want: []Route{{Peer: "dual4", Prefix: pfx("198.51.100.20/32")}, {Peer: "dual4", Prefix: pfx("2001:db8::7/128")},
				{Peer: "dual6", Prefix: pfx("198.51.100.20/32")}, {Peer: "dual6", Prefix: pfx("2001:db8::7/128")}},
		},
		{
			// No next-hop of the other family: those routes are not sent.
			name: "dualStackAddressFamily on a node without an IPv6 address",
			cfg:  Config{Pools: []Pool{devPool}, Peers: []Peer{dual4}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("198.51.100.20"), ip("2001:db8::7")}, AnyEndpoint: true},
			want: []Route{{Peer: "dual4", Prefix: pfx("198.51.100.20/32")}},
		},
		{
			name: "IP just outside a range pool",
			cfg:  Config{Pools: []Pool{devPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("198.51.100.21")}, AnyEndpoint: true},
			want: []Route{},
		},
		{
			name: "aggregation lengths",
			cfg: Config{Pools: []Pool{{Name: "p", Addresses: []string{"203.0.113.0/24", "2001:db8::/64"}}}, Peers: []Peer{tor1, tor6},
				Advertisements: []Advertisement{{Name: "a", AggregationLength: ptr(int32(24)), AggregationLengthV6: ptr(int32(64))}}},
			node: &node6,
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("203.0.113.77"), ip("2001:db8::9")}, AnyEndpoint: true},
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.0/24")}, {Peer: "tor6", Prefix: pfx("2001:db8::/64")}},
		},
		{
			name:    "aggregation shorter than pool prefix is a config error",
			cfg:     Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", AggregationLength: ptr(int32(16))}}},
			svc:     webSvc,
			wantErr: `BGPAdvertisement "a": spec.aggregationLength: 16 is shorter than prefix 203.0.113.0/24`,
		},
		{
			// MetalLB's rule (validation.AggregationFits): a range entry needs its
			// widest CIDR (10.0.0.240/29 of .240-.250) within the aggregation.
			name: "aggregation of a range pool follows its widest CIDR",
			cfg: Config{Pools: []Pool{{Name: "r", Addresses: []string{"10.0.0.240-10.0.0.250"}}}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", AggregationLength: ptr(int32(29))}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("10.0.0.250")}, AnyEndpoint: true},
			want: []Route{{Peer: "tor1", Prefix: pfx("10.0.0.248/29")}},
		},
		{
			name: "aggregation wider than a range pool's widest CIDR",
			cfg: Config{Pools: []Pool{{Name: "r", Addresses: []string{"10.0.0.240-10.0.0.250"}}}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", AggregationLength: ptr(int32(28))}}},
			svc:     Service{Key: "x/y", IPs: []netip.Addr{ip("10.0.0.250")}, AnyEndpoint: true},
			wantErr: `BGPAdvertisement "a": spec.aggregationLength: 28 is shorter than prefix 10.0.0.240/29 of IPAddressPool "r"`,
		},
		{
			name:    "aggregation out of range",
			cfg:     Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", AggregationLength: ptr(int32(33))}}},
			svc:     webSvc,
			wantErr: "spec.aggregationLength: 33 is outside 0-32",
		},
		{
			name: "node selector on advertisement matches",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", NodeSelectors: []metav1.LabelSelector{sel("zone", "b"), sel("zone", "a")}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "node selector on advertisement does not match",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", NodeSelectors: []metav1.LabelSelector{sel("zone", "b")}}}},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "service selector matches",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "service selector does not match",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", ServiceSelectors: []metav1.LabelSelector{sel("app", "db")}}}},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "Local policy with a local endpoint announces",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("203.0.113.5")}, Local: true, LocalEndpoint: true, AnyEndpoint: true},
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "Local policy with endpoints elsewhere only does not announce",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("203.0.113.5")}, Local: true, AnyEndpoint: true},
			want: []Route{},
		},
		{
			name: "Cluster policy with no endpoint anywhere does not announce",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", IPs: []netip.Addr{ip("203.0.113.5")}},
			want: []Route{},
		},
		{
			name: "no allocated IP",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:  Service{Key: "x/y", AnyEndpoint: true},
			want: []Route{},
		},
		{
			name: "excluded node does not announce",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			node: &Node{Name: "n1", Labels: map[string]string{ExcludeLabel: ""}, Addresses: node.Addresses},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "NetworkUnavailable node does not announce",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			node: &Node{Name: "n1", Addresses: node.Addresses, NetworkUnavailable: true},
			svc:  webSvc,
			want: []Route{},
		},
		{
			name: "communities: standard, large, alias, union over overlapping advertisements",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Communities: map[string]string{"vip": "65000:300", "big": "large:1:2:3"},
				Advertisements: []Advertisement{
					{Name: "a", Communities: []string{"65000:100", "vip"}},
					{Name: "b", Communities: []string{"65000:100", "big", "large:4:5:6", "no-export"}},
				}},
			svc: webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32"), Communities: []Community{
				com("65000:100"), com("65000:300"), com("no-export"), com("large:1:2:3"), com("large:4:5:6")}}},
		},
		{
			name:    "invalid community is a config error",
			cfg:     Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", Communities: []string{"70000:1"}}}},
			svc:     webSvc,
			wantErr: `BGPAdvertisement "a": spec.communities: community "70000:1"`,
		},
		{
			name:    "alias with invalid value is a config error",
			cfg:     Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Communities: map[string]string{"bad": "x"}, Advertisements: []Advertisement{{Name: "a", Communities: []string{"bad"}}}},
			svc:     webSvc,
			wantErr: `alias "bad"`,
		},
		{
			name: "local-pref sent to iBGP peers only",
			cfg:  Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1, ibgp}, Advertisements: []Advertisement{{Name: "a", LocalPref: 150}}},
			svc:  webSvc,
			want: []Route{{Peer: "ibgp", Prefix: pfx("203.0.113.5/32"), LocalPref: 150}, {Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "peers limits which BGPPeers get an advertisement",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1, tor2}, Advertisements: []Advertisement{
				{Name: "a", Peers: []string{"tor2"}, Communities: []string{"1:1"}},
				{Name: "b", Peers: []string{"tor1", "nope"}, Communities: []string{"2:2"}},
			}},
			svc: webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32"), Communities: []Community{com("2:2")}},
				{Peer: "tor2", Prefix: pfx("203.0.113.5/32"), Communities: []Community{com("1:1")}}},
		},
		{
			name: "peer node selectors limit sessions and routes",
			cfg: Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "a"}},
				Peers: []Peer{tor1, {Name: "tor2", MyASN: 65100, ASN: 65000, Address: "10.0.0.2", NodeSelectors: []metav1.LabelSelector{sel("zone", "b")}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "conflicting local-prefs for all services are a config error",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{ibgp}, Advertisements: []Advertisement{
				{Name: "a", LocalPref: 100}, {Name: "b", LocalPref: 200}}},
			svc:     webSvc,
			want:    []Route{{Peer: "ibgp", Prefix: pfx("203.0.113.5/32"), LocalPref: 100}},
			wantErr: `BGPAdvertisement "b": spec.localPref: 200 conflicts with 100 of BGPAdvertisement "a" for IPAddressPool "prod" towards BGPPeer "ibgp"`,
		},
		{
			name: "different local-prefs towards eBGP peers do not conflict",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{
				{Name: "a", LocalPref: 100}, {Name: "b", LocalPref: 200}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "local-prefs to disjoint peers do not conflict",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{ibgp, {Name: "ibgp2", MyASN: 65100, ASN: 65100, Address: "10.0.0.4"}}, Advertisements: []Advertisement{
				{Name: "a", LocalPref: 100, Peers: []string{"ibgp"}}, {Name: "b", LocalPref: 200, Peers: []string{"ibgp2"}}}},
			svc: webSvc,
			want: []Route{{Peer: "ibgp", Prefix: pfx("203.0.113.5/32"), LocalPref: 100},
				{Peer: "ibgp2", Prefix: pfx("203.0.113.5/32"), LocalPref: 200}},
		},
		{
			name: "conflicting local-prefs found per service",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{ibgp}, Advertisements: []Advertisement{
				{Name: "a", LocalPref: 100}, {Name: "b", LocalPref: 200, ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}}},
			svc:     webSvc,
			wantErr: `service default/web: prefix 203.0.113.5/32 towards BGPPeer "ibgp": localPref 200 (BGPAdvertisement "b") conflicts with 100`,
		},
		{
			name: "same local-pref from two advertisements is fine",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{ibgp}, Advertisements: []Advertisement{
				{Name: "a", LocalPref: 100}, {Name: "b", LocalPref: 100}, {Name: "c"}}},
			svc:  webSvc,
			want: []Route{{Peer: "ibgp", Prefix: pfx("203.0.113.5/32"), LocalPref: 100}},
		},
		{
			name:    "bad peer address is a config error",
			cfg:     Config{Peers: []Peer{{Name: "x", MyASN: 1, ASN: 2, Address: "nope"}}},
			svc:     webSvc,
			wantErr: `BGPPeer "x": spec.peerAddress`,
		},
		{
			name:    "missing BFD profile is a config error",
			cfg:     Config{Peers: []Peer{{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", BFDProfile: "fast"}}},
			svc:     webSvc,
			wantErr: `BGPPeer "x": spec.bfdProfile: BFDProfile "fast" does not exist`,
		},
		{
			name: "echo on a multi-hop peer is a config error",
			cfg: Config{Peers: []Peer{{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", EBGPMultiHop: true, BFDProfile: "echo"}},
				BFDProfiles: map[string]BFDProfile{"echo": {Name: "echo", EchoMode: ptr(true)}}},
			svc:     webSvc,
			wantErr: `BGPPeer "x": spec.bfdProfile: BFDProfile "echo" has echoMode: true, which the multi-hop BFD session`,
		},
		{
			name: "echo on an IPv6 peer is a config error",
			cfg: Config{Peers: []Peer{{Name: "x", MyASN: 1, ASN: 2, Address: "fd00::1", BFDProfile: "echo"}},
				BFDProfiles: map[string]BFDProfile{"echo": {Name: "echo", EchoMode: ptr(true)}}},
			svc:     webSvc,
			wantErr: `BGPPeer "x": spec.bfdProfile: BFDProfile "echo" has echoMode: true; BFD echo over IPv6 is not supported by ecmplb yet`,
		},
		{
			name:    "bad pool is a config error",
			cfg:     Config{Pools: []Pool{{Name: "p", Addresses: []string{"10.0.0.9-10.0.0.1"}}}},
			svc:     webSvc,
			wantErr: `IPAddressPool "p": spec.addresses[0]: "10.0.0.9-10.0.0.1" has its end before its start`,
		},
		{
			// Issue #8: a-new-pool sorts first by name but prod is older, so prod
			// keeps its addresses and a-new-pool is rejected.
			name: "overlapping pools: the older keeps the addresses",
			cfg: Config{Pools: []Pool{
				{Name: "prod", Addresses: []string{"203.0.113.0/24"}, Created: time.Unix(100, 0)},
				{Name: "a-new-pool", Addresses: []string{"203.0.113.0/25"}, Created: time.Unix(200, 0)}},
				Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", IPAddressPools: []string{"prod"}}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `IPAddressPool "a-new-pool": spec.addresses[0]: overlaps IPAddressPool "prod" in 203.0.113.0-203.0.113.127`,
		},
		{
			name: "overlapping pools with equal creation times: the name decides",
			cfg: Config{Pools: []Pool{
				{Name: "prod", Addresses: []string{"203.0.113.0/24"}},
				{Name: "a-new-pool", Addresses: []string{"203.0.113.0/25"}}},
				Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a", IPAddressPools: []string{"prod"}}}},
			svc:     webSvc,
			want:    []Route{},
			wantErr: `IPAddressPool "prod": spec.addresses[0]: overlaps IPAddressPool "a-new-pool"`,
		},
		{
			name: "a bad peer for another rack is not checked on this node",
			cfg: Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "a"}},
				Peers: []Peer{tor1, {Name: "r2", MyASN: 1, ASN: 2, Address: "10.2.0.1", HoldTime: ptr(time.Second),
					Err: errors.New("spec.passwordSecret: Secret x/y not found"), NodeSelectors: []metav1.LabelSelector{sel("rack", "2")}}}},
			svc:  webSvc,
			want: []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
		},
		{
			name: "a bad peer on this node is rejected alone",
			cfg: Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "a"}},
				Peers: []Peer{tor1, {Name: "r2", MyASN: 1, ASN: 2, Address: "10.2.0.1", HoldTime: ptr(time.Second)}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `BGPPeer "r2": spec.holdTime: 1s is below the BGP minimum of 3s`,
		},
		{
			name: "a peer with a reading problem (missing Secret) is rejected alone",
			cfg: Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "a"}},
				Peers: []Peer{tor1, {Name: "r2", MyASN: 1, ASN: 2, Address: "10.2.0.1", Err: errors.New("spec.passwordSecret: Secret x/y not found")}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `BGPPeer "r2": spec.passwordSecret: Secret x/y not found`,
		},
		{
			name: "a bad pool beside a good one",
			cfg: Config{Pools: []Pool{prodPool, {Name: "bad", Addresses: []string{"10.0.0.0/33"}}},
				Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `IPAddressPool "bad": spec.addresses[0]: "10.0.0.0/33" is not a valid CIDR or range`,
		},
		{
			name: "a pool with a reading problem is rejected",
			cfg: Config{Pools: []Pool{{Name: "prod", Addresses: []string{"203.0.113.0/24"}, Err: errors.New("spec.serviceAllocation.serviceSelectors[0]: bad")}},
				Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "a"}}},
			svc:     webSvc,
			want:    []Route{},
			wantErr: `IPAddressPool "prod": spec.serviceAllocation.serviceSelectors[0]: bad`,
		},
		{
			name: "a bad community rejects only its advertisement",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1},
				Advertisements: []Advertisement{{Name: "a", Communities: []string{"1:1"}}, {Name: "b", Communities: []string{"65000:70000"}}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32"), Communities: []Community{com("1:1")}}},
			wantErr: `BGPAdvertisement "b": spec.communities: community "65000:70000": "70000" is not a 16-bit number`,
		},
		{
			name: "an invalid alias rejects only the advertisement using it",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Communities: map[string]string{"bad": "x"},
				Advertisements: []Advertisement{{Name: "a"}, {Name: "b", Communities: []string{"bad"}}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `BGPAdvertisement "b": spec.communities: alias "bad"`,
		},
		{
			name: "a peer naming a missing BFDProfile is rejected alone",
			cfg: Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "a"}},
				Peers: []Peer{tor1, {Name: "tor2", MyASN: 65100, ASN: 65000, Address: "10.0.0.2", BFDProfile: "fast"}}},
			svc:     webSvc,
			want:    []Route{{Peer: "tor1", Prefix: pfx("203.0.113.5/32")}},
			wantErr: `BGPPeer "tor2": spec.bfdProfile: BFDProfile "fast" does not exist`,
		},
		{
			name:    "bad selector is a config error",
			cfg:     Config{Advertisements: []Advertisement{{Name: "a", NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}}}},
			svc:     webSvc,
			wantErr: `BGPAdvertisement "a": spec.nodeSelectors`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := node
			if tt.node != nil {
				n = *tt.node
			}
			plan, problems := Compile(tt.cfg, n)
			got, err := plan.Routes(tt.svc)
			var errs []error
			for _, p := range problems {
				errs = append(errs, p)
			}
			errs = append(errs, err)
			err = errors.Join(errs...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.want == nil {
					return
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got == nil {
				got = []Route{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	bp := BFDProfile{Name: "fast", ReceiveInterval: ptr(uint32(50))}
	cfg := Config{
		BFDProfiles: map[string]BFDProfile{"fast": bp},
		Peers: []Peer{
			{Name: "b", MyASN: 65100, ASN: 65000, Address: "10.0.0.2", Port: 1790, SrcAddress: "10.0.0.31",
				HoldTime: ptr(9 * time.Second), ConnectTime: ptr(2 * time.Second), Password: "pw",
				BFDProfile: "fast", EnableGracefulRestart: true, EBGPMultiHop: true},
			{Name: "a", MyASN: 65100, ASN: 65100, Address: "10.0.0.1", RouterID: "1.2.3.4", KeepaliveTime: ptr(10 * time.Second)},
			{Name: "c", MyASN: 65100, ASN: 65000, Address: "10.0.0.3", NodeSelectors: []metav1.LabelSelector{sel("zone", "z")}},
		},
	}
	plan, problems := Compile(cfg, node)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := []Session{
		{Name: "a", MyASN: 65100, PeerASN: 65100, PeerAddress: ip("10.0.0.1"), PeerPort: 179, RouterID: ip("1.2.3.4"),
			HoldTime: 90 * time.Second, KeepaliveTime: 10 * time.Second, ConnectTime: 5 * time.Second},
		{Name: "b", MyASN: 65100, PeerASN: 65000, PeerAddress: ip("10.0.0.2"), PeerPort: 1790, SourceAddress: ip("10.0.0.31"),
			RouterID: ip("10.0.0.31"), HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 2 * time.Second,
			EBGPMultiHop: true, Password: "pw", GracefulRestart: true, BFD: &bp},
	}
	if got := plan.Sessions(); !reflect.DeepEqual(got, want) {
		t.Errorf("sessions:\n got %+v\nwant %+v", got, want)
	}
	if !want[0].IBGP() || want[1].IBGP() {
		t.Error("IBGP() wrong")
	}

	for _, tc := range []struct {
		peer Peer
		node Node
		err  string
	}{
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", HoldTime: ptr(time.Second)}, node, "spec.holdTime"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", KeepaliveTime: ptr(100 * time.Second)}, node, "spec.keepaliveTime"},
		{Peer{Name: "x", ASN: 2, Address: "10.0.0.1"}, node, "spec.myASN"},
		{Peer{Name: "x", MyASN: 1, Address: "10.0.0.1"}, node, "spec.peerASN"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", RouterID: "::1"}, node, "spec.routerID"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1"}, Node{Name: "v6", Addresses: []netip.Addr{ip("2001:db8::1")}}, "has no IPv4 address"},
		// Issue #8 (13): never accept silently what GoBGP would not run as written.
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", HoldTime: ptr(9 * time.Second), KeepaliveTime: ptr(9 * time.Second)}, node,
			"spec.keepaliveTime: 9s must be lower than holdTime 9s"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", HoldTime: ptr(time.Duration(0))}, node, "spec.holdTime: 0s (no keepalives) is not supported"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", VRFName: "red"}, node, `spec.vrf: "red": VRFs are not supported`},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", DisableMP: true}, node, "spec.disableMP: true is not supported"},
		{Peer{Name: "x", MyASN: 1, ASN: 2, Address: "10.0.0.1", NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}}, node, "spec.nodeSelectors"},
	} {
		peers := []Peer{tc.peer}
		if tc.node.Name == node.Name {
			peers = append(peers, tor1)
		}
		plan, problems := Compile(Config{Peers: peers}, tc.node)
		if len(problems) != 1 || problems[0].Kind != KindPeer || problems[0].Name != "x" || !strings.Contains(problems[0].Error(), tc.err) {
			t.Errorf("peer %+v: problems %v, want one containing %q", tc.peer, problems, tc.err)
		}
		if tc.node.Name == node.Name && len(plan.Sessions()) != 1 {
			t.Errorf("peer %+v: the good peer did not apply: %v", tc.peer, plan.Sessions())
		}
	}
}

func TestEligibleAndReasons(t *testing.T) {
	plan, _ := Compile(Config{}, node)
	if ok, _ := plan.Eligible(); !ok {
		t.Error("node should be eligible")
	}
	if r := plan.NotAnnouncedReason(Service{IPs: webSvc.IPs, Local: true, AnyEndpoint: true}); !strings.Contains(r, "Local") {
		t.Errorf("reason %q", r)
	}
	plan, _ = Compile(Config{}, Node{Labels: map[string]string{ExcludeLabel: "true"}})
	if ok, why := plan.Eligible(); ok || !strings.Contains(why, ExcludeLabel) {
		t.Errorf("eligible %v %q", ok, why)
	}
}

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Community
		err  bool
	}{
		{"65000:100", Community{Value: 65000<<16 | 100}, false},
		{"0:0", Community{}, false},
		{"65535:65535", Community{Value: 0xFFFFFFFF}, false},
		{"65536:1", Community{}, true},
		{"1:-1", Community{}, true},
		{"abc", Community{}, true},
		{"NO-EXPORT", Community{Value: 0xFFFFFF01}, false},
		{"large:4294967295:2:3", Community{Large: true, Global: 4294967295, Local1: 2, Local2: 3}, false},
		{"large:1:2", Community{}, true},
		{"large:1:2:4294967296", Community{}, true},
	} {
		got, err := ParseCommunity(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseCommunity(%q) = %+v, %v", tc.in, got, err)
		}
		if err == nil && !strings.EqualFold(tc.in, "no-export") {
			if got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		}
	}
}

func TestRangeToPrefixes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"10.0.0.0-10.0.0.255", []string{"10.0.0.0/24"}},
		{"10.0.0.1-10.0.0.6", []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"}},
		{"10.0.0.5-10.0.0.5", []string{"10.0.0.5/32"}},
		{"0.0.0.0-255.255.255.255", []string{"0.0.0.0/0"}},
		{"2001:db8::-2001:db8::3", []string{"2001:db8::/126"}},
	} {
		_, got, err := parseAddresses(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if !reflect.DeepEqual(s, tc.want) {
			t.Errorf("%s: got %v want %v", tc.in, s, tc.want)
		}
	}
}

func TestNextHopV6(t *testing.T) {
	n := Node{Name: "n", Addresses: []netip.Addr{ip("10.0.0.21"), ip("2001:db8::21")}}
	plan, problems := Compile(Config{Peers: []Peer{tor1, {Name: "v6", MyASN: 1, ASN: 2, Address: "2001:db8::1", RouterID: "1.1.1.1"}}}, n)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	s := plan.Sessions()
	if s[0].Name != "tor1" || s[0].NextHopV6 != ip("2001:db8::21") {
		t.Errorf("IPv4 session: NextHopV6 = %v", s[0].NextHopV6)
	}
	if s[1].NextHopV6.IsValid() {
		t.Errorf("IPv6 session should use its local address, got %v", s[1].NextHopV6)
	}
	if s[1].NextHopV4 != ip("10.0.0.21") || s[0].NextHopV4.IsValid() {
		t.Errorf("NextHopV4: IPv4 session %v, IPv6 session %v; want none and 10.0.0.21", s[0].NextHopV4, s[1].NextHopV4)
	}
}

// The routes of one advertisement share its communities (10,000 Services
// would otherwise hold 20,000 copies of the same list), and a holder that
// appends to a route's list does not change another route's.
func TestRoutesShareCommunities(t *testing.T) {
	plan, problems := Compile(Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1, tor2},
		Advertisements: []Advertisement{{Name: "a", Communities: []string{"65000:100", "no-export"}}}}, node)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	other := webSvc
	other.Key, other.IPs = "default/other", []netip.Addr{ip("203.0.113.6")}
	var all []Route
	for _, svc := range []Service{webSvc, other} {
		rs, err := plan.Routes(svc)
		if err != nil || len(rs) != 2 {
			t.Fatalf("%s: routes %v, %v", svc.Key, rs, err)
		}
		all = append(all, rs...)
	}
	for _, r := range all[1:] {
		if &r.Communities[0] != &all[0].Communities[0] {
			t.Fatalf("route %s %s holds its own copy of the communities", r.Peer, r.Prefix)
		}
	}
	grown := append(all[0].Communities, com("1:1"))
	if len(all[1].Communities) != 2 || &grown[0] == &all[1].Communities[0] {
		t.Fatalf("an append to one route's communities reached another's: %v", all[1].Communities)
	}
}
