package reconciler

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

func lbService(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP}, {Port: 53}},
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestHandles(t *testing.T) {
	other := "other.io/lb"
	tests := []struct {
		name  string
		svc   *corev1.Service
		class string
		want  bool
	}{
		{"no class, default", lbService(nil), "", true},
		{"no class, flag set", lbService(nil), other, false},
		{"other class, default", lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = &other }), "", false},
		{"matching class", lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = &other }), other, true},
		{"ClusterIP", lbService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), "", false},
	}
	for _, tt := range tests {
		if got := Handles(tt.svc, tt.class); got != tt.want {
			t.Errorf("%s: Handles = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRequestFor(t *testing.T) {
	dual := corev1.IPFamilyPolicyRequireDualStack
	tests := []struct {
		name  string
		mut   func(*corev1.Service)
		check func(t *testing.T, r allocator.Request)
		err   string
	}{
		{name: "defaults", check: func(t *testing.T, r allocator.Request) {
			if r.Key != "ns/web" || r.Policy != allocator.SingleStack || len(r.IPs) != 0 || r.Pool != "" || r.Local {
				t.Fatalf("request = %+v", r)
			}
			want := []allocator.Port{{Protocol: "TCP", Port: 443}, {Protocol: "TCP", Port: 53}}
			if !slices.Equal(r.Ports, want) {
				t.Fatalf("ports = %v, want %v", r.Ports, want)
			}
		}},
		{name: "annotations", mut: func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationAddressPool] = "gold"
			s.Annotations[v1beta1.AnnotationAllowSharedIP] = "k1"
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.5, 2001:db8::5"
			s.Spec.IPFamilyPolicy = &dual
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, check: func(t *testing.T, r allocator.Request) {
			if r.Pool != "gold" || r.SharingKey != "k1" || !r.Local || r.Policy != allocator.RequireDualStack {
				t.Fatalf("request = %+v", r)
			}
			if !slices.Equal(r.Families, []allocator.Family{allocator.IPv6, allocator.IPv4}) {
				t.Fatalf("families = %v", r.Families)
			}
			if !slices.Equal(r.IPs, []netip.Addr{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::5")}) {
				t.Fatalf("ips = %v", r.IPs)
			}
		}},
		{name: "legacy annotations", mut: func(s *corev1.Service) {
			s.Annotations[legacyAddressPool] = "silver"
			s.Annotations[legacyLoadBalancerIPs] = "203.0.113.9"
		}, check: func(t *testing.T, r allocator.Request) {
			if r.Pool != "silver" || len(r.IPs) != 1 || r.IPs[0].String() != "203.0.113.9" {
				t.Fatalf("request = %+v", r)
			}
		}},
		{name: "spec.loadBalancerIP", mut: func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.7" },
			check: func(t *testing.T, r allocator.Request) {
				if len(r.IPs) != 1 || r.IPs[0].String() != "203.0.113.7" {
					t.Fatalf("ips = %v", r.IPs)
				}
			}},
		// MetalLB refuses a Service that requests IPs both ways, even the same
		// IP (controller/service.go getDesiredLbIPs, v0.16.1).
		{name: "annotation and spec conflict", mut: func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "203.0.113.7"
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.8"
		}, err: "metadata.annotations[metallb.io/loadBalancerIPs] and spec.loadBalancerIP are both set; set only one"},
		{name: "annotation and spec conflict on one IP", mut: func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "203.0.113.7"
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.7"
		}, err: "metadata.annotations[metallb.io/loadBalancerIPs] and spec.loadBalancerIP are both set"},
		{name: "legacy annotation and spec conflict", mut: func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "203.0.113.7"
			s.Annotations[legacyLoadBalancerIPs] = "203.0.113.8"
		}, err: "metadata.annotations[metallb.universe.tf/loadBalancerIPs] and spec.loadBalancerIP are both set"},
		{name: "bad IP in annotation", mut: func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.8,banana"
		}, err: `metadata.annotations[metallb.io/loadBalancerIPs]: "banana" is not a valid IP address`},
		{name: "bad spec.loadBalancerIP", mut: func(s *corev1.Service) { s.Spec.LoadBalancerIP = "1.2.3" },
			err: `spec.loadBalancerIP: "1.2.3" is not a valid IP address`},
		{name: "two of one family", mut: func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.8,203.0.113.9"
		}, err: "lists more than one IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RequestFor(lbService(tt.mut), map[string]string{"env": "x"})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.NamespaceLabels["env"] != "x" {
				t.Fatalf("namespace labels not passed: %v", r.NamespaceLabels)
			}
			tt.check(t, r)
		})
	}
}

func TestPoolConfig(t *testing.T) {
	no := false
	p := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"10.0.0.0/24"}, AutoAssign: &no, AllocateTo: &v1beta1.ServiceAllocation{
			Priority: 3, Namespaces: []string{"a"},
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"x": "y"}}},
		}},
	}
	cfg, err := PoolConfig(p)
	if err != nil || cfg.AutoAssign || cfg.AllocateTo.Priority != 3 || len(cfg.AllocateTo.ServiceSelectors) != 1 {
		t.Fatalf("PoolConfig = %+v, %v", cfg, err)
	}
	p.Spec.AutoAssign = nil
	if cfg, _ := PoolConfig(p); !cfg.AutoAssign {
		t.Fatal("autoAssign must default to true")
	}
	p.Spec.AllocateTo.NamespaceSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}
	if _, err := PoolConfig(p); err == nil || !strings.HasPrefix(err.Error(), "spec.serviceAllocation.namespaceSelectors[0]: ") {
		t.Fatalf("bad selector error = %v", err)
	}
}
