package watch

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/validation"
)

func b(v bool) *bool     { return &v }
func s(v string) *string { return &v }
func ep(node string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{"10.1.0.1"}, NodeName: s(node),
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
}

func TestEndpointHealth(t *testing.T) {
	tests := []struct {
		name       string
		eps        []discoveryv1.Endpoint
		local, any bool
	}{
		{"no endpoints", nil, false, false},
		{"ready here", []discoveryv1.Endpoint{ep("n1", b(true), nil, nil)}, true, true},
		{"unset conditions count as ready", []discoveryv1.Endpoint{ep("n1", nil, nil, nil)}, true, true},
		{"ready elsewhere", []discoveryv1.Endpoint{ep("n2", b(true), nil, nil)}, false, true},
		{"not ready here", []discoveryv1.Endpoint{ep("n1", b(false), b(false), nil)}, false, false},
		{"serving but not terminating (not ready) does not count", []discoveryv1.Endpoint{ep("n1", b(false), b(true), b(false))}, false, false},
		{"serving while terminating counts", []discoveryv1.Endpoint{ep("n1", b(false), b(true), b(true))}, true, true},
		{"terminating and not serving does not count", []discoveryv1.Endpoint{ep("n1", b(false), b(false), b(true))}, false, false},
		{"mixed: not ready here, ready elsewhere", []discoveryv1.Endpoint{ep("n1", b(false), nil, nil), ep("n2", b(true), nil, nil)}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Split across two slices to check they are combined.
			var a, c discoveryv1.EndpointSlice
			for i, e := range tt.eps {
				if i%2 == 0 {
					a.Endpoints = append(a.Endpoints, e)
				} else {
					c.Endpoints = append(c.Endpoints, e)
				}
			}
			l, an := EndpointHealth([]*discoveryv1.EndpointSlice{&a, &c}, "n1")
			if l != tt.local || an != tt.any {
				t.Errorf("got local=%v any=%v, want %v %v", l, an, tt.local, tt.any)
			}
			l, an = health([]*Slice{sliceFrom(&a), sliceFrom(&c)}, "n1")
			if l != tt.local || an != tt.any {
				t.Errorf("cached Slices: got local=%v any=%v, want %v %v", l, an, tt.local, tt.any)
			}
		})
	}
}

func TestServiceFrom(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{"a": "b"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "203.0.113.5"}, {IP: "2001:db8::5"}, {Hostname: "x.example"}}}}}
	sl := sliceFrom(&discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{ep("n1", b(true), nil, nil)}})
	got := ServiceFrom(svc, []*Slice{sl}, "n1")
	if got.Key != "ns/web" || !got.Local || !got.LocalEndpoint || !got.AnyEndpoint || len(got.IPs) != 2 ||
		got.IPs[1] != netip.MustParseAddr("2001:db8::5") || got.Labels["a"] != "b" {
		t.Errorf("got %+v", got)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	if got := ServiceFrom(svc, nil, "n1"); len(got.IPs) != 0 {
		t.Errorf("ClusterIP service has IPs %v", got.IPs)
	}
}

func TestNodeFrom(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"x": "y"}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "192.0.2.1"}, {Type: corev1.NodeHostName, Address: "n1"},
				{Type: corev1.NodeInternalIP, Address: "10.0.0.21"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}},
		}}
	got := NodeFrom(n)
	if got.Name != "n1" || !got.NetworkUnavailable || len(got.Addresses) != 2 || got.Addresses[0].String() != "10.0.0.21" {
		t.Errorf("got %+v", got)
	}
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if NodeFrom(n).NetworkUnavailable {
		t.Error("NetworkUnavailable False read as true")
	}
}

