package watch

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// fakeL2 records what the controller hands layer 2 mode.
type fakeL2 struct {
	mu       sync.Mutex
	svcs     map[string]*announce.L2Service
	nodes    []announce.L2Node
	applies  int
	nodeSets int
	nils     []string // keys given nil
}

func (f *fakeL2) ApplyL2(key string, svc *announce.L2Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if svc == nil {
		delete(f.svcs, key)
		f.nils = append(f.nils, key)
		return
	}
	f.svcs[key] = svc
}

func (f *fakeL2) SetL2Nodes(nodes []announce.L2Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodeSets++
	f.nodes = nodes
}

// svc renders one Service's announcement ("" for none).
func (f *fakeL2) svc(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.svcs[key]
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%v nodes=%v ifs=%v all=%v", s.IPs, s.Nodes, s.Interfaces, s.AllInterfaces)
}

func (f *fakeL2) nodeNames() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.nodes {
		out = append(out, fmt.Sprintf("%s%v", n.Name, n.Addrs))
	}
	return strings.Join(out, " ")
}

func (f *fakeL2) counts() (applies, nodeSets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies, f.nodeSets
}

func startL2Speaker(t *testing.T, c *cluster) (*speaker, *fakeL2) {
	t.Helper()
	l2 := &fakeL2{svcs: map[string]*announce.L2Service{}}
	sp := startSpeakerOpts(t, c, func(o *Options, _ *speaker) { o.L2 = l2 })
	return sp, l2
}

func node(name, addr string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeExternalIP, Address: "198.18.0.1"}, {Type: corev1.NodeInternalIP, Address: addr}}}}
}

func l2ad(name string, mut func(*v1beta1.L2AdvertisementSpec)) *v1beta1.L2Advertisement {
	a := &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func sliceOn(svc string, nodes ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: discoveryv1.AddressTypeIPv4}
	for i, n := range nodes {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.0.%d", i+1)}, NodeName: &n})
	}
	return s
}

func TestL2Announcements(t *testing.T) {
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	dual := func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: "2001:db8::7"})
	}
	c := newCluster(node1(), node("n2", "10.0.0.22", map[string]string{"rack": "2"}),
		node("n3", "10.0.0.23", map[string]string{announce.ExcludeLabel: ""}),
		pool("prod", created, "203.0.113.0/24", "2001:db8::/64"), pool("other", created, "198.51.100.0/24"),
		l2ad("l2", func(s *v1beta1.L2AdvertisementSpec) {
			s.IPAddressPools = []string{"prod"}
			s.Interfaces = []string{"eth1", "eth0"}
		}),
		// BGP for the same pool: the Services get both.
		peer("tor1", "10.0.0.1", nil), advert("all", nil),
		lbService("web", "203.0.113.5", dual), sliceOn("web", "n3"),
		lbService("local", "203.0.113.6", local), sliceOn("local", "n2", "n3"),
		lbService("elsewhere", "198.51.100.5", nil), sliceOn("elsewhere", "n1"),
		lbService("idle", "203.0.113.8", nil))
	sp, l2 := startL2Speaker(t, c)
	want := map[string]string{
		"default/web":       "[203.0.113.5 2001:db8::7] nodes=[n1 n2] ifs=[eth0 eth1] all=false",
		"default/local":     "[203.0.113.6] nodes=[n2] ifs=[eth0 eth1] all=false",
		"default/elsewhere": "",
		"default/idle":      "",
	}
	check := func(what string) {
		t.Helper()
		eventually(t, what, func() (bool, any) {
			got := map[string]string{}
			for k := range want {
				got[k] = l2.svc(k)
			}
			return reflect.DeepEqual(got, want), got
		})
	}
	check("the Services' layer 2 announcements")
	if got := l2.nodeNames(); got != "n1[10.0.0.21] n2[10.0.0.22] n3[10.0.0.23]" {
		t.Errorf("nodes %q", got)
	}
	eventually(t, "BGP routes too", func() (bool, any) {
		got := sp.ann.announced("default/elsewhere")
		return len(got) == 1, got
	})
	if got := sp.ann.announced("default/web"); !reflect.DeepEqual(got, []string{"tor1 203.0.113.5/32"}) {
		t.Errorf("web over BGP: %v", got)
	}

	// Another node joins: the nodes and the layer 2 announcements follow,
	// the BGP routes are not recomputed.
	sp.ann.mu.Lock()
	bgpBefore := sp.ann.applies
	sp.ann.mu.Unlock()
	ctx := context.Background()
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node("n4", "10.0.0.24", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want["default/web"] = "[203.0.113.5 2001:db8::7] nodes=[n1 n2 n4] ifs=[eth0 eth1] all=false"
	check("n4 in the announcements")
	if got := l2.nodeNames(); !strings.HasSuffix(got, "n4[10.0.0.24]") {
		t.Errorf("nodes %q", got)
	}
	sp.ann.mu.Lock()
	bgpAfter := sp.ann.applies
	sp.ann.mu.Unlock()
	if bgpAfter != bgpBefore {
		t.Errorf("a Node change recomputed %d Services' BGP routes", bgpAfter-bgpBefore)
	}

	// An update of a node that changes nothing read hands nothing on.
	applies, sets := l2.counts()
	n4, _ := c.client.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{})
	n4.Annotations = map[string]string{"x": "y"}
	n4.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	if _, err := c.client.CoreV1().Nodes().Update(ctx, n4, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The exclusion label on n2: gone from the candidates.
	n2, _ := c.client.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	n2.Labels[announce.ExcludeLabel] = ""
	if _, err := c.client.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want["default/web"] = "[203.0.113.5 2001:db8::7] nodes=[n1 n4] ifs=[eth0 eth1] all=false"
	want["default/local"] = ""
	check("n2 excluded")
	if a, s := l2.counts(); s != sets || a != applies+2 {
		t.Errorf("after n4's idle update and n2's label: %d more ApplyL2, %d more SetL2Nodes; want 2, 0", a-applies, s-sets)
	}

	// A Service deleted: withdrawn.
	if err := c.client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want["default/web"] = ""
	check("web withdrawn")
	l2.mu.Lock()
	nils := slices.Clone(l2.nils)
	l2.mu.Unlock()
	if !slices.Contains(nils, "default/web") || slices.Contains(nils, "default/idle") {
		t.Errorf("ApplyL2 nil for %v; want web, and never for a Service that had nothing", nils)
	}

	// The advertisement changes: every Service recomputed.
	all := l2ad("l2", nil)
	c.source(all).Modify(all)
	want["default/elsewhere"] = "[198.51.100.5] nodes=[n1 n4] ifs=[] all=true"
	check("the advertisement's new pools and interfaces")
}

