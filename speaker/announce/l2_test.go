package announce

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster of the layer 2 tests: n1 is this node.
var l2Nodes = []Node{
	{Name: "n1", Labels: map[string]string{"zone": "a"}, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.21")}},
	{Name: "n2", Labels: map[string]string{"zone": "b"}},
	{Name: "n3", Labels: map[string]string{"zone": "a", ExcludeLabel: ""}},
	{Name: "n4", Labels: map[string]string{"zone": "b"}, NetworkUnavailable: true},
	{Name: "n5", Labels: map[string]string{"zone": "b"}},
}

func TestCompileL2Problems(t *testing.T) {
	bad := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}
	cfg := Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
		{Name: "good"},
		{Name: "preferred", PreferredNodeSelectors: 1},
		{Name: "read-error", Err: errors.New("spec.interfaces[0]: bad")},
		{Name: "node-sel", NodeSelectors: []metav1.LabelSelector{bad}},
		{Name: "pool-sel", IPAddressPoolSelectors: []metav1.LabelSelector{bad}},
		{Name: "svc-sel", ServiceSelectors: []metav1.LabelSelector{bad}},
	}}
	plan, problems := Compile(cfg, l2Nodes[0])
	want := map[string]string{
		"preferred":  "spec.preferredNodeSelectors",
		"read-error": "spec.interfaces[0]",
		"node-sel":   "spec.nodeSelectors",
		"pool-sel":   "spec.ipAddressPoolSelectors",
		"svc-sel":    "spec.serviceSelectors",
	}
	got := map[string]string{}
	for _, p := range problems {
		if p.Kind != KindL2 {
			t.Errorf("problem of kind %s: %v", p.Kind, p)
			continue
		}
		got[p.Name] = p.Err.Error()
	}
	if len(got) != len(want) {
		t.Errorf("problems %v, want one for each of %v", problems, want)
	}
	for name, field := range want {
		if !strings.HasPrefix(got[name], field) {
			t.Errorf("%s: %q, want it to name %s", name, got[name], field)
		}
	}
	// The good advertisement applies.
	ls := plan.L2Cluster(l2Nodes).Service(webSvc, nil)
	if ls == nil || !reflect.DeepEqual(ls.IPs, []netip.Addr{ip("203.0.113.5")}) {
		t.Errorf("good advertisement: %+v", ls)
	}
}