func TestConfigFrom(t *testing.T) {
	hold := metav1.Duration{Duration: 30 * time.Second}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "pw"}, Type: validation.PasswordSecretType,
		Data: map[string][]byte{"password": []byte("s3cret")}}
	created := metav1.Unix(1000, 0)
	objs := Objects{
		Namespace: "metallb-system",
		Secret: func(ns, name string) *corev1.Secret {
			if ns == secret.Namespace && name == secret.Name {
				return secret
			}
			return nil
		},
		Pools: []*v1beta1.IPAddressPool{{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"l": "v"}, CreationTimestamp: created},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}},
		Advertisements: []*v1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: v1beta1.BGPAdvertisementSpec{LocalPref: 50, Communities: []string{"vip"}, Peers: []string{"tor1"}}}},
		Peers: []*v1beta2.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "tor1"},
			Spec: v1beta2.BGPPeerSpec{MyASN: 1, ASN: 2, Address: "10.0.0.1", HoldTime: &hold,
				PasswordSecret: corev1.SecretReference{Name: "pw"}, BFDProfile: "f", DualStackAddressFamily: true}}},
		Communities: []*v1beta1.Community{{ObjectMeta: metav1.ObjectMeta{Name: "c"},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "vip", Value: "65000:300"}}}}},
		BFDProfiles: []*v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "f"}}},
	}
	cfg, problems := ConfigFrom(objs)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	p := cfg.Peers[0]
	if p.Err != nil || p.Password != "s3cret" || *p.HoldTime != 30*time.Second || p.BFDProfile != "f" || !p.DualStackAddressFamily || cfg.Communities["vip"] != "65000:300" ||
		cfg.Advertisements[0].LocalPref != 50 || cfg.Pools[0].Labels["l"] != "v" || !cfg.Pools[0].Created.Equal(created.Time) {
		t.Errorf("cfg %+v", cfg)
	}
	if _, ok := cfg.BFDProfiles["f"]; !ok {
		t.Error("BFD profile missing")
	}

	// Problems stay with their object; the rest converts.
	for _, tc := range []struct {
		name string
		mut  func(o *Objects)
		err  string
	}{
		{"missing Secret", func(o *Objects) { o.Peers[0].Spec.PasswordSecret.Name = "missing" },
			"spec.passwordSecret: Secret metallb-system/missing of type kubernetes.io/basic-auth not found"},
		{"Secret of another type", func(o *Objects) { secret.Type = corev1.SecretTypeOpaque },
			"spec.passwordSecret: Secret metallb-system/pw of type kubernetes.io/basic-auth not found"},
		{"vrf", func(o *Objects) { o.Peers[0].Spec.VRFName = "red" }, `spec.vrf: "red"`},
		{"disableMP", func(o *Objects) { o.Peers[0].Spec.DisableMP = true }, "spec.disableMP"},
		{"source of the other family", func(o *Objects) { o.Peers[0].Spec.SrcAddress = "fd00::21" }, "spec.sourceAddress: fd00::21 is not of the family of spec.peerAddress 10.0.0.1"},
		{"keepalive equal to hold", func(o *Objects) { o.Peers[0].Spec.KeepaliveTime = &hold }, "spec.keepaliveTime: 30s must be lower than holdTime 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := objs
			o.Peers = []*v1beta2.BGPPeer{objs.Peers[0].DeepCopy()}
			secret.Type = validation.PasswordSecretType
			tc.mut(&o)
			cfg, problems := ConfigFrom(o)
			if len(problems) > 0 || len(cfg.Peers) != 1 || len(cfg.Pools) != 1 {
				t.Fatalf("cfg %+v, problems %v", cfg, problems)
			}
			if err := cfg.Peers[0].Err; err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("peer error %v, want %q", err, tc.err)
			}
		})
	}
	secret.Type = validation.PasswordSecretType

	bad := objs
	bad.Pools = []*v1beta1.IPAddressPool{{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/33"}}}}
	if cfg, _ := ConfigFrom(bad); cfg.Pools[0].Err == nil || !strings.Contains(cfg.Pools[0].Err.Error(), `spec.addresses[0]: "10.0.0.0/33"`) {
		t.Errorf("pool error %v", cfg.Pools[0].Err)
	}

	objs.Communities = append(objs.Communities,
		&v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "d"},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "vip", Value: "65000:301"}, {Name: "other", Value: "1:1"}}}},
		&v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "e"},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "big", Value: "65000:70000"}}}})
	cfg, problems = ConfigFrom(objs)
	want := []string{
		`Community "d": spec.communities[0]: alias "vip" = "65000:301" conflicts with "65000:300" in Community "c"`,
		`Community "e": spec.communities[0]: alias "big": community "65000:70000"`,
	}
	if len(problems) != len(want) {
		t.Fatalf("problems %v", problems)
	}
	for i, w := range want {
		if !strings.Contains(problems[i].Error(), w) {
			t.Errorf("problem %v, want %q", problems[i], w)
		}
	}
	if cfg.Communities["vip"] != "65000:300" || cfg.Communities["other"] != "" || cfg.Communities["big"] != "" {
		t.Errorf("a rejected Community's aliases must be left out: %v", cfg.Communities)
	}
}