func TestL2RejectsBadAdvertisements(t *testing.T) {
	c := newCluster(node1(), pool("prod", created, "203.0.113.0/24"),
		l2ad("good", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = []string{"eth0"} }),
		l2ad("bad-if", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = []string{"eth0", "name-too-long-0123"} }),
		l2ad("preferred", func(s *v1beta1.L2AdvertisementSpec) {
			s.PreferredNodeSelectors = []v1beta1.PreferredNodeSelector{{Weight: 50}}
		}),
		lbService("web", "203.0.113.5", nil), readySlice("web"))
	sp, l2 := startL2Speaker(t, c)
	eventually(t, "the good advertisement", func() (bool, any) {
		got := l2.svc("default/web")
		return got == "[203.0.113.5] nodes=[n1] ifs=[eth0] all=false", got
	})
	eventually(t, "invalid_object gauges", func() (bool, any) {
		got := sp.invalid(t)
		return reflect.DeepEqual(got, []string{"L2Advertisement/bad-if", "L2Advertisement/preferred"}), got
	})
	for _, tc := range []struct{ name, msg string }{
		{"bad-if", `L2Advertisement "bad-if": spec.interfaces[1]: "name-too-long-0123" is longer than 15 bytes; the object is ignored`},
		{"preferred", `L2Advertisement "preferred": spec.preferredNodeSelectors: not supported`},
	} {
		if e, ok := sp.rec.find("L2Advertisement", tc.name, ReasonInvalidConfiguration); !ok || !strings.Contains(e.msg, tc.msg) {
			t.Errorf("%s: Event %+v (found %v), want %q", tc.name, e, ok, tc.msg)
		}
	}

	// A bad edit of the good one keeps its previous version.
	bad := l2ad("good", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = []string{"a/b"} })
	c.source(bad).Modify(bad)
	eventually(t, "the bad edit reported", func() (bool, any) {
		e, ok := sp.rec.find("L2Advertisement", "good", ReasonInvalidConfiguration)
		return ok && strings.Contains(e.msg, "its previous valid version stays in use"), e
	})
	if got := l2.svc("default/web"); got != "[203.0.113.5] nodes=[n1] ifs=[eth0] all=false" {
		t.Errorf("web %q, want the previous version's announcement", got)
	}
}

// Without layer 2 mode the speaker watches its own Node only, and no
// L2Advertisement.
func TestL2OffWatchesOwnNode(t *testing.T) {
	c := newCluster(node1(), node("n2", "10.0.0.22", nil), pool("prod", created, "203.0.113.0/24"),
		peer("tor1", "10.0.0.1", nil), advert("all", nil), lbService("web", "203.0.113.5", nil), readySlice("web"),
		l2ad("bad", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = []string{""} }))
	var mu sync.Mutex
	var selectors []string
	record := func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		selectors = append(selectors, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		mu.Unlock()
		return false, nil, nil
	}
	c.client.PrependReactor("list", "nodes", record)
	sp := startSpeaker(t, c, "")
	eventually(t, "web announced", func() (bool, any) {
		got := sp.ann.announced("default/web")
		return len(got) == 1, got
	})
	mu.Lock()
	defer mu.Unlock()
	if len(selectors) == 0 || selectors[0] != "metadata.name=n1" {
		t.Errorf("Node lists with field selectors %q, want metadata.name=n1", selectors)
	}
	if got := sp.invalid(t); len(got) != 0 {
		t.Errorf("invalid objects with layer 2 mode off: %v", got)
	}

	// With it on, every Node.
	c2 := newCluster(node1(), node("n2", "10.0.0.22", nil))
	selectors = nil
	c2.client.PrependReactor("list", "nodes", record)
	mu.Unlock()
	_, l2 := startL2Speaker(t, c2)
	eventually(t, "both nodes", func() (bool, any) {
		got := l2.nodeNames()
		return got == "n1[10.0.0.21] n2[10.0.0.22]", got
	})
	mu.Lock()
	if len(selectors) == 0 || selectors[0] != "" {
		t.Errorf("Node lists with field selectors %q, want none", selectors)
	}
}