func TestL2Service(t *testing.T) {
	dualPool := Pool{Name: "dual", Addresses: []string{"192.0.2.0/24", "2001:db8:1::/64"}}
	zone := func(z string) []metav1.LabelSelector { return []metav1.LabelSelector{sel("zone", z)} }
	dualSvc := Service{Key: "default/dual", IPs: []netip.Addr{ip("2001:db8:1::5"), ip("192.0.2.5")}, AnyEndpoint: true}
	local := webSvc
	local.Local = true
	all := []string{"n1", "n2", "n5"}
	tests := []struct {
		name      string
		cfg       Config
		svc       Service
		endpoints []string // nodes with an endpoint that can take traffic
		want      *L2Service
	}{
		{
			name: "no L2Advertisement: none",
			cfg:  Config{Pools: []Pool{prodPool}, Advertisements: []Advertisement{{Name: "bgp"}}},
			svc:  webSvc,
		},
		{
			name: "every pool, every node: excluded and NetworkUnavailable nodes left out, all interfaces",
			cfg:  Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "pool named: another pool's Service not covered",
			cfg:  Config{Pools: []Pool{prodPool, devPool}, L2Advertisements: []L2Advertisement{{Name: "l2", IPAddressPools: []string{"dev"}}}},
			svc:  webSvc,
		},
		{
			name: "pool selected by label",
			cfg: Config{Pools: []Pool{prodPool, devPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "prod")}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "pool selector matching another pool only",
			cfg: Config{Pools: []Pool{prodPool, devPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "dev")}}}},
			svc: webSvc,
		},
		{
			name: "node selectors and interfaces",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", NodeSelectors: zone("a"), Interfaces: []string{"eth1", "eth0"}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: []string{"n1"}, Interfaces: []string{"eth0", "eth1"}},
		},
		{
			name: "nodes: union over advertisements; interfaces: of those selecting this node",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "a", NodeSelectors: zone("a"), Interfaces: []string{"eth0"}},
				{Name: "b", NodeSelectors: zone("b"), Interfaces: []string{"eth1"}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, Interfaces: []string{"eth0"}},
		},
		{
			name: "interfaces: union over the advertisements selecting this node",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "a", Interfaces: []string{"eth0", "bond0"}},
				{Name: "b", NodeSelectors: zone("a"), Interfaces: []string{"eth1", "eth0"}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, Interfaces: []string{"bond0", "eth0", "eth1"}},
		},
		{
			name: "one advertisement selecting this node with no interfaces: all",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "a", Interfaces: []string{"eth0"}},
				{Name: "b", NodeSelectors: zone("a")}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "this node not selected: no interfaces of its own",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "b", NodeSelectors: zone("b"), Interfaces: []string{"eth1"}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: []string{"n2", "n5"}},
		},
		{
			name: "node selector matching only excluded nodes: none",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", NodeSelectors: []metav1.LabelSelector{sel(ExcludeLabel, "")}}}},
			svc: webSvc,
		},
		{
			name:      "externalTrafficPolicy Local: eligible nodes with an endpoint",
			cfg:       Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:       local,
			endpoints: []string{"n5", "n3", "n4", "n9", "n2"},
			want:      &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: []string{"n2", "n5"}, AllInterfaces: true},
		},
		{
			name:      "externalTrafficPolicy Local and node selectors",
			cfg:       Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2", NodeSelectors: zone("a")}}},
			svc:       local,
			endpoints: []string{"n2", "n5"},
		},
		{
			name: "externalTrafficPolicy Local, no endpoint: none",
			cfg:  Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  local,
		},
		{
			name: "no endpoint anywhere: none (as MetalLB)",
			cfg:  Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  Service{Key: "default/web", IPs: webSvc.IPs},
		},
		{
			name: "no IP: none",
			cfg:  Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  Service{Key: "default/web", AnyEndpoint: true},
		},
		{
			name: "dual-stack: both families, sorted",
			cfg:  Config{Pools: []Pool{dualPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  dualSvc,
			want: &L2Service{Key: "default/dual", IPs: []netip.Addr{ip("192.0.2.5"), ip("2001:db8:1::5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "an IP of a pool no L2Advertisement covers is left out",
			cfg:  Config{Pools: []Pool{prodPool, devPool}, L2Advertisements: []L2Advertisement{{Name: "l2", IPAddressPools: []string{"dev"}}}},
			svc:  Service{Key: "default/two", IPs: []netip.Addr{ip("203.0.113.5"), ip("2001:db8::5")}, AnyEndpoint: true},
			want: &L2Service{Key: "default/two", IPs: []netip.Addr{ip("2001:db8::5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "IPs of pools with different nodes: the nodes that may answer for all of them",
			cfg: Config{Pools: []Pool{prodPool, devPool}, L2Advertisements: []L2Advertisement{
				{Name: "p", IPAddressPools: []string{"prod"}, NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}}, Interfaces: []string{"eth0"}},
				{Name: "d", IPAddressPools: []string{"dev"}, NodeSelectors: zone("b"), Interfaces: []string{"eth1"}}}},
			svc:  Service{Key: "default/two", IPs: []netip.Addr{ip("203.0.113.5"), ip("2001:db8::5")}, AnyEndpoint: true},
			want: &L2Service{Key: "default/two", IPs: []netip.Addr{ip("203.0.113.5"), ip("2001:db8::5")}, Nodes: []string{"n2", "n5"}, Interfaces: []string{"eth0"}},
		},
		{
			name: "serviceSelectors: another Service not covered",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", ServiceSelectors: []metav1.LabelSelector{sel("app", "db")}}}},
			svc: webSvc,
		},
		{
			name: "serviceSelectors: the Service selected",
			cfg: Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{
				{Name: "l2", ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, AllInterfaces: true},
		},
		{
			name: "BGP and L2 for one pool: layer 2 as well",
			cfg: Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "bgp"}},
				L2Advertisements: []L2Advertisement{{Name: "l2"}}},
			svc:  webSvc,
			want: &L2Service{Key: "default/web", IPs: []netip.Addr{ip("203.0.113.5")}, Nodes: all, AllInterfaces: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, problems := Compile(tc.cfg, l2Nodes[0])
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			got := plan.L2Cluster(l2Nodes).Service(tc.svc, tc.endpoints)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A pool announced by BGP and L2 keeps its BGP routes.
func TestL2AndBGPTogether(t *testing.T) {
	cfg := Config{Pools: []Pool{prodPool}, Peers: []Peer{tor1}, Advertisements: []Advertisement{{Name: "bgp"}},
		L2Advertisements: []L2Advertisement{{Name: "l2"}}}
	plan, _ := Compile(cfg, l2Nodes[0])
	routes, err := plan.Routes(webSvc)
	if err != nil || len(routes) != 1 {
		t.Errorf("routes %v, %v; want one", routes, err)
	}
}

// Services whose IPs have the same advertisements share one Nodes list: at
// 10,000 Services over 100 nodes a list each would hold 16 MB.
func TestL2NodesShared(t *testing.T) {
	plan, _ := Compile(Config{Pools: []Pool{prodPool}, L2Advertisements: []L2Advertisement{{Name: "l2"}}}, l2Nodes[0])
	c := plan.L2Cluster(l2Nodes)
	other := webSvc
	other.Key, other.IPs = "default/other", []netip.Addr{ip("203.0.113.6")}
	a, b := c.Service(webSvc, nil), c.Service(other, nil)
	if &a.Nodes[0] != &b.Nodes[0] {
		t.Error("two Services of one pool got two Nodes lists")
	}
}