func TestTransformKeepsWhatIsRead(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{"a": "b"},
		Annotations: map[string]string{"big": strings.Repeat("x", 1000)}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}}}}
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Endpoints: []discoveryv1.Endpoint{ep("n1", b(false), b(true), b(true)), ep("n2", b(true), nil, nil)}}
	ts, _ := transform(svc)
	tsl, _ := transform(sl)
	got := ServiceFrom(ts.(*Svc).Service(), []*Slice{tsl.(*Slice)}, "n1")
	want := ServiceFrom(svc, []*Slice{sliceFrom(sl)}, "n1")
	if !reflect.DeepEqual(got, want) || !want.LocalEndpoint || !want.AnyEndpoint || want.Labels["a"] != "b" {
		t.Errorf("after transform %+v, before %+v", got, want)
	}
	class := "other.io/lb"
	svc.Spec.LoadBalancerClass = &class
	ts2, _ := transform(svc.DeepCopy())
	if validation.HandlesService(ts2.(*Svc).Service(), "") || !validation.HandlesService(ts2.(*Svc).Service(), class) {
		t.Error("transform lost spec.loadBalancerClass")
	}
	if s := ts.(*Svc).Service(); len(s.Annotations) != 0 || len(s.Spec.Ports) != 0 {
		t.Error("transform kept fields the speaker does not read")
	}
	// Events name the Service by kind, UID and resourceVersion.
	svc.UID, svc.ResourceVersion = "u1", "7"
	ts3, _ := transform(svc.DeepCopy())
	cp := ts3.(*Svc).DeepCopyObject().(*Svc)
	if s := cp.Service(); s.UID != "u1" || s.ResourceVersion != "7" || s.Kind != "Service" || s.Labels["a"] != "b" ||
		*s.Spec.LoadBalancerClass != class || !reflect.DeepEqual(cp, ts3) {
		t.Errorf("cached Service %+v rebuilt as %+v", ts3, s)
	}
	if l := tsl.(*Slice).Service; l != "web" {
		t.Error("service-name label lost")
	}
}

// The cached Slice answers EndpointHealth as the full EndpointSlice does, for
// every node, on random slices (many endpoints per node, endpoints without a
// node, every combination of conditions), keeps each node once, survives
// DeepCopyObject, and keeps the Service's name.
func TestSliceKeepsEndpointHealth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	conds := []*bool{nil, b(false), b(true)}
	nodes := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14", "n15", "n16", "n17", "n18", "n19"}
	for round := range 2000 {
		var slices []*discoveryv1.EndpointSlice
		var slim []*Slice
		for range rng.IntN(3) + 1 {
			sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-x",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web", "endpointslice.kubernetes.io/managed-by": "x"}}}
			for range rng.IntN(60) {
				e := ep(nodes[rng.IntN(len(nodes))], conds[rng.IntN(3)], conds[rng.IntN(3)], conds[rng.IntN(3)])
				if rng.IntN(10) == 0 {
					e.NodeName = nil
				}
				sl.Endpoints = append(sl.Endpoints, e)
			}
			slices = append(slices, sl)
			s, _ := transform(sl.DeepCopy())
			slim = append(slim, s.(*Slice).DeepCopyObject().(*Slice))
		}
		for _, n := range append(nodes, "elsewhere") {
			l1, a1 := EndpointHealth(slices, n)
			l2, a2 := health(slim, n)
			if l1 != l2 || a1 != a2 {
				t.Fatalf("round %d node %s: full slices say local=%v any=%v, slim ones local=%v any=%v", round, n, l1, a1, l2, a2)
			}
		}
		for _, s := range slim {
			seen := map[string]bool{}
			for _, k := range s.Nodes {
				if seen[k] {
					t.Fatalf("round %d: the Slice holds node %s twice", round, k)
				}
				seen[k] = true
			}
			if s.Service != "web" || s.Name != "web-x" || s.Namespace != "ns" || len(s.Labels) != 0 {
				t.Fatalf("round %d: Slice %+v", round, s)
			}
		}
	}
}