// A Node update counts when it changes what the speaker reads of the Node
// (labels, addresses, NetworkUnavailable), after the informers' slimming.
func TestNodeChanged(t *testing.T) {
	base := node("n1", "10.0.0.21", map[string]string{"a": "b"})
	base.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse},
	}
	base.Status.Images = []corev1.ContainerImage{{Names: []string{"img"}, SizeBytes: 1}}
	for _, tc := range []struct {
		name string
		mut  func(*corev1.Node)
		want bool
	}{
		{"heartbeat, readiness, images, annotations", func(n *corev1.Node) {
			n.ResourceVersion = "7"
			n.Annotations = map[string]string{"x": "y"}
			n.Status.Conditions[0].Status = corev1.ConditionFalse
			n.Status.Conditions[1].LastHeartbeatTime = metav1.Now()
			n.Status.Images = nil
		}, false},
		{"label", func(n *corev1.Node) { n.Labels = map[string]string{"a": "c"} }, true},
		{"address", func(n *corev1.Node) { n.Status.Addresses[1].Address = "10.0.0.99" }, true},
		{"NetworkUnavailable", func(n *corev1.Node) { n.Status.Conditions[1].Status = corev1.ConditionTrue }, true},
		{"another object", func(n *corev1.Node) { n.UID = "other" }, true},
	} {
		cur := base.DeepCopy()
		tc.mut(cur)
		if got := nodeChanged(slimNode(base), slimNode(cur)); got != tc.want {
			t.Errorf("%s: nodeChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
	if s := slimNode(base); len(s.Status.Images) != 0 || len(s.Status.Conditions) != 1 {
		t.Errorf("slimmed Node keeps %+v", s.Status)
	}
}

// ConfigFrom carries every field of an L2Advertisement and its static
// problems.
func TestConfigFromL2(t *testing.T) {
	sels := []metav1.LabelSelector{{MatchLabels: map[string]string{"a": "b"}}}
	good := l2ad("good", func(s *v1beta1.L2AdvertisementSpec) {
		s.IPAddressPools, s.IPAddressPoolSelectors, s.NodeSelectors, s.ServiceSelectors = []string{"p"}, sels, sels, sels
		s.Interfaces = []string{"eth0"}
		s.PreferredNodeSelectors = []v1beta1.PreferredNodeSelector{{Weight: 5}, {Weight: 6}}
	})
	bad := l2ad("bad", func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = []string{".."} })
	cfg, _ := ConfigFrom(Objects{L2: []*v1beta1.L2Advertisement{good, bad}})
	want := announce.L2Advertisement{Name: "good", IPAddressPools: []string{"p"}, IPAddressPoolSelectors: sels,
		NodeSelectors: sels, ServiceSelectors: sels, Interfaces: []string{"eth0"}, PreferredNodeSelectors: 2}
	if len(cfg.L2Advertisements) != 2 || !reflect.DeepEqual(cfg.L2Advertisements[0], want) {
		t.Fatalf("got %+v\nwant %+v", cfg.L2Advertisements, want)
	}
	if err := cfg.L2Advertisements[1].Err; err == nil || !strings.Contains(err.Error(), "spec.interfaces[0]") {
		t.Errorf("bad: Err %v", err)
	}
}

// With externalTrafficPolicy Local the candidates follow the endpoints.
func TestL2LocalFollowsEndpoints(t *testing.T) {
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	c := newCluster(node1(), node("n2", "10.0.0.22", nil), pool("prod", created, "203.0.113.0/24"), l2ad("l2", nil),
		lbService("web", "203.0.113.5", local), sliceOn("web", "n2"))
	_, l2 := startL2Speaker(t, c)
	eventually(t, "n2 only", func() (bool, any) {
		got := l2.svc("default/web")
		return got == "[203.0.113.5] nodes=[n2] ifs=[] all=true", got
	})
	moved := sliceOn("web", "n1")
	if _, err := c.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 only", func() (bool, any) {
		got := l2.svc("default/web")
		return got == "[203.0.113.5] nodes=[n1] ifs=[] all=true", got
	})
	if err := c.client.DiscoveryV1().EndpointSlices("default").Delete(context.Background(), moved.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "none", func() (bool, any) {
		got := l2.svc("default/web")
		return got == "", got
	})
}