// The slice index follows adds, updates that move a slice to another Service
// and deletes, in any order, and what get returned stays as it was.
func TestSliceIndex(t *testing.T) {
	var x sliceIndex
	x.set("ns/a", "ns/a-1", true)
	x.set("ns/a", "ns/a-2", true)
	x.set("ns/a", "ns/a-1", true) // again: once
	got := x.get("ns/a")
	if !reflect.DeepEqual(got, []string{"ns/a-1", "ns/a-2"}) {
		t.Fatalf("a: %v", got)
	}
	x.set("ns/a", "ns/a-1", false)
	x.set("ns/b", "ns/a-1", true) // the slice moved to Service b
	if !reflect.DeepEqual(got, []string{"ns/a-1", "ns/a-2"}) {
		t.Errorf("a list handed out changed: %v", got)
	}
	if a, b := x.get("ns/a"), x.get("ns/b"); !reflect.DeepEqual(a, []string{"ns/a-2"}) || !reflect.DeepEqual(b, []string{"ns/a-1"}) {
		t.Errorf("a %v, b %v", a, b)
	}
	x.set("ns/a", "ns/a-2", false)
	x.set("ns/a", "ns/gone", false) // never there
	if l := x.get("ns/a"); l != nil || len(x.m) != 1 {
		t.Errorf("a %v after its last slice left; index %v", l, x.m)
	}
}

// EndpointHealth, on whole EndpointSlices, is what the cached Slices must answer:
// whether some endpoint on node, and some endpoint anywhere, can
// take traffic: it is ready, or it is serving while terminating (as MetalLB does, so
// connections drain while pods shut down). Unset conditions count as ready.
func EndpointHealth(slices []*discoveryv1.EndpointSlice, node string) (local, any bool) {
	for _, s := range slices {
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if !canServe(ep.Conditions) {
				continue
			}
			any = true
			if ep.NodeName != nil && *ep.NodeName == node {
				return true, true
			}
		}
	}
	return false, any
}

// A metallb.io object's status-only update (same UID, generation, labels and
// deletion) does not recompile the configuration; a spec change, a label
// change, a deletion, another object under the same name, an object without a
// generation (tests, old servers) and every Secret update do (Nodes:
// TestNodeChanged).
func TestConfigUpdate(t *testing.T) {
	pool := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u1", Generation: 3, Labels: map[string]string{"a": "b"}}}
	statusOnly := pool.DeepCopy()
	statusOnly.ResourceVersion = "9"
	statusOnly.Status.AssignedIPv4 = 7
	spec := pool.DeepCopy()
	spec.Generation = 4
	labels := pool.DeepCopy()
	labels.Labels = map[string]string{"a": "c"}
	deleting := pool.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	noGen := pool.DeepCopy()
	noGen.Generation = 0
	recreated := pool.DeepCopy() // same name and generation, another object
	recreated.UID = "other"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: 1}}
	for _, tc := range []struct {
		name     string
		old, cur any
		want     bool
	}{
		{"status only", pool, statusOnly, false},
		{"spec", pool, spec, true},
		{"labels", pool, labels, true},
		{"deletion", pool, deleting, true},
		{"no generation", noGen, noGen.DeepCopy(), true},
		{"deleted and created again", pool, recreated, true},
		{"secret", secret, secret.DeepCopy(), true},
	} {
		if got := configUpdate(tc.old, tc.cur); got != tc.want {
			t.Errorf("%s: configUpdate = %v, want %v", tc.name, got, tc.want)
		}
	}
}
